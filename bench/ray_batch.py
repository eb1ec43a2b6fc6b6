"""A batch of short clips locally and on a 2-node Ray cluster on loopback (1 CPU a node).

    python bench/ray_batch.py [--clips 24] [--seconds 5]

Clips: the example portrait, gently moving, at 480x480 and 25 fps (one face each). Wall seconds
and whole-machine CPU-seconds (from /proc/stat) of `fervid timeline DIR --csv OUT` with -j 1,
-j 2 and --ray ADDRESS (the cluster started beforehand, its start-up timed apart); Ray's
overhead is its wall time over -j 2's, per video and relative.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
from conftest import make_face_video  # noqa: E402 - the tests' own clip maker


def busy_seconds() -> float:
    fields = [float(v) for v in open("/proc/stat").readline().split()[1:]]
    return (sum(fields) - fields[3] - fields[4]) / os.sysconf("SC_CLK_TCK")  # all but idle and iowait


def timed(cmd: list[str]) -> tuple[float, float]:
    c0, t0 = busy_seconds(), time.time()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.time() - t0, busy_seconds() - c0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--clips", type=int, default=24)
    ap.add_argument("--seconds", type=float, default=5.0)
    args = ap.parse_args()
    os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "in"
        src.mkdir()
        first = make_face_video(src / "c00.mp4", seconds=args.seconds, size=480)
        for k in range(1, args.clips):
            os.link(first, src / f"c{k:02d}.mp4")
        fervid = [sys.executable, "-m", "fervid", "timeline", str(src), "-q", "--csv"]
        rows = [("local -j 1", *timed(fervid + [f"{tmp}/j1", "-j", "1"])),
                ("local -j 2", *timed(fervid + [f"{tmp}/j2", "-j", "2"]))]
        from ray.cluster_utils import Cluster

        t0 = time.time()
        cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "node_ip_address": "127.0.0.1",
                                                                "include_dashboard": False})
        cluster.add_node(num_cpus=1, node_ip_address="127.0.0.1")
        cluster.wait_for_nodes()
        start = time.time() - t0
        try:
            rows.append(("Ray, 2 nodes x 1 CPU", *timed(fervid + [f"{tmp}/ray", "--ray", cluster.address])))
        finally:
            cluster.shutdown()
    minutes = args.clips * args.seconds / 60
    print(f"{args.clips} clips of {args.seconds:g} s (480x480, 25 fps, one face); the cluster started in {start:.1f} s\n")
    print("| run | wall s | CPU-s | CPU-s per video-minute |")
    print("|---|---|---|---|")
    for name, wall, cpu in rows:
        print(f"| {name} | {wall:.1f} | {cpu:.1f} | {cpu / minutes:.1f} |")
    j2, ray_wall = rows[1][1], rows[2][1]
    print(f"\nRay's overhead against -j 2: {(ray_wall - j2) / args.clips:+.2f} s a video, {(ray_wall - j2) / j2:+.0%}")


if __name__ == "__main__":
    main()
