"""Frames in, faces with IDs and emotions out: decode -> detect -> track -> crop and classify -> smooth.

Detection is the expensive step, so it runs on key frames (``detect_every`` seconds apart, twice
that while every face holds still, and on both sides of every shot cut); the frames between are
held back, their boxes interpolated between the two key frames around them. Emotions are read in batches across frames, about 15
times a second per face, and interpolated between (:mod:`fervid.analysis.read`). So every analysed frame
gets a result while the detector runs a few times a second.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from typing import Iterable, Iterator

import numpy as np

from fervid.analysis.classify import Classifier
from fervid.analysis.boxes import clip_box, iou_matrix
from fervid.analysis.detect import FaceDetector
from fervid._handoff import BytesQueue
from fervid.analysis.read import FaceReader, Located, Stretch
from fervid.records import FaceResult
from fervid.settings import Settings
from fervid.analysis.shots import ShotCutDetector
from fervid.analysis.smooth import EmaSmoother
from fervid._timing import StageTimes
from fervid.analysis.track import Tracker
from fervid.video.decode import Frame


@dataclass
class Models:
    """The two networks, loaded once per process and shared by every video it analyses (loading
    them costs about 0.1 s a file, a third of a short clip's work)."""

    classifier: Classifier
    detector: FaceDetector

    @classmethod
    def load(cls, settings: Settings) -> "Models":
        # One ONNX Runtime thread each: the detector runs beside the classifier, and one core each
        # beat two threads contending (d6 timeline 1.88 s vs 1.95 s; the crowd 1.70 vs 1.72 s).
        # With ``threads`` unset (one job) and four cores or more, a tiled frame's detector passes
        # are shared by two threads, for the classifier waits on big crowded frames. On two cores
        # the decoding thread takes the room a second detector thread would use: one is faster
        # there (the crowd 1.46 vs 1.53 s, 8 alternating runs; its minute loop 14.70 vs 14.99 s),
        # the same rows. Parallel jobs fill the cores anyway.
        classifier = Classifier(settings.model, settings.device, settings.threads or 1, settings.tta)
        workers = 2 if not settings.threads and (os.cpu_count() or 1) >= 4 else 1
        return cls(classifier, FaceDetector(settings.detector, workers=workers))

    def close(self) -> None:
        self.detector.close()


@dataclass
class _Key:
    frame: Frame
    gray: np.ndarray
    faces: dict[int, Located]


_END = object()


def _steady(a: _Key, b: _Key, min_iou: float = 0.9) -> bool:
    """The same faces, all detected (none carried), each box overlapping its last one by ``min_iou``:
    the picture holds still, so the next key frame can wait longer. On the one-face shared clips
    about 60-80% of consecutive key frames (0.2 s apart) are steady by this rule, in crowds few."""
    if a.faces.keys() != b.faces.keys():
        return False
    for fid, face in b.faces.items():
        if face.score != face.score or iou_matrix(face.box[None], a.faces[fid].box[None])[0, 0] < min_iou:
            return False
    return True


class Analyzer:
    """Stateful per video: ``run(frames)`` yields ``(frame, results)`` in order, one per analysed frame.

    Two stages overlap in two threads: *locate* (shot cuts, detection, tracking, boxes for the frames
    between key frames) runs ahead in a worker thread, while *read* (crops, classifier batches
    across stretches, smoothing: :mod:`fervid.analysis.read`) and the caller's writing run in the calling thread. MediaPipe and ONNX
    Runtime release the GIL, so on two cores the detector and the classifier work at once.
    """

    queue_bytes = 12 << 20  # frames located and waiting to be read

    def __init__(self, settings: Settings, models: Models | None = None):
        self.settings = settings
        self._own = models is None  # models passed in belong to the caller, who closes them
        self.models = models or Models.load(settings)
        self.classifier, self.detector = self.models.classifier, self.models.detector
        self.detector.reset()  # a new video: every tile is scanned on the first key frame
        self.tracker = Tracker(max_age=max(1.5, settings.coast), activation=settings.activation, relink=settings.relink)
        self.cuts = ShotCutDetector()
        self.times = StageTimes()
        self.reader = FaceReader(self.classifier, EmaSmoother(settings.smooth), settings.classify_every,
                                 times=self.times)

    def run(self, frames: Iterable[Frame], fps: float, every: int = 1, keep_pixels: bool = True
            ) -> Iterator[tuple[Frame, list[FaceResult] | None]]:
        """Frames whose index is not a multiple of ``every`` pass through, in order, with ``None``.
        With ``keep_pixels`` False they come back without pixels (less memory when nothing draws)."""
        self.reader.keep_pixels = keep_pixels
        # Stretches wait here for the reading thread. Bounded by bytes: on a 480x480 clip four or
        # so can wait, so the locating thread need not stop each time the classifier runs a batch
        # (2-6% faster in alternating runs, the same rows); on 1080p one, as with a count of one.
        plans = BytesQueue(self.queue_bytes)
        stop = threading.Event()

        def produce() -> None:
            source = iter(frames)
            try:
                for plan in self._locate(source, fps, every):
                    if not plans.put(plan, sum(f.image.nbytes for f, _, _ in plan), stop):
                        break
            except BaseException as err:  # handed to the calling thread, raised there
                plans.put(err, 0, stop)
            finally:
                close = getattr(source, "close", None)
                if close:
                    close()  # stops ffmpeg if we stopped early
                plans.put(_END, 0, stop)

        worker = threading.Thread(target=produce, name="fervid-locate", daemon=True)
        worker.start()
        try:
            while True:
                item = plans.get()
                if item is _END:
                    break
                if isinstance(item, BaseException):
                    raise item
                yield from self.reader.update(item)
            yield from self.reader.flush()
        finally:
            stop.set()
            worker.join()

    def _locate(self, frames: Iterator[Frame], fps: float, every: int) -> Iterator[Stretch]:
        """Stretches of frames, each ending on a key frame, with every analysed frame's face boxes."""
        key_gap = max(1, round(self.settings.detect_every * fps / every))
        gap = key_gap
        prev: _Key | None = None
        pending: list[tuple[Frame, np.ndarray | None]] = []
        since_key = 0
        for frame in frames:
            if frame.index % every:
                pending.append((frame, None))
                continue
            gray = frame.gray()
            with self.times.time("shot cuts"):
                cut = self.cuts.update(gray) or frame.cut
            if cut and prev is not None:
                yield from self._flush(prev, pending)  # close the old shot on its own last frame
                pending, prev = [], None
                self.tracker.reset()
                self.detector.reset()
            if prev is None or since_key >= gap:
                key = self._key(frame, gray)
                gap = key_gap * max(1, self.settings.steady) if prev is not None and _steady(prev, key) else key_gap
                yield self._plan(prev, pending, key)
                prev, pending, since_key = key, [], 1
            else:
                pending.append((frame, gray))
                since_key += 1
        yield from self._flush(prev, pending)

    def _flush(self, prev: _Key | None, pending: list[tuple[Frame, np.ndarray | None]]) -> Iterator[Stretch]:
        """End a stretch without a key frame after it: its last analysed frame becomes one."""
        last = max((i for i, (_, g) in enumerate(pending) if g is not None), default=None)
        if last is not None:
            yield self._plan(prev, pending[:last], self._key(*pending[last]))
        rest = pending[(last + 1 if last is not None else 0):]
        if rest:
            yield [(frame, None, None) for frame, _ in rest]

    def _key(self, frame: Frame, gray: np.ndarray) -> _Key:
        with self.times.time("detect"):
            dets = [d for d in self.detector.detect(frame) if min(d.w, d.h) >= self.settings.min_face]
        with self.times.time("track"):
            tracked = self.tracker.update(dets, frame.time_s)
        faces = {t.face_id: Located(t.face_id, np.array(t.detection.xyxy), t.detection.score, t.detection.roll)
                 for t in tracked}
        # Carry a face the detector just missed, for a short while, at its predicted place, if it
        # was seen at least twice (a one-off false detection is not carried) and no detected face
        # already stands there (then the track has simply lost it). The prediction is cut to the
        # picture, as detections are, and dropped once too little of it is left there (a face
        # leaving the frame).
        detected = np.array([face.box for face in faces.values()]).reshape(-1, 4)
        for track in self.tracker.tracks:
            if track.id not in faces and track.hits >= 2 and 0 < frame.time_s - track.last_time <= self.settings.coast:
                box = clip_box(track.predict(frame.time_s), frame.width, frame.height)
                if min(box[2] - box[0], box[3] - box[1]) < self.settings.min_face:
                    continue
                if not len(detected) or iou_matrix(box[None], detected).max() < 0.2:
                    faces[track.id] = Located(track.id, box, float("nan"), track.roll)
        return _Key(frame, gray, faces)

    @staticmethod
    def _plan(prev: _Key | None, between: list[tuple[Frame, np.ndarray | None]], key: _Key) -> Stretch:
        """Boxes for the frames between two key frames: interpolated for faces seen at both ends,
        held for the nearer half of the gap for faces seen at one end only."""
        plan: list = []
        for frame, gray in between:
            if gray is None:
                plan.append((frame, None, None))
                continue
            faces = []
            span = key.frame.time_s - prev.frame.time_s if prev else 0.0
            a = (frame.time_s - prev.frame.time_s) / span if prev and span > 0 else 0.0
            ids = set(prev.faces) | set(key.faces) if prev else set()
            for fid in sorted(ids):
                if fid in prev.faces and fid in key.faces:
                    p, k = prev.faces[fid], key.faces[fid]
                    faces.append(Located(fid, (1 - a) * p.box + a * k.box, p.score if a < 0.5 else k.score,
                                         (1 - a) * p.roll + a * k.roll))
                elif fid in prev.faces and a < 0.5:
                    faces.append(prev.faces[fid])
                elif fid in key.faces and a >= 0.5:
                    faces.append(key.faces[fid])
            plan.append((frame, gray, faces))
        plan.append((key.frame, key.gray, [face for _, face in sorted(key.faces.items())]))
        return plan

    def close(self) -> None:
        if self._own:
            self.models.close()
