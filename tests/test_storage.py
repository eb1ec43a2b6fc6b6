"""Inputs and outputs as URLs of a store: a real S3 server on loopback (moto's), s3fs as the
client, locally and on a real two-node Ray cluster; and the file:// store, which uploads under
a part name and renames."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import make_face_video

s3fs = pytest.importorskip("s3fs")
moto_server = pytest.importorskip("moto.server")


@pytest.fixture(scope="module")
def s3():
    """An S3 server on loopback; the variables that point s3fs (and so fervid) at it are set for
    the module, and so reach the subprocesses and the Ray cluster started under it."""
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    env = {"FSSPEC_S3_ENDPOINT_URL": f"http://{host}:{port}", "AWS_ACCESS_KEY_ID": "testing",
           "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}
    with pytest.MonkeyPatch.context() as mp:
        for k, v in env.items():
            mp.setenv(k, v)
        # fsspec read its variables when it was imported (at collection): this process needs them in its config.
        import fsspec.config

        mp.setitem(fsspec.config.conf, "s3", {"endpoint_url": env["FSSPEC_S3_ENDPOINT_URL"]})
        fs = s3fs.S3FileSystem(endpoint_url=env["FSSPEC_S3_ENDPOINT_URL"], skip_instance_cache=True)
        yield fs
    server.stop()


@pytest.fixture(scope="module")
def clips(tmp_path_factory, face_video, two_face_video, s3):
    """Three clips, locally and in s3://videos/ (one in a subfolder), and a local run's CSVs."""
    d = tmp_path_factory.mktemp("clips")
    src = d / "in"
    (src / "sub").mkdir(parents=True)
    shutil.copy(face_video, src / "a.mp4")
    shutil.copy(two_face_video, src / "sub" / "b.mp4")
    make_face_video(src / "c.mp4", seconds=1.0, rate=20, size=200)
    s3.mkdir("videos")
    for f in ("a.mp4", "sub/b.mp4", "c.mp4"):
        s3.put_file(str(src / f), f"videos/{f}")
    assert fervid("timeline", src, "--csv", d / "local", "--recursive", "-q").returncode == 0
    return d


def fervid(*args):
    return subprocess.run([sys.executable, "-m", "fervid", *map(str, args)], capture_output=True, text=True,
                          timeout=300)


def local_csvs(folder: Path) -> dict[str, str]:
    return {p.relative_to(folder).as_posix(): p.read_text() for p in sorted(folder.rglob("*.csv"))}


def store_csvs(fs, bucket: str) -> dict[str, str]:
    return {k.split("/", 1)[1]: fs.cat(k).decode() for k in sorted(fs.find(bucket)) if k.endswith(".csv")}


def test_a_folder_on_s3_gives_the_local_run_outputs_there(s3, clips):
    import pandas as pd

    s3.mkdir("results")
    res = fervid("timeline", "s3://videos/", "--csv", "s3://results/", "--recursive", "--parquet", "--html", "-q")
    assert res.returncode == 0, res.stderr
    s3.invalidate_cache()
    assert store_csvs(s3, "results") == local_csvs(clips / "local")
    names = set(s3.find("results"))
    assert {"results/sub/b.json", "results/sub/b.html", "results/index.html", "results/summary.parquet"} <= names
    assert not [n for n in names if ".part" in n]
    record = json.loads(s3.cat("results/sub/b.json"))
    assert record["input"]["path"] == "s3://videos/sub/b.mp4"
    assert record["outputs"]["timeline"] == "s3://results/sub/b.csv"
    # The page links its video across buckets by URL, never by a path of the machine that made it.
    assert '"src":"s3://videos/sub/b.mp4"' in s3.cat("results/sub/b.html").decode()
    opts = {"endpoint_url": os.environ["FSSPEC_S3_ENDPOINT_URL"]}
    df = pd.read_parquet("s3://results/timeline.parquet", storage_options=opts)
    assert len(df) == sum(v.count("\n") - 1 for k, v in local_csvs(clips / "local").items()
                          if not k.endswith(".summary.csv"))
    again = fervid("timeline", "s3://videos/", "--csv", "s3://results/", "--recursive")
    assert again.returncode == 0 and "3 skipped" in again.stderr


