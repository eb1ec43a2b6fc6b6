"""Stream upright frames and their presentation times out of ffmpeg through a pipe.

ffmpeg applies the rotation metadata itself (autorotate) and the ``showinfo`` filter, placed
last, reports each frame's real pts on stderr, so times are right for variable frame rates.
Frames are read one at a time into fresh buffers: memory stays flat whatever the length.
"""

from __future__ import annotations

import io
import queue
import re
import subprocess
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import cv2
import ffmpeg
import numpy as np

from fervid.errors import VideoError
from fervid.handoff import BytesQueue
from fervid.video.probe import VideoInfo, ffmpeg_exe

_SHOWINFO = re.compile(r"\] n:\s*(\d+) pts:\s*(-?\d+|NOPTS) pts_time:(\S+)")
_DAMAGE = ("error while decoding", "invalid data", "corrupt", "missing picture", "concealing", "partial file",
           "truncat", "invalid nal", "no frame", "error splitting", "end of file", "moov atom not found")
_PLAIN = (("partial file", "the file ends early, probably truncated"),
          ("moov atom not found", "the file is truncated"),
          ("invalid nal", "corrupt data in the video stream"),
          ("error splitting", "corrupt data in the video stream"),
          ("corrupt", "corrupt frames"), ("concealing", "corrupt frames"),
          ("error while decoding", "corrupt frames"), ("invalid data", "corrupt data in the video stream"),
          ("end of file", "the file ends early, probably truncated"))
