"""Guided back-propagation and `fervid explain` (needs torch)."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("matplotlib")

from click.testing import CliRunner  # noqa: E402

from conftest import EXAMPLE_IMAGE, fer_csv, make_face_video  # noqa: E402
from fervid.cli import main  # noqa: E402
from fervid.train import guided, nets  # noqa: E402
from fervid.train.export import export_onnx  # noqa: E402


def _model(tmp_path, arch, zero=False):
    torch.manual_seed(0)
    net = nets.build(arch).eval()
    if zero:
        for p in net.parameters():
            torch.nn.init.zeros_(p)
    path = export_onnx(net, tmp_path / f"{arch}{'_zero' if zero else ''}.onnx", {"architecture": arch})
    guided.save_weights(net, arch, path)
    return net, path


@pytest.mark.parametrize("arch", ["mini_xception", "fcn"])
def test_saliency_shapes_finite_and_not_that_of_a_zero_model(tmp_path, arch):
    net, _ = _model(tmp_path, arch)
    zero, _ = _model(tmp_path, arch, zero=True)
    crops = np.random.default_rng(0).integers(0, 256, (3, 48, 48), dtype=np.uint8)
    maps = guided.saliency(net, crops, np.array([0, 3, 6]))
    zmaps = guided.saliency(zero, crops, np.array([0, 3, 6]))
    assert maps.shape == (3, 48, 48) and np.isfinite(maps).all()
    assert np.abs(maps).sum() > 0 and np.abs(zmaps).sum() == 0
    assert not np.allclose(maps, zmaps)


def test_guided_copy_leaves_the_model_alone(tmp_path):
    net, _ = _model(tmp_path, "mini_xception")
    g = guided.guided(net)
    assert any(isinstance(m, guided.GuidedReLU) for m in g.modules())
    assert not any(isinstance(m, guided.GuidedReLU) for m in net.modules())


def test_explain_cli_on_image_video_and_fer(tmp_path):
    _, mx = _model(tmp_path, "mini_xception")
    _, fcn = _model(tmp_path, "fcn")
    run = lambda *a: CliRunner().invoke(main, [str(x) for x in a], catch_exceptions=False)  # noqa: E731
    out = tmp_path / "img.png"
    res = run("explain", EXAMPLE_IMAGE, "--model", mx, "--class", "sad", "-o", out)
    assert res.exit_code == 0, res.output
    assert out.stat().st_size > 1000 and "1 faces" in res.output
    video = make_face_video(tmp_path / "v.mp4", seconds=1)
    res = run("explain", video, "--time", "0.5", "--model", mx, "-o", tmp_path / "vid.png")
    assert res.exit_code == 0, res.output
    data = fer_csv(tmp_path / "fer.csv", {"PublicTest": 28})
    res = run("explain", "--data", data, "--classes", "angry,happy", "--per-class", "2", "--model", mx,
              "--model", fcn, "-o", tmp_path / "fer.png")
    assert res.exit_code == 0 and "4 faces, 2 model(s)" in res.output


def test_explain_without_weights_says_why(tmp_path):
    _, mx = _model(tmp_path, "mini_xception")
    mx.with_suffix(".pt").unlink()
    res = CliRunner().invoke(main, ["explain", str(EXAMPLE_IMAGE), "--model", str(mx), "-o", str(tmp_path / "x.png")])
    assert res.exit_code == 2 and "no torch weights" in res.output
