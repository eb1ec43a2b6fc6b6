"""Export a trained network as an ONNX file that honours fervid's model contract."""

from __future__ import annotations

import os
from pathlib import Path

import onnx
import torch

from fervid import __version__
from fervid.labels import EMOTIONS
from fervid.train.modelfile import save_with_metadata
from fervid.train.nets import ContractModel

INPUT_SIZE = 48


def export_onnx(net: torch.nn.Module, out: str | os.PathLike, meta: dict) -> Path:
    """Write ``out`` atomically: float32 [N,1,48,48] raw grey in, [N,7] probabilities out, metadata attached."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    model = ContractModel(net).eval().cpu()
    tmp = out.with_name(out.name + ".tmp")
    dummy = torch.zeros(2, 1, INPUT_SIZE, INPUT_SIZE)
    torch.onnx.export(model, (dummy,), str(tmp), input_names=["image"], output_names=["probabilities"],
                      dynamic_axes={"image": {0: "N"}, "probabilities": {0: "N"}}, opset_version=17, dynamo=False)
    proto = onnx.load(str(tmp))
    tmp.unlink()
    proto.producer_name = "fervid"
    onnx.checker.check_model(proto)
    props = {"class_names": ",".join(EMOTIONS), "input_size": str(INPUT_SIZE), "fervid_version": __version__, **meta}
    return save_with_metadata(proto, out, props)
