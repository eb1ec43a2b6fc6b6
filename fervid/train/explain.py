"""Collect the face crops that ``fervid explain`` shows: from an image, a video frame, or FER-2013 rows."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from fervid.analysis.classify import square_crop
from fervid.errors import FervidError
from fervid.labels import EMOTIONS

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"}


@dataclass
class Crops:
    images: np.ndarray  # uint8 [N, S, S]
    captions: list[str]
    true: list[int | None]


def from_picture(rgb: np.ndarray, size: int, caption: str) -> Crops:
    from fervid.analysis.detect import FaceDetector
    from fervid.settings import DetectorSettings

    det = FaceDetector(DetectorSettings())
    try:
        faces = det.detect(rgb)
    finally:
        det.close()
    if not faces:
        raise FervidError(f"{caption}: no face found")
    gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    faces = sorted(faces, key=lambda d: d.x)
    images = np.stack([square_crop(gray, d.xyxy, size, roll=d.roll) for d in faces])
    return Crops(images, [f"{caption} face {i + 1}" for i in range(len(faces))], [None] * len(faces))


def from_image(path: Path, size: int) -> Crops:
    bgr = cv2.imread(str(path))
    if bgr is None:
        raise FervidError(f"{path}: not a readable image")
    return from_picture(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), size, path.name)


def from_video(path: Path, size: int, frame: int | None, time_s: float | None) -> Crops:
    from fervid.video.decode import open_video

    info, dec = open_video(path, pix_fmt="bgr24")
    for f in dec:
        if (frame is not None and f.index >= frame) or (time_s is not None and f.time_s >= time_s - 1e-6) \
                or (frame is None and time_s is None):
            return from_picture(f.rgb(), size, f"{path.name} @ {f.time_s:.2f}s")
    raise FervidError(f"{path}: the video ends before the requested frame or time")


def from_fer(data: str, split: str, per_class: int, classes: list[str], size: int, seed: int = 0) -> Crops:
    from fervid.train import datasets

    fer = datasets.load(data).split(split)
    rng = np.random.default_rng(seed)
    images, captions, true = [], [], []
    for name in classes:
        k = EMOTIONS.index(name)
        idx = np.flatnonzero(fer.labels == k)
        for i in rng.choice(idx, size=min(per_class, len(idx)), replace=False):
            img = fer.images[i]
            images.append(img if img.shape[0] == size else cv2.resize(img, (size, size)))
            captions.append(f"{split} #{i}: {name}")
            true.append(k)
    return Crops(np.stack(images), captions, true)
