"""The bad-input corpus: every case alone and inside a batch with good files; interrupts; atomic outputs."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest
from click.testing import CliRunner

from conftest import EXAMPLE_IMAGE, ffmpeg, make_face_video, make_video
from fervid.cli import main


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def _truncate(src, dst, fraction):
    data = src.read_bytes()
    dst.write_bytes(data[: int(len(data) * fraction)])
    return dst


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """name -> (path, expected: 'fail' with words, or 'ok' / 'warn')."""
    d = tmp_path_factory.mktemp("corpus")
    good = make_face_video(d / "src_faststart.mp4", seconds=2, audio=True, extra=["-movflags", "+faststart"])
    moov_end = make_face_video(d / "src_moov_end.mp4", seconds=2)
    cases = {}
    (d / "zero.mp4").write_bytes(b"")
    cases["zero.mp4"] = ("fail", "the file is empty")
    (d / "text.mp4").write_text("hello\n" * 50)
    cases["text.mp4"] = ("fail", "not a readable video")
    (d / "photo.mp4").write_bytes(EXAMPLE_IMAGE.read_bytes())
    cases["photo.mp4"] = ("fail", "still image")
    ffmpeg("-f", "lavfi", "-i", "sine=duration=0.5", "-f", "wav", str(d / "sound.mp4"))
    cases["sound.mp4"] = ("fail", "audio but no video")
    ffmpeg("-f", "lavfi", "-i", "sine=duration=0.5", "-c:a", "aac", str(d / "audio_only.m4a.mp4"))
    cases["audio_only.m4a.mp4"] = ("fail", "audio but no video")
    for frac in (0.1, 0.5, 0.9):
        name = f"cut{int(frac * 100)}.mp4"
        _truncate(good, d / name, frac)
        cases[name] = ("warn" if frac >= 0.5 else "any", "")
    _truncate(moov_end, d / "moov_cut.mp4", 0.8)
    cases["moov_cut.mp4"] = ("fail", "moov atom")
    ts = d / "src.ts"
    ffmpeg("-i", str(good), "-c", "copy", "-f", "mpegts", str(ts))
    data = bytearray(ts.read_bytes())
    mid = len(data) // 2
    data[mid: mid + 4000] = os.urandom(4000)
    (d / "corrupt_middle.ts").write_bytes(bytes(data))
    cases["corrupt_middle.ts"] = ("warn", "")
    make_video(d / "noface.mp4", seconds=0.5)
    cases["noface.mp4"] = ("ok", "")
    make_video(d / "tiny16.mp4", seconds=0.3, vf="scale=16:16")
    cases["tiny16.mp4"] = ("ok", "")
    make_face_video(d / "odd 641x479 ünïcode.mp4", seconds=0.5, size=480, post="scale=641:479",
                    extra=["-pix_fmt", "yuv444p"])
    cases["odd 641x479 ünïcode.mp4"] = ("ok", "")
    make_video(d / "uhd4k.mp4", size="3840x2160", rate="5", seconds=0.6)
    cases["uhd4k.mp4"] = ("ok", "")
    make_face_video(d / "tenbit.mkv", seconds=0.5, extra=["-pix_fmt", "yuv420p10le"])
    cases["tenbit.mkv"] = ("ok", "")
    make_face_video(d / "-dash.mp4", seconds=0.5)
    cases["-dash.mp4"] = ("ok", "")
    for p in (good, moov_end, ts):
        p.unlink()
    return d, cases


def test_each_case_alone(corpus, tmp_path):
    d, cases = corpus
    for name, (expect, words) in cases.items():
        res = run("timeline", "--csv", tmp_path / f"{name}.csv", "-q", "--", d / name)
        lines = [ln for ln in res.output.splitlines() if ln.strip()]
        if expect == "fail":
            assert res.exit_code == 1, (name, res.output)
            assert any(name in ln and words in ln for ln in lines), (name, res.output)
            assert "Traceback" not in res.output
            assert not (tmp_path / f"{name}.csv").exists()
        elif expect == "ok":
            assert res.exit_code == 0, (name, res.output)
            assert (tmp_path / f"{name}.csv").exists()
        elif expect == "warn":
            assert res.exit_code == 0, (name, res.output)
            meta = json.loads((tmp_path / f"{name}.json").read_text())
            assert meta["complete"] is False and "frames" in meta["warning"], (name, meta)
            assert "warning" in res.output
        else:  # may fail cleanly or come out partial, never crash
            assert res.exit_code in (0, 1), (name, res.output)
            assert "Traceback" not in res.output


def test_annotate_on_the_awkward_sizes(corpus, tmp_path):
    d, _ = corpus
    for name in ("tiny16.mp4", "odd 641x479 ünïcode.mp4", "tenbit.mkv", "uhd4k.mp4"):
        out = tmp_path / (name + ".out.mp4")
        res = run("annotate", d / name, "-o", out, "-q")
        assert res.exit_code == 0, (name, res.output)
        assert out.stat().st_size > 0


def test_whole_corpus_as_one_batch(corpus, tmp_path):
    d, cases = corpus
    before = {p.name: p.read_bytes() for p in d.iterdir()}
    res = run("timeline", d, "--csv", tmp_path / "out", "-q")
    n_fail = sum(1 for e, _ in cases.values() if e == "fail")
    assert res.exit_code == 1
    assert f"{n_fail} failed" in res.output or f"{n_fail + 1} failed" in res.output
    assert (tmp_path / "out" / "noface.csv").exists() and (tmp_path / "out" / "-dash.csv").exists()
    after = {p.name: p.read_bytes() for p in d.iterdir()}
    assert before == after  # inputs untouched


def test_output_dir_that_cannot_be_created(tmp_path, face_video):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    res = run("timeline", face_video, "--csv", blocker / "sub" / "t.csv", "-q")
    assert res.exit_code == 1 and "cannot create the output directory" in res.output


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads and writes everything")
def test_unreadable_input_and_unwritable_output(tmp_path, face_video):
    src = tmp_path / "locked.mp4"
    src.write_bytes(face_video.read_bytes())
    src.chmod(0)
    res = run("timeline", src, "--csv", tmp_path / "t.csv", "-q")
    assert res.exit_code == 1 and "permission denied" in res.output
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    res = run("timeline", face_video, "--csv", ro / "t.csv", "-q")
    assert res.exit_code == 1 and "not writable" in res.output


def _tiny_tmpfs(path):
    path.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(path)], capture_output=True)
    return r.returncode == 0


def test_full_disk(tmp_path):
    disk = tmp_path / "disk"
    if not _tiny_tmpfs(disk):
        pytest.skip("cannot mount a tiny tmpfs here")
    big = make_face_video(tmp_path / "big.mp4", seconds=4, size=480, extra=["-crf", "10"])
    try:
        res = run("annotate", big, "-o", disk / "out.mp4", "-q")
        assert res.exit_code == 1
        assert "no space left" in res.output.lower()
        assert not (disk / "out.mp4").exists() and not list(disk.glob(".*part*"))
    finally:
        subprocess.run(["umount", "-l", str(disk)])  # lazily: an ffmpeg just killed may still hold it


def _batch_dir(tmp_path, face_video, n=4):
    src = tmp_path / "in"
    src.mkdir()
    longer = make_face_video(tmp_path / "long.mp4", seconds=6)
    for i in range(n):
        (src / f"v{i}.mp4").write_bytes(longer.read_bytes())
    return src


@pytest.mark.parametrize("sig, jobs", [(signal.SIGINT, 1), (signal.SIGKILL, 1), (signal.SIGINT, 2)])
def test_interrupt_then_rerun_finishes(tmp_path, face_video, sig, jobs):
    src = _batch_dir(tmp_path, face_video)
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "fervid", "annotate", str(src), "-o", str(out), "-q", "-j", str(jobs)]
    # Ctrl-C's default action restored: a test run started in the background of a non-interactive
    # shell (``bash .ci/run &``) hands its children SIGINT ignored, and Python then keeps it so.
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.time() + 60
    while time.time() < deadline and not (out.exists() and list(out.glob(".*part*"))):
        time.sleep(0.05)  # wait until a part file is being written
    os.killpg(proc.pid, sig)
    output = proc.communicate(timeout=60)[0].decode()
    finals = sorted(p.name for p in out.glob("v*.mp4"))
    for name in finals:  # whatever carries a final name is complete
        assert (out / name.replace(".mp4", ".json")).exists()
    if sig == signal.SIGINT:
        assert proc.returncode == 130, output
        assert not list(out.glob(".*part*"))
    res = subprocess.run(cmd, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    assert sorted(p.name for p in out.glob("v*.mp4")) == [f"v{i}.mp4" for i in range(4)]
    assert not list(out.glob(".*part*"))  # stale parts of the killed run are cleaned up
    if finals:
        assert "skipped" in res.stderr


def test_unreadable_input_and_unwritable_output_messages(tmp_path, face_video, monkeypatch):
    """The same two cases as above, for runs as root (as in CI): the OS's refusals are simulated."""
    import builtins

    import fervid.outputs.files
    import fervid.video.probe

    locked = tmp_path / "locked.mp4"
    locked.write_bytes(face_video.read_bytes())
    real_open = builtins.open

    def refusing_open(path, *args, **kwargs):
        if str(path) == str(locked):
            raise PermissionError(13, "Permission denied", str(path))
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(fervid.video.probe, "open", refusing_open, raising=False)
    res = run("timeline", locked, "--csv", tmp_path / "t.csv", "-q")
    assert res.exit_code == 1 and "locked.mp4: permission denied" in res.output
    monkeypatch.undo()
    real_access = os.access
    ro = tmp_path / "ro"
    monkeypatch.setattr(fervid.outputs.files.os, "access",
                        lambda path, mode, **kw: False if str(path) == str(ro) else real_access(path, mode, **kw))
    res = run("timeline", face_video, "--csv", ro / "t.csv", "-q")
    assert res.exit_code == 1 and "the output directory is not writable" in res.output