def test_local_videos_to_s3_and_back(s3, clips, tmp_path):
    s3.mkdir("mixed")
    res = fervid("annotate", clips / "in" / "a.mp4", "-o", "s3://mixed/a.mp4", "--csv", "--eaf")
    assert res.returncode == 0, res.stderr
    assert "wrote s3://mixed/a.mp4" in res.stderr
    s3.invalidate_cache()
    assert s3.cat("mixed/a.csv").decode() == (clips / "local" / "a.csv").read_text()
    eaf = s3.cat("mixed/a.eaf").decode()
    assert 'MEDIA_URL="s3://mixed/a.mp4" RELATIVE_MEDIA_URL="./a.mp4"' in eaf
    s3.get_file("mixed/a.mp4", str(tmp_path / "a.mp4"))
    probe = subprocess.run([sys.executable, "-c", "import av,sys; c=av.open(sys.argv[1]); "
                            "print(c.streams.video[0].frames, len(c.streams.audio))", str(tmp_path / "a.mp4")],
                           capture_output=True, text=True)
    assert probe.stdout.split()[0] != "0"
    # From the store to a local folder: the sidecar names the input by its URL.
    res = fervid("timeline", "s3://videos/c.mp4", "--csv", tmp_path / "c.csv")
    assert res.returncode == 0, res.stderr
    assert (tmp_path / "c.csv").read_text() == (clips / "local" / "c.csv").read_text()
    assert json.loads((tmp_path / "c.json").read_text())["input"]["path"] == "s3://videos/c.mp4"


def test_a_bad_input_on_s3_fails_alone_and_leaves_nothing_with_two_workers(s3, clips):
    s3.mkdir("batch")
    s3.pipe("batch/in/bad.mp4", b"not a video")
    s3.put_file(str(clips / "in" / "c.mp4"), "batch/in/c.mp4")
    res = fervid("timeline", "s3://batch/in/", "--csv", "s3://batch/out/", "-q", "-j", "2")
    assert res.returncode == 1
    assert [ln for ln in res.stderr.splitlines() if "failed:" in ln and "bad.mp4" in ln] != []
    s3.invalidate_cache()
    assert sorted(s3.find("batch/out")) == ["batch/out/c.csv", "batch/out/c.json", "batch/out/c.summary.csv"]


def test_outputs_beside_or_inside_the_inputs_on_s3(s3, clips):
    s3.mkdir("beside")
    s3.put_file(str(clips / "in" / "c.mp4"), "beside/c.mp4")
    assert fervid("timeline", "s3://beside/", "--csv", "s3://beside/", "-q").returncode == 0
    assert fervid("annotate", "s3://beside", "-o", "s3://beside/out/", "-q").returncode == 0
    again = fervid("annotate", "s3://beside/", "-o", "s3://beside/out/", "-r")  # out/c.mp4 is not an input
    assert again.returncode == 0 and "0 done, 1 skipped" in again.stderr
    s3.invalidate_cache()
    assert {"beside/c.csv", "beside/out/c.mp4"} <= set(s3.find("beside"))


def test_a_file_on_s3_that_fervid_did_not_write_is_not_replaced(s3, clips):
    s3.mkdir("theirs")
    s3.pipe("theirs/c.csv", b"their own notes\n")
    res = fervid("timeline", "s3://videos/c.mp4", "--csv", "s3://theirs/c.csv")
    assert res.returncode == 1 and "not written by fervid" in res.stderr
    assert s3.cat("theirs/c.csv") == b"their own notes\n"
    # A folder's run decides from one listing of the store: the same refusal, the others done.
    res = fervid("timeline", "s3://videos/", "--csv", "s3://theirs/", "--recursive", "-q")
    assert res.returncode == 1 and "theirs/c.csv: already exists and was not written by fervid" in res.stderr
    s3.invalidate_cache()
    assert s3.cat("theirs/c.csv") == b"their own notes\n" and s3.isfile("theirs/sub/b.json")
    assert fervid("timeline", "s3://videos/c.mp4", "--csv", "s3://theirs/c.csv", "--overwrite").returncode == 0
    s3.invalidate_cache()
    assert s3.cat("theirs/c.csv").decode() == (clips / "local" / "c.csv").read_text()
    again = fervid("timeline", "s3://videos/", "--csv", "s3://theirs/", "--recursive")
    assert again.returncode == 0 and "3 skipped" in again.stderr


