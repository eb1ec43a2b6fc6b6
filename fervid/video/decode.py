"""Decode upright frames and their presentation times in-process, with FFmpeg's libraries (PyAV).

Frames and times come straight from the decoder: no second process, no pipe to copy every frame
through, no log to parse for timestamps (the 480p clip's frames cost 0.6 CPU-s instead of 0.9
through the ffmpeg program). Times are the stream's own, counted from the file's start as players
count them, so they are right for variable frame rates. Frames are read one at a time into fresh
buffers: memory stays flat whatever the length.
"""

from __future__ import annotations

import math
import os
import threading
import time
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Iterator

import cv2
import numpy as np

from fervid.errors import VideoError
from fervid._handoff import BytesQueue
from fervid.video.probe import VideoInfo, open_container

# Plain words for the decoder's complaints: the notes of DecodeReport.note and the text of
# FFmpeg's errors, which carry its last log line ("Error splitting the input into NAL units").
_PLAIN = (("partial file", "the file ends early, probably truncated"),
          ("invalid nal", "corrupt data in the video stream"),
          ("error splitting", "corrupt data in the video stream"),
          ("corrupt", "corrupt frames"),
          ("error while decoding", "corrupt frames"), ("invalid data", "corrupt data in the video stream"),
          ("end of file", "the file ends early, probably truncated"))
CHANNELS = {"gray": 1, "bgr24": 3, "yuv420p": 1.5}
_I420 = ("yuv420p", "yuvj420p")  # the same planes; "j" only says full range, which is kept as it is
_ROTATE = {90: cv2.ROTATE_90_COUNTERCLOCKWISE, 180: cv2.ROTATE_180, 270: cv2.ROTATE_90_CLOCKWISE}
_END = object()


