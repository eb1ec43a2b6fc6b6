"""Stream upright frames and their presentation times out of ffmpeg through a pipe.

ffmpeg applies the rotation metadata itself (autorotate) and the ``showinfo`` filter, placed
last, reports each frame's real pts on stderr, so times are right for variable frame rates.
Frames are read one at a time into fresh buffers: memory stays flat whatever the length.
"""

from __future__ import annotations

import queue
import re
import subprocess
import threading
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import ffmpeg
import numpy as np

from fervid.errors import VideoError
from fervid.video.probe import VideoInfo, ffmpeg_exe

_SHOWINFO = re.compile(r"\] n:\s*(\d+) pts:\s*(-?\d+|NOPTS) pts_time:(\S+)")
_DAMAGE = ("error while decoding", "invalid data", "corrupt", "missing picture", "concealing", "partial file",
           "truncat", "invalid nal", "no frame", "error splitting", "end of file", "moov atom not found")
CHANNELS = {"gray": 1, "bgr24": 3, "rgb24": 3}


@dataclass
class Frame:
    """One decoded frame: its index in the stream, its presentation time, and the pixels (upright)."""

    index: int
    time_s: float
    image: np.ndarray


@dataclass
class DecodeReport:
    """How decoding ended; ``damaged`` means ffmpeg stopped or complained before the end."""

    frames: int = 0
    returncode: int | None = None
    messages: list[str] = field(default_factory=list)

    @property
    def damaged(self) -> bool:
        return bool(self.returncode) or any(any(k in m.lower() for k in _DAMAGE) for m in self.messages)

    def summary(self) -> str:
        msgs = "; ".join(dict.fromkeys(m.split("] ", 1)[-1] for m in self.messages[-3:]))
        return f"decoding stopped or hit damage after {self.frames} frames" + (f" (ffmpeg: {msgs})" if msgs else "")


class Decoder:
    """Iterate :class:`Frame` objects; ``every`` keeps one frame in N (times stay those of the kept frames)."""

    def __init__(self, info: VideoInfo, pix_fmt: str = "bgr24", every: int = 1, threads: int = 0):
        if pix_fmt not in CHANNELS:
            raise ValueError(f"unsupported pixel format {pix_fmt}")
        self.info, self.pix_fmt, self.every, self.threads = info, pix_fmt, max(1, every), threads
        self.report = DecodeReport()

    def command(self) -> list[str]:
        stream = ffmpeg.input(self.info.path, threads=self.threads)["v:0"]
        if self.every > 1:
            stream = stream.filter("select", f"not(mod(n,{self.every}))")  # ffmpeg-python escapes the comma
        stream = stream.filter("showinfo", checksum=0)
        out = ffmpeg.output(stream, "pipe:", format="rawvideo", pix_fmt=self.pix_fmt, fps_mode="passthrough")
        return [ffmpeg_exe(), "-nostdin", "-hide_banner", "-loglevel", "info", *out.get_args()]

    def __iter__(self) -> Iterator[Frame]:
        w, h, c = self.info.width, self.info.height, CHANNELS[self.pix_fmt]
        shape = (h, w) if c == 1 else (h, w, c)
        nbytes = w * h * c
        proc = subprocess.Popen(self.command(), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, bufsize=0)
        times: queue.Queue = queue.Queue()
        reader = threading.Thread(target=self._read_stderr, args=(proc.stderr, times), daemon=True)
        reader.start()
        index, finished, last_t = 0, False, None
        step = 1.0 / float(self.info.fps) if self.info.fps else 0.0
        try:
            while True:
                buf = bytearray(nbytes)
                view, got = memoryview(buf), 0
                while got < nbytes:
                    n = proc.stdout.readinto(view[got:])
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
                self.report.frames = index + 1
                yield Frame(index * self.every, t, np.frombuffer(buf, np.uint8).reshape(shape))
                index += 1
            finished = True
        finally:
            if not finished and proc.poll() is None:
                proc.kill()  # the consumer stopped early
            proc.stdout.close()
            self.report.returncode = proc.wait()
            reader.join(timeout=5)

    def _read_stderr(self, pipe, times: queue.Queue) -> None:
        tail: deque = deque(maxlen=20)
        for raw in iter(pipe.readline, b""):
            line = raw.decode("utf-8", "replace").rstrip()
            m = _SHOWINFO.search(line)
            if m:
                pts = m.group(3)
                times.put(float(pts) if pts not in ("NOPTS", "nan") else float("nan"))
            elif line and "Parsed_showinfo" not in line and any(k in line.lower() for k in _DAMAGE + ("error",)):
                tail.append(line)
        self.report.messages = list(tail)
        times.put(None)
        pipe.close()


def open_video(path: str | Path, **kwargs) -> tuple[VideoInfo, Decoder]:
    """Probe then decode; the probe's errors (not a video, truncated, unreadable) surface here."""
    from fervid.video.probe import probe

    info = probe(path)
    if info.width <= 0 or info.height <= 0:
        raise VideoError(f"{path}: the video stream has no usable frame size")
    return info, Decoder(info, **kwargs)
