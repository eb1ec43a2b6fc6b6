"""How FER-2013 frames a face relative to BlazeFace's box; sets fervid.analysis.classify.CROP_SCALE / CROP_SHIFT_Y.

Each Training face is upscaled to 192 px and padded (edges replicated) into a 384 px canvas; the
detector's box is compared with the image's own square.

    python bench/calibrate_crop.py [--data ../shared/data/fer2013.csv.gz] [--n 1500]
"""

from __future__ import annotations

import argparse

import cv2
import numpy as np

from fervid.train import datasets
from fervid.analysis.detect import FaceDetector
from fervid.settings import DetectorSettings


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default="../shared/data/fer2013.csv.gz")
    ap.add_argument("--n", type=int, default=1500)
    args = ap.parse_args()
    faces = datasets.load(args.data).split("Training").images[: args.n]
    print(f"{'model':6} {'found':>11} {'scale median':>12} {'IQR':>11} {'shift_y':>8}")
    for model in ("full", "short"):
        det = FaceDetector(DetectorSettings(model=model, tiles="off"))
        scale, shift = [], []
        for img in faces:
            big = cv2.resize(img, (192, 192), interpolation=cv2.INTER_CUBIC)
            canvas = cv2.copyMakeBorder(big, 96, 96, 96, 96, cv2.BORDER_REPLICATE)
            found = det.detect(cv2.cvtColor(canvas, cv2.COLOR_GRAY2RGB))
            if found:
                d = max(found, key=lambda z: z.score)
                scale.append(192 / max(d.w, d.h))
                shift.append((192 - (d.y + d.h / 2)) / d.h)
        det.close()
        q1, q3 = np.percentile(scale, [25, 75])
        print(f"{model:6} {len(scale):5d}/{len(faces):<5d} {np.median(scale):12.3f} {q1:5.2f}-{q3:4.2f} {np.median(shift):8.3f}")


if __name__ == "__main__":
    main()
