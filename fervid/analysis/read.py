"""Reading emotions from located faces: crops, batched classification, interpolation, smoothing.

Two savings, both invisible in the output's shape (every analysed frame still gets a row per face):

- Crops from many frames go to the classifier together, in batches of at least 16 (1.7x faster
  per crop than one at a time with the default model), bounded by the bytes of frames held back
  (when nothing draws, frames are held without their pixels). Bigger batches add little speed
  and much memory: ONNX Runtime's arena grows with them (1080p crowd, ``timeline``: peak 270 MB
  at 16, 320 MB at 32, 340 MB at 64).
- Faces are classified ``classify_every`` seconds apart (and on every key frame, and on a face's
  first frame); the frames between get probabilities interpolated in time between the two
  readings around them. Expressions change over hundreds of milliseconds and the output is
  smoothed over 0.3 s anyway, so reading 15 times a second instead of 30 or 60 changes the
  timeline little (``bench/classify_rate.py``, docs/performance.md) and halves or quarters the work.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Iterator, NamedTuple, Sequence

import numpy as np

from fervid.analysis.classify import Classifier, square_crop
from fervid.records import FaceResult
from fervid.analysis.smooth import EmaSmoother
from fervid._timing import StageTimes
from fervid.video.decode import Frame

_NO_PIXELS = np.zeros((0, 0), np.uint8)
_EPS = 1e-6


class Located(NamedTuple):
    """A face on one frame, located and not yet read."""

    face_id: int
    box: np.ndarray  # x0, y0, x1, y1
    score: float  # the detector's, NaN when the box was carried over a missed detection
    roll: float = 0.0  # degrees; the crop is turned with the face (fervid.analysis.classify.square_crop)


# A stretch: (frame, grey picture or None, faces or None), the last entry being its key frame;
# None marks a frame that is not analysed.
Stretch = Sequence[tuple[Frame, "np.ndarray | None", "list[Located] | None"]]


@dataclass
class _Held:
    """Frames waiting for their batch: per frame its faces as (face_id, box, score, crop index or -1)."""

    frames: list[tuple[Frame, list[tuple[int, np.ndarray, float, int]] | None]] = field(default_factory=list)
    crops: list[np.ndarray] = field(default_factory=list)
    nbytes: int = 0


class FaceReader:
    """``update(stretch)`` yields ``(frame, results)`` for frames whose batch is complete; ``flush()`` the rest."""

    def __init__(self, classifier: Classifier, smoother: EmaSmoother, classify_every: float = 0.0,
                 batch: int = 16, max_bytes: int = 24 << 20, keep_pixels: bool = True,
                 times: StageTimes | None = None):
        self.classifier = classifier
        self.smoother = smoother
        self.classify_every = classify_every
        self.batch = batch
        self.max_bytes = max_bytes
        self.keep_pixels = keep_pixels  # False: frames come back without pixels once cropped (nothing draws)
        self.times = times or StageTimes()
        self._held = _Held()
        self._last_read = -np.inf  # time of the last frame whose faces were classified
        self._anchor: dict[int, tuple[float, np.ndarray]] = {}  # face_id -> its latest reading
        self._seen: dict[int, float] = {}  # face_id -> the time of its latest row

    def update(self, stretch: Stretch) -> Iterator[tuple[Frame, list[FaceResult] | None]]:
        held, size = self._held, self.classifier.input_size
        with self.times.time("crop"):
            for n, (frame, gray, faces) in enumerate(stretch):
                if self.keep_pixels:
                    held.nbytes += frame.image.nbytes
                if faces is None:
                    held.frames.append((frame if self.keep_pixels else replace(frame, image=_NO_PIXELS), None))
                    continue
                due = n == len(stretch) - 1 or frame.time_s - self._last_read >= self.classify_every - _EPS
                if due and faces:
                    self._last_read = frame.time_s
                row = []
                for fid, box, score, roll in faces:
                    idx = -1
                    # A face's first frame is read, and so is its first frame back after half a
                    # second unseen (the tracker gives a lost face its ID back): nothing is
                    # blended across the gap.
                    seen, self._seen[fid] = self._seen.get(fid, -np.inf), frame.time_s
                    if due or fid not in self._anchor or frame.time_s - seen > 0.5:
                        idx = len(held.crops)
                        held.crops.append(square_crop(gray, tuple(box), size, roll=roll))
                        self._anchor.setdefault(fid, (frame.time_s, np.empty(0)))  # the reading itself comes in _interpolate
                    row.append((fid, box, score, idx))
                held.frames.append((frame if self.keep_pixels else replace(frame, image=_NO_PIXELS), row))
        if len(held.crops) >= self.batch or held.nbytes >= self.max_bytes:
            yield from self.flush()

    def flush(self) -> Iterator[tuple[Frame, list[FaceResult] | None]]:
        held, self._held = self._held, _Held()
        with self.times.time("classify"):
            probs = self.classifier.predict(np.stack(held.crops)) if held.crops else None
        readings = self._interpolate(held, probs)
        for frame, row in held.frames:
            if row is None:
                yield frame, None
                continue
            results = []
            for fid, box, score, _ in row:
                p = self.smoother.update(fid, readings[(frame.index, fid)], frame.time_s)
                x0, y0, x1, y1 = (float(v) for v in box)
                results.append(FaceResult(frame.index, frame.time_s, fid, x0, y0, x1 - x0, y1 - y0, score, p))
            yield frame, results
        if held.frames:
            self._forget(before_s=held.frames[-1][0].time_s - 10.0)

    def _interpolate(self, held: _Held, probs: np.ndarray | None) -> dict[tuple[int, int], np.ndarray]:
        """Each face's probabilities on each held frame: its own reading, or a blend of the readings
        before and after in time (the last one alone when none follows yet in this batch)."""
        out: dict[tuple[int, int], np.ndarray] = {}
        waiting: dict[int, list[tuple[int, float]]] = {}  # face_id -> unread (frame index, time)
        for frame, row in held.frames:
            for fid, _, _, idx in row or ():
                if idx < 0:
                    waiting.setdefault(fid, []).append((frame.index, frame.time_s))
                    continue
                p = probs[idx].astype(np.float64)
                t0, p0 = self._anchor[fid]
                for index, t in waiting.pop(fid, ()):
                    a = (t - t0) / (frame.time_s - t0) if frame.time_s > t0 else 1.0
                    out[(index, fid)] = (1 - a) * p0 + a * p
                out[(frame.index, fid)] = p
                self._anchor[fid] = (frame.time_s, p)
        for fid, frames in waiting.items():
            for index, _ in frames:
                out[(index, fid)] = self._anchor[fid][1]
        return out

    def _forget(self, before_s: float) -> None:
        """Drop readings of faces last read before ``before_s`` (a face seen again is read afresh):
        memory stays flat on long videos with many faces."""
        self._anchor = {f: a for f, a in self._anchor.items() if a[0] >= before_s}
        self._seen = {f: t for f, t in self._seen.items() if t >= before_s}
