"""Process one video into the outputs asked for; every output appears under its final name only when complete."""

from __future__ import annotations

import os
import time
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from fervid import __version__
from fervid.classify import Classifier
from fervid.detect import FaceDetector
from fervid.draw import draw_faces
from fervid.errors import OutputError, VideoError
from fervid.labels import EMOTIONS
from fervid.pipeline import Analyzer, Settings
from fervid.video.decode import open_video
from fervid.video.encode import Encoder
from fervid.writers import SummaryBuilder, TimelineWriter, summary_rows, write_sidecar, write_summary


@dataclass(frozen=True)
class Outputs:
    """Where each product of one input goes; None means not wanted."""

    video: Path | None = None
    timeline: Path | None = None
    summary: Path | None = None
    plot: Path | None = None
    sidecar: Path | None = None  # written last: it marks the set as complete

    def paths(self) -> list[Path]:
        return [p for p in (self.video, self.timeline, self.summary, self.plot, self.sidecar) if p is not None]

    def complete(self) -> bool:
        """All written by an earlier run (a plot is not made for a video without faces)."""
        need = [p for p in self.paths() if p != self.plot]
        return bool(need) and all(p.is_file() for p in need)


@dataclass
class FileResult:
    input: str
    frames: int = 0
    rows: int = 0
    faces: int = 0
    seconds: float = 0.0
    warning: str | None = None
    summary: list[dict] = field(default_factory=list)
    stage_seconds: dict[str, float] = field(default_factory=dict)


def fps_to_every(source_fps: float, fps: float | None, every: int) -> int:
    """``--fps F`` as a frame step on this video (never below one)."""
    if fps and source_fps:
        return max(1, round(source_fps / fps))
    return max(1, every)


def process_file(src: str | Path, outputs: Outputs, settings: Settings, sample_fps: float | None = None,
                 progress: bool = True, classifier: Classifier | None = None) -> FileResult:
    src = Path(src)
    started = time.time()
    _check_outputs(src, outputs)
    info, _ = open_video(src)
    every = fps_to_every(float(info.fps), sample_fps, settings.every)
    # Timeline only: ffmpeg drops the unsampled frames before the pipe. Annotating needs them all.
    from fervid.video.decode import Decoder

    decoder = Decoder(info, pix_fmt="bgr24" if outputs.video else "yuv420p", every=1 if outputs.video else every)
    analyzer_every = every if outputs.video else 1
    result = FileResult(str(src))
    temps = {p: _part_name(p, str(os.getpid())) for p in outputs.paths()}
    for p in outputs.paths():
        _remove_stale_parts(p)
    analyzer = Analyzer(settings, classifier=classifier, detector=FaceDetector(settings.detector))
    encoder = None
    try:
        with ExitStack() as stack:
            timeline = None
            if outputs.timeline:
                fh = stack.enter_context(_open_text(temps[outputs.timeline]))
                timeline = TimelineWriter(fh, src.name)
            if outputs.video:
                encoder = Encoder(temps[outputs.video], info, threads=settings.threads)
            summary = SummaryBuilder()
            plot_data = PlotData() if outputs.plot else None
            bar = stack.enter_context(tqdm(total=info.estimated_frames, unit="frame", desc=src.name[:30],
                                           disable=not progress, leave=False, dynamic_ncols=True))
            last: list = []
            last_time = None
            for frame, faces in analyzer.run(decoder, float(info.fps) / decoder.every, analyzer_every):
                last_time = frame.time_s
                if faces is not None:
                    last = faces
                    summary.add_frame(frame.time_s, faces)
                    if timeline:
                        with analyzer.times.time("write"):
                            timeline.write(faces)
                    if plot_data:
                        plot_data.add(frame, faces)
                    result.rows += len(faces)
                if encoder:
                    with analyzer.times.time("draw"):
                        image = draw_faces(frame.bgr(), last)
                    with analyzer.times.time("encode"):
                        encoder.write(image, frame.time_s)
                bar.update(1 if not decoder.every > 1 else decoder.every)
            report = decoder.report
            result.frames = report.frames
            if result.frames == 0:
                why = report.cause if report.damaged else "the video stream holds no decodable frame"
                raise VideoError(f"{src}: no frame could be decoded ({why})")
            if report.damaged:
                result.warning = (f"{src}: {report.summary(last_time, info.duration)}; "
                                  "the outputs cover what was decoded")
            if encoder:
                with analyzer.times.time("encode"):
                    encoder.close()
                encoder = None
            analyzer.times.add("decode (waiting)", decoder.wait_s)
            result.stage_seconds = analyzer.times.as_dict()
            step = decoder.every / float(info.fps) if info.fps else 0.0
            result.summary = summary_rows(src.name, summary.finish(step))
            result.faces = len(result.summary)
        if outputs.summary:
            with _open_text(temps[outputs.summary]) as fh:
                write_summary(fh, result.summary)
        if plot_data:
            if result.faces:
                from fervid.plots import timeline_png

                timeline_png(temps[outputs.plot], plot_data.frame(src.name), plot_data.thumbnails, title=src.name)
            else:
                temps.pop(outputs.plot)
                result.warning = result.warning or f"{src}: no faces found, so no plot was made"
        result.seconds = time.time() - started
        if outputs.sidecar:
            with _open_text(temps[outputs.sidecar]) as fh:
                write_sidecar(fh, _provenance(src, info, settings, analyzer, result, every, outputs))
        for final in outputs.paths():  # the sidecar last: its presence says the set is complete
            if final in temps:
                os.replace(temps[final], final)
    except BaseException:
        if encoder:
            encoder.abort()
        for tmp in temps.values():
            tmp.unlink(missing_ok=True)
        raise
    finally:
        analyzer.close()
    return result


