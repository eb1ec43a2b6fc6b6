"""The one way a face result becomes a timeline row: typed values for tables, text for the CSV."""

from __future__ import annotations

import math
from typing import Iterable, Sequence

from fervid.labels import EMOTIONS
from fervid.records import FaceResult

TIMELINE_COLUMNS = ("video", "frame", "time_s", "face_id", "x", "y", "w", "h", "det_score", *EMOTIONS, "emotion")


def timeline_row(video: str, f: FaceResult) -> tuple:
    """The row's values in :data:`TIMELINE_COLUMNS` order (``det_score`` NaN on a carried box)."""
    return (video, f.frame, f.time_s, f.face_id, f.x, f.y, f.w, f.h, f.det_score, *(float(p) for p in f.probs),
            f.emotion)


def csv_fields(row: Sequence) -> list[str]:
    """A row as CSV text: box to 0.1 pixel, time to the microsecond, a carried box's score empty."""
    video, frame, time_s, face_id, x, y, w, h, score = row[:9]
    probs, emotion = row[9:-1], row[-1]
    return [video, str(frame), f"{time_s:.6f}", str(face_id), f"{x:.1f}", f"{y:.1f}", f"{w:.1f}", f"{h:.1f}",
            "" if math.isnan(score) else f"{score:.4f}", *(f"{p:.5f}" for p in probs), emotion]


def timeline_frame(rows: Iterable[Sequence]):
    """Rows as a pandas DataFrame with the CSV's columns and proper dtypes."""
    import numpy as np
    import pandas as pd

    df = pd.DataFrame(list(rows), columns=list(TIMELINE_COLUMNS))
    return df.astype({"frame": np.int64, "face_id": np.int64, "time_s": float, "x": float, "y": float, "w": float,
                      "h": float, "det_score": float, **{e: float for e in EMOTIONS}})
