"""Per-face totals of a video: when each face was seen, for how long, and what it mostly showed.

``dominant_emotion`` is the emotion with the highest mean probability over the face's rows; the
``share_*`` columns say for what part of its visible time each emotion was the top one. The
plot and the terminal table use these same rows.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable, Sequence

import numpy as np

from fervid.labels import EMOTIONS
from fervid.records import FaceResult

SUMMARY_COLUMNS = ("video", "face_id", "first_seen_s", "last_seen_s", "seconds_visible", "frames",
                   *(f"mean_{e}" for e in EMOTIONS), "dominant_emotion", *(f"share_{e}" for e in EMOTIONS))


@dataclass
class FaceStats:
    face_id: int
    first_seen: float
    last_seen: float
    frames: int = 0
    seconds: float = 0.0
    prob_sum: np.ndarray = field(default_factory=lambda: np.zeros(len(EMOTIONS)))
    emotion_seconds: np.ndarray = field(default_factory=lambda: np.zeros(len(EMOTIONS)))


class SummaryBuilder:
    """Per-face totals; a frame counts for the time until the next analysed frame, but for no
    more than ``max_gap`` seconds: a face is not "visible" across a hole in the video's timestamps."""

    def __init__(self, max_gap: float = float("inf")) -> None:
        self.max_gap = max_gap
        self.faces: dict[int, FaceStats] = {}
        self._pending: tuple[float, Sequence[FaceResult]] | None = None
        self._gaps: list[float] = []

    def add_frame(self, time_s: float, faces: Sequence[FaceResult]) -> None:
        if self._pending is not None:
            gap = min(max(0.0, time_s - self._pending[0]), self.max_gap)
            if len(self._gaps) < 1000:
                self._gaps.append(gap)
            self._settle(self._pending[1], gap)
        self._pending = (time_s, list(faces))

    def finish(self, default_gap: float) -> list[FaceStats]:
        if self._pending is not None:
            gap = float(np.median(self._gaps)) if self._gaps else default_gap
            self._settle(self._pending[1], gap)
            self._pending = None
        return sorted(self.faces.values(), key=lambda s: s.face_id)

    def _settle(self, faces: Sequence[FaceResult], gap: float) -> None:
        for f in faces:
            s = self.faces.get(f.face_id)
            if s is None:
                s = self.faces[f.face_id] = FaceStats(f.face_id, f.time_s, f.time_s)
            s.last_seen = max(s.last_seen, f.time_s)
            s.first_seen = min(s.first_seen, f.time_s)
            s.frames += 1
            s.seconds += gap
            s.prob_sum += f.probs
            s.emotion_seconds[int(np.argmax(f.probs))] += gap


def summary_rows(video: str, stats: Iterable[FaceStats]) -> list[dict]:
    rows = []
    for s in stats:
        mean = s.prob_sum / max(s.frames, 1)
        share = s.emotion_seconds / s.seconds if s.seconds > 0 else np.zeros(len(EMOTIONS))
        row = {"video": video, "face_id": s.face_id, "first_seen_s": round(s.first_seen, 3),
               "last_seen_s": round(s.last_seen, 3), "seconds_visible": round(s.seconds, 3), "frames": s.frames}
        row.update({f"mean_{e}": round(float(v), 4) for e, v in zip(EMOTIONS, mean)})
        row["dominant_emotion"] = EMOTIONS[int(np.argmax(mean))]
        row.update({f"share_{e}": round(float(v), 4) for e, v in zip(EMOTIONS, share)})
        rows.append(row)
    return rows


def format_summary_table(rows: Sequence[dict]) -> str:
    """The summary as a plain table for the terminal."""
    if not rows:
        return "no faces found"
    head = ["face", "first s", "last s", "visible s", "dominant", *(e[:4] for e in EMOTIONS)]
    body = [[str(r["face_id"]), f"{r['first_seen_s']:.2f}", f"{r['last_seen_s']:.2f}", f"{r['seconds_visible']:.2f}",
             r["dominant_emotion"], *(f"{r[f'mean_{e}']:.2f}" for e in EMOTIONS)] for r in rows]
    widths = [max(len(x) for x in col) for col in zip(head, *body)]
    fmt = lambda cells: "  ".join(c.rjust(w) for c, w in zip(cells, widths))  # noqa: E731
    return "\n".join([fmt(head), *(fmt(b) for b in body)])