class PlotData:
    """Rows and one thumbnail per face (its most confident detection) for the timeline figure."""

    def __init__(self) -> None:
        self.rows: list[tuple] = []
        self.thumbnails: dict[int, np.ndarray] = {}
        self._best: dict[int, float] = {}

    def add(self, frame, faces) -> None:
        for f in faces:
            self.rows.append((f.frame, f.time_s, f.face_id, *f.probs))
            if f.det_score == f.det_score and f.det_score > self._best.get(f.face_id, -1.0) + 0.02:
                self._best[f.face_id] = f.det_score
                side = 1.4 * max(f.w, f.h)
                cx, cy = f.x + f.w / 2, f.y + f.h / 2
                rgb = frame.rgb()
                h, w = rgb.shape[:2]
                x0, y0 = int(max(0, cx - side / 2)), int(max(0, cy - side / 2))
                x1, y1 = int(min(w, cx + side / 2)), int(min(h, cy + side / 2))
                if x1 > x0 and y1 > y0:
                    self.thumbnails[f.face_id] = cv2.resize(rgb[y0:y1, x0:x1], (96, 96), interpolation=cv2.INTER_AREA)

    def frame(self, video: str):
        import pandas as pd

        return pd.DataFrame(self.rows, columns=["frame", "time_s", "face_id", *EMOTIONS]).assign(video=video)


def _provenance(src, info, settings, analyzer, result, every, outputs) -> dict:
    model = analyzer.classifier.info
    keep = ("architecture", "parameters", "public_test_accuracy", "private_test_accuracy", "trained_on")
    return {
        "fervid_version": __version__,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "input": {**info.as_dict(), "path": str(src)},
        "model": {"name": model.name, "sha256": model.sha256, **{k: model.metadata[k] for k in keep if k in model.metadata}},
        "detector": {**settings.detector.as_dict(), "model_file": analyzer.detector.path.name},
        "settings": {**settings.as_dict(), "every": every},
        "smoothing": {"method": "exponential moving average", "tau_s": settings.smooth} if settings.smooth > 0 else None,
        "frames_analysed": result.frames if every == 1 else None,
        "frames_decoded": result.frames,
        "rows": result.rows,
        "faces": result.faces,
        "complete": result.warning is None,
        "warning": result.warning,
        "seconds": round(result.seconds, 2),
        "stage_seconds": result.stage_seconds,
        "outputs": {k: str(v) for k, v in outputs.__dict__.items() if v is not None},
    }


def _open_text(path: Path):
    try:
        return open(path, "w", encoding="utf-8", newline="")
    except OSError as err:
        raise OutputError(f"{path.parent}: cannot write output there ({err.strerror})") from None


def _check_outputs(src: Path, outputs: Outputs) -> None:
    for p in outputs.paths():
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


def _part_name(final: Path, tag: str) -> Path:
    """Hidden, and marked as a part, but with the final suffix so that writers know the format."""
    return final.with_name(f".{final.stem}.part{tag}{final.suffix}")


def _remove_stale_parts(final: Path) -> None:
    """Parts left by a killed run (kill -9, power loss) of the same output."""
    for stale in final.parent.glob(_part_name(final, "*").name):
        try:
            stale.unlink()
        except OSError:
            pass