def test_a_batch_opens_files_ahead_and_stops_them_when_interrupted(tmp_path, face_video, monkeypatch):
    import shutil

    import fervid.batch as batch
    from fervid.settings import Settings

    d = tmp_path / "in"
    d.mkdir()
    for name in ("a.mp4", "b.mp4"):
        shutil.copy(face_video, d / name)
    jobs = batch.plan(batch.expand_inputs([d], recursive=False), tmp_path / "out", single=False, timeline=True)
    opened, real_open = [], batch.open_input

    def spy(*args, **kwargs):
        opened.append(real_open(*args, **kwargs))
        return opened[-1]

    monkeypatch.setattr(batch, "open_input", spy)

    def interrupted(*args, **kwargs):
        time.sleep(0.3)  # while b.mp4 is being opened
        raise KeyboardInterrupt

    monkeypatch.setattr(batch, "process_file", interrupted)
    with pytest.raises(KeyboardInterrupt):
        batch.run_batch(jobs, Settings(), progress=False, on_event=lambda msg: None)
    # a.mp4 while the networks loaded, b.mp4 while a.mp4 was "analysed"; both decoders stopped
    assert [o.decoder.info.path for o in opened] == [str(d / "a.mp4"), str(d / "b.mp4")]
    assert all(o.decoder.report.returncode is not None for o in opened)


def test_no_ffmpeg_program_is_used_whatever_is_on_path(tmp_path, face_video):
    """fervid reads and writes video through FFmpeg's libraries: an ffmpeg on PATH that is old,
    broken or absent changes nothing."""
    import os
    import subprocess
    import sys

    fake = tmp_path / "bin"
    fake.mkdir()
    for name in ("ffmpeg", "ffprobe"):
        (fake / name).write_text("#!/bin/sh\necho 'ffmpeg version 5.1 (a stand-in that fails)' >&2\nexit 1\n")
        (fake / name).chmod(0o755)
    env = {**os.environ, "PATH": f"{fake}{os.pathsep}{os.environ['PATH']}"}
    out = tmp_path / "out.mp4"
    res = subprocess.run([sys.executable, "-m", "fervid", "annotate", str(face_video), "-o", str(out), "--csv", "-q"],
                         env=env, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    assert out.stat().st_size > 0 and len(out.with_suffix(".csv").read_text().splitlines()) > 10
