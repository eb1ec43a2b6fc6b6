"""MediaPipe's BlazeFace face detector, run by ONNX Runtime (the default) or by MediaPipe itself.

With ONNX Runtime it is the same network (converted once from the vendored ``.tflite`` files by
scripts/convert_blazeface.py), with MediaPipe's pre- and post-processing rewritten in numpy: the
image fitted into the square input on black, values scaled to -1..1, boxes decoded against the
SSD anchors, overlapping boxes merged by score-weighted averaging. Running it here costs a third
less than MediaPipe's graph on this machine and lets fervid control the threads. Boxes are also
finer: MediaPipe truncates them to whole pixels of the model's input (10-pixel steps on 1080p);
tests/test_shared_videos.py checks that both agree up to that rounding.
"""

from __future__ import annotations

import math
import os
import importlib.util
import sys
import types
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from fervid.analysis.boxes import iou_matrix
from fervid.errors import ModelError
from fervid.records import Detection


@dataclass(frozen=True)
class AnchorSpec:
    """MediaPipe's SsdAnchorsCalculator options for one model (with fixed anchor sizes)."""

    input_side: int
    strides: tuple[int, ...]
    interpolated_scale: bool  # one more anchor per scale (MediaPipe's interpolated_scale_aspect_ratio > 0)


# From MediaPipe's face_detection_full_range / short_range graphs.
SPECS = {"full": AnchorSpec(192, (4,), False), "short": AnchorSpec(128, (8, 16, 16, 16), True)}


def ssd_anchors(spec: AnchorSpec) -> np.ndarray:
    """Anchor centres ``[A, 2]`` (x, y in 0..1), in the order of the model's outputs."""
    out = []
    layer = 0
    while layer < len(spec.strides):
        stride, per_cell = spec.strides[layer], 0
        while layer < len(spec.strides) and spec.strides[layer] == stride:  # layers of one stride share a grid
            per_cell += 2 if spec.interpolated_scale else 1
            layer += 1
        side = math.ceil(spec.input_side / stride)
        ys, xs = np.mgrid[0:side, 0:side]
        centres = np.stack([(xs + 0.5) / side, (ys + 0.5) / side], -1).reshape(-1, 1, 2)
        out.append(np.repeat(centres, per_cell, axis=1).reshape(-1, 2))
    return np.concatenate(out).astype(np.float32)


def weighted_nms(boxes: np.ndarray, scores: np.ndarray, iou: float) -> tuple[np.ndarray, np.ndarray]:
    """MediaPipe's WEIGHTED suppression: each group of boxes overlapping the best one by more than
    ``iou`` becomes their score-weighted average, with the best score. Boxes are x0, y0, x1, y1,
    optionally followed by keypoints, which are averaged alike."""
    order = np.argsort(-scores, kind="stable")
    boxes, scores = boxes[order], scores[order]
    kept_boxes, kept_scores = [], []
    alive = np.ones(len(boxes), bool)
    for i in range(len(boxes)):
        if not alive[i]:
            continue
        group = alive & (iou_matrix(boxes[i:i + 1, :4], boxes[:, :4])[0] > iou)
        group[i] = True
        w = scores[group]
        kept_boxes.append((boxes[group] * w[:, None]).sum(0) / w.sum())
        kept_scores.append(scores[i])
        alive &= ~group
    return np.array(kept_boxes, np.float32).reshape(-1, boxes.shape[1]), np.array(kept_scores, np.float32)


