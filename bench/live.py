"""Live reading on this machine: the shared clips streamed at their own pace, latency and share read.

    python bench/live.py [--clips liveportrait_d6_faces.mp4 facenet_pytorch_video.mp4] [--seconds 20]

Each clip is published by FFmpeg at 1x (-re) as MPEG-TS into `fervid timeline|annotate - --jsonl -`;
a row's latency is the time it reaches this process minus its frame's arrival (``wall_time``).
The table gives latency percentiles, the share of frames analysed, whole-machine CPU-seconds per
second of stream, and fervid's peak memory.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared" / "videos"
sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench import ffmpeg, tree_rss_mb  # noqa: E402 - bench/bench.py, beside this script


def busy_seconds() -> float:
    fields = [float(v) for v in open("/proc/stat").readline().split()[1:]]
    return (sum(fields) - fields[3] - fields[4]) / os.sysconf("SC_CLK_TCK")


def one(clip: Path, seconds: float, command: str) -> dict:
    pub = subprocess.Popen([ffmpeg(), "-nostdin", "-v", "error", "-re", "-stream_loop", "-1", "-i", str(clip),
                            "-t", str(seconds), "-c:v", "copy", "-an", "-f", "mpegts", "-"], stdout=subprocess.PIPE)
    out = ["--csv", "/tmp/fervid-bench-live.csv"] if command == "timeline" else ["-o", "/tmp/fervid-bench-live.mkv"]
    run = subprocess.Popen([sys.executable, "-m", "fervid", command, "-", "--jsonl", "-", *out, "-q", "--overwrite"],
                           stdin=pub.stdout, stdout=subprocess.PIPE, text=True)
    pub.stdout.close()
    c0, latencies, peak, t0, at_minute, last = busy_seconds(), [], 0.0, time.time(), None, 0.0
    for line in run.stdout:
        now = time.time()
        wall = datetime.datetime.fromisoformat(json.loads(line)["wall_time"]).timestamp()
        latencies.append(now - wall)
        last = tree_rss_mb(run.pid)
        peak = max(peak, last)
        if at_minute is None and now - t0 >= 60:
            at_minute = last
    run.wait()
    cpu = busy_seconds() - c0
    side = json.loads(Path("/tmp/fervid-bench-live.json").read_text())
    lat = np.array(latencies) * 1000
    return {"p50": np.percentile(lat, 50), "p95": np.percentile(lat, 95), "max": lat.max(),
            "read": side["frames_analysed"] / max(side["frames_received"], 1), "cpu": cpu / seconds, "mb": peak,
            "mb_minute": at_minute, "mb_end": last}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--clips", nargs="*", default=["liveportrait_d6_faces.mp4", "facenet_pytorch_video.mp4"])
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--commands", nargs="*", default=["timeline", "annotate"])
    args = ap.parse_args()
    if args.seconds > 60:  # long runs: is memory flat?
        for name in args.clips:
            for command in args.commands:
                r = one(SHARED / name, args.seconds, command)
                print(f"{name} {command} {args.seconds:g} s: {r['mb_minute']:.0f} MB after a minute, "
                      f"{r['mb_end']:.0f} MB at the end (peak {r['mb']:.0f}), {r['read']:.1%} of frames analysed")
        return
    print("| clip | command | latency p50 ms | p95 ms | max ms | frames analysed | CPU-s per s | peak MB |")
    print("|---|---|---|---|---|---|---|---|")
    for name in args.clips:
        for command in ("timeline", "annotate"):
            r = one(SHARED / name, args.seconds, command)
            print(f"| {name} | {command} | {r['p50']:.0f} | {r['p95']:.0f} | {r['max']:.0f} | {r['read']:.1%} | "
                  f"{r['cpu']:.2f} | {r['mb']:.0f} |")


if __name__ == "__main__":
    main()
