"""Dependable at the edges: signals and orphans, odd names and paths, outputs that are not
fervid's, numbers that are not numbers, models that are not classifiers, timestamps that lie."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from fractions import Fraction
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings as hyp_settings, strategies as st

from conftest import EXAMPLE_IMAGE, make_face_video
from fervid.cli import main


def run(*args, **kwargs):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False, **kwargs)


def fervid(*args, env=None, **kwargs) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "fervid", *map(str, args)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env, **kwargs)


def parts_in(folder: Path) -> list[Path]:
    return [p for p in folder.rglob(".*") if ".part" in p.name]


def marked(mark: str) -> list[int]:
    """PIDs of live processes whose environment carries ``mark`` (a run and everything it started)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if mark.encode() in (entry / "environ").read_bytes():
                    state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
                    if state != "Z":
                        found.append(int(entry.name))
            except OSError:
                continue
    return found


def wait_for(cond, timeout: float) -> bool:
    end = time.time() + timeout
    while time.time() < end:
        if cond():
            return True
        time.sleep(0.1)
    return cond()


@pytest.fixture(scope="module")
def long_clip(tmp_path_factory) -> Path:
    # Long enough that a run signalled a second or two in is still at work, not already exiting
    # (Python restores the default handlers while it exits: a signal then kills it outright).
    return make_face_video(tmp_path_factory.mktemp("long") / "long.mp4", seconds=90, size=320, audio=True)


@pytest.mark.parametrize("sig, code", [(signal.SIGTERM, 143), (signal.SIGHUP, 129)])
def test_sigterm_and_sighup_end_like_ctrl_c(tmp_path, long_clip, sig, code):
    out = tmp_path / "out"
    proc = fervid("annotate", long_clip, "-o", out / "a.mp4", "--csv", "-q")
    assert wait_for(lambda: parts_in(tmp_path), 60), "no part file appeared"
    time.sleep(0.5)
    assert proc.poll() is None, "the run ended before the signal"
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == code, err
    assert "interrupted" in err and not parts_in(tmp_path) and not (out / "a.mp4").exists()


@pytest.mark.parametrize("how", [signal.SIGTERM, signal.SIGKILL])
def test_no_worker_outlives_the_run(tmp_path, long_clip, how):
    src = tmp_path / "in"
    src.mkdir()
    for k in range(3):
        os.link(long_clip, src / f"v{k}.mp4")
    mark = f"FERVID_TEST_MARK={uuid.uuid4().hex}"
    env = {**os.environ, "FERVID_TEST_MARK": mark.split("=")[1]}
    log = (tmp_path / "log").open("w")  # not a pipe: orphans would hold it open
    proc = subprocess.Popen([sys.executable, "-m", "fervid", "timeline", str(src), "--csv", str(tmp_path / "out"),
                             "-j", "2", "-q"], env=env, stdout=log, stderr=log)
    assert wait_for(lambda: len(parts_in(tmp_path)) >= 3, 90), "the workers never started writing"
    proc.send_signal(how)
    proc.wait(timeout=60)
    assert wait_for(lambda: not marked(mark), 20), f"left running: {marked(mark)}"
    if how == signal.SIGTERM:
        assert proc.returncode == 143 and not parts_in(tmp_path)


def test_a_fifo_is_refused_at_once(tmp_path):
    fifo = tmp_path / "stream.mp4"
    os.mkfifo(fifo)
    t0 = time.time()
    res = run("timeline", fifo, "--csv", tmp_path / "t.csv", "-q")
    assert res.exit_code == 1 and "not a regular file" in res.output and time.time() - t0 < 10


