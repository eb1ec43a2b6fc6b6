"""Face detection with MediaPipe's BlazeFace, plus tiling so that small faces in big frames are found.

BlazeFace sees the whole frame at 128 or 192 pixels, so a 40-pixel face in a 1080p crowd shrinks to
a few pixels and vanishes. Running it also on overlapping tiles, each seen at the model's own
resolution, finds those faces; one non-maximum suppression merges the passes.
"""

from __future__ import annotations

import os
import sys
import types
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from fervid.assets import models_dir
from fervid.errors import ModelError

MODELS_DIR = models_dir()
DETECTOR_MODELS = {"full": "blaze_face_full_range.tflite", "short": "blaze_face_short_range.tflite"}


@dataclass(frozen=True)
class Detection:
    """A face box in frame pixels (upright orientation) and the detector's confidence."""

    x: float
    y: float
    w: float
    h: float
    score: float

    @property
    def xyxy(self) -> tuple[float, float, float, float]:
        return self.x, self.y, self.x + self.w, self.y + self.h


@dataclass(frozen=True)
class DetectorSettings:
    model: str = "full"
    min_score: float = 0.5
    tiles: str = "auto"  # "auto", "off", or "COLSxROWS"
    tile_overlap: float = 0.25
    nms_iou: float = 0.3
    tile_refresh: int = 3  # a tile that found no face lately is scanned on every Nth call only (1: always)

    def as_dict(self) -> dict:
        return dict(self.__dict__)


def model_path(name: str) -> Path:
    path = Path(name)
    if not path.suffix:
        path = MODELS_DIR / DETECTOR_MODELS.get(name, name)
    if not path.is_file():
        raise ModelError(f"{path}: face detector model not found (expected one of {', '.join(DETECTOR_MODELS)})")
    return path


def tile_grid(width: int, height: int, spec: str) -> tuple[int, int]:
    """How many tile columns and rows: ``auto`` aims at tiles of about 480 pixels on the short side."""
    if spec == "off":
        return 1, 1
    if spec != "auto":
        cols, rows = (int(v) for v in spec.lower().split("x"))
        return max(1, cols), max(1, rows)
    short = min(width, height)
    n = max(1, round(short / 480))
    if n == 1:
        return 1, 1
    cols = max(1, round(width / (height / n))) if width >= height else n
    rows = n if width >= height else max(1, round(height / (width / n)))
    return cols, rows


