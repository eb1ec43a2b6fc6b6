"""Box geometry shared by the detector, its merging of passes, and the tracker."""

from __future__ import annotations

import numpy as np


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


def clip_box(box: np.ndarray, width: int, height: int) -> np.ndarray:
    """The part of box (x0, y0, x1, y1) inside a ``width`` x ``height`` picture (empty: zero width or height)."""
    x0, y0 = min(max(box[0], 0.0), width), min(max(box[1], 0.0), height)
    return np.array([x0, y0, max(x0, min(box[2], width)), max(y0, min(box[3], height))], dtype=float)
