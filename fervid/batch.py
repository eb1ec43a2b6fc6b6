"""Many inputs, one output tree: expand directories, skip finished work, run in parallel, never stop on one failure."""

from __future__ import annotations

import dataclasses
import gc
import os
import signal
import threading
import time
from concurrent.futures import Future, ProcessPoolExecutor, ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Callable, Sequence

from tqdm import tqdm

from fervid import _forkserver as forkserver
from fervid.errors import FervidError, OutputError
from fervid.outputs.files import NAME_MAX, Outputs
from fervid.analysis.pipeline import Models
from fervid.settings import Settings
from fervid.runner import FileResult, OpenedInput, open_input, process_file
from fervid.storage import LOCAL, Store, is_remote, is_store_url, process_staged
from fervid.video.encode import Encoding

VIDEO_SUFFIXES = {".mp4", ".mov", ".m4v", ".mkv", ".webm", ".avi", ".gif", ".mpg", ".mpeg", ".wmv", ".flv",
                  ".ts", ".mts", ".m2ts", ".3gp", ".ogv", ".mxf", ".vob"}


@dataclass(frozen=True)
class Job:
    input: Path | str  # a local path, or the URL of a file on a store (see fervid.storage)
    outputs: Outputs

    @property
    def name(self) -> str:
        return PurePosixPath(str(self.input)).name if isinstance(self.input, str) else self.input.name