def tiles(width: int, height: int, cols: int, rows: int, overlap: float) -> list[tuple[int, int, int, int]]:
    """Overlapping tiles (x0, y0, x1, y1) covering the frame; a face cut by one edge is whole in a neighbour."""
    if cols == rows == 1:
        return []
    tw = width / (cols - (cols - 1) * overlap) if cols > 1 else width
    th = height / (rows - (rows - 1) * overlap) if rows > 1 else height
    out = []
    for r in range(rows):
        for c in range(cols):
            x0 = int(round(c * tw * (1 - overlap)))
            y0 = int(round(r * th * (1 - overlap)))
            out.append((x0, y0, min(width, int(round(x0 + tw))), min(height, int(round(y0 + th)))))
    return out


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU between every box of ``a`` [N,4] and ``b`` [M,4], boxes as x0, y0, x1, y1."""
    if len(a) == 0 or len(b) == 0:
        return np.zeros((len(a), len(b)))
    x0 = np.maximum(a[:, None, 0], b[None, :, 0])
    y0 = np.maximum(a[:, None, 1], b[None, :, 1])
    x1 = np.minimum(a[:, None, 2], b[None, :, 2])
    y1 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(x1 - x0, 0, None) * np.clip(y1 - y0, 0, None)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    return inter / np.maximum(area_a[:, None] + area_b[None, :] - inter, 1e-9)


def nms(dets: list[Detection], iou: float) -> list[Detection]:
    """Keep the best-scoring box of each overlapping group; also drop a box half inside a kept one (tiles see faces at other scales)."""
    dets = sorted(dets, key=lambda d: -d.score)
    kept: list[Detection] = []
    for d in dets:
        if kept:
            boxes = np.array([k.xyxy for k in kept])
            ov = iou_matrix(np.array([d.xyxy]), boxes)[0]
            x0 = np.maximum(boxes[:, 0], d.x)
            y0 = np.maximum(boxes[:, 1], d.y)
            x1 = np.minimum(boxes[:, 2], d.x + d.w)
            y1 = np.minimum(boxes[:, 3], d.y + d.h)
            inside = np.clip(x1 - x0, 0, None) * np.clip(y1 - y0, 0, None) / max(d.w * d.h, 1e-9)
            if (ov > iou).any() or (inside > 0.5).any():
                continue
        kept.append(d)
    return kept


def _import_mediapipe():
    """Import MediaPipe's face detector without matplotlib.

    The ``mediapipe`` package imports all its tasks, and its drawing helpers (which fervid never
    uses) import ``matplotlib.pyplot``: about a second of start-up, a third of the whole run on a
    short clip; its audio tasks load PortAudio. Placeholder modules stand in while it loads and are
    removed afterwards, so a later real ``import matplotlib`` (fervid's plots) is unaffected.
    """
    stubs: dict = {}
    if "matplotlib" not in sys.modules:
        stubs = {name: types.ModuleType(name) for name in ("matplotlib", "matplotlib.pyplot")}
    if "sounddevice" not in sys.modules:
        stubs["sounddevice"] = None  # its audio tasks load PortAudio (0.08 s); None makes the import fail, as they allow
    sys.modules.update(stubs)
    try:
        from mediapipe.tasks.python.core import base_options
        from mediapipe.tasks.python.vision import face_detector
        from mediapipe.tasks.python.vision.core import image as mp_image
    finally:
        for name, module in stubs.items():
            if sys.modules.get(name) is module:
                del sys.modules[name]
    return base_options, face_detector, mp_image


@contextmanager
def quiet_native_stderr():
    """MediaPipe's C++ side logs set-up chatter straight to file descriptor 2; hide it from users."""
    if os.environ.get("FERVID_DEBUG_NATIVE"):
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


class FaceDetector:
    """``detect(rgb)`` on an upright RGB frame, key frame after key frame of one video; ``reset()`` at a cut.

    Not thread-safe, so one per worker."""

    def __init__(self, settings: DetectorSettings = DetectorSettings()):
        os.environ.setdefault("GLOG_minloglevel", "2")  # MediaPipe's C++ logging is noise to users
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        base_options, face_detector, mp_image = _import_mediapipe()
        self._image = mp_image

        self.settings = settings
        self.path = model_path(settings.model)
        self.input_side = 128 if "short" in self.path.name else 192
        options = face_detector.FaceDetectorOptions(
            base_options=base_options.BaseOptions(model_asset_path=str(self.path)),
            min_detection_confidence=settings.min_score, min_suppression_threshold=settings.nms_iou)
        try:
            with quiet_native_stderr():
                self._mp = face_detector.FaceDetector.create_from_options(options)
                self._mp.detect(self._blank())  # the first call logs too
        except Exception as err:  # noqa: BLE001 - MediaPipe raises bare RuntimeErrors
            raise ModelError(f"{self.path}: MediaPipe could not load the face detector ({err})") from None
        self._grid: dict[tuple[int, int], list] = {}
        # Tiles where no face was found lately are scanned less often (in turn, every
        # ``tile_refresh`` calls): most of a frame is walls and sky, and a face walking into
        # such a tile is still found within a few key frames.
        self._idle: dict[int, int] = {}
        self._calls = 0
        self.passes = 0

    def _blank(self):
        return self._image.Image(image_format=self._image.ImageFormat.SRGB, data=np.zeros((64, 64, 3), np.uint8))

    def _run(self, rgb: np.ndarray, dx: int = 0, dy: int = 0) -> list[Detection]:
        """One detector pass; the region is first shrunk (area-averaged) to the model's input size,
        which is cheaper than MediaPipe's own resize of a big image and finds the same faces."""
        h, w = rgb.shape[:2]
        scale = self.input_side / max(h, w)
        if scale < 1:
            rgb = cv2.resize(rgb, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)
        else:
            rgb, scale = np.ascontiguousarray(rgb), 1.0
        img = self._image.Image(image_format=self._image.ImageFormat.SRGB, data=rgb)
        out = []
        for d in self._mp.detect(img).detections:
            b = d.bounding_box
            out.append(Detection(b.origin_x / scale + dx, b.origin_y / scale + dy, b.width / scale, b.height / scale,
                                 float(d.categories[0].score)))
        return out

    def detect(self, rgb: np.ndarray) -> list[Detection]:
        h, w = rgb.shape[:2]
        if (w, h) not in self._grid:
            cols, rows = tile_grid(w, h, self.settings.tiles)
            self._grid[(w, h)] = tiles(w, h, cols, rows, self.settings.tile_overlap)
        dets = self._run(rgb)
        refresh = max(1, self.settings.tile_refresh)
        for i, (x0, y0, x1, y1) in enumerate(self._grid[(w, h)]):
            idle = self._idle.get(i)
            if idle is None or idle < refresh or (self._calls + i) % refresh == 0:
                found = self._run(rgb[y0:y1, x0:x1], x0, y0)
                self.passes += 1
                dets += found
                self._idle[i] = 0 if found else (idle or 0) + 1
            else:
                self._idle[i] = idle + 1
        self._calls += 1
        self.passes += 1
        return [clip(d, w, h) for d in nms(dets, self.settings.nms_iou) if d.w > 1 and d.h > 1]

    def reset(self) -> None:
        """A new shot: scan every tile on the next call."""
        self._idle.clear()

    def close(self) -> None:
        if self._mp is not None:
            with quiet_native_stderr():
                self._mp.close()
            self._mp = None


def clip(d: Detection, width: int, height: int) -> Detection:
    x0, y0 = max(0.0, d.x), max(0.0, d.y)
    x1, y1 = min(float(width), d.x + d.w), min(float(height), d.y + d.h)
    return Detection(x0, y0, max(0.0, x1 - x0), max(0.0, y1 - y0), d.score)
