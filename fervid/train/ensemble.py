"""Ensembles as one contract-honouring ONNX file: several emotion models read the same faces and
their probabilities are averaged.

Built from the ONNX files themselves (float or 8-bit, mirror-averaged or not), so what is
averaged is exactly what ships; ``fervid evaluate``, the model card and the pipeline see one
model. It costs the sum of its members' work per face.
"""

from __future__ import annotations

import os
from pathlib import Path

import onnx
from onnx import compose, helper

from fervid.analysis.classify import Classifier
from fervid.errors import ModelError
from fervid.train.derive import write_scored


def average_graphs(protos: list[onnx.ModelProto]) -> onnx.ModelProto:
    """One graph: the shared input fed to every member, their outputs averaged (ONNX ``Mean``)."""
    x, y = protos[0].graph.input[0], protos[0].graph.output[0]
    opsets: dict[str, int] = {}
    nodes, inits, outs = [], [], []
    for i, proto in enumerate(protos):
        member = compose.add_prefix(proto, f"m{i}_")
        g = member.graph
        nodes.append(helper.make_node("Identity", [x.name], [g.input[0].name]))
        nodes.extend(g.node)
        inits.extend(g.initializer)
        outs.append(g.output[0].name)
        for o in proto.opset_import:
            opsets[o.domain] = max(opsets.get(o.domain, 0), o.version)
    nodes.append(helper.make_node("Mean", outs, [y.name]))
    graph = helper.make_graph(nodes, "ensemble", [x], [y], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid(d, v) for d, v in opsets.items()],
                              producer_name="fervid")
    model.ir_version = max(p.ir_version for p in protos)
    onnx.checker.check_model(model)
    return model


def ensemble(models: list[str | os.PathLike], data: str, out: str | os.PathLike, final: bool = False,
             command: str = "") -> dict:
    """Write the average of ``models`` to ``out``; return its metadata, freshly scored."""
    if len(models) < 2:
        raise ModelError("an ensemble needs at least two models")
    members = [Classifier(str(m)) for m in models]
    sizes = {m.input_size for m in members}
    if len(sizes) != 1:
        raise ModelError(f"the models take different input sizes ({', '.join(map(str, sorted(sizes)))}): "
                         "an ensemble needs one")
    metas = [m.info.metadata for m in members]
    params = sum(int(m.get("parameters", 0) or 0) for m in metas)
    meta = {"class_names": metas[0].get("class_names", ""), "input_size": str(sizes.pop()),
            "architecture": "ensemble of " + ", ".join(m.get("architecture", "?") for m in metas),
            "parameters": str(params), "trained_on": metas[0].get("trained_on", "unknown"),
            "members": ", ".join(Path(m).name for m in models),
            "member_public_test_accuracy": ", ".join(m.get("public_test_accuracy", "unknown") for m in metas),
            "command": command}
    return write_scored(average_graphs([onnx.load(str(m)) for m in models]), out, meta, data, final)
