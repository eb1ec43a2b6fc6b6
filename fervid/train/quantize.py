"""8-bit copies of contract models: the same network at about twice the crops per second on a CPU.

Static quantisation (weights per channel, activations calibrated on FER-2013 *Training* faces, never
on a test split), in ONNX Runtime's operator format (QLinearConv), the first convolution and the
head kept in float. Measured on fcn's PublicTest: QDQ 65.17% at 1,942 crops/s, the first
convolution in float 65.28% at 2,162, operator format with it 65.31% at 2,201. The copy is a new model, scored afresh
(``fervid.train.derive``). Needs the train extra (onnx).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np
import onnx

from fervid.train import datasets
from fervid.analysis.classify import Classifier
from fervid.labels import NUM_CLASSES
from fervid.train.modelfile import save_with_metadata
from fervid.train.derive import score_splits


def float_nodes(proto: onnx.ModelProto) -> list[str]:
    """Nodes left in float: the first convolution (one input channel: 8 bits save no time there
    and cost accuracy), and the head: the global pooling and everything after it, and before it
    the convolution to the 7 class maps where there is one (fcn, mini_xception). 8-bit logits or
    probabilities would come out in coarse steps of 1/255; the head is a tiny share of the work.
    (A ResNet's last convolution is not its head: in resnet_m it is a fifth of the work.)"""
    nodes = list(proto.graph.node)
    out_channels = {t.name: t.dims[0] for t in proto.graph.initializer if t.dims}
    convs = [i for i, n in enumerate(nodes) if n.op_type == "Conv"]
    pools = [i for i, n in enumerate(nodes) if n.op_type in ("GlobalAveragePool", "ReduceMean")]
    head = pools[-1] if pools else convs[-1]
    if out_channels.get(nodes[convs[-1]].input[1]) == NUM_CLASSES:
        head = min(head, convs[-1])
    return [nodes[convs[0]].name] + [n.name for n in nodes[head:]]


def quantize(model: str | os.PathLike, data: str, out: str | os.PathLike, calibration: int = 1024, seed: int = 0,
             final: bool = False, command: str = "") -> dict:
    """Write ``out`` and return its metadata (with PublicTest and PrivateTest accuracy of the 8-bit model)."""
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    source = Classifier(str(model))
    fer = datasets.load(data)
    train = fer.split("Training")
    rng = np.random.default_rng(seed)
    pick = rng.choice(len(train), min(calibration, len(train)), replace=False)
    faces = train.images[np.sort(pick)].astype(np.float32)[:, None]
    name = source.input_name

    class Faces(CalibrationDataReader):
        def __init__(self):
            self.batches = iter(np.array_split(faces, max(1, len(faces) // 64)))

        def get_next(self):
            x = next(self.batches, None)
            return None if x is None else {name: x}

    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        pre, q = Path(tmp) / "pre.onnx", Path(tmp) / "q.onnx"
        quant_pre_process(str(model), str(pre))
        quantize_static(str(pre), str(q), Faces(), quant_format=QuantFormat.QOperator, per_channel=True,
                        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                        nodes_to_exclude=float_nodes(onnx.load(str(pre))))
        meta = {**source.info.metadata,
                "quantized_from": Path(model).name,
                "quantization": f"static int8 (QLinearConv, per-channel weights; first convolution and head in "
                                f"float), activations calibrated on "
                                f"{len(faces)} {Path(data).name} Training faces",
                "source_public_test_accuracy": source.info.metadata.get("public_test_accuracy", "unknown"),
                **score_splits(str(q), fer, final),
                "command": command}
        save_with_metadata(onnx.load(str(q)), out, meta)
    return meta
