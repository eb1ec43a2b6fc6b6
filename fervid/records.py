"""The small typed records that flow from the pipeline to the writers."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fervid.labels import EMOTIONS


@dataclass(frozen=True)
class Detection:
    """A face box in frame pixels (upright orientation), the detector's confidence, and the face's
    roll: the tilt of the line through its eyes, in degrees (positive: turned clockwise on screen)."""

    x: float
    y: float
    w: float
    h: float
    score: float
    roll: float = 0.0

    @property
    def xyxy(self) -> tuple[float, float, float, float]:
        return self.x, self.y, self.x + self.w, self.y + self.h


@dataclass(frozen=True)
class FaceResult:
    """One face in one frame: the row of the timeline CSV."""

    frame: int
    time_s: float
    face_id: int
    x: float
    y: float
    w: float
    h: float
    det_score: float  # NaN when the box was carried over a missed detection
    probs: np.ndarray

    @property
    def emotion(self) -> str:
        return EMOTIONS[int(np.argmax(self.probs))]
