"""Does the same picture give the same faces at other resolutions and pixel shapes?

    python bench/resolutions.py [VIDEO] [--runs 3]

The clip (default: the shared 1080p crowd) is re-encoded at 2560x1440 and 3840x2160 (and stored
as HDV would: 1440x1080 with 4:3 pixels), and each copy is analysed with the default tiling and
and with the finest grid alone (the ~480-pixel tiles, without the coarser grids before them). Against the
original's faces followed for 20 rows or more: the share of their rows found again (same frame,
box IoU above 0.5 once scaled), how many IDs each takes (1.0 is best), and the wall seconds of
``fervid timeline`` (the median of ``--runs``).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from fervid.analysis.boxes import iou_matrix
from fervid.analysis.detect import tile_levels
from bench import ffmpeg  # bench/bench.py, beside this script

SHARED = Path(__file__).resolve().parents[2] / "shared" / "videos"
# name, ffmpeg filter, the picture fervid sees (square pixels), its scale to the 1080p original
COPIES = [("2560x1440", "scale=2560:1440", (2560, 1440), 4 / 3), ("3840x2160", "scale=3840:2160", (3840, 2160), 2.0),
          ("HDV 1440x1080, 4:3 pixels", "scale=1440:1080,setsar=4/3", (1920, 1080), 1.0)]


def timeline(video: Path, csv: Path, tiles: str, runs: int) -> float:
    cmd = [sys.executable, "-m", "fervid", "timeline", str(video), "--csv", str(csv), "-q", "--overwrite",
           "--tiles", tiles]
    seconds = []
    for _ in range(runs):
        t0 = time.perf_counter()
        subprocess.run(cmd, check=True)
        seconds.append(time.perf_counter() - t0)
    return statistics.median(seconds)


def followed(ref: pd.DataFrame, other: pd.DataFrame, scale: float) -> tuple[float, float]:
    """Mean share of each long reference track's rows found again, and mean IDs per track."""
    by_frame = dict(list(other.groupby("frame")))
    coverage, ids = [], []
    for _, track in ref.groupby("face_id"):
        if len(track) < 20:
            continue
        found = []
        for r in track.itertuples():
            g = by_frame.get(r.frame)
            if g is None:
                continue
            iou = iou_matrix(np.array([[r.x, r.y, r.x + r.w, r.y + r.h]]) * scale,
                             np.c_[g.x, g.y, g.x + g.w, g.y + g.h])[0]
            if iou.max() >= 0.5:
                found.append(g.face_id.iloc[iou.argmax()])
        coverage.append(len(found) / len(track))
        ids.append(len(set(found)))
    return float(np.mean(coverage)), float(np.mean(ids))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("video", nargs="?", default=str(SHARED / "facenet_pytorch_video.mp4"))
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        timeline(Path(args.video), tmp / "ref.csv", "auto", 1)
        ref = pd.read_csv(tmp / "ref.csv")
        print("| copy | tiling | rows found again | IDs a face | timeline s |")
        print("|---|---|---|---|---|")
        for name, vf, (width, height), scale in COPIES:
            video = tmp / (name.split()[0] + ".mp4")
            subprocess.run([ffmpeg(), "-v", "error", "-y", "-i", args.video, "-vf", vf, "-c:v", "libx264",
                            "-preset", "fast", "-crf", "18", "-an", str(video)], check=True)
            levels = [f"{c}x{r}" for c, r in tile_levels(width, height, "auto")]
            runs = [("auto", "auto: " + "+".join(levels))]
            if len(levels) > 1:  # the finest grid alone: what the coarser grids add
                runs.append((levels[-1], f"{levels[-1]} alone"))
            for tiles, label in runs:
                seconds = timeline(video, tmp / "t.csv", tiles, args.runs)
                coverage, ids = followed(ref, pd.read_csv(tmp / "t.csv"), scale)
                print(f"| {name} | {label} | {coverage:.0%} | {ids:.2f} | {seconds:.2f} |")


if __name__ == "__main__":
    main()
