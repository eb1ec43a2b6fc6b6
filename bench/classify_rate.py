"""How much reading faces less often (``--classify-every``) changes the timeline, against reading every frame.

    python bench/classify_rate.py [VIDEO ...] [--every 0.0667 0.1 0.2]

For each clip and rate: the share of rows whose top emotion agrees with reading every frame, the
mean and 99th-percentile absolute difference of the (smoothed) probabilities, and the classifier
crops spent. Default clips: the shared videos.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

import fervid
from fervid.labels import EMOTIONS

SHARED = Path(__file__).resolve().parents[2] / "shared" / "videos"
CLIPS = ["liveportrait_d6_faces.mp4", "liveportrait_d10_surprise.mp4", "facenet_pytorch_video.mp4"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("videos", nargs="*")
    ap.add_argument("--every", nargs="+", type=float, default=[1 / 15, 0.1, 0.2])
    args = ap.parse_args()
    videos = args.videos or [str(SHARED / c) for c in CLIPS if (SHARED / c).is_file()]
    print("| clip | classify every | top emotion agrees | mean abs diff | p99 abs diff | seconds |")
    print("|---|---|---|---|---|---|")
    for video in videos:
        t0 = time.perf_counter()
        ref = fervid.analyze(video, classify_every=0)
        base_s = time.perf_counter() - t0
        print(f"| {Path(video).name} | every frame | - | - | - | {base_s:.1f} |")
        key = ["frame", "face_id"]
        for every in args.every:
            t0 = time.perf_counter()
            df = fervid.analyze(video, classify_every=every)
            secs = time.perf_counter() - t0
            m = ref.merge(df, on=key, suffixes=("_a", "_b"))
            assert len(m) == len(ref) == len(df), "the two runs should find the same faces"
            diff = np.abs(m[[e + "_a" for e in EMOTIONS]].to_numpy() - m[[e + "_b" for e in EMOTIONS]].to_numpy())
            agree = (m["emotion_a"] == m["emotion_b"]).mean()
            print(f"| {Path(video).name} | {every:.3f} s | {agree:.1%} | {diff.mean():.4f} "
                  f"| {np.quantile(diff.max(1), 0.99):.3f} | {secs:.1f} |")


if __name__ == "__main__":
    main()
