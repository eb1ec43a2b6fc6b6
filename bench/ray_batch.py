"""A batch of short clips locally and on a 2-node Ray cluster on loopback (1 CPU a node).

    python bench/ray_batch.py [--clips 24] [--seconds 5] [--repeat 3]

Clips: the example portrait, gently moving, at 480x480 and 25 fps (one face each). Wall seconds
and whole-machine CPU-seconds (from /proc/stat) of `fervid timeline DIR --csv OUT --parquet` with
-j 1, -j 2 and --ray ADDRESS (the cluster started beforehand, its start-up timed apart), on N clips
and on 2N. Ray's overhead against -j 2 is split in two: per video, from the slopes (the extra
time N more videos take), and per run, what is left (joining the cluster, starting the actors).
Each run is repeated and its median kept (this machine's wall times wander by a few tenths).
"""

from __future__ import annotations

import argparse
import os
import statistics
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
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    n = args.clips
    with tempfile.TemporaryDirectory() as tmp:
        src = {k: Path(tmp) / f"in{k}" for k in (n, 2 * n)}
        for folder in src.values():
            folder.mkdir()
        first = make_face_video(Path(tmp) / "c.mp4", seconds=args.seconds, size=480)
        for k in range(2 * n):
            for count, folder in src.items():
                if k < count:
                    os.link(first, folder / f"c{k:03d}.mp4")

        def fervid(count: int, out: str, *extra: str) -> tuple[float, float]:
            runs = []
            for k in range(args.repeat):
                runs.append(timed([sys.executable, "-m", "fervid", "timeline", str(src[count]), "-q", "--csv",
                                   f"{tmp}/{out}{count}-{k}", "--parquet", *extra]))
            return statistics.median(r[0] for r in runs), statistics.median(r[1] for r in runs)

        runs = {("local -j 1", n): fervid(n, "j1", "-j", "1")}
        for count in (n, 2 * n):
            runs[("local -j 2", count)] = fervid(count, "j2", "-j", "2")
        from ray.cluster_utils import Cluster

        t0 = time.time()
        cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "node_ip_address": "127.0.0.1",
                                                                "include_dashboard": False})
        cluster.add_node(num_cpus=1, node_ip_address="127.0.0.1")
        cluster.wait_for_nodes()
        start = time.time() - t0
        try:
            for count in (n, 2 * n):
                runs[("Ray, 2 nodes x 1 CPU", count)] = fervid(count, "ray", "--ray", cluster.address)
        finally:
            cluster.shutdown()
    print(f"clips of {args.seconds:g} s (480x480, 25 fps, one face), medians of {args.repeat} runs; "
          f"the cluster started in {start:.1f} s\n")
    print("| run | clips | wall s | CPU-s | CPU-s per video-minute |")
    print("|---|---|---|---|---|")
    for (name, count), (wall, cpu) in runs.items():
        print(f"| {name} | {count} | {wall:.1f} | {cpu:.1f} | {cpu / (count * args.seconds / 60):.1f} |")
    j2 = (runs[("local -j 2", 2 * n)][0] - runs[("local -j 2", n)][0]) / n
    ray_ = (runs[("Ray, 2 nodes x 1 CPU", 2 * n)][0] - runs[("Ray, 2 nodes x 1 CPU", n)][0]) / n
    fixed = (runs[("Ray, 2 nodes x 1 CPU", n)][0] - n * ray_) - (runs[("local -j 2", n)][0] - n * j2)
    total = runs[("Ray, 2 nodes x 1 CPU", n)][0] - runs[("local -j 2", n)][0]
    print(f"\nper video (slopes): -j 2 {j2:.3f} s, Ray {ray_:.3f} s: overhead {ray_ - j2:+.3f} s, "
          f"{(ray_ - j2) / j2:+.0%} of -j 2's")
    print(f"per run (what is left): {fixed:+.2f} s; all told on {n} clips: {total:+.2f} s, "
          f"{total / runs[('local -j 2', n)][0]:+.0%} of -j 2's wall time")


if __name__ == "__main__":
    main()
