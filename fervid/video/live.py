"""Live sources: a stream URL, a capture device, or a stream on standard input, read as it plays.

Real time is kept: frames arrive in a thread and wait in a short queue (up to a second, which
absorbs the burst of frames that arrive while the networks load);
when analysis falls behind, new frames are left unanalysed (counted as dropped) instead of
queueing without bound, so memory stays flat and rows stay close to the picture. Each frame
carries the wall-clock time it arrived; its stream time counts from the first frame.
"""

from __future__ import annotations

import re
import threading
import time
from pathlib import Path

from fervid.errors import VideoError
from fervid.video.decode import _END, Decoder, Frame

URL = re.compile(r"^(rtsps?|rtmps?|srt|udp|rtp|tcp|https?|tls)://", re.IGNORECASE)


def is_live(name: str, fmt: str | None = None) -> bool:
    """A name fervid reads live: a URL, ``-`` (standard input), a capture device (``/dev/video0``),
    or anything with ``--format`` (a device in the platform's own syntax)."""
    device = name.startswith("/dev/") and Path(name).exists() and not Path(name).is_file()
    return bool(fmt) or name == "-" or bool(URL.match(name)) or device  # HLS (.m3u8) comes over http(s)


class LiveDecoder(Decoder):
    """Opens the source at once (so that a bad address fails before any output is made) and
    decodes in a thread; ``received``, ``dropped`` count frames. A stream that drops is reopened
    up to ``reconnect`` times in a row, with back-off (0.5, 1, 2, 4, 5, 5... s); each gap is kept
    in ``gaps`` and the first frame after it is marked a cut, so that faces start afresh."""

    def __init__(self, source: str, fmt: str | None = None, open_timeout: float = 10.0, queue_s: float = 1.0,
                 reconnect: int = 0):
        from fervid.video.probe import _describe

        self.source, self.fmt, self.open_timeout, self.reconnect = source, fmt, open_timeout, reconnect
        self.gaps: list[dict] = []
        self.container = self._open()
        try:
            info = _describe(self.container, source, first_frame=False)
        except VideoError:
            self.container.close()
            raise
        fps = float(info.fps) or 25.0
        frame_bytes = max(1, info.width * info.height * 3 // 2)
        super().__init__(info, pix_fmt="yuv420p", queue_bytes=max(1, int(queue_s * fps)) * max(frame_bytes, 64 << 10))
        self.received = self.dropped = 0

    def _open(self):
        import av

        source, timeout = self.source, self.open_timeout
        options = {"rw_timeout": str(int(timeout * 1e6))} if URL.match(source) else {}
        if source.lower().startswith(("udp://", "rtp://")):
            options = {"timeout": str(int(timeout * 1e6)), "overrun_nonfatal": "1", "fifo_size": "50000000"}
        try:
            return av.open("pipe:0" if source == "-" else source, format=self.fmt, options=options, timeout=timeout)
        except (av.FFmpegError, OSError) as err:
            raise VideoError(f"{source}: cannot open the live source ({err})") from None

    def _read(self, frames, stop: threading.Event) -> None:
        container = self.container
        last = None  # (stream time, wall time) of the last frame
        try:
            while True:
                last = self._stream(container, frames, stop, last)
                container.close()
                container = self._reopen(stop, last)
                if container is None:
                    break
            self.report.returncode = 0
        except Exception as err:  # noqa: BLE001 - reported, not swallowed
            self.report.note(f"decoding failed: {type(err).__name__}: {err}")
            self.report.returncode = 1
        finally:
            self.report.frames = self.received
            frames.put(_END, 0, stop)

    def _stream(self, container, frames, stop, last):
        """Frames of one connection; returns the last frame's (stream time, wall time)."""
        import av

        stream = container.streams.video[0]
        origin, offset, cut = None, 0.0, last is not None
        try:
            for packet in container.demux(stream):
                if stop.is_set():
                    break
                try:
                    decoded = packet.decode()
                except av.FFmpegError as err:
                    self.report.note(f"error while decoding: {err}")
                    continue
                for frame in decoded:
                    wall = time.time()
                    if frame.pts is None:
                        continue
                    if origin is None:  # times go on across a gap, by the wall clock
                        origin = frame.pts
                        offset = last[0] + (wall - last[1]) if last is not None else 0.0
                        if last is not None:
                            self.gaps[-1]["seconds"] = round(wall - last[1], 3)
                    t = max(0.0, round(offset + float((frame.pts - origin) * stream.time_base), 6))
                    image = self._image(frame)
                    index = self.received
                    self.received += 1
                    item = Frame(index, t, image, self.info.width, self.info.height, wall, cut)
                    cut = False
                    if not frames.offer(item, image.nbytes):
                        self.dropped += 1
                    last = (t, wall)
        except (av.FFmpegError, OSError) as err:  # the stream broke off: what came is kept
            self.report.note(f"the stream broke off: {err}")
        return last

    def _reopen(self, stop, last):
        if self.source == "-" or self.reconnect <= 0 or stop.is_set():
            return None
        for attempt in range(self.reconnect):
            if stop.wait(min(0.5 * 2 ** attempt, 5.0)):
                return None
            try:
                container = self._open()
            except VideoError:
                continue
            self.gaps.append({"after_s": last[0] if last else 0.0, "seconds": None, "attempts": attempt + 1})
            return container
        return None

    def end_now(self) -> None:
        """End the frames at once (from a signal handler: nothing here blocks); the reading
        thread stops at its next packet."""
        self._stop.set()
        self._frames.replace_all(_END)

    def __iter__(self):
        for frame in super().__iter__():
            self.report.frames = self.received
            yield frame
