"""Shared fixtures: small videos made with ffmpeg at test time, the example portrait, FER-2013-shaped CSVs."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest


ROOT = Path(__file__).resolve().parent.parent
EXAMPLE_IMAGE = ROOT / "examples" / "astronaut.jpg"
EXAMPLE_VIDEO = ROOT / "examples" / "astronaut.mp4"
SHARED = ROOT.parent / "shared"


def ffmpeg_exe() -> str:
    """The ``ffmpeg`` program that makes test videos: imageio-ffmpeg's, a known recent build, so that
    whatever ffmpeg is on PATH (an old one lacks -display_rotation) the suite makes the same clips.
    fervid itself needs no ffmpeg program."""
    import imageio_ffmpeg

    return imageio_ffmpeg.get_ffmpeg_exe()


def ffmpeg(*args: str) -> None:
    subprocess.run([ffmpeg_exe(), "-nostdin", "-hide_banner", "-loglevel", "error", "-y", *args], check=True)


def make_video(path: Path, *, size: str = "160x120", rate: str = "25", seconds: float = 1.0,
               audio: bool = False, extra: list[str] | None = None, vf: str | None = None) -> Path:
    """A testsrc2 clip (no faces) of the given size, rate and length."""
    args = ["-f", "lavfi", "-i", f"testsrc2=size={size}:rate={rate}:duration={seconds}"]
    if audio:
        args += ["-f", "lavfi", "-i", f"sine=frequency=440:duration={seconds}"]
    if vf:
        args += ["-vf", vf]
    args += ["-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p"]
    if audio:
        args += ["-c:a", "aac", "-shortest"]
    ffmpeg(*args, *(extra or []), str(path))
    return path


def make_face_video(path: Path, *, faces: int = 1, seconds: float = 2.0, rate: int = 25, size: int = 240,
                    extra: list[str] | None = None, audio: bool = False, post: str = "null") -> Path:
    """The example portrait, gently moving; ``faces=2`` puts two copies side by side; ``post`` filters last."""
    stack = "[a][b]hstack" if faces == 2 else "[a]copy"
    graph = (f"[0]scale={size}:{size},split=2[a0][b0];[a0]crop=iw-8:ih-8:4+4*sin(t*3):4[a];"
             f"[b0]crop=iw-8:ih-8:4:4+4*sin(t*2)[b];{stack},{post},format=yuv420p[v]")
    if faces == 1:
        graph = f"[0]scale={size}:{size},crop=iw-8:ih-8:4+4*sin(t*3):4,{post},format=yuv420p[v]"
    args = ["-loop", "1", "-framerate", str(rate), "-t", str(seconds), "-i", str(EXAMPLE_IMAGE)]
    if audio:
        args += ["-f", "lavfi", "-i", f"sine=frequency=330:duration={seconds}"]
    args += ["-filter_complex", graph, "-map", "[v]"]
    if audio:
        args += ["-map", "1:a", "-c:a", "aac"]
    args += ["-c:v", "libx264", "-preset", "ultrafast", *(extra or []), str(path)]
    ffmpeg(*args)
    return path


def fer_csv(path: Path, rows_per_split: dict[str, int], seed: int = 0, gz: bool = False) -> Path:
    """A FER-2013-shaped CSV whose classes are separable by brightness (so a tiny model can learn them)."""
    rng = np.random.default_rng(seed)
    lines = ["emotion,pixels,Usage"]
    for usage, n in rows_per_split.items():
        for i in range(n):
            label = i % 7
            img = np.clip(rng.normal(30 + 30 * label, 8, (48, 48)), 0, 255).astype(int)
            lines.append(f"{label},{' '.join(map(str, img.ravel()))},{usage}")
    text = "\n".join(lines) + "\n"
    if gz:
        import gzip

        with gzip.open(path, "wt") as fh:
            fh.write(text)
    else:
        path.write_text(text)
    return path


@pytest.fixture(scope="session")
def face_video(tmp_path_factory) -> Path:
    return make_face_video(tmp_path_factory.mktemp("v") / "one_face.mp4", audio=True)


@pytest.fixture(scope="session")
def two_face_video(tmp_path_factory) -> Path:
    return make_face_video(tmp_path_factory.mktemp("v") / "two_faces.mp4", faces=2, size=200)


@pytest.fixture(scope="session")
def shared_videos() -> Path:
    videos = SHARED / "videos"
    if not videos.is_dir():
        pytest.skip("../shared/videos is not present")
    return videos
