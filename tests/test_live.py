"""Live sources read as they play: real streams published by FFmpeg at their own pace (-re) on
loopback, over a pipe, TCP and HTTP."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from conftest import ffmpeg_exe, make_face_video


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    return make_face_video(tmp_path_factory.mktemp("live") / "talk.mp4", seconds=6, rate=25, size=240)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def publish(clip: Path, target: str, *extra: str, seconds: float | None = None, **kwargs) -> subprocess.Popen:
    cmd = [ffmpeg_exe(), "-nostdin", "-v", "error", "-re", "-i", str(clip), *(["-t", str(seconds)] if seconds else []),
           "-c:v", "copy", "-an", "-f", "mpegts", *extra, target]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE if target == "-" else subprocess.DEVNULL, **kwargs)


def fervid(*args, **kwargs) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "fervid", "timeline", *map(str, args)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, **kwargs)


def lines(path: Path) -> int:
    return len(path.read_text().splitlines()) if path.exists() else 0


def test_a_pipe_is_read_as_it_plays_and_rows_come_while_it_plays(tmp_path, clip):
    pub = publish(clip, "-")
    csv = tmp_path / "l.csv"
    run = fervid("-", "--csv", csv, "--jsonl", tmp_path / "l.jsonl", "-q", stdin=pub.stdout)
    pub.stdout.close()
    seen_while_playing = False
    end = time.time() + 30
    while run.poll() is None and time.time() < end and not seen_while_playing:
        seen_while_playing = lines(csv) > 20 and run.poll() is None  # rows before the stream is over
        time.sleep(0.1)
    assert seen_while_playing
    _, err = run.communicate(timeout=60)
    assert run.returncode == 0, err
    rows = pd.read_csv(csv)
    assert len(rows) > 100 and rows.wall_time.notna().all() and rows.time_s.is_monotonic_increasing
    records = [json.loads(line) for line in (tmp_path / "l.jsonl").read_text().splitlines()]
    assert len(records) == len(rows) and records[0]["wall_time"].endswith("+00:00")
    side = json.loads((tmp_path / "l.json").read_text())
    assert side["frames_received"] >= side["frames_analysed"] > 100 and side["ended"] == "the stream ended"
    assert side["frames_received"] == side["frames_analysed"] + side["frames_dropped"]
    assert (tmp_path / "l.summary.csv").is_file()


def test_readings_match_a_file_run(tmp_path, clip):
    pub = publish(clip, "-")
    live = fervid("-", "--csv", tmp_path / "live.csv", "-q", stdin=pub.stdout)
    pub.stdout.close()
    assert live.wait(timeout=60) == 0
    ran = subprocess.run([sys.executable, "-m", "fervid", "timeline", str(clip), "--csv", str(tmp_path / "file.csv"),
                          "-q"])
    assert ran.returncode == 0
    a, b = pd.read_csv(tmp_path / "live.csv"), pd.read_csv(tmp_path / "file.csv")
    both = a.merge(b, on=["frame", "face_id"], suffixes=("_live", "_file"))
    assert len(both) > 0.8 * len(b)
    assert (both.emotion_live == both.emotion_file).mean() > 0.9


@pytest.mark.parametrize("protocol", ["tcp", "http"])
def test_network_streams(tmp_path, clip, protocol):
    port = free_port()
    if protocol == "tcp":
        pub = publish(clip, f"tcp://127.0.0.1:{port}?listen=1")
    else:
        pub = publish(clip, f"http://127.0.0.1:{port}", "-listen", "1")
    time.sleep(0.5)
    csv = tmp_path / "n.csv"
    run = fervid(f"{protocol}://127.0.0.1:{port}", "--csv", csv, "-q")
    _, err = run.communicate(timeout=60)
    pub.wait(timeout=30)
    assert run.returncode == 0, err
    assert len(pd.read_csv(csv)) > 100


@pytest.mark.parametrize("how", ["duration", "ctrl-c", "sigterm"])
def test_duration_and_ctrl_c_end_with_complete_outputs(tmp_path, clip, how):
    pub = publish(clip, "-")
    csv = tmp_path / "l.csv"
    args = ["-", "--csv", csv, "-q"] + (["--duration", "2"] if how == "duration" else [])
    run = fervid(*args, stdin=pub.stdout)
    pub.stdout.close()
    if how != "duration":
        time.sleep(2.5)
        run.send_signal(signal.SIGINT if how == "ctrl-c" else signal.SIGTERM)
    _, err = run.communicate(timeout=60)
    pub.kill()
    assert run.returncode == 0, err
    side = json.loads((tmp_path / "l.json").read_text())
    assert side["ended"] == ("--duration" if how == "duration" else "interrupted")
    rows = pd.read_csv(csv)
    assert 10 < len(rows) < 140 and (tmp_path / "l.summary.csv").is_file()  # the stream has 150 frames


def test_kill_9_leaves_every_row_written_whole(tmp_path, clip):
    pub = publish(clip, "-")
    csv = tmp_path / "l.csv"
    run = fervid("-", "--csv", csv, "--jsonl", tmp_path / "l.jsonl", "-q", stdin=pub.stdout)
    pub.stdout.close()
    time.sleep(3)
    run.kill()
    run.wait()
    pub.kill()
    text = csv.read_text()
    assert text.endswith("\n")
    rows = pd.read_csv(csv)
    assert len(rows) > 20 and rows.emotion.notna().all()
    for line in (tmp_path / "l.jsonl").read_text().splitlines():
        json.loads(line)


def test_a_source_that_cannot_be_opened_fails_plainly(tmp_path):
    run = subprocess.run([sys.executable, "-m", "fervid", "timeline", f"tcp://127.0.0.1:{free_port()}", "--csv",
                          str(tmp_path / "x.csv")], capture_output=True, text=True, timeout=60)
    assert run.returncode == 1 and "cannot open the live source" in run.stderr


def test_live_options_are_for_live_sources(tmp_path, clip):
    run = subprocess.run([sys.executable, "-m", "fervid", "timeline", str(clip), "--jsonl", str(tmp_path / "x.jsonl")],
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 2 and "live" in run.stderr


@pytest.mark.parametrize("suffix", [".mkv", ".mp4"])  # Matroska as it streams, MP4 fragmented
def test_an_annotated_recording_plays_after_kill_9(tmp_path, clip, suffix):
    pub = publish(clip, "-")
    rec = tmp_path / f"rec{suffix}"
    run = subprocess.Popen([sys.executable, "-m", "fervid", "annotate", "-", "-o", str(rec), "--csv", "-q"],
                           stdin=pub.stdout, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    pub.stdout.close()
    time.sleep(4)
    run.kill()
    run.wait()
    pub.kill()
    out = subprocess.run([ffmpeg_exe(), "-v", "error", "-i", str(rec), "-f", "framemd5", "-"], capture_output=True,
                         text=True)
    frames = [ln for ln in out.stdout.splitlines() if ln and not ln.startswith("#")]
    assert len(frames) > 25, out.stderr  # at least the first second or so of what came
    assert len(pd.read_csv(rec.with_suffix(".csv"))) > 20


def test_a_stream_that_drops_is_reopened_and_faces_start_afresh(tmp_path, clip):
    port = free_port()
    first = publish(clip, f"tcp://127.0.0.1:{port}?listen=1", seconds=2)
    time.sleep(0.5)
    csv = tmp_path / "r.csv"
    run = fervid(f"tcp://127.0.0.1:{port}", "--csv", csv, "--reconnect", "3", "-q")
    first.wait(timeout=30)
    second = publish(clip, f"tcp://127.0.0.1:{port}?listen=1", seconds=2)
    second.wait(timeout=30)
    _, err = run.communicate(timeout=60)
    assert run.returncode == 0, err
    side = json.loads((tmp_path / "r.json").read_text())
    assert len(side["gaps"]) == 1 and side["gaps"][0]["seconds"] > 0
    rows = pd.read_csv(csv)
    gap_at = side["gaps"][0]["after_s"]
    before, after = rows[rows.time_s <= gap_at], rows[rows.time_s > gap_at]
    assert len(before) > 20 and len(after) > 20 and rows.time_s.is_monotonic_increasing
    assert set(before.face_id).isdisjoint(set(after.face_id))  # new IDs after the gap, as after a cut


def test_udp(tmp_path, clip):
    port = free_port()
    csv = tmp_path / "u.csv"
    run = fervid(f"udp://127.0.0.1:{port}", "--csv", csv, "--duration", "4", "-q")
    time.sleep(1.0)
    pub = publish(clip, f"udp://127.0.0.1:{port}?pkt_size=1316")
    _, err = run.communicate(timeout=60)
    pub.kill()
    assert run.returncode == 0, err
    assert len(pd.read_csv(csv)) > 30


def test_show_opens_a_window_where_there_is_a_display(tmp_path, clip):
    import os
    import shutil

    if shutil.which("Xvfb") is None:
        pytest.skip("no Xvfb (Debian: apt install xvfb)")
    display = f":{free_port() % 1000 + 100}"
    xvfb = subprocess.Popen(["Xvfb", display, "-screen", "0", "1024x768x24", "-nolisten", "tcp"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(1)
        pub = publish(clip, "-", seconds=3)
        env = {**os.environ, "DISPLAY": display, "QT_QPA_PLATFORM": "xcb"}
        run = fervid("-", "--csv", tmp_path / "s.csv", "--show", "-q", stdin=pub.stdout, env=env)
        pub.stdout.close()
        _, err = run.communicate(timeout=60)
        assert run.returncode == 0, err
        assert len(pd.read_csv(tmp_path / "s.csv")) > 30
    finally:
        xvfb.kill()


def test_show_without_a_display_is_a_clear_error(tmp_path):
    import os

    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    run = subprocess.run([sys.executable, "-m", "fervid", "timeline", "-", "--csv", str(tmp_path / "x.csv"), "--show"],
                         capture_output=True, text=True, env=env, stdin=subprocess.DEVNULL, timeout=60)
    assert run.returncode == 2 and "needs a display" in run.stderr
