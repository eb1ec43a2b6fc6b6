"""Process one video into the outputs asked for: the controller of decode -> analyse -> sinks -> atomic outputs."""

from __future__ import annotations

import dataclasses
import signal
import threading
import time
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from tqdm import tqdm

from fervid import __version__
from fervid.errors import OutputError, VideoError
from fervid.outputs.files import Outputs, PartFiles
from fervid.outputs.sinks import PlotSink, SummarySink, open_sinks
from fervid.analysis.pipeline import Analyzer, Models
from fervid.settings import Settings
from fervid.storage import Naming
from fervid.video.decode import Decoder
from fervid.video.probe import VideoInfo, probe
from fervid.outputs.writers import write_sidecar, write_summary


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
    written: list[Path] = field(default_factory=list)


def fps_to_every(source_fps: float, fps: float | None, every: int) -> int:
    """``--fps F`` as a frame step on this video (never below one)."""
    if fps and source_fps:
        return max(1, round(source_fps / fps))
    return max(1, every)


@dataclass
class OpenedInput:
    """A probed input and its decoder, ready for :func:`process_file` (perhaps already decoding)."""

    info: VideoInfo
    every: int  # analyse one frame in this many
    decoder: Decoder

    def close(self) -> None:
        self.decoder.close()


def open_input(src: str | Path, outputs: Outputs, settings: Settings, start: bool = False) -> OpenedInput:
    """Check, probe and prepare the decoding of one input; ``start`` starts decoding at once.

    A batch opens the next file while the current one is analysed: probing and opening the file
    cost about 40 ms a file during which the cores would otherwise wait."""
    src = Path(src)
    outputs.check(src)
    info = probe(src)
    every = fps_to_every(float(info.fps), settings.fps, settings.every)
    # Timeline only: the decoder drops the unsampled frames before copying them. Annotating needs them all.
    decoder = Decoder(info, pix_fmt="yuv420p", every=1 if outputs.video else every)
    if start:
        decoder.start()
    return OpenedInput(info, every, decoder)


def process_file(src: str | Path, outputs: Outputs, settings: Settings, progress: bool = True,
                 models: Models | None = None, opened: OpenedInput | None = None, sinks: Sequence = (),
                 naming: Naming = Naming(), kept: dict[str, str] | None = None) -> FileResult:
    """Analyse one input into ``outputs`` and any extra ``sinks`` (which the caller reads afterwards).

    ``naming`` names the files in the sidecar, page and ELAN document (a staged run names them by
    their store); ``kept``: what earlier runs wrote here, as :meth:`Outputs.kept` gives it (a
    staged run asks the store)."""
    src = Path(src)
    started = time.time()
    opened = opened or open_input(src, outputs, settings)
    info, every, decoder = opened.info, opened.every, opened.decoder
    try:
        analyzer = Analyzer(settings, models)
    except BaseException:
        decoder.close()
        raise
    result = FileResult(str(src))
    kept = outputs.kept() if kept is None else kept
    try:
        parts = PartFiles(outputs)
    except BaseException:
        decoder.close()
        analyzer.close()
        raise
    extra, sinks = list(sinks), []
    try:
        with ExitStack() as stack:
            fps = float(info.fps)
            summary = SummarySink(src.name, decoder.every / fps if fps else 0.0, every / fps if fps else 0.0)
            sinks = [summary, *open_sinks(outputs, parts, stack, info, src.name, analyzer.times, settings.threads,
                                          every / fps if fps else 0.0), *extra]
            bar = stack.enter_context(tqdm(total=info.estimated_frames, unit="frame", desc=src.name[:30],
                                           disable=not progress, leave=False, dynamic_ncols=True))
            last_time = None
            for frame, faces in analyzer.run(decoder, float(info.fps) / decoder.every, every // decoder.every,
                                             keep_pixels=bool(outputs.video or outputs.plot or outputs.html)):
                last_time = frame.time_s
                if faces is not None:
                    result.rows += len(faces)
                for sink in sinks:
                    sink.update(frame, faces)
                bar.update(decoder.every)
            result.frames = decoder.report.frames
            result.warning = decoding_warning(src, decoder.report, last_time, info.duration)
            for sink in sinks:
                sink.close()
            analyzer.times.add("decode (waiting)", decoder.wait_s)
            result.stage_seconds = analyzer.times.as_dict()
            result.summary = summary.rows()
            result.faces = len(result.summary)
        if outputs.summary:
            with parts.open_text(outputs.summary) as fh:
                write_summary(fh, result.summary)
        plot = next((s for s in sinks if isinstance(s, PlotSink)), None)
        if plot and result.faces:
            from fervid.outputs.plots import timeline_png

            timeline_png(parts[outputs.plot], plot.frame(), plot.thumbnails, title=src.name,
                         dominant_emotions={r["face_id"]: r["dominant_emotion"] for r in result.summary})
        elif plot:
            parts.drop(outputs.plot)
            result.warning = result.warning or f"{src}: no faces found, so no plot was made"
        result.seconds = time.time() - started
        record = _provenance(src, info, settings, analyzer, result, every, outputs, {})
        record["input"]["path"] = naming.name(src)
        _write_products(src, outputs, parts, sinks, result, record, naming)
        if outputs.sidecar:
            made = {k: p for k, p in outputs.named().items() if p in parts.parts}
            record["outputs"] = {**{k: v for k, v in kept.items() if k not in made},
                                 **{k: naming.name(p) for k, p in made.items()}}
            with parts.open_text(outputs.sidecar) as fh:
                write_sidecar(fh, record)
        parts.commit()  # the sidecar last: its presence says the set is complete
        result.written = [p for p in outputs.paths() if p in parts.parts]
    except OSError as err:  # a full disk, a folder gone: the outputs' problem, not the video's
        _abandon(sinks, parts)
        where = err.filename or (outputs.paths()[0].parent if outputs.paths() else src)
        raise OutputError(f"{src}: cannot write the outputs ({err.strerror or err}: {where})") from None
    except BaseException:
        _abandon(sinks, parts)
        raise
    finally:
        decoder.close()
        analyzer.close()
    return result


