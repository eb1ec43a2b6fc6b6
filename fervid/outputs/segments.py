"""Each face's stretches of one top emotion: what subtitles and ELAN tiers show.

A segment starts where a face's top emotion (the timeline's ``emotion`` column) changes and ends
where it changes again, or where the face is no longer seen (then a frame's step after its last
row). Built as rows come; only the segments are kept.
"""

from __future__ import annotations

from dataclasses import dataclass

from fervid.labels import EMOTIONS
from fervid.outputs.sinks import Sink


@dataclass(frozen=True)
class Segment:
    face_id: int
    emotion: str
    start: float
    end: float
    probability: float  # the emotion's mean probability over the segment's rows

    def label(self) -> str:
        return f"#{self.face_id} {self.emotion} {round(100 * self.probability)}%"


class SegmentSink(Sink):
    """``step``: seconds one analysed frame stands for; rows further apart than ``gap`` (a face
    unseen for a while) end a segment."""

    def __init__(self, step: float, gap: float = 1.0):
        self.step, self.gap = step, max(gap, 2 * step)
        self.segments: list[Segment] = []
        self._open: dict[int, list] = {}  # face_id -> [emotion, start, last, sum of its probability, rows]

    def update(self, frame, faces) -> None:
        if faces is None:
            return
        seen = set()
        for f in faces:
            seen.add(f.face_id)
            emotion = f.emotion
            cur = self._open.get(f.face_id)
            if cur is not None and (cur[0] != emotion or f.time_s - cur[2] > self.gap):
                self._end(f.face_id, f.time_s if cur[0] != emotion and f.time_s - cur[2] <= self.gap else None)
                cur = None
            if cur is None:
                cur = self._open[f.face_id] = [emotion, f.time_s, f.time_s, 0.0, 0]
            cur[2] = f.time_s
            cur[3] += float(f.probs[EMOTIONS.index(emotion)])
            cur[4] += 1
        for face_id in [fid for fid in self._open if fid not in seen]:
            self._end(face_id, None)

    def _end(self, face_id: int, at: float | None) -> None:
        emotion, start, last, total, rows = self._open.pop(face_id)
        end = at if at is not None else last + self.step
        self.segments.append(Segment(face_id, emotion, start, max(end, start + 0.001), total / rows))

    def close(self) -> None:
        for face_id in list(self._open):
            self._end(face_id, None)
        self.segments.sort(key=lambda s: (s.start, s.face_id))
