"""What one input produces, written atomically: part files renamed to final names only when complete.

Each product that is built frame by frame is a sink with one verb, ``update(frame, faces)``
(``faces`` is None on frames that were not analysed), then ``close()``.
"""

from __future__ import annotations

import os
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from fervid.outputs.draw import I420Canvas, draw_faces
from fervid.errors import OutputError
from fervid.labels import EMOTIONS
from fervid._timing import StageTimes
from fervid.video.encode import Encoder, Encoding
from fervid.video.probe import VideoInfo
from fervid.outputs.writers import TimelineWriter


@dataclass(frozen=True)
class Outputs:
    """Where each product of one input goes; None means not wanted."""

    video: Path | None = None
    timeline: Path | None = None
    summary: Path | None = None
    plot: Path | None = None
    sidecar: Path | None = None  # written last: it marks the set as complete
    encoding: Encoding = Encoding()  # how the video is compressed

    def paths(self) -> list[Path]:
        return [p for p in (self.video, self.timeline, self.summary, self.plot, self.sidecar) if p is not None]

    def complete(self) -> bool:
        """All written by an earlier run (a plot is not made for a video without faces)."""
        need = [p for p in self.paths() if p != self.plot]
        return bool(need) and all(p.is_file() for p in need)

    def check(self, src: Path) -> None:
        """Refuse to overwrite the input; make sure each output folder exists and takes files."""
        for p in self.paths():
            try:
                same = p.exists() and os.path.samefile(p, src)
            except OSError:
                same = False
            if same or p.resolve() == src.resolve():
                raise OutputError(f"{p}: the output would overwrite the input; choose another output path")
            try:
                p.parent.mkdir(parents=True, exist_ok=True)
            except OSError as err:
                raise OutputError(f"{p.parent}: cannot create the output directory ({err.strerror})") from None
            if not os.access(p.parent, os.W_OK):
                raise OutputError(f"{p.parent}: the output directory is not writable")


class PartFiles:
    """Hidden ``.NAME.partPID.ext`` files for the outputs: renamed on ``commit()``, deleted on any failure."""

    def __init__(self, outputs: Outputs):
        self.order = outputs.paths()  # the sidecar comes last
        self.parts = {p: p.with_name(f".{p.stem}.part{os.getpid()}{p.suffix}") for p in self.order}
        for final in self.order:  # left by a killed run (kill -9, power loss) of the same output
            for stale in final.parent.glob(f".{final.stem}.part*{final.suffix}"):
                stale.unlink(missing_ok=True)

    def __getitem__(self, final: Path) -> Path:
        return self.parts[final]

    def drop(self, final: Path) -> None:
        """This output will not be made after all."""
        self.parts.pop(final).unlink(missing_ok=True)

    def open_text(self, final: Path):
        try:
            return open(self.parts[final], "w", encoding="utf-8", newline="")
        except OSError as err:
            raise OutputError(f"{final.parent}: cannot write output there ({err.strerror})") from None

    def commit(self) -> None:
        for final in self.order:
            if final in self.parts:
                os.replace(self.parts[final], final)

    def discard(self) -> None:
        for part in self.parts.values():
            part.unlink(missing_ok=True)


class VideoSink:
    """Draw the faces (the last analysed ones on frames in between) on the I420 frame and encode it."""

    def __init__(self, path: Path, info: VideoInfo, times: StageTimes, threads: int = 0,
                 encoding: Encoding = Encoding()):
        self.encoder = Encoder(path, info, encoding, threads=threads, pix_fmt="yuv420p")
        self.times = times
        self.last: list = []

    def update(self, frame, faces) -> None:
        if faces is not None:
            self.last = faces
        with self.times.time("draw"):
            draw_faces(I420Canvas(frame.image, frame.width, frame.height), self.last)
        with self.times.time("encode"):
            self.encoder.write(frame.image, frame.time_s)

    def close(self) -> None:
        with self.times.time("encode"):
            self.encoder.close()

    def abort(self) -> None:
        self.encoder.abort()


class TimelineSink:
    def __init__(self, fh, video: str, times: StageTimes):
        self.writer, self.times = TimelineWriter(fh, video), times

    def update(self, frame, faces) -> None:
        if faces is not None:
            with self.times.time("write"):
                self.writer.write(faces)

    def close(self) -> None:
        pass

    def abort(self) -> None:
        pass


class PlotSink:
    """Rows and one thumbnail per face (its most confident detection) for the timeline figure."""

    def __init__(self) -> None:
        self.rows: list[tuple] = []
        self.thumbnails: dict[int, np.ndarray] = {}
        self._best: dict[int, float] = {}

    def update(self, frame, faces) -> None:
        rgb = None
        for f in faces or ():
            self.rows.append((f.frame, f.time_s, f.face_id, *f.probs))
            if f.det_score == f.det_score and f.det_score > self._best.get(f.face_id, -1.0) + 0.02:
                self._best[f.face_id] = f.det_score
                rgb = frame.rgb() if rgb is None else rgb  # one conversion per frame, only when needed
                self.thumbnails[f.face_id] = _thumbnail(rgb, f)

    def close(self) -> None:
        pass

    def abort(self) -> None:
        pass

    def frame(self, video: str):
        import pandas as pd

        return pd.DataFrame(self.rows, columns=["frame", "time_s", "face_id", *EMOTIONS]).assign(video=video)


def _thumbnail(rgb: np.ndarray, f) -> np.ndarray | None:
    side = 1.4 * max(f.w, f.h)
    cx, cy = f.x + f.w / 2, f.y + f.h / 2
    h, w = rgb.shape[:2]
    x0, y0 = int(max(0, cx - side / 2)), int(max(0, cy - side / 2))
    x1, y1 = int(min(w, cx + side / 2)), int(min(h, cy + side / 2))
    if x1 <= x0 or y1 <= y0:
        return None
    return cv2.resize(rgb[y0:y1, x0:x1], (96, 96), interpolation=cv2.INTER_AREA)


def open_sinks(outputs: Outputs, parts: PartFiles, stack: ExitStack, info: VideoInfo, video_name: str,
               times: StageTimes, threads: int = 0) -> list:
    sinks: list = []
    if outputs.timeline:
        sinks.append(TimelineSink(stack.enter_context(parts.open_text(outputs.timeline)), video_name, times))
    if outputs.plot:
        sinks.append(PlotSink())
    if outputs.video:
        sinks.append(VideoSink(parts[outputs.video], info, times, threads, outputs.encoding))
    return sinks