def _abandon(sinks: list, parts: PartFiles) -> None:
    """Stop the sinks and remove the part files, these even if stopping a sink is interrupted
    (closing an encoder takes a moment, in which a second signal may come)."""
    try:
        for sink in sinks:
            sink.abort()
    finally:
        parts.discard()


def _write_products(src: Path, outputs: Outputs, parts: PartFiles, sinks: list, result: FileResult,
                    record: dict, naming: Naming) -> None:
    """The outputs made from what the sinks gathered: subtitles, the ELAN document, the page."""
    from fervid.outputs import writers
    from fervid.outputs.segments import SegmentSink

    segments = next((s.segments for s in sinks if isinstance(s, SegmentSink)), [])
    for kind, write in (("vtt", writers.write_vtt), ("srt", writers.write_srt)):
        if getattr(outputs, kind):
            with parts.open_text(getattr(outputs, kind)) as fh:
                write(fh, segments)
    media = outputs.video or src
    if outputs.eaf:
        mime = {".mkv": "video/x-matroska", ".mov": "video/quicktime", ".webm": "video/webm"}.get(
            media.suffix.lower(), "video/mp4")
        relative = naming.relative(media, outputs.eaf.parent)
        relative = relative if relative.startswith("../") or "://" in relative else "./" + relative
        with parts.open_text(outputs.eaf) as fh:
            writers.write_eaf(fh, segments, naming.uri(media), relative, mime)
    if outputs.html:
        from fervid.outputs.report import ReportSink, page_data, write_page

        report = next(s for s in sinks if isinstance(s, ReportSink))
        data = page_data(outputs.html, media, outputs.video is not None, result.summary, report, record,
                         src=naming.relative(media, outputs.html.parent))
        with parts.open_text(outputs.html) as fh:
            write_page(fh, data)


def decoding_warning(src, report, last_time: float | None, duration: float | None) -> str | None:
    """How far a damaged video decoded (None when whole); nothing decoded at all is an error."""
    if report.frames == 0:
        why = report.cause if report.damaged else "the video stream holds no decodable frame"
        raise VideoError(f"{src}: no frame could be decoded ({why})")
    if report.damaged:
        return f"{src}: {report.summary(last_time, duration)}; the results cover what was decoded"
    if duration and last_time is not None and duration - last_time > max(SHORT_BY, 0.1 * duration):
        return (f"{src}: the video ends at {last_time:.1f} s, well before the {duration:.1f} s the file declares; "
                "the results cover what was decoded")
    return None


# Decoding that ends this many seconds (and a tenth) before the file's declared length is reported:
# audio that runs on a few seconds past the picture is common, a file cut short or lying is not.
SHORT_BY = 5.0


def _provenance(src, info, settings, analyzer, result, every, outputs, written: dict[str, str]) -> dict:
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
        "dominant_emotions": {str(r["face_id"]): r["dominant_emotion"] for r in result.summary},
        "complete": result.warning is None,
        "warning": result.warning,
        "seconds": round(result.seconds, 2),
        "stage_seconds": result.stage_seconds,
        "detector_passes": analyzer.detector.passes,
        "outputs": written,
        "video_encoding": outputs.encoding.as_dict() if outputs.video else None,
    }


