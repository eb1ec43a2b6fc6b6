"""Draw each face's box, ID, top emotion and the 7 probabilities onto a BGR frame.

Text scales with the frame (legible from 360p to 4K); the probability display scales with the
face: a stacked bar under every box, and a labelled 7-row panel beside faces big enough for it,
so a crowd stays readable.
"""

from __future__ import annotations

from typing import Sequence

import cv2
import numpy as np

from fervid.labels import EMOTIONS
from fervid.pipeline import FaceResult
from fervid.style import EMOTION_BGR

FONT = cv2.FONT_HERSHEY_SIMPLEX
WHITE = (255, 255, 255)


def draw_faces(image: np.ndarray, faces: Sequence[FaceResult]) -> np.ndarray:
    """Draws in place (the frame is fervid's own decoded copy) and returns it."""
    h, w = image.shape[:2]
    unit = max(1.0, min(h, w) / 720.0)
    thick = max(1, int(round(unit)))
    for face in faces:
        top = int(np.argmax(face.probs))
        colour = EMOTION_BGR[top]
        x0, y0 = int(round(face.x)), int(round(face.y))
        x1, y1 = int(round(face.x + face.w)), int(round(face.y + face.h))
        cv2.rectangle(image, (x0, y0), (x1, y1), colour, thick + 1, cv2.LINE_AA)
        _label(image, f"#{face.face_id} {EMOTIONS[top]} {face.probs[top] * 100:.0f}%", x0, y0, colour, unit, thick)
        _stacked_bar(image, face.probs, x0, y1 + thick + 1, max(x1 - x0, int(40 * unit)), max(4, int(6 * unit)))
        row = int(round(11 * unit))
        if y1 - y0 >= 7 * row:
            _panel(image, face.probs, x1 + 2 * thick, x0, y0, row, unit, thick)
    return image


def _label(image, text, x, y, colour, unit, thick):
    h, w = image.shape[:2]
    scale = 0.4 * unit
    (tw, th), base = cv2.getTextSize(text, FONT, scale, thick)
    pad = max(2, thick * 2)
    top = y - th - base - 2 * pad
    if top < 0:
        top = y  # no room above: inside the box's top edge
    x = min(max(0, x), max(0, w - tw - 2 * pad))
    cv2.rectangle(image, (x, top), (x + tw + 2 * pad, top + th + base + 2 * pad), colour, -1)
    cv2.putText(image, text, (x + pad, top + pad + th), FONT, scale, WHITE, thick, cv2.LINE_AA)


def _stacked_bar(image, probs, x, y, width, height):
    """The 7 probabilities as one bar of coloured segments, in class order."""
    h, w = image.shape[:2]
    if y + height > h:
        return
    left = float(x)
    for p, colour in zip(probs, EMOTION_BGR):
        right = left + width * float(p)
        a, b = max(0, int(round(left))), min(w, int(round(right)))
        if b > a:
            image[y:y + height, a:b] = colour
        left = right


def _panel(image, probs, x, x_left, y, row, unit, thick):
    """Seven labelled bars beside the box (left of it when there is no room on the right)."""
    h, w = image.shape[:2]
    label_w, bar_w = int(round(26 * unit)), int(round(44 * unit))
    total = label_w + bar_w + 2
    if x + total > w:
        x = x_left - total - 2 * thick
    if x < 0:
        return
    y = min(max(0, y), h - 7 * row)
    if y < 0:
        return
    backdrop = image[y:y + 7 * row, x:x + total]
    backdrop //= 2  # darkened backdrop keeps the text readable on any picture
    for i, (name, p) in enumerate(zip(EMOTIONS, probs)):
        top = y + i * row
        cv2.rectangle(image, (x + label_w, top + row // 5), (x + label_w + int(bar_w * float(p)), top + row - row // 5),
                      EMOTION_BGR[i], -1)
        cv2.putText(image, name[:3], (x + 1, top + row - row // 4), FONT, 0.3 * unit, WHITE, 1, cv2.LINE_AA)
