"""Where inputs and outputs live: local paths, or URLs of any filesystem that fsspec opens
(``s3://``, ``gs://``, ``abfs://``, ``file://``...) when that filesystem's package is installed.

The runner reads and writes local files only. A video on a store is first copied into a local
staging folder; its outputs are made in that folder, laid out as on the store (so that the
relative links between them hold), then uploaded one by one, the sidecar last: its presence
says the set is complete, as it does locally; a hidden note lists the set while it is uploaded.
An object store makes an upload visible only when it is whole, so each output is uploaded
straight to its name there; on any other filesystem it goes to a hidden part name first and is
renamed.

Object stores have no locks: two runs writing the same outputs at once both succeed, the last
one's files stay (each of them complete).
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import shutil
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path, PurePosixPath
from typing import IO, Any

from fervid.errors import FervidError, OutputError

# A scheme, then "://": a URL rather than a path (a Windows path's drive has no "//").
_URL = re.compile(r"^([a-zA-Z][a-zA-Z0-9+.-]+)://")
# Stores whose uploads appear only once whole (multipart uploads included): no rename needed.
_WHOLE_UPLOADS = {"s3", "s3a", "gs", "gcs", "abfs", "abfss", "az", "adl", "oss", "memory"}


def is_store_url(name: str) -> bool:
    """A URL of a store that holds files (not a live stream's URL, which is read as it plays)."""
    from fervid.video.live import URL as LIVE

    return bool(_URL.match(str(name))) and not LIVE.match(str(name))


class LocalFiles:
    """The local filesystem, with the few operations outputs need (the same as :class:`Store`'s)."""

    protocol = ""

    def name(self, path: Path) -> str:
        return str(path)

    def is_file(self, path: Path) -> bool:
        return Path(path).is_file()

    def is_dir(self, path: Path) -> bool:
        return Path(path).is_dir()

    def exists(self, path: Path) -> bool:
        return os.path.lexists(path)

    def read_text(self, path: Path) -> str:
        return Path(path).read_text(encoding="utf-8")

    def open(self, path: Path, mode: str = "rb") -> IO:
        return open(path, mode)

    def put(self, local: Path, path: Path) -> None:
        """Move a finished local file to ``path`` (in one rename where both are on one filesystem)."""
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        shutil.move(local, path)


LOCAL = LocalFiles()


@dataclass(frozen=True)
class Store:
    """A filesystem fsspec opens; paths on it are written without the protocol (``bucket/key``)."""

    protocol: str
    fs: Any = field(compare=False, repr=False)

    @classmethod
    def of(cls, url: str) -> tuple[Store, PurePosixPath]:
        """The store a URL names, and the path on it."""
        try:
            import fsspec
        except ImportError:
            raise FervidError(f"{url}: URLs need fsspec and the store's own package: "
                              "pip install fsspec s3fs (or gcsfs, adlfs)") from None
        try:
            fs, path = fsspec.core.url_to_fs(url)
        except ImportError as err:  # fsspec names the package: "Please install s3fs to access S3"
            raise FervidError(f"{url}: {err}") from None
        except ValueError as err:
            raise FervidError(f"{url}: not a location fervid can read or write ({err})") from None
        protocol = url.split("://", 1)[0].lower()
        return cls(protocol, fs), PurePosixPath(path.rstrip("/") or "/")

    def name(self, path) -> str:
        return self.fs.unstrip_protocol(str(path))

    def is_file(self, path) -> bool:
        return self.fs.isfile(str(path))

    def is_dir(self, path) -> bool:
        return self.fs.isdir(str(path))

    def exists(self, path) -> bool:
        return self.fs.exists(str(path))

    def read_text(self, path) -> str:
        with self.fs.open(str(path), "rb") as fh:
            return fh.read().decode("utf-8")

    def open(self, path, mode: str = "rb") -> IO:
        return self.fs.open(str(path), mode)

    def get(self, path, local: Path) -> None:
        local.parent.mkdir(parents=True, exist_ok=True)
        try:
            self.fs.get_file(str(path), str(local))
        except (OSError, ValueError) as err:
            raise FervidError(f"{self.name(path)}: cannot be read ({err})") from None

    def put(self, local: Path, path) -> None:
        """Upload a finished local file so that ``path`` is either whole or absent."""
        path = str(path)
        try:
            if self.protocol in _WHOLE_UPLOADS:
                self.fs.put_file(str(local), path)
                return
            parent, name = path.rsplit("/", 1) if "/" in path else ("", path)
            part = f"{parent}/.{name}.part{os.getpid()}"
            self.fs.makedirs(parent, exist_ok=True)
            try:
                self.fs.put_file(str(local), part)
                self.fs.mv(part, path)
            except BaseException:
                if self.fs.exists(part):
                    self.fs.rm_file(part)
                raise
        except OSError as err:
            raise OutputError(f"{self.name(path)}: cannot be written ({err})") from None

    def listed(self, root, read=()) -> Store:
        """This store as it is now under ``root``, from one listing (a request per thousand
        files): its answers on what exists there cost no request. Those of the paths ``read``
        that exist are read at once, all together (fsspec reads a list of files concurrently),
        instead of one after another later."""
        try:
            found = self.fs.find(str(root), withdirs=True, detail=True)
            files = frozenset(k for k, v in found.items() if v.get("type") != "directory")
            wanted = sorted(files & {str(p) for p in read})
            texts = self.fs.cat(wanted, on_error="omit") if wanted else {}
        except OSError as err:
            raise FervidError(f"{self.name(root)}: cannot list it ({err})") from None
        return Listing(self.protocol, self.fs, str(root), files, frozenset(found) - files,
                       {k: v.decode("utf-8", "replace") for k, v in texts.items()})

    def remove(self, path) -> None:
        try:
            self.fs.rm_file(str(path))
        except FileNotFoundError:
            pass
        except OSError as err:
            raise OutputError(f"{self.name(path)}: cannot be removed ({err})") from None

    def videos(self, path: PurePosixPath, recursive: bool, suffixes: set[str]) -> list[PurePosixPath]:
        """The videos in a folder (or under a prefix) of the store, sorted."""
        found = self.fs.find(str(path)) if recursive else [
            e["name"] for e in self.fs.ls(str(path), detail=True) if e.get("type") == "file"]
        return sorted(PurePosixPath(f) for f in found
                      if PurePosixPath(f).suffix.lower() in suffixes and not PurePosixPath(f).name.startswith("."))


@dataclass(frozen=True)
class Listing(Store):
    """A :class:`Store` that answers what exists under ``root`` from a listing made once."""

    root: str = ""
    files: frozenset = frozenset()
    dirs: frozenset = frozenset()
    texts: dict = field(default_factory=dict, compare=False)  # the files read with the listing

    def _known(self, path) -> bool:
        return str(path) == self.root or str(path).startswith(self.root.rstrip("/") + "/")

    def is_file(self, path) -> bool:
        return str(path) in self.files if self._known(path) else super().is_file(path)

    def is_dir(self, path) -> bool:
        return str(path) in self.dirs if self._known(path) else super().is_dir(path)

    def exists(self, path) -> bool:
        return self.is_file(path) or self.is_dir(path)

    def read_text(self, path) -> str:
        return self.texts[str(path)] if str(path) in self.texts else super().read_text(path)


Files = LocalFiles | Store


class Naming:
    """How a run's files are named in what it writes (the sidecar, the page, the ELAN document):
    local files as they are."""

    def name(self, path: Path) -> str:
        return str(path)

    def uri(self, path: Path) -> str:
        return Path(os.path.abspath(path)).as_uri()

    def relative(self, path: Path, start: Path) -> str:
        return os.path.relpath(path, start).replace(os.sep, "/")


class StagedNaming(Naming):
    """Files staged under ``root`` are named by where they live on their store; a link between
    two files stays relative only where both are on the same store."""

    def __init__(self, root: Path, where: dict[Path, tuple[Files, Any]]):
        self.root, self.where = root, where  # staged local path -> (its store, its path there)

    def name(self, path: Path) -> str:
        if path in self.where:
            files, remote = self.where[path]
            return files.name(remote)
        return str(path)

    def uri(self, path: Path) -> str:
        return self.name(path) if path in self.where else super().uri(path)

    def relative(self, path: Path, start: Path) -> str:
        try:  # staged as root/PROTOCOL/BUCKET/...: a link across stores or buckets cannot be relative
            same = path.relative_to(self.root).parts[:2] == start.relative_to(self.root).parts[:2]
        except ValueError:
            same = False
        return super().relative(path, start) if same else self.uri(path)


STAGE_PREFIX = "fervid-stage-"
STALE_AFTER_S = 60  # an unlocked staging folder younger than this may be one being made now


@contextmanager
def _staging():
    """A staging folder in TMPDIR (room for one video), locked while in use and removed after.
    Folders left by processes killed outright (kill -9, out of memory) are unlocked: the next
    staging run removes them, so a node's disk does not fill up over a long batch."""
    _sweep()
    root = Path(tempfile.mkdtemp(prefix=STAGE_PREFIX))
    fd = os.open(root / ".lock", os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        yield root
    finally:
        os.close(fd)
        shutil.rmtree(root, ignore_errors=True)


def _sweep() -> None:
    for old in Path(tempfile.gettempdir()).glob(STAGE_PREFIX + "*"):
        try:
            if time.time() - old.stat().st_mtime < STALE_AFTER_S:
                continue
            fd = os.open(old / ".lock", os.O_RDONLY)
        except OSError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            continue  # in use
        else:
            shutil.rmtree(old, ignore_errors=True)
        finally:
            os.close(fd)


def is_remote(src, outputs) -> bool:
    """Whether a job reads or writes a store (and so runs staged)."""
    return (isinstance(src, str) and is_store_url(src)) or outputs.store is not None


def process_staged(src: str | Path, outputs, settings, progress: bool = True, models=None, sinks=()):
    """:func:`fervid.runner.process_file` for an input or outputs on a store: staged locally,
    then uploaded. The result names the store's files."""
    from fervid.runner import process_file

    store = outputs.store
    with _staging() as root:

        def staged(on: Store, path) -> Path:
            return root / on.protocol / str(path).lstrip("/")

        where: dict[Path, tuple[Files, Any]] = {}
        if isinstance(src, str) and is_store_url(src):
            in_store, in_path = Store.of(src)
            local_src = staged(in_store, in_path)
            in_store.get(in_path, local_src)
            where[local_src] = (in_store, in_path)
        else:
            local_src = Path(src)
        if store is not None:
            local = {k: staged(store, p) for k, p in outputs.named().items()}
            where.update({local[k]: (store, p) for k, p in outputs.named().items()})
            local_outputs = replace(outputs, store=None, **local)
        else:
            local_outputs = outputs
        result = process_file(local_src, local_outputs, settings, progress=progress, models=models, sinks=sinks,
                              naming=StagedNaming(root, where), kept=outputs.kept())
        if store is not None:
            remote = {local_outputs.named()[k]: p for k, p in outputs.named().items()}
            # The note says these are fervid's until the sidecar is up: a rerun after a cut-short
            # upload redoes them instead of refusing them as someone else's files.
            note = root / "uploading.json"
            note.write_text(json.dumps({"outputs": {k: store.name(p) for k, p in outputs.named().items()}}))
            store.put(note, outputs.uploading)
            for path in result.written:  # in the outputs' order: the sidecar last
                store.put(path, remote[path])
            store.remove(outputs.uploading)
            result.written = [store.name(remote[p]) for p in result.written]
        result.input = str(src)
        return result
