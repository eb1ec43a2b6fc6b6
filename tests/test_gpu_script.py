"""scripts/gpu_train.sh is meant for a GPU machine lent for minutes, where a typo would waste the
loan: run it whole here, on the CPU, with a tiny pack of faces and one epoch per network."""

import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("onnx")

from conftest import fer_csv  # noqa: E402
from fervid.train import datasets  # noqa: E402
from fervid.analysis.classify import Classifier  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_gpu_script_runs_end_to_end_on_a_cpu(tmp_path):
    csv = fer_csv(tmp_path / "fer.csv", {"Training": 140, "PublicTest": 28, "PrivateTest": 28})
    pack = tmp_path / "pack.npz.xz"
    subprocess.run([sys.executable, str(ROOT / "scripts" / "pack_fer.py"), str(csv), "-o", str(pack)], check=True,
                   capture_output=True)
    packed = datasets.load(pack)
    assert set(packed.usage) == {"Training", "PublicTest"}  # PrivateTest never travels

    out, runs = tmp_path / "out", tmp_path / "work"
    env = {**os.environ, "DATA": str(pack), "OUT": str(out), "RUNS": str(runs), "DEVICE": "cpu",
           "PYTHON": sys.executable, "EPOCHS_TEACHER": "1", "EPOCHS_STUDENT": "1"}
    done = subprocess.run(["bash", str(ROOT / "scripts" / "gpu_train.sh")], cwd=ROOT, env=env,
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    last = done.stdout.strip().splitlines()[-4:]  # the script ends with each network's choice
    assert len(last) == 4 and all("chose epoch 1" in line for line in last)
    for arch in ("resnet_m", "resnet_s", "mini_xception_144"):
        clf = Classifier(str(out / f"{arch}.onnx"))
        assert clf.info.metadata["architecture"] == arch
        assert clf.info.metadata["private_test_accuracy"] == "not measured"
        assert "distilled from resnet18.pt mirror-averaged" in clf.info.metadata["recipe"]
        assert clf.predict(np.zeros((2, 48, 48), np.uint8)).shape == (2, 7)
        assert (out / f"{arch}.pt").is_file()
    with tarfile.open(out / "logs.tgz") as tar:
        assert sum(name.endswith("train.log") for name in tar.getnames()) == 4
