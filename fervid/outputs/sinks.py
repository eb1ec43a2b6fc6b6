"""Products built frame by frame from one input. Each is a sink with one verb,
``update(frame, faces)`` (``faces`` is None on frames that were not analysed), then ``close()``,
or ``abort()`` on failure. New outputs plug in here."""

from __future__ import annotations

from contextlib import ExitStack
from pathlib import Path

import cv2
import numpy as np

from fervid._timing import StageTimes
from fervid.outputs.draw import I420Canvas, draw_faces
from fervid.outputs.files import Outputs, PartFiles
from fervid.outputs.rows import timeline_frame, timeline_row
from fervid.outputs.summary import SummaryBuilder, summary_rows
from fervid.outputs.writers import TimelineWriter
from fervid.video.encode import Encoder, Encoding
from fervid.video.probe import VideoInfo


class Sink:
    """Nothing to finish or undo; subclasses override what they need."""

    def update(self, frame, faces) -> None:
        raise NotImplementedError

    def close(self) -> None:
        pass

    def abort(self) -> None:
        pass


class VideoSink(Sink):
    """Draw the faces (the last analysed ones on frames in between) on the I420 frame and encode it."""

    def __init__(self, path: Path, info: VideoInfo, times: StageTimes, threads: int = 0,
                 encoding: Encoding = Encoding(), live: bool = False):
        self.encoder = Encoder(path, info, encoding, threads=threads, pix_fmt="yuv420p", live=live)
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


class TimelineSink(Sink):
    """The timeline CSV, written as the rows come."""

    def __init__(self, fh, video: str, times: StageTimes):
        self.writer, self.times = TimelineWriter(fh, video), times

    def update(self, frame, faces) -> None:
        if faces is not None:
            with self.times.time("write"):
                self.writer.write(faces)


class SummarySink(Sink):
    """Per-face totals (:mod:`fervid.outputs.summary`), for the summary CSV and the terminal table."""

    def __init__(self, video: str, last_gap: float, step: float):
        """``last_gap``: what the last frame counts for when no gap was seen; ``step``: seconds
        between analysed frames, of which a gap of over three (and over a second) is time unseen."""
        self.video, self.last_gap = video, last_gap
        self.builder = SummaryBuilder(max_gap=max(1.0, 3 * step))

    def update(self, frame, faces) -> None:
        if faces is not None:
            self.builder.add_frame(frame.time_s, faces)

    def rows(self) -> list[dict]:
        return summary_rows(self.video, self.builder.finish(self.last_gap))


class RowsSink(Sink):
    """The timeline rows in memory: :func:`fervid.analyze`'s result, and the plot's data."""

    def __init__(self, video: str):
        self.video, self.rows = video, []

    def update(self, frame, faces) -> None:
        self.rows.extend(timeline_row(self.video, f) for f in faces or ())

    def frame(self):
        return timeline_frame(self.rows)


class Thumbnails(Sink):
    """One picture per face: around its most confident detection, 96x96 RGB."""

    def __init__(self) -> None:
        self.pictures: dict[int, np.ndarray] = {}
        self._best: dict[int, float] = {}

    def update(self, frame, faces) -> None:
        rgb = None
        for f in faces or ():
            if f.det_score == f.det_score and f.det_score > self._best.get(f.face_id, -1.0) + 0.02:
                self._best[f.face_id] = f.det_score
                rgb = frame.rgb() if rgb is None else rgb  # one conversion per frame, only when needed
                self.pictures[f.face_id] = thumbnail(rgb, f)


class PlotSink(RowsSink):
    """Rows and one thumbnail per face for the timeline figure."""

    def __init__(self, video: str) -> None:
        super().__init__(video)
        self._thumbs = Thumbnails()
        self.thumbnails = self._thumbs.pictures

    def update(self, frame, faces) -> None:
        super().update(frame, faces)
        self._thumbs.update(frame, faces)


def thumbnail(rgb: np.ndarray, f) -> np.ndarray | None:
    side = 1.4 * max(f.w, f.h)
    cx, cy = f.x + f.w / 2, f.y + f.h / 2
    h, w = rgb.shape[:2]
    x0, y0 = int(max(0, cx - side / 2)), int(max(0, cy - side / 2))
    x1, y1 = int(min(w, cx + side / 2)), int(min(h, cy + side / 2))
    if x1 <= x0 or y1 <= y0:
        return None
    return cv2.resize(rgb[y0:y1, x0:x1], (96, 96), interpolation=cv2.INTER_AREA)


