"""What a video file holds, read through PyAV (FFmpeg's libraries) as structured data.

No ``ffmpeg`` program is needed, and none on PATH is used: its printed report changes wording
between versions, and an older one lacks options fervid relied on.
"""

from __future__ import annotations

import os
import stat
from dataclasses import asdict, dataclass
from fractions import Fraction
from pathlib import Path

from fervid.errors import VideoError

# FFmpeg's numbers for the colour descriptions fervid carries over (libavutil/pixfmt.h), by the
# names FFmpeg gives them.
MATRICES = {"bt709": 1, "fcc": 4, "bt470bg": 5, "smpte170m": 6, "smpte240m": 7, "ycgco": 8, "bt2020nc": 9,
            "bt2020c": 10}
PRIMARIES = {"bt709": 1, "bt470m": 4, "bt470bg": 5, "smpte170m": 6, "smpte240m": 7, "film": 8, "bt2020": 9,
             "smpte428": 10, "smpte431": 11, "smpte432": 12}
TRANSFERS = {"bt709": 1, "gamma22": 4, "gamma28": 5, "smpte170m": 6, "smpte240m": 7, "linear": 8,
             "iec61966-2-4": 11, "bt1361e": 12, "iec61966-2-1": 13, "bt2020-10": 14, "bt2020-12": 15,
             "smpte2084": 16, "smpte428": 17, "arib-std-b67": 18}


def open_container(path: str | Path, **kwargs):
    """``av.open`` of a local file by its name, whatever the name looks like: FFmpeg would read
    ``pipe:x.mp4`` as standard input and ``http:...`` as a URL, so the name goes through FFmpeg's
    ``file:`` protocol."""
    import av

    return av.open("file:" + os.path.abspath(path), **kwargs)


@dataclass(frozen=True)
class VideoInfo:
    """Displayed geometry (``width``, ``height``: upright, in square pixels), nominal rate, and what
    the encoder needs to keep the audio."""

    path: str
    width: int
    height: int
    coded_width: int
    coded_height: int
    rotation: int
    fps: Fraction
    duration: float | None
    start_time: float
    codec: str
    pix_fmt: str
    audio_codec: str | None
    container: str
    stream: int = 0  # index of the video stream fervid reads, in the file (ffmpeg's -map 0:N)
    sar: Fraction = Fraction(1)  # sample aspect ratio: a coded pixel's width over its height
    colour: tuple[str, str, str] = ("", "", "")  # matrix, primaries, transfer, as FFmpeg names them ("" unknown)
    audio_codecs: tuple[str, ...] = ()  # every audio stream's, in order (audio_codec is the first)

    @property
    def square_size(self) -> tuple[int, int]:
        """The coded picture's size in square pixels, before rotation: what the decoder scales
        frames to, so that faces keep the shape they are shown with. Non-square pixels (DV and
        DVD 720x576 or 720x480, HDV 1440x1080) are widened, or heightened where they are tall."""
        return _square(self.coded_width, self.coded_height, self.sar)

    @property
    def estimated_frames(self) -> int | None:
        return round(self.duration * float(self.fps)) if self.duration and self.fps else None

    def as_dict(self) -> dict:
        d = asdict(self)
        d["fps"] = f"{self.fps.numerator}/{self.fps.denominator}"
        d["sar"] = f"{self.sar.numerator}:{self.sar.denominator}"
        d["colour"] = dict(zip(("matrix", "primaries", "transfer"), self.colour))
        return d


def _square(width: int, height: int, sar: Fraction) -> tuple[int, int]:
    # Within 2% of square is left as it is: ffmpeg's scale filter leaves such ratios behind
    # (161x121 from 160x120: 19360:19321), not worth a scaling per frame; the least square of
    # the real formats, PAL's 16:15, is 6.7% off.
    if abs(sar - 1) < Fraction(1, 50):
        return width, height
    if sar > 1:
        return max(2, 2 * round(width * sar / 2)), height
    return width, max(2, 2 * round(height / sar / 2))