@dataclass
class Frame:
    """One decoded frame: its index in the stream, its presentation time, and the pixels (upright).

    ``image`` is in the decoder's pixel format: BGR ``[h,w,3]``, grey ``[h,w]``, or I420 planes
    ``[H*3/2, W]`` (W, H rounded up to even); :meth:`gray` and :meth:`rgb` convert.
    """

    index: int
    time_s: float
    image: np.ndarray
    width: int = 0
    height: int = 0
    wall: float | None = None  # a live source's frames: when it arrived (seconds since the epoch)
    cut: bool = False  # the first frame after a live stream was reopened: faces start afresh

    def gray(self) -> np.ndarray:
        if self.image.ndim == 2 and self.image.shape[0] != self.height:  # I420: the Y plane is the grey picture
            return self.image[: self.height, : self.width]
        return self.image if self.image.ndim == 2 else cv2.cvtColor(self.image, cv2.COLOR_BGR2GRAY)

    def rgb_resized(self, box: tuple[int, int, int, int], size: tuple[int, int]) -> np.ndarray:
        """The region ``x0, y0, x1, y1`` as RGB of ``size`` (w, h). From I420 the planes are resized
        first and converted after: a detector needs a few hundred pixels of a big frame, and
        converting the whole frame first would cost more than the detector itself (7 ms on 1080p)."""
        x0, y0, x1, y1 = box
        w, h = size
        interp = cv2.INTER_AREA if x1 - x0 > w else cv2.INTER_LINEAR
        i420 = self.image.ndim == 2 and self.image.shape[0] != self.height
        if not i420 or w % 2 or h % 2:
            return cv2.resize(self.rgb()[y0:y1, x0:x1], size, interpolation=interp)
        y, u, v = i420_planes(self.image)
        out = np.empty((h * 3 // 2, w), np.uint8)
        oy, ou, ov = i420_planes(out)
        oy[:] = cv2.resize(y[y0:y1, x0:x1], size, interpolation=interp)
        for src, dst in ((u, ou), (v, ov)):  # half the size each way
            part = src[y0 // 2:(y1 + 1) // 2, x0 // 2:(x1 + 1) // 2]
            dst[:] = cv2.resize(part, (w // 2, h // 2), interpolation=interp)
        return cv2.cvtColor(out, cv2.COLOR_YUV2RGB_I420)

    def rgb(self) -> np.ndarray:
        if self.image.ndim == 3:
            return cv2.cvtColor(self.image, cv2.COLOR_BGR2RGB)
        if self.image.shape[0] != self.height:
            return cv2.cvtColor(self.image, cv2.COLOR_YUV2RGB_I420)[: self.height, : self.width]
        return cv2.cvtColor(self.image, cv2.COLOR_GRAY2RGB)


@dataclass
class DecodeReport:
    """How decoding ended; ``damaged`` means it stopped or met damage before the end."""

    frames: int = 0
    returncode: int | None = None
    messages: list[str] = field(default_factory=list)

    def note(self, message: str, keep: int = 20) -> None:
        """Keep the first few and the latest complaints: a long damaged file can have thousands."""
        if len(self.messages) >= keep:
            del self.messages[keep // 2]
        self.messages.append(message)

    @property
    def damaged(self) -> bool:
        return bool(self.returncode) or bool(self.messages)  # every note is damage met on the way

    @property
    def cause(self) -> str:
        """The most telling complaint in plain words."""
        failed = next((m for m in self.messages if m.startswith("decoding failed: ")), None)
        if failed:
            return failed
        for needle, words in _PLAIN:
            if any(needle in m.lower() for m in self.messages):
                return words
        return "FFmpeg reported decoding errors"

    def summary(self, last_time: float | None = None, duration: float | None = None) -> str:
        where = f"{self.frames} frames"
        if last_time is not None and duration:
            where += f", up to {last_time:.2f} s of {duration:.2f} s"
        verb = "decoding stopped after" if self.returncode else "decoded with errors:"
        return f"the video is damaged ({self.cause}); {verb} {where}"


class Decoder:
    """Iterate :class:`Frame` objects; ``every`` keeps one frame in N (times stay those of the kept frames).

    A reader thread decodes into a queue (FFmpeg's decoders and converters release the GIL), so
    decoding overlaps analysis. The queue is bounded by bytes (32 MB: a hundred 480x480 frames,
    ten 1080p ones), deep enough for the decoder to use a core the pipeline leaves idle for a
    moment (start-up, a classifier batch). ``yuv420p`` is the cheapest format: most videos are
    stored in it, the grey picture is free and colour is made only when needed.
    """

    def __init__(self, info: VideoInfo, pix_fmt: str = "bgr24", every: int = 1, threads: int = 0,
                 queue_bytes: int = 32 << 20):
        if pix_fmt not in CHANNELS:
            raise ValueError(f"unsupported pixel format {pix_fmt}")
        self.info, self.pix_fmt, self.every, self.threads = info, pix_fmt, max(1, every), threads
        self.queue_bytes = queue_bytes
        self.report = DecodeReport()
        self.wait_s = 0.0  # time the consumer spent waiting for the decoder: decoding that did not overlap
        self._frames = BytesQueue(queue_bytes)
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()

    def auto_threads(self) -> int:
        """Decoding threads: one up to 1080p, two above. The pipeline keeps both cores busy, so
        frame threading's own overhead is a loss there: one thread is ~3% faster on the 480x480
        clip (medians of 10-12 alternating runs) and within noise on the 1080p crowd's minute
        loop (two threads 16.49 against one 16.79 s, medians of 6); a 4K H.264 clip decodes on
        one thread at 39 fps, faster than fervid reads it (26 fps), but with less headroom, so
        bigger frames keep two."""
        return 1 if self.info.width * self.info.height <= 1920 * 1088 else 2

    def start(self) -> "Decoder":
        """Start decoding now (iterating starts it otherwise): a batch starts the next file's decoder
        while the current file is analysed, so that opening it does not stall the pipeline. It then
        decodes ahead until the queue is full (``queue_bytes``), and waits."""
        if self._thread is None and self.report.returncode is None:
            self._frames, self._stop = BytesQueue(self.queue_bytes), threading.Event()
            self._thread = threading.Thread(target=self._read, args=(self._frames, self._stop), daemon=True,
                                            name="fervid-decode")
            self._thread.start()
        return self

    def close(self, finished: bool = False) -> None:
        """Stop decoding (``finished``: the consumer saw the end) and the reader thread; safe to repeat."""
        thread, self._thread = self._thread, None
        if thread is None:
            if self.report.returncode is None:
                self.report.returncode = -1  # never started: nothing was decoded
            return
        self._stop.set()
        thread.join(timeout=5)
        if self.report.returncode is None:  # stopped before the end of the video
            self.report.returncode = 0 if finished else -1
        self._frames.replace_all(_END)  # a consumer still waiting in another thread sees the end

    def __iter__(self) -> Iterator[Frame]:
        self.start()
        frames = self._frames
        finished = False
        try:
            while True:
                t0 = time.perf_counter()
                frame = frames.get()
                self.wait_s += time.perf_counter() - t0
                if frame is _END:
                    break
                self.report.frames = frame.index // self.every + 1
                yield frame
            finished = True
        finally:
            self.close(finished)

    def _read(self, frames: BytesQueue, stop: threading.Event) -> None:
        # Imported here, in the reader thread: loading FFmpeg's libraries takes ~45 ms, which
        # then overlaps the networks loading in the main thread instead of adding to start-up.
        import av

        info = self.info
        step = 1.0 / float(info.fps) if info.fps else 0.0
        last_t = None
        try:
            with open_container(info.path) as container:
                stream = container.streams[info.stream]
                stream.codec_context.thread_count = self.threads or self.auto_threads()
                if stream.codec_context.thread_count > 1:
                    stream.codec_context.thread_type = "AUTO"
                # Times count from the file's start, as players and ffmpeg count them (and as the
                # encoder lays the source's audio beside the annotated video): the start in the
                # stream's own ticks, rounded as FFmpeg rounds it (av_rescale_q).
                tb = stream.time_base
                origin = math.floor(Fraction(container.start_time or 0, 1_000_000) / tb + Fraction(1, 2))
                for index, frame in enumerate(self._decoded(container, stream, stop)):
                    if index % self.every:
                        continue
                    if frame.pts is not None:  # to the microsecond; never before the file's start
                        t = max(0.0, round(float((frame.pts - origin) * tb), 6))
                    else:  # no time: continue from the previous frame at the nominal rate
                        t = 0.0 if last_t is None else last_t + step
                    last_t = t
                    image = self._image(frame)
                    if not frames.put(Frame(index, t, image, info.width, info.height), image.nbytes, stop):
                        return
            if not stop.is_set():
                self.report.returncode = 0
        except av.FFmpegError as err:  # the container could not be read on
            self.report.note(f"error while decoding: {err}")
            self.report.returncode = 1
        except Exception as err:  # noqa: BLE001 - anything else: this thread would end silently, and
            # the outputs would look complete; reported as a failure to decode instead
            self.report.note(f"decoding failed: {type(err).__name__}: {err}")
            self.report.returncode = 1
        finally:
            frames.put(_END, 0, stop)

    def _decoded(self, container, stream, stop: threading.Event) -> Iterator:
        """The video stream's frames in order, noting damage on the way and decoding past it.

        Every stream's packets are read (all but the video's then dropped): a file cut short
        often ends inside an audio packet, which only then shows the cut."""
        import av  # already loaded by _read

        size = os.path.getsize(self.info.path)
        for packet in container.demux():
            if stop.is_set():
                return
            if packet.is_corrupt:
                ends = packet.pos is not None and packet.pos + packet.size >= size
                self.report.note("partial file: the last packet is cut short" if ends else
                                 f"corrupt packet at byte {packet.pos}")
            if packet.stream is not stream:
                continue
            try:
                yield from packet.decode()
            except av.FFmpegError as err:  # a damaged packet: note it, decode on
                self.report.note(f"error while decoding: {err}")

    def _image(self, frame) -> np.ndarray:
        """The frame's pixels, upright, in ``pix_fmt``: one copy out of FFmpeg's buffers when the
        video is already I420 (most are), a conversion first otherwise."""
        size = self.info.square_size
        i420 = self.pix_fmt == "yuv420p"
        # Pixels that are not square (DV, DVD, HDV) are scaled to the shape the picture is shown
        # with: a face squeezed to three quarters of its width read differently (the top emotion
        # agreed on 58% of a clip's frames). A picture whose size changed mid-stream (a TS
        # recording, joined clips) is scaled back to the size the video started with, as ffmpeg
        # does, so every frame fits the outputs. And I420 comes in video range (16-235) whatever
        # the source's, for everything after assumes it: the detector's colour conversion, the
        # crops' grey levels, the encoder's output (else a full-range webcam or phone video's
        # annotated copy would have its blacks and whites clipped).
        full_range = i420 and frame.color_range == 2  # JPEG (full) range
        if (frame.width, frame.height) != size or full_range or not (i420 and frame.format.name in _I420):
            frame = frame.reformat(width=size[0], height=size[1], format=self.pix_fmt, interpolation="BICUBIC",
                                   threads=1, **({"dst_color_range": "MPEG"} if i420 else {}))
        rotate = _ROTATE.get(self.info.rotation)
        planes = [np.frombuffer(p, np.uint8).reshape(p.height, p.line_size) for p in frame.planes]
        if self.pix_fmt != "yuv420p":
            w, h = frame.width, frame.height
            image = planes[0][:, :w * int(CHANNELS[self.pix_fmt])].reshape((h, w) if self.pix_fmt == "gray" else (h, w, 3))
            return cv2.rotate(image, rotate) if rotate is not None else image.copy()
        planes = [p[:, :q.width] for p, q in zip(planes, frame.planes)]
        if rotate is not None:
            planes = [cv2.rotate(p, rotate) for p in planes]
        return _pack_i420(*planes)


def i420_planes(buffer: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Views of the Y, U and V planes of an I420 buffer ``[H*3/2, W]`` (W, H even)."""
    h, w = buffer.shape[0] * 2 // 3, buffer.shape[1]
    chroma = buffer[h:].reshape(2, h // 2, w // 2)
    return buffer[:h], chroma[0], chroma[1]


def _pack_i420(y: np.ndarray, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Planes into one I420 buffer, odd sides padded to even with black (as the encoder and
    :meth:`Frame.rgb_resized` need); FFmpeg's chroma planes already round their sides up."""
    h, w = y.shape
    out = np.empty(((h + h % 2) * 3 // 2, w + w % 2), np.uint8)
    oy, ou, ov = i420_planes(out)
    oy[:h, :w] = y
    oy[h:], oy[:, w:] = 16, 16  # the padding, where a side is odd (empty slices otherwise)
    ou[:], ov[:] = u, v
    return out


def open_video(path: str | Path, **kwargs) -> tuple[VideoInfo, Decoder]:
    """Probe then decode; the probe's errors (not a video, truncated, unreadable) surface here."""
    from fervid.video.probe import probe

    info = probe(path)
    if info.width <= 0 or info.height <= 0:
        raise VideoError(f"{path}: the video stream has no usable frame size")
    return info, Decoder(info, **kwargs)