class OnnxBlazeFace:
    """``detect(rgb)`` -> faces in that image's pixels. Not thread-safe: one per worker."""

    def __init__(self, path: Path, min_score: float = 0.5, nms_iou: float = 0.3, threads: int = 1):
        import onnxruntime as ort

        kind = "short" if "short" in path.name else "full"
        self.spec = SPECS[kind]
        self.input_side = self.spec.input_side
        self.anchors = ssd_anchors(self.spec)
        self.min_score, self.nms_iou = min_score, nms_iou
        # The score threshold as a logit: scores are a sigmoid, so only the hits need one.
        self._logit = (math.log(min_score / (1 - min_score)) if 0 < min_score < 1
                       else -math.inf if min_score <= 0 else math.inf)
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads  # detection runs beside the classifier: one core each
        opts.inter_op_num_threads = 1
        opts.log_severity_level = 3
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        try:
            self.session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        except Exception as err:  # noqa: BLE001 - onnxruntime raises several unrelated types
            raise ModelError(f"{path}: not a loadable face detector ({str(err).splitlines()[0][:200]})") from None
        self.input_name = self.session.get_inputs()[0].name
        outputs = {o.shape[-1]: o.name for o in self.session.get_outputs()}
        self.outputs = [outputs[16], outputs[1]]  # box regressors, score logits
        self._canvas = np.zeros((1, self.input_side, self.input_side, 3), np.float32)

    def detect(self, rgb: np.ndarray) -> list[Detection]:
        h, w = rgb.shape[:2]
        side = self.input_side
        scale = side / max(h, w)
        nw, nh = max(1, round(w * scale)), max(1, round(h * scale))
        small = rgb if (nw, nh) == (w, h) else cv2.resize(
            rgb, (nw, nh), interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
        # Letterbox: the image centred in the square on black (-1), as MediaPipe's BORDER_ZERO does.
        px, py = (side - nw) // 2, (side - nh) // 2
        x = self._canvas
        x[:] = -1.0
        x[0, py:py + nh, px:px + nw] = small * np.float32(1 / 127.5) - np.float32(1.0)
        raw, logits = self.session.run(self.outputs, {self.input_name: x})
        logits = logits[0, :, 0]
        hit = np.flatnonzero(logits > self._logit)
        if not len(hit):
            return []
        scores = 1.0 / (1.0 + np.exp(-np.clip(logits[hit], -100, 100)))
        reg = raw[0, hit, :8] / side
        centre = self.anchors[hit] + reg[:, :2]
        half = reg[:, 2:4] / 2
        eyes = np.tile(self.anchors[hit], 2) + reg[:, 4:8]  # the face's right eye (x, y), then its left
        boxes = np.concatenate([centre - half, centre + half, eyes], 1) * side  # in the square's pixels
        boxes, scores = weighted_nms(boxes, scores, self.nms_iou)
        boxes[:, :4] = (boxes[:, :4] - np.array([px, py, px, py], np.float32)) / scale
        rolls = np.degrees(np.arctan2(boxes[:, 7] - boxes[:, 5], boxes[:, 6] - boxes[:, 4]))
        return [Detection(float(b[0]), float(b[1]), float(b[2] - b[0]), float(b[3] - b[1]), float(s), float(r))
                for b, s, r in zip(boxes, scores, rolls)]

    def close(self) -> None:
        self.session = None


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
        if importlib.util.find_spec("mediapipe") is None:
            raise ModelError("the mediapipe detector runtime needs MediaPipe: pip install 'fervid[mediapipe]'")
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


class MediaPipeBlazeFace:
    """The same model through MediaPipe's own face detector task (the reference for the port)."""

    def __init__(self, path: Path, min_score: float = 0.5, nms_iou: float = 0.3):
        os.environ.setdefault("GLOG_minloglevel", "2")  # MediaPipe's C++ logging is noise to users
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        base_options, face_detector, mp_image = _import_mediapipe()
        self._image = mp_image
        self.input_side = 128 if "short" in path.name else 192
        options = face_detector.FaceDetectorOptions(
            base_options=base_options.BaseOptions(model_asset_path=str(path)),
            min_detection_confidence=min_score, min_suppression_threshold=nms_iou)
        try:
            with quiet_native_stderr():
                self._mp = face_detector.FaceDetector.create_from_options(options)
                self._mp.detect(self._wrap(np.zeros((64, 64, 3), np.uint8)))  # the first call logs too
        except Exception as err:  # noqa: BLE001 - MediaPipe raises bare RuntimeErrors
            raise ModelError(f"{path}: MediaPipe could not load the face detector ({err})") from None

    def _wrap(self, rgb: np.ndarray):
        return self._image.Image(image_format=self._image.ImageFormat.SRGB, data=np.ascontiguousarray(rgb))

    def detect(self, rgb: np.ndarray) -> list[Detection]:
        """The region is first shrunk (area-averaged) to the model's input size, which is cheaper
        than MediaPipe's own resize of a big image and finds the same faces."""
        h, w = rgb.shape[:2]
        scale = self.input_side / max(h, w)
        if scale < 1:
            rgb = cv2.resize(rgb, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)
        else:
            scale = 1.0
        out = []
        h, w = rgb.shape[:2]
        for d in self._mp.detect(self._wrap(rgb)).detections:
            b = d.bounding_box
            roll = 0.0
            if len(d.keypoints) >= 2:  # the face's right eye, then its left, in 0..1 of the image
                right, left = d.keypoints[0], d.keypoints[1]
                roll = math.degrees(math.atan2((left.y - right.y) * h, (left.x - right.x) * w))
            out.append(Detection(b.origin_x / scale, b.origin_y / scale, b.width / scale, b.height / scale,
                                 float(d.categories[0].score), roll))
        return out

    def close(self) -> None:
        if self._mp is not None:
            with quiet_native_stderr():
                self._mp.close()
            self._mp = None
