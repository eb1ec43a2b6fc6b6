"""Draw each face's box, ID, top emotion and the 7 probabilities onto a frame.

Text scales with the frame (legible from 360p to 4K); the probability display scales with the
face: a stacked bar under every box, and a labelled 7-row panel beside faces big enough for it,
so a crowd stays readable.

Drawing happens on the decoded I420 (yuv420p) planes themselves, which then go straight to the
encoder: no colour conversion of any frame, in either direction.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Sequence

import cv2
import numpy as np

from fervid.labels import EMOTIONS
from fervid.records import FaceResult
from fervid.outputs.style import EMOTION_BGR
from fervid.video.decode import i420_planes

FONT = cv2.FONT_HERSHEY_SIMPLEX
WHITE = (255, 255, 255)


@lru_cache(maxsize=64)
def _yuv(bgr: tuple[int, int, int]) -> tuple[int, int, int]:
    """The Y, U, V values of a BGR colour, as OpenCV's I420 conversion computes them (cached: a
    canvas is made per frame, and converting its eight colours anew would be a fifth of drawing)."""
    i420 = cv2.cvtColor(np.full((2, 2, 3), bgr, np.uint8), cv2.COLOR_BGR2YUV_I420)
    return int(i420[0, 0]), int(i420[2, 0]), int(i420[2, 1])  # rows: Y, Y, then U and V side by side


class I420Canvas:
    """OpenCV drawing calls applied to the three planes of an I420 buffer ``[H*3/2, W]`` (W, H even)."""

    def __init__(self, buffer: np.ndarray, width: int, height: int):
        self.width, self.height = width, height
        self.y, self.u, self.v = i420_planes(buffer)

    def rectangle(self, p0, p1, bgr, thickness: int) -> None:
        y, u, v = _yuv(bgr)
        cv2.rectangle(self.y, p0, p1, y, thickness)
        half = (p0[0] // 2, p0[1] // 2), (p1[0] // 2, p1[1] // 2)
        t = thickness if thickness < 0 else max(1, thickness // 2)
        cv2.rectangle(self.u, *half, u, t)
        cv2.rectangle(self.v, *half, v, t)

    def text(self, text: str, org, scale: float, bgr, thickness: int) -> None:
        y, u, v = _yuv(bgr)
        cv2.putText(self.y, text, org, FONT, scale, y, thickness, cv2.LINE_AA)
        half = (org[0] // 2, org[1] // 2)
        cv2.putText(self.u, text, half, FONT, scale / 2, u, max(1, thickness // 2), cv2.LINE_AA)
        cv2.putText(self.v, text, half, FONT, scale / 2, v, max(1, thickness // 2), cv2.LINE_AA)

    def darken(self, x0: int, y0: int, x1: int, y1: int) -> None:
        """Halve the brightness and colour of a region: a backdrop that keeps text readable."""
        self.y[y0:y1, x0:x1] //= 2
        for plane in (self.u, self.v):
            region = plane[y0 // 2:(y1 + 1) // 2, x0 // 2:(x1 + 1) // 2]
            region[:] = (region.astype(np.int16) - 128) // 2 + 128


def draw_faces(canvas: I420Canvas, faces: Sequence[FaceResult]) -> None:
    unit = max(1.0, min(canvas.width, canvas.height) / 720.0)
    thick = max(1, int(round(unit)))
    for face in faces:
        top = int(np.argmax(face.probs))
        colour = EMOTION_BGR[top]
        x0, y0 = int(round(face.x)), int(round(face.y))
        x1, y1 = int(round(face.x + face.w)), int(round(face.y + face.h))
        canvas.rectangle((x0, y0), (x1, y1), colour, thick + 1)
        _label(canvas, f"#{face.face_id} {EMOTIONS[top]} {face.probs[top] * 100:.0f}%", x0, y0, colour, unit, thick)
        _stacked_bar(canvas, face.probs, x0, y1 + thick + 1, max(x1 - x0, int(40 * unit)), max(4, int(6 * unit)))
        row = int(round(11 * unit))
        if y1 - y0 >= 7 * row:
            _panel(canvas, face.probs, x1 + 2 * thick, x0, y0, row, unit, thick)


def _label(canvas, text, x, y, colour, unit, thick):
    scale = 0.4 * unit
    (tw, th), base = cv2.getTextSize(text, FONT, scale, thick)
    pad = max(2, thick * 2)
    top = y - th - base - 2 * pad
    if top < 0:
        top = y  # no room above: inside the box's top edge
    x = min(max(0, x), max(0, canvas.width - tw - 2 * pad))
    canvas.rectangle((x, top), (x + tw + 2 * pad, top + th + base + 2 * pad), colour, -1)
    canvas.text(text, (x + pad, top + pad + th), scale, WHITE, thick)


def _stacked_bar(canvas, probs, x, y, width, height):
    """The 7 probabilities as one bar of coloured segments, in class order."""
    if y + height > canvas.height:
        return
    left = float(x)
    for p, colour in zip(probs, EMOTION_BGR):
        right = left + width * float(p)
        a, b = max(0, int(round(left))), min(canvas.width, int(round(right)))
        if b > a:
            canvas.rectangle((a, y), (b - 1, y + height - 1), colour, -1)
        left = right


def _panel(canvas, probs, x, x_left, y, row, unit, thick):
    """Seven labelled bars beside the box (left of it when there is no room on the right)."""
    label_w, bar_w = int(round(26 * unit)), int(round(44 * unit))
    total = label_w + bar_w + 2
    if x + total > canvas.width:
        x = x_left - total - 2 * thick
    y = min(max(0, y), canvas.height - 7 * row)
    if x < 0 or y < 0:
        return
    canvas.darken(x, y, x + total, y + 7 * row)
    for i, (name, p) in enumerate(zip(EMOTIONS, probs)):
        top = y + i * row
        canvas.rectangle((x + label_w, top + row // 5), (x + label_w + int(bar_w * float(p)), top + row - row // 5),
                         EMOTION_BGR[i], -1)
        canvas.text(name[:3], (x + 1, top + row - row // 4), 0.3 * unit, WHITE, 1)
