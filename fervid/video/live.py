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
    return bool(fmt) or name == "-" or bool(URL.match(name)) or name.endswith(".m3u8") and "://" in name \
        or (name.startswith("/dev/") and Path(name).exists() and not Path(name).is_file())


class LiveDecoder(Decoder):
    """Opens the source at once (so that a bad address fails before any output is made) and
    decodes in a thread; ``received``, ``dropped`` count frames."""

    def __init__(self, source: str, fmt: str | None = None, open_timeout: float = 10.0, queue_s: float = 1.0):
        import av

        from fervid.video.probe import _describe

        self.source = source
        options = {"rw_timeout": str(int(open_timeout * 1e6))} if URL.match(source) else {}
        if source.lower().startswith(("udp://", "rtp://")):
            options = {"timeout": str(int(open_timeout * 1e6)), "overrun_nonfatal": "1", "fifo_size": "50000000"}
        try:
            self.container = av.open("pipe:0" if source == "-" else source, format=fmt, options=options,
                                     timeout=open_timeout)
        except (av.FFmpegError, OSError) as err:
            raise VideoError(f"{source}: cannot open the live source ({err})") from None
        try:
            info = _describe(self.container, source, first_frame=False)
        except VideoError:
            self.container.close()
            raise
        fps = float(info.fps) or 25.0
        frame_bytes = max(1, info.width * info.height * 3 // 2)
        super().__init__(info, pix_fmt="yuv420p", queue_bytes=max(1, int(queue_s * fps)) * max(frame_bytes, 64 << 10))
        self.received = self.dropped = 0

    def _read(self, frames, stop: threading.Event) -> None:
        import av

        container, stream = self.container, self.container.streams[self.info.stream]
        origin = None
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
                    origin = frame.pts if origin is None else origin
                    t = max(0.0, round(float((frame.pts - origin) * stream.time_base), 6))
                    image = self._image(frame)
                    index = self.received
                    self.received += 1
                    if not frames.offer(Frame(index, t, image, self.info.width, self.info.height, wall), image.nbytes):
                        self.dropped += 1
            self.report.returncode = 0
        except (av.FFmpegError, OSError) as err:  # the stream broke off: what came is kept
            self.report.note(f"the stream ended: {err}")
            self.report.returncode = 0
        except Exception as err:  # noqa: BLE001 - reported, not swallowed
            self.report.note(f"decoding failed: {type(err).__name__}: {err}")
            self.report.returncode = 1
        finally:
            self.report.frames = self.received
            frames.put(_END, 0, stop)
            container.close()

    def __iter__(self):
        for frame in super().__iter__():
            self.report.frames = self.received
            yield frame