def test_the_python_api_reads_a_video_on_s3(s3, clips):
    import pandas as pd

    import fervid

    on_s3 = fervid.analyze("s3://videos/c.mp4")
    local = pd.read_csv(clips / "local" / "c.csv")
    assert len(on_s3) == len(local) and list(on_s3.columns) == list(local.columns)
    assert set(on_s3.video) == {"c.mp4"} and (on_s3.happy.to_numpy() - local.happy.to_numpy()).max() < 1e-4


def test_a_file_url_store_renames_its_uploads(clips, tmp_path):
    res = fervid("timeline", (clips / "in").as_uri(), "--csv", (tmp_path / "out").as_uri() + "/", "-q")
    assert res.returncode == 0, res.stderr
    top = {k: v for k, v in local_csvs(clips / "local").items() if "/" not in k}
    assert local_csvs(tmp_path / "out") == top
    assert not [p for p in (tmp_path / "out").iterdir() if ".part" in p.name]


def test_urls_fervid_cannot_take_are_usage_errors(clips, tmp_path):
    res = fervid("timeline", clips / "in" / "c.mp4", "--csv", "nosuch://bucket/out.csv")
    assert res.returncode == 2 and "nosuch://bucket/out.csv" in res.stderr
    res = fervid("timeline", clips / "in" / "c.mp4", "--csv", "s3://videos/out/", "--html", tmp_path / "pages")
    assert res.returncode == 2 and "--html" in res.stderr and "beside" in res.stderr
    res = fervid("timeline", clips / "in" / "c.mp4", "--csv", tmp_path / "o", "--html", "s3://videos/pages/")
    assert res.returncode == 2 and "URL" in res.stderr


def test_a_store_without_its_package_names_the_package(clips, tmp_path):
    code = ("import sys; sys.modules['gcsfs'] = None; from fervid.cli import main; "
            f"sys.argv = ['fervid', 'timeline', {str(clips / 'in' / 'c.mp4')!r}, '--csv', 'gs://b/out/']; main()")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert res.returncode == 2 and "gcsfs" in res.stderr


@pytest.fixture(scope="module")
def cluster(s3):
    """Two Ray nodes of one CPU on loopback, started after the S3 variables are set."""
    pytest.importorskip("ray")
    from ray.cluster_utils import Cluster

    os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    node = {"num_cpus": 1, "node_ip_address": "127.0.0.1"}
    c = Cluster(initialize_head=True, head_node_args={**node, "include_dashboard": False})
    try:
        c.add_node(**node)
        c.wait_for_nodes()
        yield c
    finally:
        c.shutdown()


def test_s3_on_a_ray_cluster(s3, clips, cluster):
    s3.mkdir("cluster")
    s3.mkdir("annotated")
    res = fervid("timeline", "s3://videos/", "--csv", "s3://cluster/", "--recursive", "--ray", cluster.address, "-q")
    assert res.returncode == 0, res.stderr
    res = fervid("annotate", "s3://videos/c.mp4", "-o", "s3://annotated/c.mp4", "--ray", cluster.address, "-q")
    assert res.returncode == 0, res.stderr
    s3.invalidate_cache()
    assert store_csvs(s3, "cluster") == local_csvs(clips / "local")
    assert "cluster/timeline.parquet" in {k.rsplit("/", 2)[0] for k in s3.find("cluster")}
    assert sorted(s3.find("annotated")) == ["annotated/c.json", "annotated/c.mp4"]
    assert s3.size("annotated/c.mp4") > 1000


