"""Encode annotated frames to H.264 with each frame's own timestamp, and the input's audio kept.

In-process, through PyAV (FFmpeg's libraries with libx264 and AAC): every frame gets its exact
time on a 1/90000 s clock, so variable-rate video keeps its rhythm, and the input's audio
streams are copied packet by packet (re-encoded to AAC where the container does not take their
codec), interleaved with the video as it is written.
"""

from __future__ import annotations

import queue
import threading
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING

from fervid.errors import VideoError
from fervid.video.probe import MATRICES, PRIMARIES, TRANSFERS, VideoInfo, open_container

if TYPE_CHECKING:  # the CLI reads this module's presets; numpy would double its start-up
    import numpy as np

# Audio codecs each container takes as they are; anything else is re-encoded to AAC.
_COPY_OK = {
    ".mp4": {"aac", "mp3", "ac3", "eac3", "opus", "flac", "alac"},
    ".m4v": {"aac", "mp3", "ac3", "eac3"},
    ".mov": {"aac", "mp3", "ac3", "eac3", "alac", "pcm_s16le", "pcm_s24le"},
    ".mkv": None,  # Matroska takes any codec
}
OUTPUT_SUFFIXES = tuple(_COPY_OK)
CODEC = "libx264"
PRESETS = ("ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow")


@dataclass(frozen=True)
class Encoding:
    """x264's quality/speed trade. ``superfast`` keeps annotating near decoding speed at a modest
    size; on the 1080p crowd clip ``ultrafast`` annotates ~20% faster for ~1.7x the bytes."""

    crf: int = 23  # 0 (lossless) .. 51; +6 about halves the size
    preset: str = "superfast"

    def __post_init__(self):
        if self.preset not in PRESETS:
            raise ValueError(f"unknown x264 preset {self.preset!r} (expected one of {', '.join(PRESETS)})")
        if not 0 <= self.crf <= 51:
            raise ValueError(f"crf {self.crf} out of range 0..51")

    def as_dict(self) -> dict:
        return {"codec": CODEC, **self.__dict__}


CLOCK = Fraction(1, 90000)
_LAYOUTS = {1: "mono", 2: "stereo", 3: "2.1", 4: "quad", 5: "5.0", 6: "5.1", 7: "6.1", 8: "7.1"}
_AUDIO_LEAD = 0.5  # seconds of audio muxed ahead of the video written so far