def probe(path: str | Path) -> VideoInfo:
    """The video stream fervid reads (the first marked default, else the first; never cover art)
    and what the outputs need to know of the file; :class:`VideoError` with a plain cause if none."""
    import av

    path = Path(path)
    try:
        st = path.stat()
    except FileNotFoundError:
        raise VideoError(f"{path}: no such file") from None
    except PermissionError:
        raise VideoError(f"{path}: permission denied (cannot read the file)") from None
    except OSError as err:  # a symlink loop, a name too long
        raise VideoError(f"{path}: cannot be read ({err.strerror or err})") from None
    if stat.S_ISDIR(st.st_mode):
        raise VideoError(f"{path}: is a directory, not a video")
    if not stat.S_ISREG(st.st_mode):  # a FIFO or a device would block here, or be read only once
        raise VideoError(f"{path}: not a regular file (a pipe or a device); give a video file")
    if st.st_size == 0:
        raise VideoError(f"{path}: the file is empty")
    try:
        with open(path, "rb") as fh:
            head = fh.read(64)
    except PermissionError:
        raise VideoError(f"{path}: permission denied (cannot read the file)") from None
    try:
        container = open_container(path)
    except av.FFmpegError as err:
        raise VideoError(f"{path}: not a readable video ({_cause(err, head)})") from None
    with container:
        return _describe(container, str(path))


def _cause(err: Exception, head: bytes) -> str:
    if isinstance(err, PermissionError):
        return "permission denied"
    if b"ftyp" in head:  # an MP4 that FFmpeg cannot open: its index is missing
        return "the MP4 index (moov atom) is missing: the file is probably truncated"
    if "Invalid data" in str(err):
        return "FFmpeg does not recognise the data as a video format"
    if "End of file" in str(err):
        return "the file ends before any video data"
    return str(err)


def _describe(container, path: str, first_frame: bool = True) -> VideoInfo:
    """``first_frame``: decode it for the rotation (a live stream's frames are not read twice)."""
    import av

    videos = [s for s in container.streams.video if not s.disposition & av.stream.Disposition.attached_pic]
    if not videos:
        cause = "it has audio but no video stream" if container.streams.audio else "FFmpeg found no video stream"
        raise VideoError(f"{path}: not a readable video ({cause})")
    stream = next((s for s in videos if s.disposition & av.stream.Disposition.default), videos[0])
    ctx = stream.codec_context
    fmt = container.format.name
    codec = ctx.codec.canonical_name if ctx.codec else ""
    if fmt == "image2" or fmt.endswith("_pipe"):
        raise VideoError(f"{path}: a still image ({codec}), not a video")
    cw, ch = ctx.width, ctx.height
    if not cw or not ch:
        raise VideoError(f"{path}: the video stream has no frame size (its codec parameters could not be read)")
    sar = stream.sample_aspect_ratio or ctx.sample_aspect_ratio or Fraction(1)
    sar = Fraction(sar) if sar.numerator and sar.denominator else Fraction(1)
    # The colour description the file declares (read before any frame is decoded: a decoder
    # fills in its own guess, which the source's players do not show).
    pix_fmt = ctx.pix_fmt or ""
    colour = ("", "", "")
    if pix_fmt.startswith(("yuv", "nv", "p0")):  # RGB is converted with the encoder's own matrix
        colour = tuple(next((n for n, i in table.items() if i == value), "")
                       for table, value in ((MATRICES, ctx.colorspace), (PRIMARIES, ctx.color_primaries),
                                            (TRANSFERS, ctx.color_trc)))
    rotation = _rotation(container, stream) if first_frame else 0
    sw, sh = _square(cw, ch, sar)
    w, h = (sh, sw) if rotation in (90, 270) else (sw, sh)
    audios = tuple(a.codec_context.codec.canonical_name for a in container.streams.audio if a.codec_context.codec)
    duration = None
    if container.duration is not None and container.duration > 0:  # rounded as FFmpeg reports it
        duration = round(container.duration / 1_000_000, 2)
    return VideoInfo(path=path, width=w, height=h, coded_width=cw, coded_height=ch, rotation=rotation,
                     fps=_rate(stream.average_rate or stream.base_rate), duration=duration,
                     start_time=(container.start_time or 0) / 1_000_000, codec=codec,
                     pix_fmt=pix_fmt, audio_codec=audios[0] if audios else None, container=fmt,
                     stream=stream.index, sar=sar, colour=colour, audio_codecs=audios)


def _rotation(container, stream) -> int:
    """Degrees the picture is turned when shown, from the display matrix that decoded frames
    carry (PyAV reads the stream's own only when writing): the first frame tells."""
    import av

    try:
        for frame in container.decode(stream):
            return int(round(frame.rotation or 0)) % 360
    except (av.FFmpegError, ValueError):
        pass
    return 0


def _rate(rate) -> Fraction:
    """The nominal frame rate, as FFmpeg reports it (two decimals), with the NTSC family (29.97,
    23.976...) recovered exactly."""
    if not rate:
        return Fraction(0)
    value = round(float(rate), 2)
    for base in (24, 30, 48, 60, 120, 240):
        ntsc = Fraction(base * 1000, 1001)
        if abs(value - float(ntsc)) < 0.006:
            return ntsc
    return Fraction(str(value)).limit_denominator(1000)