def test_a_worker_killed_mid_video_on_s3_costs_nothing(s3, cluster, tmp_path):
    import signal
    import time

    src = tmp_path / "in"
    src.mkdir()
    for k in range(6):
        make_face_video(src / f"v{k}.mp4", seconds=6, size=320, rate=25, faces=1 + k % 2)
    assert fervid("timeline", src, "--csv", tmp_path / "local", "-q").returncode == 0
    s3.mkdir("faulty")
    s3.put(str(src) + "/", "faulty/in/", recursive=True)
    run = subprocess.Popen([sys.executable, "-m", "fervid", "timeline", "s3://faulty/in/", "--csv", "s3://faulty/out/",
                            "--ray", cluster.address, "-q"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    end = time.time() + 120
    while time.time() < end:  # the first video's outputs are up: the others are in flight
        s3.invalidate_cache()
        if any(k.endswith(".json") for k in s3.find("faulty/out")):
            break
        time.sleep(0.1)
    workers = [int(line.split()[0]) for line in subprocess.run(["ps", "-eo", "pid=,args="], capture_output=True,
               text=True).stdout.splitlines() if "ray::_Worker" in line]
    assert workers, "no worker at work"
    os.kill(workers[0], signal.SIGKILL)
    output, _ = run.communicate(timeout=300)
    assert run.returncode == 0, output
    s3.invalidate_cache()
    out = {k: v for k, v in store_csvs(s3, "faulty").items() if k.startswith("out/")}
    assert out == {f"out/{k}": v for k, v in local_csvs(tmp_path / "local").items()}
    assert not [k for k in s3.find("faulty/out") if ".uploading" in k]


def test_an_upload_cut_short_is_redone_not_refused(s3, clips, monkeypatch):
    from fervid.batch import plan
    from fervid.errors import OutputError
    from fervid.settings import Settings
    from fervid.storage import Store, process_staged

    store = Store("s3", s3)
    s3.mkdir("cut")
    [job] = plan([(clips / "in" / "c.mp4", Path("c.mp4"))], Path("cut"), False, timeline=True, store=store)
    put = Store.put

    def dropped_at_the_sidecar(self, local, path):
        if str(path) == "cut/c.json":
            raise OutputError("s3://cut/c.json: cannot be written (the connection dropped)")
        put(self, local, path)

    monkeypatch.setattr(Store, "put", dropped_at_the_sidecar)
    with pytest.raises(OutputError):
        process_staged(job.input, job.outputs, Settings(), progress=False)
    monkeypatch.undo()
    s3.invalidate_cache()
    assert sorted(s3.find("cut")) == ["cut/.c.uploading.json", "cut/c.csv", "cut/c.summary.csv"]
    assert not job.outputs.complete() and job.outputs.foreign() == []
    res = fervid("timeline", clips / "in" / "c.mp4", "--csv", "s3://cut/")
    assert res.returncode == 0, res.stderr
    s3.invalidate_cache()
    assert sorted(s3.find("cut")) == ["cut/c.csv", "cut/c.json", "cut/c.summary.csv"]
    assert s3.cat("cut/c.csv").decode() == (clips / "local" / "c.csv").read_text()


def test_a_staging_folder_left_by_a_killed_run_is_removed(clips, tmp_path):
    import fcntl
    import time

    tmp = tmp_path / "tmp"
    tmp.mkdir()
    an_hour_ago = (time.time() - 3600,) * 2
    dead, busy = tmp / "fervid-stage-dead", tmp / "fervid-stage-busy"
    for folder in (dead, busy):
        folder.mkdir()
        (folder / "c.mp4").write_bytes(b"\0" * 1000)
    (dead / ".lock").touch()  # its process was killed: nobody holds the lock
    fd = os.open(busy / ".lock", os.O_WRONLY | os.O_CREAT)
    fcntl.flock(fd, fcntl.LOCK_EX)  # a run at work now
    for folder in (dead, busy):
        os.utime(folder, an_hour_ago)
    try:
        res = subprocess.run([sys.executable, "-m", "fervid", "timeline", (clips / "in" / "c.mp4").as_uri(), "--csv",
                              tmp_path / "c.csv"], capture_output=True, text=True, env={**os.environ, "TMPDIR": str(tmp)})
        assert res.returncode == 0, res.stderr
        assert sorted(p.name for p in tmp.glob("fervid-stage-*")) == ["fervid-stage-busy"]
    finally:
        os.close(fd)
    assert (tmp_path / "c.csv").read_text() == (clips / "local" / "c.csv").read_text()