def test_a_name_that_looks_like_a_protocol_is_a_file(tmp_path, face_video):
    (tmp_path / "pipe:clip.mp4").write_bytes(face_video.read_bytes())
    proc = subprocess.run([sys.executable, "-m", "fervid", "timeline", "pipe:clip.mp4", "--csv", "out.csv", "-q"],
                          cwd=tmp_path, capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert len(pd.read_csv(tmp_path / "out.csv")) > 20


def test_glob_characters_in_names_touch_only_their_own_part_files(tmp_path, face_video):
    src = tmp_path / "a[1].mp4"
    src.write_bytes(face_video.read_bytes())
    out = tmp_path / "out"
    out.mkdir()
    others = out / ".a1.part4242.csv"  # another output's part, which the glob a[1] would match
    others.write_text("x")
    killed = out / ".a[1].part4243.csv"  # a killed run's part of this very output
    killed.write_text("x")
    assert run("timeline", src, "--csv", out, "-q").exit_code == 0
    assert others.exists() and not killed.exists() and (out / "a[1].csv").is_file()


def test_a_run_writing_the_same_output_is_refused(tmp_path, face_video):
    out = tmp_path / "t.csv"
    live = tmp_path / ".t.part999999.csv"
    live.write_text("")
    holder = subprocess.Popen([sys.executable, "-c", "import fcntl, sys, time; f = open(sys.argv[1]); "
                               "fcntl.flock(f, fcntl.LOCK_EX); print('locked', flush=True); time.sleep(60)", str(live)],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        res = run("timeline", face_video, "--csv", out, "-q")
        assert res.exit_code == 1 and "another fervid run is writing it" in res.output
        assert live.exists() and not out.exists()
    finally:
        holder.kill()
        holder.wait()


def test_newline_in_a_name_stays_on_one_line(tmp_path):
    bad = tmp_path / "bad\nname.mp4"
    bad.write_text("not a video")
    res = run("timeline", bad, "--csv", tmp_path / "o", "-q")
    assert res.exit_code == 1
    lines = [ln for ln in res.output.splitlines() if "failed" in ln and "name.mp4" in ln]
    assert lines and "bad\\nname.mp4" in lines[0]


def test_names_near_the_length_limit(tmp_path, face_video):
    name = "é" * 121 + ".mp4"  # its .summary.csv is 254 bytes: the hidden part name would pass 255
    src = tmp_path / name
    src.write_bytes(face_video.read_bytes())
    res = run("annotate", src, "-o", tmp_path / "o", "--csv", "-q")
    assert res.exit_code == 0, res.output
    assert (tmp_path / "o" / name).is_file() and (tmp_path / "o" / name).with_suffix(".csv").is_file()
    too_long = tmp_path / ("é" * 125 + ".mp4")
    too_long.write_bytes(face_video.read_bytes())
    res = run("timeline", too_long, "--csv", tmp_path / "p", "-q")
    assert res.exit_code == 2 and "too long" in res.output


def test_a_symlink_loop_is_a_plain_failure(tmp_path):
    loop = tmp_path / "loop.mp4"
    loop.symlink_to(loop)
    res = run("timeline", loop, "--csv", tmp_path / "o.csv", "-q")
    assert res.exit_code == 1 and "unexpected" not in res.output and "loop.mp4" in res.output


def test_a_full_disk_is_a_plain_failure(tmp_path, face_video, monkeypatch):
    from fervid.outputs import writers

    def full(self, faces):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(writers.TimelineWriter, "write", full)
    res = run("timeline", face_video, "--csv", tmp_path / "t.csv", "-q")
    assert res.exit_code == 1 and "No space left on device" in res.output and "unexpected" not in res.output
    assert not parts_in(tmp_path) and not (tmp_path / "t.csv").exists()


def test_a_file_fervid_did_not_write_is_never_replaced(tmp_path, face_video):
    precious = tmp_path / "precious.mp4"
    precious.write_bytes(b"my holiday")
    res = run("annotate", face_video, "-o", precious, "-q")
    assert res.exit_code == 1 and "not written by fervid" in res.output
    assert precious.read_bytes() == b"my holiday"
    notes = tmp_path / "notes.summary.csv"
    notes.write_text("mine\n")
    assert run("timeline", face_video, "--csv", tmp_path / "notes.csv", "-q").exit_code == 1
    assert notes.read_text() == "mine\n" and not (tmp_path / "notes.csv").exists()
    assert run("annotate", face_video, "-o", precious, "-q", "--overwrite").exit_code == 0
    assert precious.read_bytes() != b"my holiday"


@pytest.mark.parametrize("args", [("annotate", "-o", "out.webm"), ("annotate", "-o", "out.avi"),
                                  ("annotate", "-o", "out.gif"), ("timeline", "--csv", "res.parquet"),
                                  ("timeline", "--plot", "p.jpg")])
def test_an_output_name_of_the_wrong_kind_is_a_usage_error(tmp_path, face_video, args):
    cmd, opt, name = args
    res = run(cmd, face_video, opt, tmp_path / name, "-q")
    assert res.exit_code == 2 and not (tmp_path / name).exists()


def test_an_image_input_with_an_image_output_name_leaves_nothing(tmp_path):
    res = run("annotate", EXAMPLE_IMAGE, "-o", tmp_path / "a.jpg", "-q")
    assert res.exit_code == 2 and not (tmp_path / "a.jpg").exists()


def test_a_folder_at_the_output_file_name_is_refused_before_work(tmp_path, face_video):
    (tmp_path / "x.mp4").mkdir()
    res = run("annotate", face_video, "-o", tmp_path / "x.mp4", "-q")
    assert res.exit_code == 2 and "is a folder" in res.output  # a usage error: before any work


def test_a_plot_asked_later_is_made_and_the_sidecar_lists_both(tmp_path, face_video):
    csv = tmp_path / "t.csv"
    assert run("timeline", face_video, "--csv", csv, "-q").exit_code == 0
    res = run("timeline", face_video, "--csv", csv, "--plot")
    assert res.exit_code == 0 and (tmp_path / "t.png").is_file()
    outputs = json.loads((tmp_path / "t.json").read_text())["outputs"]
    assert {"timeline", "summary", "plot", "sidecar"} <= set(outputs)
    again = run("timeline", face_video, "--csv", csv, "--plot")
    assert again.exit_code == 0 and "1 skipped" in again.output


def test_each_written_output_is_told_once_and_failures_once(tmp_path, face_video):
    src = tmp_path / "in"
    src.mkdir()
    (src / "a.mp4").write_bytes(face_video.read_bytes())
    (src / "bad.mp4").write_text("nope")
    res = run("timeline", src, "--csv", tmp_path / "o")
    assert res.exit_code == 1
    wrote = [ln for ln in res.output.splitlines() if ln.startswith("fervid: wrote")]
    assert len(wrote) == 3 and all(Path(ln.split("wrote ", 1)[1]).is_file() for ln in wrote)
    assert sum("bad.mp4" in ln for ln in res.output.splitlines()) == 1
    quiet = run("timeline", src, "--csv", tmp_path / "q", "-q")
    assert "wrote" not in quiet.output


@pytest.mark.parametrize("option, value", [("--smooth", "nan"), ("--fps", "nan"), ("--fps", "0"), ("--fps", "-5"),
                                           ("--fps", "inf"), ("--detect-every", "nan"), ("--detect-every", "inf"),
                                           ("--every", "0"), ("--every", "-1"), ("-j", "0"), ("-j", "-3"),
                                           ("--classify-every", "-1"), ("--min-face", "-1"), ("--tiles", "200x200")])
def test_numeric_options_out_of_range_are_usage_errors(tmp_path, face_video, option, value):
    res = run("timeline", face_video, "--csv", tmp_path / "t.csv", option, value, "-q")
    assert res.exit_code == 2 and not (tmp_path / "t.csv").exists()


def test_many_jobs_are_capped_by_the_machine(tmp_path, face_video):
    src = tmp_path / "in"
    src.mkdir()
    for k in range(2):
        (src / f"{k}.mp4").write_bytes(face_video.read_bytes())
    res = run("timeline", src, "--csv", tmp_path / "o", "-j", "64", "-q")
    assert res.exit_code == 0 and "--jobs 64: running" in res.output


def test_the_sidecar_is_strict_json(tmp_path, face_video):
    from fervid.outputs.writers import write_sidecar
    import io

    buf = io.StringIO()
    write_sidecar(buf, {"a": float("nan"), "b": [float("inf"), 1.5], "c": {"d": float("-inf")}})
    assert json.loads(buf.getvalue(), parse_constant=lambda c: pytest.fail(c)) == {"a": None, "b": [None, 1.5],
                                                                                   "c": {"d": None}}
    assert run("timeline", face_video, "--csv", tmp_path / "t.csv", "--no-smooth", "-q").exit_code == 0
    json.loads((tmp_path / "t.json").read_text(), parse_constant=lambda c: pytest.fail(c))


def _model(path: Path, kind: str) -> Path:
    """A tiny ONNX model of the contract's shape whose outputs are logits, NaN, or whose input is empty."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    size = 0 if kind == "empty" else 48
    w = numpy_helper.from_array(np.full((size * size, 7), 0.001, np.float32), "w")
    nodes = [helper.make_node("Flatten", ["x"], ["f"]), helper.make_node("MatMul", ["f", "w"], ["y0"])]
    inits = [w]
    if kind == "nan":
        inits.append(numpy_helper.from_array(np.array(np.nan, np.float32), "n"))
        nodes.append(helper.make_node("Mul", ["y0", "n"], ["y"]))
    else:
        nodes.append(helper.make_node("Identity", ["y0"], ["y"]))
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 1, size, size])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 7])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


@pytest.mark.parametrize("kind, words", [("logits", "not probabilities"), ("nan", "not finite"),
                                         ("empty", "input shape")])
def test_a_model_that_does_not_give_probabilities_is_refused(tmp_path, face_video, kind, words):
    model = _model(tmp_path / f"{kind}.onnx", kind)
    res = run("timeline", face_video, "--csv", tmp_path / "t.csv", "--model", model, "-q")
    assert res.exit_code == 2 and words in res.output and not (tmp_path / "t.csv").exists()


def test_a_model_path_in_upper_case_is_found(tmp_path, face_video):
    from fervid._assets import models_dir

    upper = tmp_path / "MODEL.ONNX"
    upper.write_bytes((models_dir() / "mini_xception.onnx").read_bytes())
    assert run("timeline", face_video, "--csv", tmp_path / "t.csv", "--model", upper, "-q").exit_code == 0


def _retimed(src: Path, dst: Path, times: list[float], declare: float | None = None) -> Path:
    """``src``'s frames at the given times (seconds), written with PyAV into Matroska."""
    import av

    frames = []
    with av.open(str(src)) as c:
        for f in c.decode(video=0):
            frames.append(f.to_ndarray(format="rgb24"))
    with av.open(str(dst), "w", container_options={"live": "0"}) as out:
        stream = out.add_stream("libx264", rate=25, options={"preset": "ultrafast"})
        stream.width, stream.height, stream.pix_fmt = frames[0].shape[1], frames[0].shape[0], "yuv420p"
        stream.codec_context.time_base = Fraction(1, 1000)
        for img, t in zip(frames, times):
            frame = av.VideoFrame.from_ndarray(img, format="rgb24")
            frame.pts, frame.time_base = round(t * 1000), Fraction(1, 1000)
            out.mux(stream.encode(frame))
        out.mux(stream.encode())
        if declare:
            out.metadata["DURATION"] = f"{declare}"
    return dst


def test_a_gap_in_the_timestamps_is_not_time_visible(tmp_path, face_video):
    times = [k * 0.04 for k in range(20)] + [600 + k * 0.04 for k in range(20)]
    clip = _retimed(face_video, tmp_path / "gap.mkv", times)
    assert run("timeline", clip, "--csv", tmp_path / "t.csv", "-q").exit_code == 0
    summary = pd.read_csv(tmp_path / "t.summary.csv")
    assert len(summary) >= 1 and summary.seconds_visible.max() < 5
    rows = pd.read_csv(tmp_path / "t.csv")
    assert rows.time_s.min() >= 0 and rows.time_s.max() > 599


def test_a_file_that_ends_long_before_its_declared_length_is_not_complete(tmp_path, face_video):
    import struct

    src = tmp_path / "short.mkv"
    src.write_bytes(b"")
    from conftest import ffmpeg

    ffmpeg("-i", str(face_video), "-c", "copy", str(src))
    data = bytearray(src.read_bytes())
    at = data.index(b"\x44\x89\x88") + 3  # Matroska's segment Duration, a double in milliseconds
    data[at: at + 8] = struct.pack(">d", 4 * 3600 * 1000.0)
    lying = tmp_path / "lying.mkv"
    lying.write_bytes(bytes(data))
    from fervid.video.probe import probe

    assert probe(lying).duration == pytest.approx(4 * 3600)
    res = run("timeline", lying, "--csv", tmp_path / "t.csv", "-q")
    assert res.exit_code == 0 and "well before" in res.output
    sidecar = json.loads((tmp_path / "t.json").read_text())
    assert sidecar["complete"] is False and "well before" in sidecar["warning"]
    assert len(pd.read_csv(tmp_path / "t.csv")) > 20


NAMES = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="/\x00"), min_size=1, max_size=60)


