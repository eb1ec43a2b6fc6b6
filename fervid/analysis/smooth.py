"""Per-face smoothing of probabilities over time, in seconds rather than frames.

An exponential moving average whose weight follows the real gap between frames, so the same
``tau`` means the same thing at 12 fps, 60 fps, with frame sampling, and on variable frame rates.
"""

from __future__ import annotations

import math

import numpy as np


class EmaSmoother:
    """``update(face_id, probs, time_s)`` returns the smoothed probabilities; ``tau`` <= 0 passes through."""

    def __init__(self, tau: float = 0.3):
        self.tau = tau
        self._state: dict[int, tuple[np.ndarray, float]] = {}

    def update(self, face_id: int, probs: np.ndarray, time_s: float) -> np.ndarray:
        prev = self._state.get(face_id)
        if self.tau <= 0 or prev is None:
            out = probs
        else:
            value, t = prev
            alpha = 1.0 - math.exp(-max(time_s - t, 0.0) / self.tau)
            out = value + alpha * (probs - value)
        self._state[face_id] = (out, time_s)
        return out

    def reset(self) -> None:
        self._state.clear()
