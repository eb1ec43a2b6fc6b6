"""A batch whose videos and outputs are on S3 (moto's server on loopback, through s3fs), against
the same batch on local folders.

    python bench/store_batch.py [--clips 24] [--seconds 5] [--repeat 3]

Wall seconds (median of the repeats) of `fervid timeline IN --csv OUT -j 2`: a first run (every
video processed) and a rerun (every video skipped: what deciding costs), with IN and OUT local
folders, then s3:// URLs; and the requests the S3 server answered per video, from its log. A
loopback server answers in about a millisecond; a real store's latency multiplies the requests.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
from conftest import make_face_video  # noqa: E402 - the tests' own clip maker


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--clips", type=int, default=24)
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    env = dict(os.environ, FSSPEC_S3_ENDPOINT_URL=endpoint, AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench",
               AWS_DEFAULT_REGION="us-east-1")
    with tempfile.TemporaryDirectory() as tmp:
        log = open(Path(tmp) / "s3.log", "w")
        server = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                                  stdout=log, stderr=subprocess.STDOUT, env=env)
        try:
            import s3fs

            src = Path(tmp) / "in"
            src.mkdir()
            first = make_face_video(src / "c000.mp4", seconds=args.seconds, size=480)
            size_mb = first.stat().st_size / 1e6
            for k in range(1, args.clips):
                shutil.copy(first, src / f"c{k:03d}.mp4")
            end = time.time() + 30
            while True:
                try:
                    fs = s3fs.S3FileSystem(endpoint_url=endpoint, key="bench", secret="bench")
                    fs.mkdir("bench")
                    break
                except Exception:  # noqa: BLE001 - the server is still starting
                    if time.time() > end:
                        raise
                    time.sleep(0.2)
            fs.put(str(src) + "/", "bench/in/", recursive=True)

            def requests() -> int:
                log.flush()
                return (Path(tmp) / "s3.log").read_text(errors="replace").count("HTTP/1.1")

            rows = []
            for where, inp, out in (("local folders", str(src), f"{tmp}/out"),
                                    ("s3:// on loopback", "s3://bench/in/", "s3://bench/out")):
                firsts, reruns, asked = [], [], []
                for k in range(args.repeat):
                    target = f"{out}{k}/"
                    cmd = [sys.executable, "-m", "fervid", "timeline", inp, "--csv", target, "-q", "-j", "2"]
                    for runs in (firsts, reruns):
                        before, t0 = requests(), time.time()
                        subprocess.run(cmd, check=True, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                        runs.append(time.time() - t0)
                        asked.append(requests() - before)
                per = (f"{statistics.median(asked[0::2]) / args.clips:.0f} / {statistics.median(asked[1::2]) / args.clips:.0f}"
                       if where.startswith("s3") else "-")
                rows.append((where, statistics.median(firsts), statistics.median(reruns), per))
        finally:
            server.terminate()
            server.wait()
    print(f"{args.clips} clips of {args.seconds:g} s (480x480, 25 fps, one face, "
          f"{size_mb:.1f} MB each), `timeline -j 2`, medians of {args.repeat}\n")
    print("| inputs and outputs | first run s | rerun (all skipped) s | S3 requests a video: run / rerun |")
    print("|---|---|---|---|")
    for where, a, b, per in rows:
        print(f"| {where} | {a:.1f} | {b:.1f} | {per} |")
    (_, la, lb, _), (_, sa, sb, _) = rows
    print(f"\nstaging and uploading: {(sa - la) / args.clips * 1000:+.0f} ms a video; "
          f"deciding on the store: {(sb - lb) / args.clips * 1000:+.0f} ms a video")


if __name__ == "__main__":
    main()
