"""What each speed setting buys on this machine, and what it changes in the timeline.

    python bench/knobs.py [--runs 3] [--clips CLIP ...]

For the shared clips and a handful of settings away from the defaults: `fervid timeline` fps
(whole process, median of runs) and its ratio to ffmpeg's decode-only floor, then the rows
against the defaults' rows: the faces found again (same frame, boxes overlapping by IoU >= 0.5),
how far their boxes moved (median IoU), and how often the top emotion agrees. The defaults are
what fervid ships; this prints what a user trading accuracy for speed gets.
"""

from __future__ import annotations

import argparse
import compileall
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from bench import CLIPS, ROOT, SHARED, count_frames, decode_only, median_run  # bench/bench.py, beside this script

from fervid.analysis.boxes import iou_matrix
from fervid.analysis.classify import Classifier

KNOBS = [
    ("defaults", []),
    ("--classify-every 0.2", ["--classify-every", "0.2"]),
    ("--detect-every 0.4", ["--detect-every", "0.4"]),
    ("--model resnet_s_int8", ["--model", "resnet_s_int8"]),
    ("--model mini_xception", ["--model", "mini_xception"]),
    ("--fps 10", ["--fps", "10"]),
    ("all of: resnet_s_int8, detect 0.4, classify 0.2", ["--model", "resnet_s_int8", "--detect-every", "0.4",
                                                         "--classify-every", "0.2"]),
]


def match(ref: pd.DataFrame, other: pd.DataFrame) -> tuple[int, list[float], list[bool]]:
    """Rows of ``other`` matched to rows of ``ref`` on the same frame by box IoU >= 0.5 (greedy)."""
    found, ious, agree = 0, [], []
    by_frame = {f: g for f, g in other.groupby("frame")}
    for frame, a in ref.groupby("frame"):
        b = by_frame.get(frame)
        if b is None:
            continue
        boxes = lambda d: np.column_stack([d.x, d.y, d.x + d.w, d.y + d.h])  # noqa: E731
        m = iou_matrix(boxes(a), boxes(b))
        while m.size and m.max() >= 0.5:
            i, j = np.unravel_index(np.argmax(m), m.shape)
            found += 1
            ious.append(float(m[i, j]))
            agree.append(a.emotion.iloc[i] == b.emotion.iloc[j])
            m[i, :], m[:, j] = -1, -1
    return found, ious, agree


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--clips", nargs="*", default=None)
    args = ap.parse_args()
    clips = [Path(c) for c in args.clips] if args.clips else [SHARED / c for c in CLIPS]
    compileall.compile_dir(str(ROOT / "fervid"), quiet=1)  # as bench.py: runs with cached bytecode
    accuracy = ", ".join(f"{name} {float(Classifier(name).info.metadata['private_test_accuracy']):.1%}"
                         for name in ("resnet_ms_x3_int8", "resnet_s_int8", "mini_xception"))
    print(f"PrivateTest accuracy: {accuracy} (the first is the default)\n")
    print("| clip | settings | timeline fps (x floor) | rows | default's faces found again | box IoU (median) "
          "| top emotion agrees |")
    print("|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for clip in clips:
            frames = count_frames(clip)
            floor, _ = median_run(decode_only(clip), args.runs)
            ref = None
            for label, extra in KNOBS:
                out = Path(tmp) / "k.csv"
                cmd = [sys.executable, "-m", "fervid", "timeline", str(clip), "--csv", str(out), "-q", "--overwrite",
                       *extra]
                wall = median_run(cmd, args.runs)[0]
                df = pd.read_csv(out)
                if ref is None:
                    ref = df
                    row = f"| {len(df)} | - | - | - |"
                else:
                    common = ref[ref.frame.isin(df.frame.unique())]  # --fps analyses fewer frames
                    found, ious, agree = match(common, df)
                    row = (f"| {len(df)} | {found / max(1, len(common)):.1%} | {np.median(ious):.3f} "
                           f"| {np.mean(agree):.1%} |")
                print(f"| {clip.name} | {label} | {frames / wall:.1f} ({floor / wall:.2f}x) {row}", flush=True)


if __name__ == "__main__":
    main()
