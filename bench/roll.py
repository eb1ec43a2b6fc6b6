"""What turning the crop with a tilted head (``square_crop(..., roll=)``) does to accuracy.

    python bench/roll.py [--split PublicTest] [--model resnet_ms_x3_int8]

Each FER-2013 face of the split is upscaled to 192 px, padded (edges replicated) into a 384 px
canvas, turned by an angle (0, 10, 20 or 30 degrees either way, or anywhere in +-30), and found by
BlazeFace there; its crop is read upright as it is ("plain") and turned back by the detected roll
as fervid does ("levelled": not below 7 degrees, in part up to 13, fully beyond; ``fervid.analysis.classify.
ROLL_RAMP``). Faces the detector
misses are left out, so the accuracies are of the faces found. Choose on PublicTest; PrivateTest
is for measuring a final choice once.
"""

from __future__ import annotations

import argparse

import cv2
import numpy as np

from fervid.train import datasets
from fervid.analysis.classify import Classifier, square_crop
from fervid.analysis.detect import FaceDetector
from fervid.settings import DetectorSettings
from fervid.train.evaluate import predict_all


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default="../shared/data/fer2013.csv.gz")
    ap.add_argument("--split", default="PublicTest")
    ap.add_argument("--model", default=None)
    args = ap.parse_args()
    data = datasets.load(args.data).split(args.split)
    det = FaceDetector(DetectorSettings(tiles="off"))
    clf = Classifier(args.model)
    rng = np.random.default_rng(0)
    print(f"| {args.split}: turned by | faces found | plain | levelled |")
    print("|---|---|---|---|")
    for angle in (0, 10, 20, 30, "uniform +-30"):
        plain, levelled, labels = [], [], []
        for img, label in zip(data.images, data.labels):
            a = float(rng.uniform(-30, 30)) if isinstance(angle, str) else angle * rng.choice([-1, 1])
            canvas = cv2.copyMakeBorder(cv2.resize(img, (192, 192), interpolation=cv2.INTER_CUBIC),
                                        96, 96, 96, 96, cv2.BORDER_REPLICATE)
            if a:
                canvas = cv2.warpAffine(canvas, cv2.getRotationMatrix2D((191.5, 191.5), a, 1.0), (384, 384),
                                        borderMode=cv2.BORDER_REPLICATE)
            found = det.detect(cv2.cvtColor(canvas, cv2.COLOR_GRAY2RGB))
            if not found:
                continue
            face = max(found, key=lambda d: d.score)
            plain.append(square_crop(canvas, face.xyxy, clf.input_size))
            levelled.append(square_crop(canvas, face.xyxy, clf.input_size, roll=face.roll))
            labels.append(label)
        y = np.array(labels)
        acc = [float((predict_all(clf, np.stack(c)).argmax(1) == y).mean()) for c in (plain, levelled)]
        print(f"| {angle} | {len(y)} of {len(data)} | {acc[0]:.2%} | {acc[1]:.2%} |")
    det.close()


if __name__ == "__main__":
    main()