class Encoder:
    """``write(image, time_s)`` per frame, then ``close()``; raises :class:`VideoError` if encoding fails."""

    def __init__(self, out: str | Path, info: VideoInfo, encoding: Encoding = Encoding(), threads: int = 0,
                 pix_fmt: str = "bgr24", live: bool = False):
        """``pix_fmt``: what ``write`` gets, BGR ``[h,w,3]`` or I420 ``[H*3/2, W]`` with W, H rounded up to even."""
        self.out, self.info, self.pix_fmt = Path(out), info, pix_fmt
        suffix = self.out.suffix.lower()
        if suffix not in _COPY_OK:
            raise VideoError(f"{out}: unsupported output container (use one of {', '.join(OUTPUT_SUFFIXES)})")
        self.encoding, self.threads, self.live = encoding, threads, live
        self.frames = 0
        self._thread: threading.Thread | None = None
        self._failed: BaseException | None = None
        self._output = self._source = None

    def _open(self) -> None:
        """Open the output (in the writing thread, where PyAV is imported) and the audio to copy."""

        info, suffix = self.info, self.out.suffix.lower()
        fmt = {".mkv": "matroska", ".mov": "mov"}.get(suffix, "mp4")
        # A live recording must play up to its last second even if the run is killed: Matroska
        # as it streams, MP4 and MOV fragmented (an index written last would never be written).
        flags = "+frag_keyframe+empty_moov+default_base_moof" if self.live else "+faststart"
        options = {"movflags": flags} if fmt != "matroska" else {}
        if self.live:  # to the file within a second, not when a buffer fills or the run ends
            options["flush_packets"] = "1"
            if fmt == "matroska":
                options["cluster_time_limit"] = "1000"  # ms: Matroska writes a cluster when it closes
            else:
                options["frag_duration"] = "1000000"  # us
        self._output = open_container(self.out, mode="w", format=fmt, container_options=options)
        video = self._output.add_stream(CODEC, options={
            "preset": self.encoding.preset, "crf": str(self.encoding.crf),
            "x264-params": "rc-lookahead=5:bframes=1:sync-lookahead=0"})
        video.width, video.height = (info.width + 1) // 2 * 2, (info.height + 1) // 2 * 2  # x264 needs even sides
        video.pix_fmt = "yuv420p"
        video.codec_context.sample_aspect_ratio = Fraction(1)  # frames come square-pixelled (see the decoder)
        video.time_base = video.codec_context.time_base = CLOCK
        video.codec_context.thread_count = self.threads or 2
        video.codec_context.thread_type = "FRAME"  # PyAV's default, slices, costs compression
        if info.fps:  # x264's rate control counts in frames per second, not the clock's ticks
            video.codec_context.framerate = info.fps
        # The source's colour description, for its planes pass through unchanged: untagged, an HDR
        # phone video's copy (HLG, BT.2020) would look washed out, and an SD video in BT.709 be
        # shown with BT.601's colours. BGR frames are converted here with BT.601, and left untagged.
        if self.pix_fmt == "yuv420p":
            for attr, ids, name in zip(("colorspace", "color_primaries", "color_trc"),
                                       (MATRICES, PRIMARIES, TRANSFERS), info.colour):
                if name in ids:
                    setattr(video.codec_context, attr, ids[name])
        self._video = video
        self._audio: dict[int, tuple] = {}  # input stream index -> (input stream, output stream, copied)
        self._aac: list = []  # output streams encoded here, flushed at the end
        codecs = () if self.live else info.audio_codecs or ((info.audio_codec,) if info.audio_codec else ())
        if codecs:
            self._source = open_container(info.path)
            ok = _COPY_OK[suffix]
            # Every audio stream is kept (a recorder's second microphone, a translation), copied
            # where the container takes its codec, else made AAC.
            for stream in self._source.streams.audio:
                copy = ok is None or stream.codec_context.name in ok
                out = (self._output.add_stream_from_template(stream) if copy else
                       self._output.add_stream("aac", rate=stream.rate or 48000,
                                               # a layout by its channel count: AAC refuses "1 channels"
                                               layout=_LAYOUTS.get(stream.layout.nb_channels, stream.layout.name),
                                               format="fltp"))
                self._audio[stream.index] = (stream, out, copy)
                if not copy:
                    self._aac.append(out)
            self._packets = self._source.demux(*(s for s, _, _ in self._audio.values()))
            self._start_ticks = {i: round(info.start_time / s.time_base) if s.time_base else 0
                                 for i, (s, _, _) in self._audio.items()}
            self._pending = None

    def _mux_audio(self, until: float | None) -> None:
        """Audio packets up to ``until`` seconds (all that is left when None), on the output's clock
        (times from the file's start, as the video's are)."""
        while self._audio:
            packet = self._pending or next(self._packets, None)
            self._pending = None
            if packet is None:
                self._audio = {}
                return
            if packet.size == 0 or (packet.pts is None and packet.dts is None):
                continue  # the demuxer's end-of-stream markers
            stream, out, copy = self._audio[packet.stream.index]
            time = float((packet.pts if packet.pts is not None else packet.dts) * packet.time_base) - self.info.start_time
            if until is not None and time > until:
                self._pending = packet
                return
            if copy:
                shift = self._start_ticks[stream.index]
                packet.pts = None if packet.pts is None else packet.pts - shift
                packet.dts = None if packet.dts is None else packet.dts - shift
                packet.stream = out
                self._output.mux(packet)
            else:
                for frame in packet.decode():
                    frame.pts = None  # the encoder numbers samples itself, from the first
                    self._output.mux(out.encode(frame))

    def _encode(self, image: np.ndarray, time_s: float) -> None:
        import av

        if self.pix_fmt == "yuv420p":
            frame = av.VideoFrame.from_ndarray(image, format="yuv420p")
        else:
            h, w = image.shape[:2]
            if h % 2 or w % 2:  # x264 needs even sides: a black edge
                import numpy as np

                image = np.pad(image, ((0, h % 2), (0, w % 2), (0, 0)))
            frame = av.VideoFrame.from_ndarray(image, format="bgr24").reformat(format="yuv420p")
        frame.pts, frame.time_base = round(time_s / CLOCK), CLOCK
        self._output.mux(self._video.encode(frame))
        self._mux_audio(time_s + _AUDIO_LEAD)

    def _run(self) -> None:
        ended = False
        try:
            self._open()
            while True:
                item = self._queue.get()
                if item is None:
                    break
                if self._failed is None:
                    self._encode(*item)
            ended = True
            if self._failed is None:
                self._output.mux(self._video.encode())
                self._mux_audio(None)
                for out in self._aac:
                    self._output.mux(out.encode(None))
                self._output.close()
        except BaseException as err:  # noqa: BLE001 - handed to write()/close(), in the caller's thread
            self._failed = err
            while not ended and self._queue.get() is not None:  # keep draining: write() must never block
                pass
        finally:
            self._close_files()

    def _close_files(self) -> None:
        for f in (self._source, self._output):
            try:
                if f is not None:
                    f.close()
            except Exception:  # noqa: BLE001 - closing after a failure
                pass

    def write(self, image: np.ndarray, time_s: float) -> None:
        """Queue a frame; a thread encodes it, so encoding overlaps the next frames' analysis."""
        if self._thread is None:
            self._queue: queue.Queue = queue.Queue(maxsize=4)
            self._thread = threading.Thread(target=self._run, name="fervid-encode", daemon=True)
            self._thread.start()
        if self._failed is not None:
            raise VideoError(f"{self.out}: the encoder stopped: {self._why()}")
        self._queue.put((image, time_s))
        self.frames += 1

    def close(self) -> None:
        if self._thread is None:
            raise VideoError(f"{self.out}: no frames to encode")
        self._queue.put(None)
        self._thread.join()
        if self._failed is not None:
            raise VideoError(f"{self.out}: encoding failed: {self._why()}")

    def abort(self) -> None:
        if self._thread is None:
            return
        self._failed = self._failed or VideoError("aborted")
        self._queue.put(None)
        self._thread.join(timeout=5)

    def _why(self) -> str:
        err = self._failed
        if getattr(err, "errno", None) == 28 or "No space left" in str(err):
            return "no space left on the device"
        return f"{type(err).__name__}: {err}"
