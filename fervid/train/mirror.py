"""Mirror averaging inside the graph: a model that reads each face and its mirror image and
averages the two answers (flip test-time augmentation), shipped as one contract-honouring file.

In the graph rather than in the pipeline so that the model card, ``fervid evaluate`` and outside
tools all see the same model; it costs twice the classifier work. Works on float and 8-bit files.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import onnx
from onnx import helper, numpy_helper

from fervid.analysis.classify import MIRRORED, Classifier
from fervid.errors import ModelError
from fervid.labels import NUM_CLASSES
from fervid.train.derive import write_scored


def mirror_average(proto: onnx.ModelProto) -> onnx.ModelProto:
    """The same network run on ``[x; flip(x)]`` (flipped left-right), its two halves averaged."""
    proto = onnx.ModelProto.FromString(proto.SerializeToString())
    graph = proto.graph
    x, y = graph.input[0].name, graph.output[0].name
    both_in, both_out = f"{x}_and_mirror", f"{y}_and_mirror"
    for node in graph.node:
        node.input[:] = [both_in if name == x else name for name in node.input]
        node.output[:] = [both_out if name == y else name for name in node.output]
    const = {"mirror_starts": [-1], "mirror_ends": [np.iinfo(np.int64).min], "mirror_axes": [3],
             "mirror_steps": [-1], "mirror_halves": [2, -1, NUM_CLASSES]}
    opset = next(o.version for o in proto.opset_import if o.domain in ("", "ai.onnx"))
    if opset >= 18:  # ReduceMean's axes became an input
        const["mirror_axis0"] = [0]
    graph.initializer.extend(numpy_helper.from_array(np.array(v, np.int64), k) for k, v in const.items())
    mean = (helper.make_node("ReduceMean", [f"{y}_halves", "mirror_axis0"], [y], keepdims=0) if opset >= 18 else
            helper.make_node("ReduceMean", [f"{y}_halves"], [y], axes=[0], keepdims=0))
    head = [helper.make_node("Slice", [x, "mirror_starts", "mirror_ends", "mirror_axes", "mirror_steps"], [f"{x}_mirror"]),
            helper.make_node("Concat", [x, f"{x}_mirror"], [both_in], axis=0)]
    tail = [helper.make_node("Reshape", [both_out, "mirror_halves"], [f"{y}_halves"]), mean]
    nodes = head + list(graph.node) + tail
    del graph.node[:]
    graph.node.extend(nodes)
    del graph.value_info[:]  # shapes inside now see a batch of 2N; let runtimes infer them again
    onnx.checker.check_model(proto)
    return proto


def mirror(model: str | os.PathLike, data: str, out: str | os.PathLike, final: bool = False,
           command: str = "") -> dict:
    """Write the mirror-averaged copy of ``model`` to ``out``; return its metadata, freshly scored."""
    source = Classifier(str(model))
    if source.mirrored:
        raise ModelError(f"{model}: already averages each face with its mirror image")
    meta = {**source.info.metadata, MIRRORED[0]: MIRRORED[1], "mirrored_from": Path(model).name,
            "source_public_test_accuracy": source.info.metadata.get("public_test_accuracy", "unknown"),
            "command": command}
    return write_scored(mirror_average(onnx.load(str(model))), out, meta, data, final)
