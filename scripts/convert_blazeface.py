"""Convert MediaPipe's BlazeFace ``.tflite`` models (vendored in models/) to ONNX, once, offline.

fervid runs BlazeFace through ONNX Runtime (fervid/analysis/blazeface.py): the tiles of a frame go through
in one batched call, and the runtime does not need MediaPipe's graph machinery. This script made
``models/blaze_face_{full,short}_range.onnx``; it needs TensorFlow and tf2onnx, which fervid
itself never imports (run it in a throw-away venv):

    python3 -m venv /tmp/conv && /tmp/conv/bin/pip install tensorflow-cpu tf2onnx onnx onnxruntime
    /tmp/conv/bin/python scripts/convert_blazeface.py models/blaze_face_full_range.tflite
    /tmp/conv/bin/python scripts/convert_blazeface.py models/blaze_face_short_range.tflite

The full-range model stores its weights sparse (DENSIFY ops), which tf2onnx cannot read; the
dense values are taken from TensorFlow Lite's own interpreter instead and DENSIFY becomes an
identity. The batch dimension is made dynamic. The ONNX file is checked against the interpreter
on random inputs before it is written.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import onnx
import tensorflow as tf
import tf2onnx
from tf2onnx import tflite_utils
from tf2onnx.tflite_handlers import tfl_math  # noqa: F401 - registers the handlers patched below
from tf2onnx.handler import tfl_op


def dense_values(path: Path) -> dict[int, np.ndarray]:
    """Tensor index -> value for every DENSIFY output, from one run of TFLite's interpreter."""
    # Without the XNNPACK delegate: with it, the DENSIFY outputs are left as zeros.
    it = tf.lite.Interpreter(model_path=str(path), experimental_preserve_all_tensors=True,
                             experimental_op_resolver_type=tf.lite.experimental.OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
    it.allocate_tensors()
    inp = it.get_input_details()[0]
    it.set_tensor(inp["index"], np.zeros(inp["shape"], np.float32))
    it.invoke()
    out = {}
    for op in it._get_ops_details():  # noqa: SLF001 - the only way to list the graph's ops
        if op["op_name"] == "DENSIFY":
            out[int(op["inputs"][0])] = it.get_tensor(int(op["outputs"][0]))
    return out


def main(src: str) -> None:
    path = Path(src)
    dst = path.with_suffix(".onnx")
    dense = dense_values(path)
    if dense:
        patch_tf2onnx_sparse(dense)
    model, _ = tf2onnx.convert.from_tflite(str(path), opset=17)
    dynamic_batch(model)
    check(path, model)
    onnx.save(model, dst)
    print(f"{dst}: {dst.stat().st_size:,} bytes, {len(dense)} sparse tensors densified")


class _DenseBuffer:
    def __init__(self, value: np.ndarray):
        self.value = value

    def DataIsNone(self) -> bool:  # noqa: N802 - the flatbuffer API's names
        return False

    def DataAsNumpy(self) -> np.ndarray:  # noqa: N802
        return np.frombuffer(self.value.tobytes(), np.uint8)


class _DenseModel:
    """The flatbuffer model, but a sparse tensor's buffer holds the dense values."""

    def __init__(self, model, buffers: dict[int, np.ndarray]):
        self._model, self._buffers = model, buffers

    def Buffers(self, i):  # noqa: N802
        return _DenseBuffer(self._buffers[i]) if i in self._buffers else self._model.Buffers(i)

    def __getattr__(self, name):
        return getattr(self._model, name)


def patch_tf2onnx_sparse(dense: dict[int, np.ndarray]) -> None:
    """tf2onnx reshapes each constant's raw buffer to the tensor's shape, and a sparse buffer is
    shorter: serve the interpreter's dense values for those tensors; DENSIFY becomes Identity."""
    parse = tflite_utils.parse_tflite_graph

    def parse_dense(tflite_g, opcodes_map, model, *args, **kwargs):
        buffers = {tflite_g.Tensors(i).Buffer(): v for i, v in dense.items()}
        return parse(tflite_g, opcodes_map, _DenseModel(model, buffers), *args, **kwargs)

    tflite_utils.parse_tflite_graph = parse_dense

    @tfl_op(["TFL_DENSIFY"], onnx_op="Identity")
    class TflDensify:  # noqa: F841 - registered by the decorator
        @classmethod
        def version_1(cls, ctx, node, **kwargs):
            pass


def dynamic_batch(model) -> None:
    """Batch N instead of 1: the input, the outputs, and every Reshape's target shape."""
    g = model.graph
    g.input[0].type.tensor_type.shape.dim[0].dim_param = "N"
    for out in g.output:
        out.type.tensor_type.shape.dim[0].dim_param = "N"
    inits = {t.name: t for t in g.initializer}
    consts = {n.output[0]: n for n in g.node if n.op_type == "Constant"}
    for node in g.node:
        if node.op_type != "Reshape":
            continue
        name = node.input[1]
        if name in inits:
            shape = onnx.numpy_helper.to_array(inits[name]).copy()
            shape[0] = 0  # 0: copy the input's dimension (the batch)
            inits[name].CopyFrom(onnx.numpy_helper.from_array(shape, name))
        else:
            raise SystemExit(f"Reshape {node.name}: its shape is not a constant ({name} in {list(consts)[:3]})")
    del g.value_info[:]  # shapes inferred for batch 1 no longer hold


def check(path: Path, model) -> None:
    import onnxruntime as ort

    it = tf.lite.Interpreter(model_path=str(path))
    it.allocate_tensors()
    inp = it.get_input_details()[0]
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, size=(3, *inp["shape"][1:])).astype(np.float32)
    got = sess.run(None, {sess.get_inputs()[0].name: x})
    for b in range(len(x)):
        it.set_tensor(inp["index"], x[b:b + 1])
        it.invoke()
        for out, mine in zip(it.get_output_details(), got):
            ref = it.get_tensor(out["index"])[0]
            diff = np.abs(ref - mine[b]).max()
            if diff > 1e-3:
                raise SystemExit(f"{path}: ONNX and TFLite disagree by {diff} on output {out['name']}")
    print(f"{path}: ONNX Runtime matches TFLite on 3 random inputs (batch of 3)")


if __name__ == "__main__":
    for arg in sys.argv[1:]:
        main(arg)