@hyp_settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(NAMES)
def test_any_file_name_plans_outputs_beside_it_with_short_hidden_parts(tmp_path, name):
    """Every name goes through the CLI's planning: outputs mirror it, part names fit the file system."""
    from fervid.batch import expand_inputs, plan
    from fervid.outputs.files import NAME_MAX, part_path

    if name in (".", "..") or len(os.fsencode(name + ".mp4")) > NAME_MAX:
        return
    jobs = plan(expand_inputs([tmp_path / (name + ".mp4")], False), tmp_path / "out", False, video=True,
                timeline=True)
    (job,) = jobs
    for p in job.outputs.paths():
        assert p.parent == tmp_path / "out" and p.name.startswith(name)
        part = part_path(p, 4194304)
        assert part.parent == p.parent and len(os.fsencode(part.name)) <= NAME_MAX and part.name.startswith(".")


def test_timestamps_that_jump_back_before_the_start_never_give_negative_times(tmp_path):
    """Two MPEG-TS recordings joined, the second's clock behind the first's: its frames would
    come out 10 s before the file's start."""
    from conftest import ffmpeg

    parts = []
    for k, offset in enumerate(("10", "0")):
        part = tmp_path / f"p{k}.ts"
        ffmpeg("-f", "lavfi", "-i", "testsrc2=size=160x120:rate=25:duration=1", "-c:v", "libx264",
               "-preset", "ultrafast", "-output_ts_offset", offset, str(part))
        parts.append(part.read_bytes())
    joined = tmp_path / "joined.ts"
    joined.write_bytes(b"".join(parts))
    from fervid.video.decode import open_video

    times = [f.time_s for f in open_video(joined)[1]]
    assert len(times) == 50 and min(times) == 0.0
