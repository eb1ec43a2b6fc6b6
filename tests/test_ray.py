"""Batches on a real multi-node Ray cluster on loopback: the same outputs as a local run, faults
survived, one Parquet dataset, reruns that skip."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import make_face_video

ray = pytest.importorskip("ray")
os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
NODE = {"num_cpus": 1, "node_ip_address": "127.0.0.1"}


@pytest.fixture(scope="module")
def cluster():
    from ray.cluster_utils import Cluster

    c = Cluster(initialize_head=True, head_node_args={**NODE, "include_dashboard": False})
    c.add_node(**NODE)
    c.wait_for_nodes()
    yield c
    c.shutdown()


def fervid(*args, wait: bool = True, **kwargs):
    cmd = [sys.executable, "-m", "fervid", *map(str, args)]
    if wait:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=300, **kwargs)
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **kwargs)


def csvs(folder: Path) -> dict[str, str]:
    return {p.name: p.read_text() for p in sorted(folder.glob("*.csv"))}


@pytest.fixture(scope="module")
def clips(tmp_path_factory, face_video, two_face_video):
    d = tmp_path_factory.mktemp("clips")
    src = d / "in"
    src.mkdir()
    shutil.copy(face_video, src / "a.mp4")
    shutil.copy(two_face_video, src / "b.mp4")
    make_face_video(src / "c.mp4", seconds=1.5, rate=30, size=200)
    make_face_video(src / "d.mp4", faces=2, seconds=1.0, rate=20)
    assert fervid("timeline", src, "--csv", d / "local", "-q").returncode == 0
    return d


def test_a_cluster_run_equals_the_local_run_and_gathers_parquet(cluster, clips, tmp_path):
    import pandas as pd

    res = fervid("timeline", clips / "in", "--csv", tmp_path / "out", "--ray", cluster.address, "-q")
    assert res.returncode == 0, res.stdout + res.stderr
    assert csvs(tmp_path / "out") == csvs(clips / "local")
    df = pd.read_parquet(tmp_path / "out" / "timeline.parquet")
    rows = sum(len(pd.read_csv(p)) for p in (clips / "local").glob("*.csv") if not p.name.endswith(".summary.csv"))
    assert len(df) == rows and set(df.video.astype(str)) == {"a.mp4", "b.mp4", "c.mp4", "d.mp4"}
    assert str(df.frame.dtype) == "int64" and str(df.face_id.dtype) == "int64" and str(df.happy.dtype) == "float64"
    assert df.det_score.dtype == "float64" and str(df.emotion.dtype) in ("string", "str")
    summary = pd.read_parquet(tmp_path / "out" / "summary.parquet")
    assert len(summary) == df.groupby(["video", "face_id"], observed=True).ngroups
    again = fervid("timeline", clips / "in", "--csv", tmp_path / "out", "--ray", cluster.address)
    assert again.returncode == 0 and "4 skipped" in again.stderr


def test_a_bad_input_fails_alone(cluster, clips, tmp_path):
    src = tmp_path / "in"
    shutil.copytree(clips / "in", src)
    (src / "bad.mp4").write_text("not a video")
    res = fervid("timeline", src, "--csv", tmp_path / "out", "--ray", cluster.address, "-q")
    assert res.returncode == 1
    assert [ln for ln in res.stderr.splitlines() if "failed:" in ln and "bad.mp4" in ln] != []
    assert len(list((tmp_path / "out").glob("*.json"))) == 4


def actor_pids() -> list[int]:
    out = subprocess.run(["ps", "-eo", "pid=,args="], capture_output=True, text=True).stdout
    return [int(line.split()[0]) for line in out.splitlines() if "ray::_Worker" in line]


def test_a_killed_worker_and_a_lost_node_cost_nothing(cluster, tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    for k in range(6):
        make_face_video(src / f"v{k}.mp4", seconds=6, size=320, rate=25, faces=1 + k % 2)
    assert fervid("timeline", src, "--csv", tmp_path / "local", "-q").returncode == 0
    out = tmp_path / "out"
    run = fervid("timeline", src, "--csv", out, "--ray", cluster.address, "-q", wait=False)
    end = time.time() + 120
    while not (out.exists() and any(".part" in p.name for p in out.iterdir())) and time.time() < end:
        time.sleep(0.1)
    pids = actor_pids()
    assert pids, "no worker at work"
    os.kill(pids[0], signal.SIGKILL)  # a worker process dies with a video in hand
    time.sleep(1.5)
    node = next(n for n in cluster.worker_nodes)
    cluster.remove_node(node)  # a whole node goes, with whatever it was running
    cluster.add_node(**NODE)  # and a new one joins
    output, _ = run.communicate(timeout=300)
    assert run.returncode == 0, output
    assert csvs(out) == csvs(tmp_path / "local")
    assert not [p for p in out.iterdir() if ".part" in p.name]


def test_without_ray_the_option_says_how_to_install_it(tmp_path, face_video):
    code = ("import sys; sys.modules['ray'] = None; from fervid.cli import main; "
            f"sys.argv = ['fervid', 'timeline', {str(face_video)!r}, '--csv', {str(tmp_path / 'o')!r}, '--ray']; main()")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert res.returncode == 2 and "pip install 'fervid[ray]'" in res.stderr


def test_the_local_path_never_imports_ray(face_video, tmp_path):
    code = ("import sys; from fervid.cli import main; "
            f"sys.argv = ['fervid', 'timeline', {str(face_video)!r}, '--csv', {str(tmp_path / 't.csv')!r}, '-q']\n"
            "try:\n    main()\nexcept SystemExit:\n    pass\nprint('ray' in sys.modules)")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert res.stdout.strip().endswith("False"), res.stdout + res.stderr


def test_parquet_on_the_local_path(tmp_path, clips):
    import pandas as pd

    res = fervid("timeline", clips / "in", "--csv", tmp_path / "out", "--parquet", "-q")
    assert res.returncode == 0, res.stderr
    assert len(pd.read_parquet(tmp_path / "out" / "timeline.parquet")) > 0
    assert fervid("timeline", clips / "in", "--parquet", "-q").returncode == 2  # nothing to gather without --csv
