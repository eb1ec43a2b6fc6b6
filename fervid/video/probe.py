"""What a video file holds, read from ffmpeg's own report (ffprobe is not always installed).

``pip install fervid`` brings ffmpeg through imageio-ffmpeg, which ships ffmpeg but not ffprobe,
so the probe reads the stream summary ffmpeg prints for ``ffmpeg -i FILE``.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
from dataclasses import asdict, dataclass
from fractions import Fraction
from pathlib import Path

from fervid.errors import ToolMissingError, VideoError


def ffmpeg_exe() -> str:
    """ffmpeg from PATH, else the binary shipped in the imageio-ffmpeg wheel."""
    found = shutil.which("ffmpeg") or os.environ.get("IMAGEIO_FFMPEG_EXE") or _bundled_ffmpeg()
    if found:
        return found
    try:
        import imageio_ffmpeg

        return imageio_ffmpeg.get_ffmpeg_exe()
    except Exception:  # noqa: BLE001 - any failure means "not available"
        raise ToolMissingError("ffmpeg was not found: install it (e.g. apt install ffmpeg) or pip install imageio-ffmpeg") from None


def _bundled_ffmpeg() -> str | None:
    """The binary in imageio-ffmpeg's ``binaries`` folder, found without importing the package:
    importing it (~60 ms) and its ``get_ffmpeg_exe()``, which runs ``ffmpeg -version`` to check
    the binary (~0.1 s), were on the start-up of every run without an ffmpeg on PATH."""
    spec = importlib.util.find_spec("imageio_ffmpeg")
    for folder in (spec.submodule_search_locations or []) if spec else []:
        found = sorted(p for p in (Path(folder) / "binaries").glob("ffmpeg*") if p.is_file() and os.access(p, os.X_OK))
        if found:
            return str(found[-1])
    return None


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


_DURATION = re.compile(r"Duration: (N/A|(\d+):(\d+):(\d+(?:\.\d+)?))(?:, start: (-?\d+(?:\.\d+)?))?")
_INPUT = re.compile(r"^Input #0, ([^,]+(?:,[^,]+)*?), from ")
_VIDEO = re.compile(r"Stream #0:(\d+)[^:]*: Video: (\w+)(.*)$")
_AUDIO = re.compile(r"Stream #0:\d+[^:]*: Audio: (\w+)")
_SIZE = re.compile(r"(?<![\w.])(\d{1,5})x(\d{1,5})(?![\w])")
_RATE = re.compile(r"(\d+(?:\.\d+)?k?) (fps|tbr)")
_SAR = re.compile(r"\bSAR (\d+):(\d+) DAR ")  # "[SAR 4:3 DAR 16:9]", or without brackets (Matroska)
_ROTATION = re.compile(r"rotation of (-?\d+(?:\.\d+)?) degrees")
# The colour description ffmpeg prints after the pixel format, "yuv420p10le(tv, bt2020nc/bt2020/arib-std-b67)"
# or, when the three names agree, "yuv420p(tv, bt709, progressive)". The names kept are the ones
# the encoder's setparams filter takes as they are printed.
_COLOUR = re.compile(r", (?:yuv|nv|p0)\w*\(([^)]*)\)")
_MATRICES = {"bt709", "fcc", "bt470bg", "smpte170m", "smpte240m", "ycgco", "bt2020nc", "bt2020c"}
_PRIMARIES = {"bt709", "bt470m", "bt470bg", "smpte170m", "smpte240m", "film", "bt2020", "smpte428", "smpte431",
              "smpte432"}
_TRANSFERS = {"bt709", "gamma22", "gamma28", "smpte170m", "smpte240m", "linear", "iec61966-2-4", "bt1361e",
              "iec61966-2-1", "bt2020-10", "bt2020-12", "smpte2084", "smpte428", "arib-std-b67"}
_PIXFMT = re.compile(r", ((?:yuv|yuvj|rgb|bgr|gray|nv|pal|argb|rgba|bgra|abgr|gbr|ya|mono|xyz|p0)\w*)")


def probe(path: str | Path) -> VideoInfo:
    path = Path(path)
    if not path.exists():
        raise VideoError(f"{path}: no such file")
    if path.is_dir():
        raise VideoError(f"{path}: is a directory, not a video")
    try:
        with open(path, "rb") as fh:
            if not fh.read(1):
                raise VideoError(f"{path}: the file is empty")
    except PermissionError:
        raise VideoError(f"{path}: permission denied (cannot read the file)") from None
    proc = subprocess.run([ffmpeg_exe(), "-hide_banner", "-nostdin", "-i", str(path)],
                          capture_output=True, text=True, errors="replace", timeout=120)
    report = proc.stderr
    if "moov atom not found" in report:
        with open(path, "rb") as fh:
            if b"ftyp" not in fh.read(64):  # not an MP4 at all, whatever its name says
                report = report.replace("moov atom not found", "Invalid data found when processing input")
    return parse_report(report, str(path))


def parse_report(report: str, path: str) -> VideoInfo:
    """Parse the stream summary of ``ffmpeg -i``. fervid reads one video stream: the first marked
    default, else the first; never cover art (an attached picture), which some files list first."""
    lines = report.splitlines()
    videos = [ln for ln in lines if _VIDEO.search(ln) and "attached pic" not in ln]
    video_line = next((ln for ln in videos if "(default)" in ln), videos[0] if videos else None)
    if video_line is None:
        if any(_AUDIO.search(ln) for ln in lines):
            cause = "it has audio but no video stream"
        else:
            tail = [ln.strip() for ln in lines if ln.strip() and not ln.startswith(" ")
                    and "output file must be specified" not in ln]
            cause = _plain_cause(report) or (tail[-1] if tail else "ffmpeg found no video stream")
        raise VideoError(f"{path}: not a readable video ({cause})")
    m = _VIDEO.search(video_line)
    index, codec, rest = int(m.group(1)), m.group(2), m.group(3)
    size = _SIZE.search(rest)
    if not size:
        raise VideoError(f"{path}: the video stream has no frame size (ffmpeg says: {video_line.strip()})")
    cw, ch = int(size.group(1)), int(size.group(2))
    pix = _PIXFMT.search(rest)
    rates = {unit: _parse_rate(value) for value, unit in _RATE.findall(rest)}
    fps = rates.get("fps") or rates.get("tbr") or Fraction(0)
    rotation = 0
    idx = lines.index(video_line)
    for ln in lines[idx + 1: idx + 12]:
        if "Stream #" in ln:
            break
        r = _ROTATION.search(ln)
        if r:
            rotation = int(round(float(r.group(1)))) % 360
    sar = Fraction(1)
    if (m_sar := _SAR.search(rest)) and int(m_sar.group(1)) and int(m_sar.group(2)):
        sar = Fraction(int(m_sar.group(1)), int(m_sar.group(2)))
    colour = ("", "", "")
    if m_col := _COLOUR.search(rest):
        for token in (t.strip() for t in m_col.group(1).split(",")):
            names = token.split("/") if "/" in token else [token] * 3
            if len(names) == 3 and (names[0] in _MATRICES or names[1] in _PRIMARIES or names[2] in _TRANSFERS):
                colour = tuple(n if n in known else "" for n, known in zip(names, (_MATRICES, _PRIMARIES, _TRANSFERS)))
    sw, sh = _square(cw, ch, sar)
    w, h = (sh, sw) if rotation in (90, 270) else (sw, sh)
    dur = _DURATION.search(report)
    duration = start = None
    if dur and dur.group(1) != "N/A":
        duration = int(dur.group(2)) * 3600 + int(dur.group(3)) * 60 + float(dur.group(4))
    if dur and dur.group(5):
        start = float(dur.group(5))
    audios = tuple(m.group(1) for ln in lines if (m := _AUDIO.search(ln)))
    audio = audios[0] if audios else None
    container = next((m.group(1) for ln in lines if (m := _INPUT.search(ln))), "")
    if container == "image2" or container.endswith("_pipe"):
        raise VideoError(f"{path}: a still image ({codec}), not a video")
    return VideoInfo(path=path, width=w, height=h, coded_width=cw, coded_height=ch, rotation=rotation, fps=fps,
                     duration=duration, start_time=start or 0.0, codec=codec, pix_fmt=pix.group(1) if pix else "",
                     audio_codec=audio, container=container, stream=index, sar=sar, colour=colour,
                     audio_codecs=audios)


def _parse_rate(text: str) -> Fraction:
    value = float(text[:-1]) * 1000 if text.endswith("k") else float(text)
    # ffmpeg prints NTSC rates rounded (29.97); recover the exact 30000/1001 family.
    for base in (24, 30, 48, 60, 120, 240):
        ntsc = Fraction(base * 1000, 1001)
        if abs(value - float(ntsc)) < 0.006:
            return ntsc
    return Fraction(text.rstrip("k")).limit_denominator(1000) * (1000 if text.endswith("k") else 1)


_CAUSES = [
    ("moov atom not found", "the MP4 index (moov atom) is missing: the file is probably truncated"),
    ("Invalid data found when processing input", "ffmpeg does not recognise the data as a video format"),
    ("Permission denied", "permission denied"),
    ("No such file or directory", "no such file"),
    ("could not find codec parameters", "the stream's codec parameters could not be read"),
    ("End of file", "the file ends before any video data"),
]


def _plain_cause(report: str) -> str | None:
    for needle, words in _CAUSES:
        if needle.lower() in report.lower():
            return words
    return None