def open_sinks(outputs: Outputs, parts: PartFiles, stack: ExitStack, info: VideoInfo, video_name: str,
               times: StageTimes, threads: int = 0, step: float = 0.0) -> list:
    """The sinks the outputs need; ``step``: seconds between analysed frames."""
    sinks: list = []
    if outputs.vtt or outputs.srt or outputs.eaf:
        from fervid.outputs.segments import SegmentSink

        sinks.append(SegmentSink(step))
    if outputs.html:
        from fervid.outputs.report import ReportSink

        sinks.append(ReportSink(info.duration, step))
    if outputs.timeline:
        sinks.append(TimelineSink(stack.enter_context(parts.open_text(outputs.timeline)), video_name, times))
    if outputs.plot:
        sinks.append(PlotSink(video_name))
    if outputs.video:
        sinks.append(VideoSink(parts[outputs.video], info, times, threads, outputs.encoding))
    return sinks


class LiveRowsSink(Sink):
    """A live source's rows, written as they are made to the timeline CSV (with ``wall_time``)
    and as JSON lines, flushed with every frame's rows so that ``tail -f`` shows them. Rows go out
    whole, one write a frame: a kill leaves no torn last line."""

    def __init__(self, video: str, csv_fh=None, jsonl_fh=None):
        import csv
        import io

        from fervid.outputs.rows import TIMELINE_COLUMNS

        self.video, self.csv_fh, self.jsonl_fh = video, csv_fh, jsonl_fh
        self.columns = (*TIMELINE_COLUMNS, "wall_time")
        self._buf = io.StringIO()
        self._csv = csv.writer(self._buf, lineterminator="\n")
        if csv_fh is not None:
            self._out(csv_fh, [self._text(self.columns)])

    def _text(self, values) -> str:
        self._buf.seek(0)
        self._buf.truncate()
        self._csv.writerow(values)
        return self._buf.getvalue()

    @staticmethod
    def _out(fh, lines: list[str]) -> None:
        if lines:
            fh.write("".join(lines))
            fh.flush()

    def update(self, frame, faces) -> None:
        import datetime
        import json

        from fervid.outputs.rows import csv_fields, timeline_row
        from fervid.outputs.writers import finite

        if not faces:
            return
        wall = datetime.datetime.fromtimestamp(frame.wall or 0, datetime.timezone.utc).isoformat(timespec="milliseconds")
        rows = [timeline_row(self.video, f) for f in faces]
        if self.csv_fh is not None:
            self._out(self.csv_fh, [self._text([*csv_fields(row), wall]) for row in rows])
        if self.jsonl_fh is not None:
            self._out(self.jsonl_fh, [json.dumps(finite(dict(zip(self.columns, (*row, wall)))), allow_nan=False) + "\n"
                                      for row in rows])


class ShowSink(Sink):
    """A window with the annotated picture, as it is analysed (``--show``); closing it, or ``q``,
    ends the run as Ctrl-C does."""

    TITLE = "fervid"

    def __init__(self) -> None:
        import os

        if os.name == "posix" and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
            from fervid.errors import OutputError

            raise OutputError("--show needs a display (none here: DISPLAY is not set)")
        try:
            cv2.namedWindow(self.TITLE, cv2.WINDOW_NORMAL)
        except cv2.error as err:
            from fervid.errors import OutputError

            raise OutputError(f"--show: OpenCV cannot open a window here ({str(err).strip().splitlines()[-1]})") from None
        self.last: list = []
        self.shown = 0

    def update(self, frame, faces) -> None:
        if faces is not None:
            self.last = faces
        if frame.image.size == 0:
            return
        image = frame.image.copy()
        draw_faces(I420Canvas(image, frame.width, frame.height), self.last)
        bgr = cv2.cvtColor(image, cv2.COLOR_YUV2BGR_I420)[: frame.height, : frame.width]
        cv2.imshow(self.TITLE, bgr)
        self.shown += 1
        key = cv2.waitKey(1) & 0xFF
        if key == ord("q") or cv2.getWindowProperty(self.TITLE, cv2.WND_PROP_VISIBLE) < 1:
            raise KeyboardInterrupt

    def close(self) -> None:
        cv2.destroyAllWindows()

    abort = close