CHANNELS = {"gray": 1, "bgr24": 3, "yuv420p": 1.5}
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
        ph, pw = self.image.shape[0] * 2 // 3, self.image.shape[1]  # plane size (even)
        flat = self.image.reshape(-1)
        out = np.empty((h * 3 // 2, w), np.uint8)
        out[:h] = cv2.resize(self.image[y0:y1, x0:x1], size, interpolation=interp)
        dst = out.reshape(-1)
        for k in range(2):  # U then V, each a quarter of the Y plane's bytes
            start = ph * pw + k * (ph * pw // 4)
            plane = flat[start:start + ph * pw // 4].reshape(ph // 2, pw // 2)
            part = plane[y0 // 2:(y1 + 1) // 2, x0 // 2:(x1 + 1) // 2]
            at = h * w + k * (h * w // 4)
            dst[at:at + h * w // 4] = cv2.resize(part, (w // 2, h // 2), interpolation=interp).reshape(-1)
        return cv2.cvtColor(out, cv2.COLOR_YUV2RGB_I420)

    def rgb(self) -> np.ndarray:
        if self.image.ndim == 3:
            return cv2.cvtColor(self.image, cv2.COLOR_BGR2RGB)
        if self.image.shape[0] != self.height:
            return cv2.cvtColor(self.image, cv2.COLOR_YUV2RGB_I420)[: self.height, : self.width]
        return cv2.cvtColor(self.image, cv2.COLOR_GRAY2RGB)


@dataclass
class DecodeReport:
    """How decoding ended; ``damaged`` means ffmpeg stopped or complained before the end."""

    frames: int = 0
    returncode: int | None = None
    messages: list[str] = field(default_factory=list)

    @property
    def damaged(self) -> bool:
        return bool(self.returncode) or any(any(k in m.lower() for k in _DAMAGE) for m in self.messages)

    @property
    def cause(self) -> str:
        """ffmpeg's most telling complaint in plain words (its thread and task chatter left out)."""
        for needle, words in _PLAIN:
            if any(needle in m.lower() for m in self.messages):
                return words
        return "ffmpeg reported decoding errors"

    def summary(self, last_time: float | None = None, duration: float | None = None) -> str:
        where = f"{self.frames} frames"
        if last_time is not None and duration:
            where += f", up to {last_time:.2f} s of {duration:.2f} s"
        verb = "decoding stopped after" if self.returncode else "decoded with errors:"
        return f"the video is damaged ({self.cause}); {verb} {where}"


class Decoder:
    """Iterate :class:`Frame` objects; ``every`` keeps one frame in N (times stay those of the kept frames).

    A reader thread drains ffmpeg's pipe into a queue: without it ffmpeg would stall on the pipe
    whenever the consumer is busy, and decoding would not overlap with analysis. The queue is
    bounded by bytes (32 MB: a hundred 480x480 frames, ten 1080p ones), deep enough for ffmpeg to
    use a core the pipeline leaves idle for a moment (start-up, a classifier batch): 480x480
    clip 2-3% faster than with four frames.
    ``yuv420p`` is the cheapest format: the grey picture is free and colour is made only when needed.
    """

    def __init__(self, info: VideoInfo, pix_fmt: str = "bgr24", every: int = 1, threads: int = 0,
                 queue_bytes: int = 32 << 20):
        if pix_fmt not in CHANNELS:
            raise ValueError(f"unsupported pixel format {pix_fmt}")
        self.info, self.pix_fmt, self.every, self.threads = info, pix_fmt, max(1, every), threads
        self.queue_bytes = queue_bytes
        self.report = DecodeReport()
        self.wait_s = 0.0  # time the consumer spent waiting for ffmpeg: decoding that did not overlap
        self._proc: subprocess.Popen | None = None
        self._frames = BytesQueue(queue_bytes)
        self._threads: list[threading.Thread] = []
        self._stop = threading.Event()

    def command(self) -> list[str]:
        stream = ffmpeg.input(self.info.path, threads=self.threads or self.auto_threads())[str(self.info.stream)]
        if self.every > 1:
            stream = stream.filter("select", f"not(mod(n,{self.every}))")  # ffmpeg-python escapes the comma
        if self.pix_fmt == "yuv420p" and (self.info.width % 2 or self.info.height % 2):
            # I420 needs even sides. Only where they are odd: the filter copies every frame.
            stream = stream.filter("pad", "ceil(iw/2)*2", "ceil(ih/2)*2")
        stream = stream.filter("showinfo", checksum=0)
        out = ffmpeg.output(stream, "pipe:", format="rawvideo", pix_fmt=self.pix_fmt, fps_mode="passthrough")
        return [ffmpeg_exe(), "-nostdin", "-hide_banner", "-loglevel", "info", *out.get_args()]

    def auto_threads(self) -> int:
        """Decoding threads: one up to 1080p, two above. The pipeline keeps both cores busy, so
        frame threading's own overhead is a loss there: one thread was ~3% faster on the 480x480
        clip (medians of 10-12 alternating runs), no slower on the 1080p crowd (a minute of it:
        16.9 against 17.3 s); a 4K H.264 clip decodes on one thread at 39 fps, faster than fervid
        reads it (26 fps), but with less headroom, so bigger frames keep two."""
        return 1 if self.info.width * self.info.height <= 1920 * 1088 else 2

    def _shape(self) -> tuple[int, ...]:
        w, h = self.info.width, self.info.height
        if self.pix_fmt == "yuv420p":
            return ((h + 1) // 2 * 3, (w + 1) // 2 * 2)
        return (h, w) if self.pix_fmt == "gray" else (h, w, 3)

    def start(self) -> "Decoder":
        """Start ffmpeg now (iterating starts it otherwise): a batch starts the next file's decoder
        while the current file is analysed, so that ffmpeg's start-up does not stall the pipeline.
        ffmpeg then decodes ahead until the queue is full (``queue_bytes``), and waits."""
        if self._proc is None:
            # Its own session: Ctrl-C reaches fervid, which stops ffmpeg itself, cleanly and in order.
            self._proc = subprocess.Popen(self.command(), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                          stderr=subprocess.PIPE, bufsize=0, start_new_session=True)
            _widen_pipe(self._proc.stdout)
            times: queue.Queue = queue.Queue()
            self._frames, self._stop = BytesQueue(self.queue_bytes), threading.Event()
            self._threads = [
                threading.Thread(target=self._read_stderr, args=(self._proc.stderr, times), daemon=True),
                threading.Thread(target=self._read_frames, args=(self._proc.stdout, times, self._frames, self._stop),
                                 daemon=True)]
            for t in self._threads:
                t.start()
        return self

    def close(self, finished: bool = False) -> None:
        """Stop ffmpeg (unless it ``finished`` the video) and the reader threads; safe to repeat."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        self._stop.set()
        if not finished and proc.poll() is None:
            proc.kill()  # the consumer stopped early, or never began
        self.report.returncode = proc.wait()
        for t in self._threads:
            t.join(timeout=5)
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

    def _read_frames(self, pipe, times: queue.Queue, frames: BytesQueue, stop: threading.Event) -> None:
        shape = self._shape()
        nbytes = int(np.prod(shape))
        step = 1.0 / float(self.info.fps) if self.info.fps else 0.0
        index, last_t = 0, None
        try:
            while not stop.is_set():
                buf = np.empty(nbytes, np.uint8)  # not bytearray: that zero-fills first
                view, got = memoryview(buf), 0
                while got < nbytes:
                    n = pipe.readinto(view[got:])
                    if not n:
                        break
                    got += n
                if got < nbytes:
                    break
                t = times.get(timeout=60)
                if t is None:  # stderr closed without a time for this frame
                    break
                if t != t:  # NOPTS: continue from the previous frame at the nominal rate
                    t = 0.0 if last_t is None else last_t + step
                last_t = t
                frame = Frame(index * self.every, t, buf.reshape(shape),
                              self.info.width, self.info.height)
                if not frames.put(frame, nbytes, stop):
                    break
                index += 1
        except (OSError, ValueError, queue.Empty):
            pass
        finally:
            pipe.close()
            frames.put(_END, 0, stop)

    def _read_stderr(self, pipe, times: queue.Queue) -> None:
        tail: deque = deque(maxlen=20)
        # Buffered: the pipe itself is unbuffered (bufsize=0, for the frames), and readline on it
        # reads one byte per system call: 0.6 s of this thread and the GIL on the 480p clip.
        for raw in io.BufferedReader(pipe, 1 << 16):
            line = raw.decode("utf-8", "replace").rstrip()
            m = _SHOWINFO.search(line)
            if m:
                pts = m.group(3)
                times.put(float(pts) if pts not in ("NOPTS", "nan") else float("nan"))
            # ffmpeg's threads share stderr and showinfo writes its line in pieces, so the demuxer's
            # "partial file" can land inside a showinfo line: those are searched too (damage words only).
            words = _DAMAGE if "Parsed_showinfo" in line else _DAMAGE + ("error",)
            if line and any(k in line.lower() for k in words):
                tail.append(line)
        self.report.messages = list(tail)
        times.put(None)
        pipe.close()


def _widen_pipe(pipe, size: int = 1 << 20) -> None:
    """A 1 MiB pipe instead of 64 KiB: a frame then moves in a few reads, not dozens (Linux only)."""
    try:
        import fcntl

        fcntl.fcntl(pipe.fileno(), fcntl.F_SETPIPE_SZ, size)
    except (ImportError, AttributeError, OSError):
        pass


def open_video(path: str | Path, **kwargs) -> tuple[VideoInfo, Decoder]:
    """Probe then decode; the probe's errors (not a video, truncated, unreadable) surface here."""
    from fervid.video.probe import probe

    info = probe(path)
    if info.width <= 0 or info.height <= 0:
        raise VideoError(f"{path}: the video stream has no usable frame size")
    return info, Decoder(info, **kwargs)
