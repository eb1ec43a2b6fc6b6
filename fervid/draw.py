"""Draw each face's box, ID, top emotion and a compact bar of the 7 probabilities onto a BGR frame.

Sizes follow the frame's shorter side, so labels stay legible from 360p to 4K.
"""

from __future__ import annotations

from typing import Sequence

import cv2
import numpy as np

from fervid.labels import EMOTIONS
from fervid.pipeline import FaceResult
from fervid.style import EMOTION_BGR


def draw_faces(image: np.ndarray, faces: Sequence[FaceResult]) -> np.ndarray:
    """Draws in place (the frame is fervid's own decoded copy) and returns it."""
    h, w = image.shape[:2]
    unit = max(1.0, min(h, w) / 360.0)
    thick = max(1, int(round(unit)))
    font_scale = 0.45 * unit
    line_h = int(round(16 * unit))
    for face in faces:
        top = int(np.argmax(face.probs))
        colour = EMOTION_BGR[top]
        x0, y0 = int(round(face.x)), int(round(face.y))
        x1, y1 = int(round(face.x + face.w)), int(round(face.y + face.h))
        cv2.rectangle(image, (x0, y0), (x1, y1), colour, thick + 1, cv2.LINE_AA)
        label = f"#{face.face_id} {EMOTIONS[top]} {face.probs[top] * 100:.0f}%"
        (tw, th), base = cv2.getTextSize(label, cv2.FONT_HERSHEY_SIMPLEX, font_scale, thick)
        ly = y0 - 4 * thick if y0 - th - base - 4 * thick >= 0 else y1 + th + 4 * thick
        lx = min(max(0, x0), max(0, w - tw - 4))
        cv2.rectangle(image, (lx, ly - th - base), (lx + tw + 4, ly + base), colour, -1)
        cv2.putText(image, label, (lx + 2, ly), cv2.FONT_HERSHEY_SIMPLEX, font_scale, (255, 255, 255), thick, cv2.LINE_AA)
        _bars(image, face.probs, x1 + 3 * thick, y0, line_h, unit, thick, x0)
    return image


def _bars(image: np.ndarray, probs: np.ndarray, x: int, y: int, line_h: int, unit: float, thick: int, x_left: int):
    """Seven short labelled bars beside the box (left of it when there is no room on the right)."""
    h, w = image.shape[:2]
    bar_w = int(round(50 * unit))
    label_w = int(round(30 * unit))
    total_w = label_w + bar_w
    if x + total_w > w:
        x = max(0, x_left - total_w - 3 * thick)
    y = min(max(0, y), max(0, h - line_h * len(EMOTIONS)))
    scale = 0.32 * unit
    for i, (name, p) in enumerate(zip(EMOTIONS, probs)):
        top = y + i * line_h
        bar_top, bar_bottom = top + line_h // 5, top + line_h - line_h // 5
        overlay = image[bar_top:bar_bottom, x:x + total_w]
        overlay //= 2  # darkened backdrop keeps the text readable on any picture
        cv2.rectangle(image, (x + label_w, bar_top), (x + label_w + int(bar_w * float(p)), bar_bottom),
                      EMOTION_BGR[i], -1)
        cv2.putText(image, name[:3], (x + 1, bar_bottom - 1), cv2.FONT_HERSHEY_SIMPLEX, scale,
                    (255, 255, 255), max(1, thick - 1), cv2.LINE_AA)
