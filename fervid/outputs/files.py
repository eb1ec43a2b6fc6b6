"""Where one input's outputs go, and writing them atomically: hidden part files renamed to their
final names only when the whole set is complete, deleted on any failure."""

from __future__ import annotations

import fcntl
import glob
import hashlib
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

from fervid.errors import OutputError
from fervid.storage import LOCAL, Store
from fervid.video.encode import Encoding


@dataclass(frozen=True)
class Outputs:
    """Where each product of one input goes; None means not wanted."""

    video: Path | None = None
    timeline: Path | None = None
    summary: Path | None = None
    plot: Path | None = None
    html: Path | None = None  # the page of the video and its timelines
    vtt: Path | None = None  # subtitles: WebVTT
    srt: Path | None = None  # subtitles: SubRip
    eaf: Path | None = None  # ELAN annotation document
    sidecar: Path | None = None  # written last: it marks the set as complete
    encoding: Encoding = Encoding()  # how the video is compressed
    store: Store | None = None  # the paths are on this store (see fervid.storage), not local

    @property
    def files(self):
        return self.store or LOCAL

    def named(self) -> dict[str, Path]:
        """The outputs asked for, by kind, the sidecar last."""
        kinds = ("video", "timeline", "summary", "plot", "html", "vtt", "srt", "eaf", "sidecar")
        return {k: getattr(self, k) for k in kinds if getattr(self, k) is not None}

    def paths(self) -> list[Path]:
        return list(self.named().values())

    @property
    def uploading(self) -> Path | None:
        """On a store: the note that lists the outputs while they are uploaded (a store cannot
        rename a set into place at once), removed after the sidecar."""
        if self.store is None or self.sidecar is None:
            return None
        return self.sidecar.with_name(f".{self.sidecar.stem}.uploading.json")

    def _record(self, path: Path | None) -> dict | None:
        if path is None or not self.files.is_file(path):
            return None
        try:
            record = json.loads(self.files.read_text(path))
            return record if isinstance(record, dict) and isinstance(record.get("outputs"), dict) else None
        except (OSError, ValueError):
            return None

    def earlier(self) -> tuple[dict[str, str], int | None]:
        """What earlier runs wrote here, as the sidecar records it (kind -> file name), and how
        many faces they found; with an upload cut short, also what it was uploading."""
        written, faces = {}, None
        for record in (self._record(self.uploading), self._record(self.sidecar)):
            if record is not None:
                written.update({k: Path(v).name for k, v in record["outputs"].items() if isinstance(v, str)})
                faces = record.get("faces", faces)
        return written, faces

    def kept(self) -> dict[str, str]:
        """The outputs earlier runs wrote here that still exist (kind -> name), which a new
        sidecar keeps listing where the new run does not redo them."""
        if self.sidecar is None:
            return {}
        written, _ = self.earlier()
        return {k: self.files.name(self.sidecar.with_name(n)) for k, n in written.items()
                if self.files.is_file(self.sidecar.with_name(n))}

    def complete(self) -> bool:
        """Every output asked for in this run was written by an earlier run (a plot is not made
        for a video without faces), and no upload of them was cut short."""
        if self.uploading is not None and self.files.is_file(self.uploading):
            return False
        written, faces = self.earlier()
        need = {k: p for k, p in self.named().items() if not (k == "plot" and faces == 0)}
        return bool(need) and all(written.get(k) == p.name and self.files.is_file(p) for k, p in need.items())

    def foreign(self) -> list[Path]:
        """Outputs' paths taken by something fervid did not write there: a file of the user's,
        or a folder. Never replaced without ``--overwrite`` (a folder not even then)."""
        written, _ = self.earlier()
        files = self.files
        return [p for k, p in self.named().items()
                if files.is_dir(p) or (files.exists(p) and written.get(k) != p.name)]

    def check_input(self, src: Path | str) -> None:
        """Refuse to overwrite the input, or a folder."""
        if self.store is not None or isinstance(src, str):  # a URL: the same URL is the same file
            for p in self.paths():
                if self.files.name(p) == str(src):
                    raise OutputError(f"{src}: the output would overwrite the input; choose another output path")
            return
        for p in self.paths():
            try:
                same = p.exists() and os.path.samefile(p, src)
            except OSError:
                same = False
            if same or os.path.realpath(p) == os.path.realpath(src):
                raise OutputError(f"{p}: the output would overwrite the input; choose another output path")
            if p.is_dir():
                raise OutputError(f"{p}: is a folder; choose another output path")

    def check(self, src: Path) -> None:
        """:meth:`check_input`, and make sure each output folder exists and takes files."""
        self.check_input(src)
        for p in self.paths():
            try:
                p.parent.mkdir(parents=True, exist_ok=True)
            except OSError as err:
                raise OutputError(f"{p.parent}: cannot create the output directory ({err.strerror})") from None
            if not os.access(p.parent, os.W_OK):
                raise OutputError(f"{p.parent}: the output directory is not writable")


NAME_MAX = 255  # bytes in one file name, on every common filesystem


def part_path(final: Path, pid: int | str) -> Path:
    """The hidden ``.NAME.partPID.ext`` beside ``final``; a name near the length limit is
    shortened (with a hash of the whole, so that two long names keep apart)."""
    stem, suffix = final.stem, final.suffix
    if len(os.fsencode(f".{stem}.part{pid}{suffix}")) > NAME_MAX:
        digest = hashlib.sha1(os.fsencode(stem)).hexdigest()[:10]
        room = NAME_MAX - len(os.fsencode(f".~{digest}.part{pid}{suffix}")) - 8  # PIDs may grow
        stem = os.fsencode(stem)[:room].decode("utf-8", "ignore") + "~" + digest  # no half a character
    return final.with_name(f".{stem}.part{pid}{suffix}")


class PartFiles:
    """Hidden part files for the outputs, locked while this run writes them: renamed on
    ``commit()``, deleted on any failure. A part left by a killed run (kill -9, power loss) is
    removed; one still locked belongs to a run writing the same output now, which is refused."""

    def __init__(self, outputs: Outputs):
        self.order = outputs.paths()  # the sidecar comes last
        self.parts = {p: part_path(p, os.getpid()) for p in self.order}
        self._locks: list[int] = []
        try:
            for final, part in self.parts.items():
                fd = os.open(part, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
                self._locks.append(fd)
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            for final, part in self.parts.items():
                self._clear_stale(final, part)
        except OSError as err:
            self.discard()
            raise OutputError(f"{self.order[0].parent}: cannot write output there ({err.strerror})") from None
        except BaseException:
            self.discard()
            raise

    @staticmethod
    def _clear_stale(final: Path, mine: Path) -> None:
        pattern = re.compile(re.escape(part_path(final, "PID").name).replace("PID", r"\d+") + r"\Z")
        for other in final.parent.glob(glob.escape(part_path(final, "").name.rsplit(".part", 1)[0]) + ".part*"):
            if other == mine or not pattern.match(other.name):
                continue
            try:
                fd = os.open(other, os.O_RDONLY)
            except FileNotFoundError:
                continue
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise OutputError(f"{final}: another fervid run is writing it now; wait for it, "
                                  "or choose another output") from None
            finally:
                os.close(fd)
            other.unlink(missing_ok=True)

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
        self._unlock()

    def discard(self) -> None:
        for part in self.parts.values():
            part.unlink(missing_ok=True)
        self._unlock()

    def _unlock(self) -> None:
        for fd in self._locks:
            os.close(fd)
        self._locks = []
