import cv2
import numpy as np
import pytest

from fervid.analysis.classify import Classifier, resolve_model, square_crop
from fervid.errors import ModelError
from fervid.labels import EMOTIONS
from fervid.analysis.smooth import EmaSmoother


def test_square_crop_inside_and_at_the_edge():
    gray = np.arange(100 * 120, dtype=np.uint32).reshape(100, 120).astype(np.uint8)
    inside = square_crop(gray, (40, 30, 80, 70), 48, scale=1.0, shift_y=0.0)
    assert inside.shape == (48, 48)
    edge = square_crop(gray, (-20, -10, 30, 40), 48)
    assert edge.shape == (48, 48)


@pytest.mark.parametrize("box", [(10, 10, 50, 50), (-30, -20, 20, 30), (90, 60, 130, 100), (-10, -10, 125, 105),
                                 (150, 10, 190, 50), (-200, -200, -150, -150), (10, 100, 50, 140)])
def test_square_crop_anywhere_equals_the_crop_of_an_edge_replicated_picture(box):
    """Partly or wholly outside the picture (a face predicted past the edge), the crop is what
    the picture extended by repeating its edge pixels shows there; it never fails."""
    gray = np.random.default_rng(1).integers(0, 256, (80, 100), dtype=np.uint8)
    pad = 400
    big = cv2.copyMakeBorder(gray, pad, pad, pad, pad, cv2.BORDER_REPLICATE)
    shifted = tuple(v + pad for v in box)
    assert np.array_equal(square_crop(gray, box, 48), square_crop(big, shifted, 48))


def test_shipped_default_model_honours_the_contract():
    clf = Classifier()
    x = np.random.default_rng(0).integers(0, 256, (5, clf.input_size, clf.input_size), dtype=np.uint8)
    p = clf.predict(x)
    assert p.shape == (5, 7) and p.dtype == np.float32
    assert np.allclose(p.sum(1), 1, atol=1e-4) and (p >= 0).all()
    assert clf.info.metadata["class_names"] == ",".join(EMOTIONS)
    for key in ("input_size", "architecture", "parameters", "trained_on", "public_test_accuracy",
                "private_test_accuracy", "command"):
        assert key in clf.info.metadata
    assert clf.predict(np.zeros((0, clf.input_size, clf.input_size), np.uint8)).shape == (0, 7)


def _onnx_model(path, in_shape, out_classes):
    import onnx
    from onnx import TensorProto, helper

    inp = helper.make_tensor_value_info("x", TensorProto.FLOAT, in_shape)
    out = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", out_classes])
    shape = helper.make_tensor("shape", TensorProto.INT64, [2], [-1, out_classes])
    flat = helper.make_node("Flatten", ["x"], ["f"])
    w = helper.make_tensor("w", TensorProto.FLOAT, [int(np.prod(in_shape[1:])), out_classes],
                           np.zeros(int(np.prod(in_shape[1:])) * out_classes, np.float32))
    mm = helper.make_node("MatMul", ["f", "w"], ["m"])
    rs = helper.make_node("Reshape", ["m", "shape"], ["r"])
    sm = helper.make_node("Softmax", ["r"], ["y"], axis=1)
    graph = helper.make_graph([flat, mm, rs, sm], "g", [inp], [out], [shape, w])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


def test_model_breaking_the_contract_is_refused_with_the_contract(tmp_path):
    pytest.importorskip("onnx")
    rgb = _onnx_model(tmp_path / "rgb.onnx", ["N", 3, 48, 48], 7)
    with pytest.raises(ModelError, match=r"expects one float32 input \[N,1,S,S\]"):
        Classifier(str(rgb))
    five = _onnx_model(tmp_path / "five.onnx", ["N", 1, 48, 48], 5)
    with pytest.raises(ModelError, match=r"output shape"):
        Classifier(str(five))
    ok = Classifier(str(_onnx_model(tmp_path / "ok.onnx", ["N", 1, 64, 64], 7)))
    assert ok.input_size == 64


def test_not_onnx_and_missing_model(tmp_path):
    bad = tmp_path / "bad.onnx"
    bad.write_text("this is not a model")
    with pytest.raises(ModelError, match="not a loadable ONNX model"):
        Classifier(str(bad))
    with pytest.raises(ModelError, match="model not found"):
        resolve_model("no_such_model")


def test_smoother_works_in_seconds():
    a, b = np.eye(7)[0], np.eye(7)[3]
    for rate in (10, 60):  # the same tau gives the same result at any frame rate
        s = EmaSmoother(tau=0.5)
        s.update(1, a, 0.0)
        out = None
        for i in range(1, rate // 2 + 1):
            out = s.update(1, b, i / rate)
        assert out[3] == pytest.approx(1 - np.exp(-1), abs=1e-9)
        assert out.sum() == pytest.approx(1)
    raw = EmaSmoother(tau=0)
    raw.update(1, a, 0)
    assert (raw.update(1, b, 0.1) == b).all()


def test_tta_averages_each_crop_with_its_mirror():
    plain, tta = Classifier(), Classifier(tta=True)
    x = np.random.default_rng(1).integers(0, 256, (4, plain.input_size, plain.input_size), dtype=np.uint8)
    expected = (plain.predict(x) + plain.predict(x[:, :, ::-1].copy())) / 2
    assert np.allclose(tta.predict(x), expected, atol=1e-5)


@pytest.mark.parametrize("angle", [15, 25, -30])
def test_levelled_crop_of_a_tilted_face_is_the_upright_crop(angle):
    """A face turned by ``angle`` (counter-clockwise on screen, so its roll is -angle) is cropped
    turned back: nearly the upright crop, where the plain crop is far from it. (The detector's box
    of a turned face is smaller by about the cosine of the angle; the crop makes up for it.)"""
    from conftest import EXAMPLE_IMAGE

    gray = cv2.imread(str(EXAMPLE_IMAGE), cv2.IMREAD_GRAYSCALE)
    box = (172.2, 66.3, 278.1, 172.2)  # her face, as the detector finds it
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    turned = cv2.warpAffine(gray, cv2.getRotationMatrix2D((cx, cy), angle, 1.0), gray.shape[::-1],
                            borderMode=cv2.BORDER_REPLICATE)
    half = (box[2] - box[0]) / 2 * np.cos(np.radians(angle))
    shrunk = (cx - half, cy - half, cx + half, cy + half)
    upright = square_crop(gray, box, 48).astype(int)
    levelled = np.abs(square_crop(turned, shrunk, 48, roll=-angle).astype(int) - upright).mean()
    plain = np.abs(square_crop(turned, shrunk, 48).astype(int) - upright).mean()
    assert levelled < 8 and plain > 3 * levelled


def test_a_face_leaning_as_fer2013_faces_do_is_not_turned():
    """Below 7 degrees the crop stays upright; it turns back in part up to 13, so that a head
    leaning about the threshold does not make the crops jump between frames."""
    from conftest import EXAMPLE_IMAGE

    gray = cv2.imread(str(EXAMPLE_IMAGE), cv2.IMREAD_GRAYSCALE)
    box = (172.2, 66.3, 278.1, 172.2)
    upright = square_crop(gray, box, 48).astype(int)
    assert (square_crop(gray, box, 48, roll=5.0) == upright).all()
    steps = [np.abs(square_crop(gray, box, 48, roll=r).astype(int) - upright).mean() for r in (8, 9, 10, 11, 12, 13)]
    assert all(b > a for a, b in zip(steps, steps[1:]))  # turned a little more at each degree
