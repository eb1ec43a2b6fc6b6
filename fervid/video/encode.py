"""Encode annotated frames to H.264 with each frame's own timestamp, and the input's audio kept.

Raw video through a pipe has no timestamps, so a rate would have to be assumed and variable-rate
input would drift. Instead frames travel to ffmpeg in a minimal streamed Matroska (uncompressed
BGR, microsecond clock), which carries every frame's pts exactly; ffmpeg encodes and muxes the
audio taken straight from the input file.
"""

from __future__ import annotations

import queue
import struct
import subprocess
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from fervid.errors import VideoError
from fervid.video.probe import VideoInfo, ffmpeg_exe

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


def _vint_size(n: int) -> bytes:
    return b"\x01" + n.to_bytes(7, "big")


def _uint(n: int) -> bytes:
    return n.to_bytes(max(1, (n.bit_length() + 7) // 8), "big")


def _el(eid: bytes, payload: bytes) -> bytes:
    return eid + _vint_size(len(payload)) + payload


FOURCC = {"bgr24": b"BGR\x18", "yuv420p": b"I420"}


class MatroskaPipe:
    """Write uncompressed frames with explicit timestamps as a live (unknown-size) Matroska stream."""

    def __init__(self, fh, width: int, height: int, frame_duration: float | None = None, pix_fmt: str = "bgr24"):
        self.fh, self.width, self.height = fh, width, height
        ebml = _el(b"\x1a\x45\xdf\xa3", b"".join([
            _el(b"\x42\x86", _uint(1)), _el(b"\x42\xf7", _uint(1)), _el(b"\x42\xf2", _uint(4)),
            _el(b"\x42\xf3", _uint(8)), _el(b"\x42\x82", b"matroska"), _el(b"\x42\x87", _uint(4)),
            _el(b"\x42\x85", _uint(2))]))
        info = _el(b"\x15\x49\xa9\x66", _el(b"\x2a\xd7\xb1", _uint(1000)) + _el(b"\x4d\x80", b"fervid")
                   + _el(b"\x57\x41", b"fervid"))
        video = _el(b"\xe0", _el(b"\xb0", _uint(width)) + _el(b"\xba", _uint(height))
                    + _el(b"\x2e\xb5\x24", FOURCC[pix_fmt]))
        track = _el(b"\xae", _el(b"\xd7", _uint(1)) + _el(b"\x73\xc5", _uint(1)) + _el(b"\x83", _uint(1))
                    + _el(b"\x86", b"V_UNCOMPRESSED") + _el(b"\x9c", _uint(0)) + video
                    + (_el(b"\x23\xe3\x83", _uint(round(frame_duration * 1e9))) if frame_duration else b""))
        fh.write(ebml + b"\x18\x53\x80\x67\x01\xff\xff\xff\xff\xff\xff\xff" + info + _el(b"\x16\x54\xae\x6b", track))

    def write(self, image: np.ndarray, time_s: float) -> None:
        """One cluster per frame: a cluster's clock is absolute, so no frame's time is ever rounded twice."""
        data = (image if image.flags.c_contiguous else image.copy()).data
        block_head = b"\x81" + struct.pack(">hB", 0, 0x80)
        size = len(block_head) + data.nbytes
        block = b"\xa3" + _vint_size(size)
        cluster_body = len(_el(b"\xe7", _uint(max(0, round(time_s * 1e6))))) + len(block) + size
        self.fh.write(b"\x1f\x43\xb6\x75" + _vint_size(cluster_body)
                      + _el(b"\xe7", _uint(max(0, round(time_s * 1e6)))) + block + block_head)
        self.fh.write(data)


class Encoder:
    """``write(image, time_s)`` per frame, then ``close()``; raises :class:`VideoError` if ffmpeg fails."""

    def __init__(self, out: str | Path, info: VideoInfo, encoding: Encoding = Encoding(), threads: int = 0,
                 pix_fmt: str = "bgr24"):
        """``pix_fmt``: what ``write`` gets, BGR ``[h,w,3]`` or I420 ``[H*3/2, W]`` with W, H rounded up to even."""
        self.out, self.info, self.pix_fmt = Path(out), info, pix_fmt
        suffix = self.out.suffix.lower()
        if suffix not in _COPY_OK:
            raise VideoError(f"{out}: unsupported output container (use one of {', '.join(OUTPUT_SUFFIXES)})")
        self.encoding, self.threads = encoding, threads
        self.proc: subprocess.Popen | None = None
        self.frames = 0

    def _start(self, first_time: float) -> None:
        """Started at the first frame: ffmpeg re-bases each input to 0, ``-itsoffset`` puts the video back."""
        info, suffix = self.info, self.out.suffix.lower()
        self._log = tempfile.TemporaryFile()
        audio: list[str] = []
        ok = _COPY_OK[suffix]
        for k, name in enumerate(info.audio_codecs or ((info.audio_codec,) if info.audio_codec else ())):
            # Every audio stream is kept (a recorder's second microphone, a translation), copied
            # where the container takes its codec, else made AAC.
            audio += ["-map", f"1:a:{k}", f"-c:a:{k}", "copy" if ok is None or name in ok else "aac"]
        cmd = [ffmpeg_exe(), "-nostdin", "-hide_banner", "-loglevel", "error",
               "-itsoffset", f"{first_time:.6f}", "-f", "matroska", "-i", "pipe:0"]
        if audio:
            cmd += ["-i", info.path]
        # x264 needs even sides. I420 frames come padded to even already; otherwise the pad filter
        # only where a side is odd, for it copies every frame (~3% of encoding 1080p at superfast).
        odd = self.pix_fmt != "yuv420p" and (info.width % 2 or info.height % 2)
        filters = ["pad=ceil(iw/2)*2:ceil(ih/2)*2"] if odd else []
        # The source's colour description, for its planes pass through unchanged (BGR frames are
        # converted by ffmpeg, with its own matrix): untagged, an HDR phone video's copy (HLG,
        # BT.2020) would look washed out, and an SD video in BT.709 be shown with BT.601's colours.
        # (A filter, for ffmpeg 9's -color_primaries and -color_trc no longer reach x264.)
        tags = [f"{key}={name}" for key, name in zip(("colorspace", "color_primaries", "color_trc"), info.colour) if name]
        if tags and self.pix_fmt == "yuv420p":
            filters.append("setparams=" + ":".join(tags))
        vf = ["-vf", ",".join(filters)] if filters else []
        cmd += ["-map", "0:v:0", *audio, *vf, "-c:v", CODEC,
                "-preset", self.encoding.preset, "-crf", str(self.encoding.crf), "-x264-params", "rc-lookahead=5:bframes=1:sync-lookahead=0",
                # The encoder's clock in 1/90000 s, not ffmpeg's default 1/frame rate: that grid
                # moved a variable-rate video's frames by up to half a frame (0.02 s -> 0.04 s).
                "-pix_fmt", "yuv420p", "-fps_mode", "passthrough", "-enc_time_base:v", "1/90000",
                "-threads", str(self.threads or 2),
                "-movflags", "+faststart", "-f", {".mkv": "matroska", ".mov": "mov"}.get(suffix, "mp4"),
                "-y", str(self.out)]
        # Its own session: Ctrl-C reaches fervid, which then aborts the encoder and removes the part file.
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=self._log,
                                     start_new_session=True)
        step = 1 / float(info.fps) if info.fps else None
        if self.pix_fmt == "yuv420p":
            size = (info.width + 1) // 2 * 2, (info.height + 1) // 2 * 2
        else:
            size = info.width, info.height
        self.mkv = MatroskaPipe(self.proc.stdin, *size, step, self.pix_fmt)
        self._queue: queue.Queue = queue.Queue(maxsize=4)
        self._failed: BaseException | None = None
        self._writer = threading.Thread(target=self._feed, daemon=True)
        self._writer.start()

    def write(self, image: np.ndarray, time_s: float) -> None:
        """Queue a frame; a writer thread feeds ffmpeg, so encoding overlaps the next frames' analysis."""
        if self.proc is None:
            self._start(time_s)
        if self._failed is not None:
            raise VideoError(f"{self.out}: the encoder stopped: {self._errors()}")
        self._queue.put((image, time_s))
        self.frames += 1

    def _feed(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            if self._failed is None:
                try:
                    self.mkv.write(*item)
                except (BrokenPipeError, OSError) as err:
                    self._failed = err  # keep draining so that write() never blocks on a dead encoder
                except Exception as err:  # noqa: BLE001 - a fault here must fail the file, not hang it:
                    self._failed = err  # ffmpeg would wait for more input forever
                    self.proc.kill()

    def close(self) -> None:
        if self.proc is None:
            raise VideoError(f"{self.out}: no frames to encode")
        self._queue.put(None)
        self._writer.join()
        try:
            self.proc.stdin.close()
        except BrokenPipeError:
            pass
        if self.proc.wait() != 0 or self._failed is not None:
            raise VideoError(f"{self.out}: encoding failed: {self._errors()}")
        self._log.close()

    def abort(self) -> None:
        if self.proc is None:
            return
        self.proc.kill()
        self._queue.put(None)
        self._writer.join(timeout=5)
        self.proc.wait()
        self._log.close()

    def _errors(self) -> str:
        self.proc.wait()
        if self._failed is not None and not isinstance(self._failed, OSError):
            return f"{type(self._failed).__name__}: {self._failed}"
        self._log.seek(0)
        text = self._log.read().decode("utf-8", "replace").strip().splitlines()
        if any("No space left" in ln for ln in text):
            return "no space left on the device"
        return "; ".join(text[-3:]) or f"ffmpeg exited with code {self.proc.returncode}"
