"""Where one input's outputs go, and writing them atomically: hidden part files renamed to their
final names only when the whole set is complete, deleted on any failure."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from fervid.errors import OutputError
from fervid.video.encode import Encoding


@dataclass(frozen=True)
class Outputs:
    """Where each product of one input goes; None means not wanted."""

    video: Path | None = None
    timeline: Path | None = None
    summary: Path | None = None
    plot: Path | None = None
    sidecar: Path | None = None  # written last: it marks the set as complete
    encoding: Encoding = Encoding()  # how the video is compressed

    def paths(self) -> list[Path]:
        return [p for p in (self.video, self.timeline, self.summary, self.plot, self.sidecar) if p is not None]

    def complete(self) -> bool:
        """All written by an earlier run (a plot is not made for a video without faces)."""
        need = [p for p in self.paths() if p != self.plot]
        return bool(need) and all(p.is_file() for p in need)

    def check(self, src: Path) -> None:
        """Refuse to overwrite the input; make sure each output folder exists and takes files."""
        for p in self.paths():
            try:
                same = p.exists() and os.path.samefile(p, src)
            except OSError:
                same = False
            if same or p.resolve() == src.resolve():
                raise OutputError(f"{p}: the output would overwrite the input; choose another output path")
            try:
                p.parent.mkdir(parents=True, exist_ok=True)
            except OSError as err:
                raise OutputError(f"{p.parent}: cannot create the output directory ({err.strerror})") from None
            if not os.access(p.parent, os.W_OK):
                raise OutputError(f"{p.parent}: the output directory is not writable")


class PartFiles:
    """Hidden ``.NAME.partPID.ext`` files for the outputs: renamed on ``commit()``, deleted on any failure."""

    def __init__(self, outputs: Outputs):
        self.order = outputs.paths()  # the sidecar comes last
        self.parts = {p: p.with_name(f".{p.stem}.part{os.getpid()}{p.suffix}") for p in self.order}
        for final in self.order:  # left by a killed run (kill -9, power loss) of the same output
            for stale in final.parent.glob(f".{final.stem}.part*{final.suffix}"):
                stale.unlink(missing_ok=True)

    def __getitem__(self, final: Path) -> Path:
        return self.parts[final]

    def drop(self, final: Path) -> None:
        """This output will not be made after all."""
        self.parts.pop(final).unlink(missing_ok=True)

    def open_text(self, final: Path):
        try:
            return open(self.parts[final], "w", encoding="utf-8", newline="")
        except OSError as err:
            raise OutputError(f"{final.parent}: cannot write output there ({err.strerror})") from None

    def commit(self) -> None:
        for final in self.order:
            if final in self.parts:
                os.replace(self.parts[final], final)

    def discard(self) -> None:
        for part in self.parts.values():
            part.unlink(missing_ok=True)