@dataclass
class LiveResult(FileResult):
    received: int = 0
    dropped: int = 0
    ended: str = ""  # "the stream ended", "--duration", "interrupted"


def process_live(source: str, outputs: Outputs, settings: Settings, jsonl=None, fmt: str | None = None,
                 duration: float | None = None, progress: bool = True, reconnect: int = 0,
                 show: bool = False) -> LiveResult:
    """Read a live source until it ends, ``duration`` seconds pass, or Ctrl-C (then the outputs
    are completed, not removed). Rows go straight to their final files as they are made, so that
    they can be followed; the summary and the sidecar are written at the end."""
    from fervid.outputs.sinks import LiveRowsSink
    from fervid.video.live import LiveDecoder

    started = time.time()
    # Frames between key frames wait for the next one (their boxes are interpolated): key frames
    # stay 0.2 s apart while faces hold still, or rows would come up to 0.4 s late.
    settings = dataclasses.replace(settings, steady=1)
    decoder = LiveDecoder(source, fmt, reconnect=reconnect)
    info = decoder.info
    result = LiveResult(source)
    try:
        analyzer = Analyzer(settings)
    except BaseException:
        decoder.close()
        raise
    analyzer.reader.batch = 1  # read each stretch's faces as it comes: latency before throughput
    fps = float(info.fps) or 25.0
    name = Path(source).name if source not in ("-",) and "://" not in source else source
    summary = SummarySink(name, 1 / fps, 1 / fps)
    csv_fh = open(outputs.timeline, "w", encoding="utf-8", newline="") if outputs.timeline else None
    sinks = [summary, LiveRowsSink(name, csv_fh, jsonl)]
    if show:  # before the recording, which draws on the frames themselves
        from fervid.outputs.sinks import ShowSink

        try:
            sinks.append(ShowSink())
        except BaseException:
            decoder.close()
            analyzer.close()
            if csv_fh is not None:
                csv_fh.close()
            raise
    if outputs.video:  # last: it draws on the frames
        from fervid.outputs.sinks import VideoSink

        sinks.append(VideoSink(outputs.video, info, analyzer.times, settings.threads, outputs.encoding, live=True))
    frames = analyzer.run(decoder, fps, keep_pixels=outputs.video is not None or show)
    result.ended = "the stream ended"
    # Ctrl-C, SIGTERM and SIGHUP end the stream, not the run: the frames stop, the outputs are
    # completed. (A KeyboardInterrupt could land in any thread's wait and be taken for the end.)
    interrupted = threading.Event()

    def stop(signum, frame) -> None:
        interrupted.set()
        decoder.end_now()

    handlers = {}
    if threading.current_thread() is threading.main_thread():
        handlers = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    bar = tqdm(unit="frame", desc=name[:30], disable=not progress, leave=False, dynamic_ncols=True)
    try:
        for frame, faces in frames:
            if faces is not None:
                result.frames += 1
                result.rows += len(faces)
            for sink in sinks:
                sink.update(frame, faces)
            bar.update(1)
            if interrupted.is_set():
                break
            if duration is not None and time.time() - started >= duration:
                result.ended = "--duration"
                break
    except KeyboardInterrupt:  # the window's q (--show)
        result.ended = "interrupted"
    except BaseException:
        for sink in sinks:
            sink.abort()
        raise
    finally:
        for sig, handler in handlers.items():
            signal.signal(sig, handler)
        if interrupted.is_set():
            result.ended = "interrupted"
        frames.close()
        decoder.close()
        analyzer.close()
        bar.close()
        if csv_fh is not None:
            csv_fh.close()
    result.received, result.dropped = decoder.received, decoder.dropped
    for sink in sinks:
        sink.close()  # the recording's encoder ends its file here
    result.summary = summary.rows()
    result.faces = len(result.summary)
    result.seconds = time.time() - started
    if outputs.summary:
        with open(outputs.summary, "w", encoding="utf-8", newline="") as fh:
            write_summary(fh, result.summary)
    if outputs.sidecar:
        record = _provenance(Path(name), info, settings, analyzer, result, 1, outputs,
                             {k: str(p) for k, p in outputs.named().items()})
        record["input"]["live"] = True
        record.update({"frames_received": result.received, "frames_analysed": result.frames,
                       "frames_dropped": result.dropped, "ended": result.ended, "gaps": decoder.gaps,
                       "complete": decoder.report.returncode == 0, "warning": None})
        record["input"]["path"] = source
        with open(outputs.sidecar, "w", encoding="utf-8") as fh:
            write_sidecar(fh, record)
    result.written = [p for p in outputs.paths()]
    return result