@dataclass
class BatchReport:
    done: list[FileResult] = field(default_factory=list)
    skipped: list[Path] = field(default_factory=list)
    failed: list[tuple[Path, str]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def expand_inputs(paths: Sequence[str | Path], recursive: bool, exclude: Path | str | None = None
                  ) -> list[tuple[Path | str, Path]]:
    """(file, name relative to its root) for each input; directories give their videos, sorted.
    A URL of a store names a file or a folder (a prefix) there; its files stay URLs.

    Files under ``exclude`` (the output directory, when it lies inside an input directory) are
    left out, so that a rerun never takes fervid's own outputs for inputs.
    """
    found: list[tuple[Path | str, Path]] = []
    skip = exclude.resolve() if isinstance(exclude, Path) else None
    for raw in paths:
        if is_store_url(str(raw)):
            found += _expand_url(str(raw), recursive, exclude if isinstance(exclude, str) else None)
            continue
        p = Path(raw)
        if p.is_dir():
            pattern = "**/*" if recursive else "*"
            inside = skip is not None and skip != p.resolve() and skip.is_relative_to(p.resolve())
            for f in sorted(p.glob(pattern)):
                if inside and f.resolve().is_relative_to(skip):
                    continue
                if f.is_file() and f.suffix.lower() in VIDEO_SUFFIXES and not f.name.startswith("."):
                    found.append((f, f.relative_to(p)))
        else:
            found.append((p, Path(p.name)))
    return found


def _expand_url(url: str, recursive: bool, exclude: str | None) -> list[tuple[str, Path]]:
    store, path = Store.of(url)
    try:
        if not store.is_dir(path):
            return [(url, Path(path.name))]
        # The output folder inside the input folder (not the same one) holds no inputs.
        skip = exclude.rstrip("/") + "/" if exclude and exclude.rstrip("/") != url.rstrip("/") else None
        return [(store.name(f), Path(f.relative_to(path))) for f in store.videos(path, recursive, VIDEO_SUFFIXES)
                if not (skip and store.name(f).startswith(skip))]
    except OSError as err:
        raise FervidError(f"{url}: cannot list it ({err})") from None


# The outputs that may go elsewhere than beside the others, with the extension each is written as.
PLACED = {"plot": ".png", "html": ".html", "vtt": ".vtt", "srt": ".srt", "eaf": ".eaf"}


def plan(inputs: list[tuple[Path | str, Path]], out: Path, single: bool, *, video: bool = False,
         timeline: bool = False, plot: bool = False, plot_out: Path | None = None,
         encoding: Encoding = Encoding(), places: dict[str, Path | None] | None = None,
         store: Store | None = None) -> list[Job]:
    """Output names: ``out`` itself names them for a single input; otherwise they mirror the inputs under ``out``.
    ``places`` asks for the outputs of :data:`PLACED` by kind: None beside the others, else a
    file of the right extension (a single input) or a folder; ``plot``/``plot_out`` is the same for the plot.
    With ``store``, ``out`` and the places are paths on that store."""
    places = dict(places or {})
    if plot:
        places["plot"] = plot_out
    jobs = []
    for src, rel in inputs:
        base = out.parent / out.stem if single else out / rel.parent / rel.stem

        def named(ext: str) -> Path:
            return base.with_name(base.name + ext)

        def placed(kind: str) -> Path | None:
            if kind not in places:
                return None
            where, ext = places[kind], PLACED[kind]
            if where is None:
                return named(ext)
            if where.suffix.lower() == ext:  # a file name: one input (the CLI checks)
                return where
            return where / (rel.parent if not single else Path()) / (rel.stem + ext)

        jobs.append(Job(src, Outputs(
            video=(out if single else named(".mp4")) if video else None,
            timeline=named(".csv") if timeline else None,
            summary=named(".summary.csv") if timeline else None,
            plot=placed("plot"), html=placed("html"), vtt=placed("vtt"), srt=placed("srt"), eaf=placed("eaf"),
            sidecar=named(".json"),
            encoding=encoding, store=store,
        )))
    seen: dict[Path, Path] = {}
    for job in jobs:
        for p in job.outputs.paths():
            if len(os.fsencode(p.name)) > NAME_MAX:
                raise FervidError(f"{p}: the output's file name is too long for the file system; rename {job.input}")
        key = job.outputs.sidecar
        if key in seen:
            raise FervidError(f"{seen[key]} and {job.input} would write the same outputs ({key.with_suffix('')}.*); "
                              "process them in separate runs or rename one")
        seen[key] = job.input
    return jobs


def run_job(job: Job, settings: Settings, progress: bool, models: Models | None = None,
            opened: OpenedInput | None = None) -> FileResult:
    """One job, wherever its files are: on a store, it runs staged (see fervid.storage)."""
    if is_remote(job.input, job.outputs):
        return process_staged(job.input, job.outputs, settings, progress=progress, models=models)
    return process_file(job.input, job.outputs, settings, progress=progress, models=models, opened=opened)


def _work(job: Job, settings: Settings, progress: bool,
          models: Models | None = None, opened: Future | None = None) -> FileResult | None:
    if _worker_stop is not None and _worker_stop.is_set():
        return None  # the batch was interrupted: take no new file
    try:
        return run_job(job, settings, progress, models or _worker_models, opened.result() if opened else None)
    except BaseException:
        if _run_pid is not None and not _alive(_run_pid):
            os._exit(128 + signal.SIGTERM)  # the run that started this worker is gone; its part files are removed
        raise


# Set in each worker process by the pool's initializer (the per-process state fervid keeps): the
# main process raises the event on Ctrl-C so that workers start no new file; the networks are
# loaded once per worker. Both stay None in the main process.
_worker_stop = None
_worker_models: Models | None = None
_run_pid: int | None = None


def _interrupt(signum, frame) -> None:
    # The first signal stops the file at work; later ones (Ctrl-C reaches a worker directly, then
    # the run sends it SIGTERM) must not cut short the removal of its part files.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    raise KeyboardInterrupt


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return True


def _watch_run(pid: int) -> None:
    """SIGTERM this worker within half a second of the run's end, however it ended (kill -9
    included). Its parent is the forkserver, which lives while any worker does, so the kernel's
    parent-death signal would never come."""
    while _alive(pid):
        time.sleep(0.5)
    os.kill(os.getpid(), signal.SIGTERM)


def _init_worker(stop, settings: Settings, run_pid: int) -> None:
    global _worker_stop, _worker_models, _run_pid
    _worker_stop, _run_pid = stop, run_pid
    # SIGTERM (from the run on an interrupt, or from the watcher below) stops the current file
    # like Ctrl-C: its part files are removed.
    signal.signal(signal.SIGINT, _interrupt)
    signal.signal(signal.SIGTERM, _interrupt)
    threading.Thread(target=_watch_run, args=(run_pid,), name="fervid-watch-run", daemon=True).start()
    _worker_models = Models.load(settings)
    gc.freeze()  # as the CLI does: the modules and networks live as long as the worker


def worker_cap(n_jobs: int) -> int:
    """``--jobs`` within the machine: no more workers than cores, nor than memory holds (each
    loads its own networks and buffers, about 450 MB at 1080p)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    try:
        free = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        free = None
    by_memory = max(1, int(free // (450 << 20))) if free else n_jobs
    return max(1, min(n_jobs, cores, by_memory))


def triage(jobs: list[Job], overwrite: bool, report: BatchReport, on_event: Callable[[str], None]) -> list[Job]:
    """The jobs to run, decided before any work from the outputs asked for in this run: the
    others are skipped (done by an earlier run) or failed (their outputs would replace a file
    fervid did not write, or the input)."""
    todo = []
    listings = _listings(jobs)
    for job in jobs:
        try:
            outputs = job.outputs
            if outputs.store is not None and outputs.store in listings:
                outputs = dataclasses.replace(outputs, store=listings[outputs.store])
            outputs.check_input(job.input)
            if not overwrite and outputs.complete():
                report.skipped.append(job.input)
                continue
            if not overwrite and (taken := outputs.foreign()):
                raise OutputError(f"{taken[0]}: already exists and was not written by fervid "
                                  "(--overwrite replaces it)")
            todo.append(job)
        except OutputError as err:
            report.failed.append((job.input, str(err)))
            on_event(f"fervid: failed: {err}")
    return todo


def _listings(jobs: list[Job]) -> dict[Store, Store]:
    """For a batch whose outputs are on a store: that store listed once under the outputs'
    common folder, its sidecars read together, so that deciding what to skip asks a request per
    thousand files (and the reads at once) instead of several requests a video in turn."""
    on_store = [job.outputs for job in jobs if job.outputs.store is not None]
    if len(on_store) < 2:
        return {}
    store = on_store[0].store
    if any(o.store != store for o in on_store):
        return {}
    root = os.path.commonpath([str(p.parent) for o in on_store for p in o.paths()])
    return {store: store.listed(root, read=[p for o in on_store for p in (o.sidecar, o.uploading) if p])}


def settle_one(report: BatchReport, job: Job, fn: Callable[[], FileResult | None], progress: bool,
               verbose: bool, on_event: Callable[[str], None]) -> FileResult | None:
    """Run ``fn`` (one file's work, or fetching its result) and file the outcome: one bad file
    must not end the batch."""
    try:
        res = fn()
        if res is None:
            return None
        report.done.append(res)
        if progress:
            for path in res.written:
                on_event(f"fervid: wrote {path}")
        if res.warning:
            report.warnings.append(res.warning)
            on_event(f"fervid: warning: {res.warning}")
        return res
    except FervidError as err:
        report.failed.append((job.input, str(err)))
        on_event(f"fervid: failed: {err}")
    except (KeyboardInterrupt, SystemExit):
        raise
    except Exception as err:  # noqa: BLE001 - one bad file must not end the batch
        if verbose:
            import traceback

            traceback.print_exc()
        report.failed.append((job.input, f"{type(err).__name__}: {err}"))
        on_event(f"fervid: failed: {job.input}: unexpected {type(err).__name__}: {err}")
    return None


def run_batch(jobs: list[Job], settings: Settings, n_jobs: int = 1,
              overwrite: bool = False, progress: bool = True, verbose: bool = False,
              on_event: Callable[[str], None] = print, models: Models | None = None) -> BatchReport:
    """Each process loads the networks once for all its files: ``models`` here (or loaded here if
    not given), its own in each worker process."""
    report = BatchReport()
    todo = triage(jobs, overwrite, report, on_event)
    bar = tqdm(total=len(todo), unit="file", desc="videos", disable=not progress or len(todo) < 2, position=1)

    def settle(job: Job, fn: Callable[[], FileResult | None]) -> None:
        settle_one(report, job, fn, progress, verbose, on_event)
        bar.update(1)

    if n_jobs <= 1 or len(todo) <= 1:
        own = models is None  # loaded even with nothing to do: a mis-fitting model is always reported
        # The next file is opened (probed, its decoding started) while this one is analysed, and
        # the first one while the networks load (~0.1 s of a cold start: 5% of a short clip).
        opener = ThreadPoolExecutor(1, thread_name_prefix="fervid-open")
        opened: Future | None = None
        ahead: Future | None = None
        if todo and not is_remote(todo[0].input, todo[0].outputs):
            ahead = opener.submit(open_input, todo[0].input, todo[0].outputs, settings, True)
        try:
            models = Models.load(settings) if own else models
            for i, job in enumerate(todo):
                opened, ahead = ahead, None
                if i + 1 < len(todo) and not is_remote(todo[i + 1].input, todo[i + 1].outputs):
                    nxt = todo[i + 1]
                    ahead = opener.submit(open_input, nxt.input, nxt.outputs, settings, True)
                settle(job, lambda job=job, opened=opened: _work(job, settings, progress, models, opened))
        finally:
            for f in (opened, ahead):  # opened but perhaps never analysed: the batch was interrupted
                if f is not None and not f.cancel() and f.exception() is None:
                    f.result().close()  # harmless where process_file closed it
            opener.shutdown()
            if own and models is not None:
                models.close()
    else:
        # One thread per worker: the workers already fill the cores between them.
        worker_settings = dataclasses.replace(settings, threads=settings.threads or 1)
        ctx = forkserver.context()  # see fervid/_forkserver.py for why not fork
        stop = ctx.Event()
        pool = ProcessPoolExecutor(max_workers=n_jobs, initializer=_init_worker, initargs=(stop, worker_settings, os.getpid()),
                                   mp_context=ctx)
        try:
            futures = {pool.submit(_work, job, worker_settings, False): job for job in todo}
            for fut in as_completed(futures):
                settle(futures[fut], fut.result)
        except KeyboardInterrupt:
            # Let no worker start another file, stop the ones at work (Ctrl-C from a terminal
            # reached them already; SIGTERM or SIGHUP to this process did not), and wait while
            # they remove their part files.
            stop.set()
            for proc in list(getattr(pool, "_processes", {}).values()):
                if proc.is_alive():
                    proc.terminate()
            pool.shutdown(wait=True, cancel_futures=True)
            raise
        pool.shutdown(wait=True)
    bar.close()
    return report


def write_index(jobs: list[Job], folder: Path) -> Path | str | None:
    """``folder/index.html``: every video whose page exists, with its faces' dominant emotions
    (from each sidecar), linking to the page."""
    import json
    import tempfile

    from fervid.outputs.report import write_index as write

    files = jobs[0].outputs.files if jobs else LOCAL
    entries = []
    for job in jobs:
        page, sidecar = job.outputs.html, job.outputs.sidecar
        if page is None or not files.is_file(page):
            continue
        try:
            record = json.loads(files.read_text(sidecar)) if sidecar and files.is_file(sidecar) else {}
        except (OSError, ValueError):
            record = {}
        dominant = sorted((int(k), v) for k, v in (record.get("dominant_emotions") or {}).items())
        entries.append({"href": os.path.relpath(page, folder).replace(os.sep, "/"), "name": job.name,
                        "dominant": dominant, "complete": record.get("complete", True)})
    if not entries:
        return None
    index = folder / "index.html"
    # Made beside its final name (one rename locally), or in a local folder to be uploaded.
    with tempfile.TemporaryDirectory(prefix=".fervid-index-", dir=folder if files is LOCAL else None) as tmp:
        part = Path(tmp) / "index.html"
        with open(part, "w", encoding="utf-8") as fh:
            write(fh, entries)
        files.put(part, index)
    return files.name(index) if files is not LOCAL else index
