"""The commands on videos: annotate, timeline (files, folders, stores, live sources) and
report. Options are parsed into Settings and output plans; the work is the library's."""

from __future__ import annotations

import gc
import os
import signal
import sys

import click

from fervid.cli.common import (
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_SOME_FAILED,
    EXIT_USAGE,
    Terminated,
    fail,
    on_signal,
    say,
)
from fervid.errors import FervidError
from fervid.video.encode import OUTPUT_SUFFIXES, PRESETS, Encoding


def _checked(name: str, meta: dict):
    """A click callback that applies the setting's own check (fervid.settings), so that a bad
    value is a usage error (exit 2) naming the allowed range, before any work."""
    from fervid.settings import check_tiles, check_value

    def callback(ctx, param, value):
        try:
            value = check_value(name, value, meta)
            return check_tiles(value) if name == "tiles" else value
        except FervidError as err:
            raise click.BadParameter(str(err).split(": ", 1)[-1]) from None

    return callback


def _setting_options() -> list:
    """One click option per everyday setting, built from :class:`fervid.settings.Settings`."""
    from fervid.settings import options_spec

    opts = []
    for name, default, meta in options_spec():
        flag = "--" + name.replace("_", "-")
        shown = meta["shown"] if meta["shown"] is not None else (default is not None and default is not False)
        if meta["kind"] is bool:
            opts.append(click.option(flag, name, is_flag=True, default=default, help=meta["help"]))
        elif meta["choices"]:
            opts.append(click.option(flag, name, type=click.Choice(meta["choices"]), default=default,
                                     show_default=shown, help=meta["help"]))
        else:
            opts.append(click.option(flag, name, type=meta["kind"], default=default, show_default=shown,
                                     callback=_checked(name, meta), help=meta["help"]))
        if name == "smooth":
            opts.append(click.option("--no-smooth", is_flag=True,
                                     help="No smoothing (with --classify-every 0: raw per-frame probabilities)."))
    return opts


def _common(f):
    """Options shared by annotate and timeline."""
    opts = [
        click.argument("inputs", nargs=-1, required=True, type=click.Path()),
        *_setting_options(),
        click.option("-r", "--recursive", is_flag=True, help="Look for videos in sub-directories too."),
        click.option("-j", "--jobs", type=click.IntRange(min=1), default=1, show_default=True,
                     help="Videos processed in parallel."),
        click.option("--ray", "ray_address", is_flag=False, flag_value="", default=None, metavar="[ADDRESS]",
                     help="Spread the videos over a Ray cluster (pip install 'fervid[ray]'): the one at ADDRESS, "
                          "or the one RAY_ADDRESS or 'ray start' names, else a local one. Paths must be reachable "
                          "from every node (a shared folder, or URLs: s3://...). Writes OUT/timeline.parquet/ and "
                          "OUT/summary.parquet too."),
        click.option("--parquet", is_flag=True, help="Also gather the run's timelines into OUT/timeline.parquet/ "
                     "(partitioned by video) and OUT/summary.parquet (needs the CSVs; pip install 'fervid[parquet]')."),
        click.option("--overwrite", is_flag=True, help="Redo videos whose outputs already exist."),
        click.option("-q", "--quiet", is_flag=True, help="No progress bars."),
        click.option("-v", "--verbose", is_flag=True, help="Tracebacks on errors."),
    ]
    for opt in reversed(opts):
        f = opt(f)
    return f


def _settings(options: dict):
    """The Settings of a command's options (removed from ``options``)."""
    from fervid.settings import Settings, options_spec

    values = {name: options.pop(name) for name, _, _ in options_spec()}
    if options.pop("no_smooth"):
        values["smooth"] = 0.0
    return Settings.from_options(**values)


def _run(jobs, settings, n_jobs, overwrite, quiet, verbose, print_tables=False, after=None, ray_address=None):
    from fervid.batch import worker_cap

    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, on_signal)
    cap = worker_cap(n_jobs)
    if cap < n_jobs:
        say(f"fervid: --jobs {n_jobs}: running {cap} at a time (the cores and free memory this machine has)")
        n_jobs = cap
    if n_jobs > 1 and len(jobs) > 1:
        from fervid import _forkserver as forkserver

        forkserver.start()  # it imports fervid while this process does
    from fervid.analysis.classify import Classifier
    from fervid.batch import run_batch
    from fervid.outputs.summary import format_summary_table

    # What is imported now lives as long as the process: the cyclic collector need not walk those
    # objects again, in the run's full collections or at exit (~40 ms of every run's exit).
    gc.freeze()
    try:
        # A mis-fitting model is refused before any output is written: with --jobs each worker
        # process loads its own networks, so the check here is all that is needed; one job loads
        # them in run_batch while its first video is being opened.
        if n_jobs > 1:
            Classifier(settings.model, settings.device, 1, settings.tta)
        if not jobs:
            raise click.UsageError("no video found in the given inputs")
        if ray_address is not None:
            from fervid.cluster import run_on_ray

            report = run_on_ray(jobs, settings, ray_address or None, overwrite, progress=not quiet, verbose=verbose,
                                on_event=say)
        else:
            report = run_batch(jobs, settings, n_jobs, overwrite, progress=not quiet, verbose=verbose,
                               on_event=say)
    except KeyboardInterrupt as err:
        say("fervid: interrupted; finished outputs are kept, partial ones removed")
        sys.exit(128 + err.signum if isinstance(err, Terminated) else EXIT_INTERRUPTED)
    except FervidError as err:
        fail(err, verbose)
        sys.exit(EXIT_USAGE)
    if after is not None:
        try:
            after()
        except (FervidError, OSError) as err:
            fail(err, verbose)
    if print_tables:
        for res in report.done:
            click.echo(f"\n{res.input}: {_count(res.frames, 'frame')}, {_count(res.faces, 'face')}")
            click.echo(format_summary_table(res.summary))
    parts = [f"{len(report.done)} done"]
    if report.skipped:
        parts.append(f"{len(report.skipped)} skipped (outputs already complete; --overwrite redoes them)")
    if report.warnings:
        parts.append(f"{len(report.warnings)} with warnings")
    if report.failed:
        parts.append(f"{len(report.failed)} failed")
    if len(jobs) > 1 or report.failed or report.skipped:
        say("fervid: " + ", ".join(parts))  # each failure was told as it happened
    sys.exit(EXIT_SOME_FAILED if report.failed else EXIT_OK)


def _positive(value, option: str):
    import math

    if value is not None and not (math.isfinite(value) and value > 0):
        raise click.BadParameter(f"{value} is not a positive number of seconds", param_hint=option)
    return value


def _live_options(f):
    """Options for live sources, shared by annotate and timeline."""
    opts = [
        click.option("--duration", type=float, default=None, callback=lambda c, p, v: _positive(v, "--duration"),
                     help="Live sources: stop after this many seconds (else at the stream's end or Ctrl-C)."),
        click.option("--jsonl", "jsonl_path", type=click.Path(), default=None,
                     help="Live sources: also write each row as a JSON line to PATH ('-': standard output)."),
        click.option("--format", "input_format", default=None, metavar="FORMAT",
                     help="Live sources: FFmpeg's input format, for a capture device (v4l2, avfoundation, dshow)."),
        click.option("--reconnect", type=click.IntRange(0, 1000), default=0, show_default=True,
                     help="Live sources: reopen a stream that drops, up to N tries in a row (with back-off)."),
        click.option("--show", is_flag=True, help="Live sources: a window with the annotated picture (needs a "
                     "display; q or closing it ends the run)."),
    ]
    for opt in reversed(opts):
        f = opt(f)
    return f


def _live_asked(inputs, options) -> bool:
    from fervid.video.live import is_live

    return (any(is_live(i, options["input_format"]) for i in inputs) or options["duration"] is not None
            or options["jsonl_path"] is not None or options["reconnect"] > 0 or options["show"])


def _run_live(inputs, csv_path, video_path, quiet, verbose, options) -> None:
    """One live source read as it plays into a timeline CSV (rows as they come), a recording, JSON
    lines, and the summary and sidecar at the end; Ctrl-C or SIGTERM ends it with every output complete."""
    from pathlib import Path

    from fervid.outputs.files import Outputs
    from fervid.video.live import is_live

    fmt, duration, jsonl_path = options.pop("input_format"), options.pop("duration"), options.pop("jsonl_path")
    reconnect, show = options.pop("reconnect"), options.pop("show")
    if len(inputs) != 1 or not is_live(inputs[0], fmt):
        raise click.UsageError("a live source (a URL, a device, or - for standard input) is read alone, and "
                               "--duration, --jsonl, --format and --reconnect are for live sources only")
    if csv_path is None and jsonl_path is None and video_path is None:
        raise click.UsageError("a live source needs --csv FILE.csv or --jsonl PATH (or both)")
    if show and os.name == "posix" and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        raise click.UsageError("--show needs a display, and there is none here (DISPLAY is not set)")
    unused = [k for k in ("html", "vtt", "srt", "eaf") if options.get(f"{k}_path")]
    if unused or options.get("ray_address") is not None or options.get("parquet"):
        raise click.UsageError("a live source writes the timeline CSV, its summary and sidecar, and JSON lines only")
    for key in ("html_path", "vtt_path", "srt_path", "eaf_path", "ray_address", "parquet"):
        options.pop(key, None)
    outputs = Outputs()
    if video_path is not None:  # annotate: the recording names the rest
        outputs = Outputs(video=video_path, timeline=video_path.with_suffix(".csv") if csv_path else None,
                          summary=video_path.with_name(video_path.stem + ".summary.csv") if csv_path else None,
                          sidecar=video_path.with_suffix(".json"), encoding=options.pop("encoding"))
    elif csv_path is not None:
        csv_file, is_file = _output("--csv", csv_path, (".csv",), "the timeline", True)
        if not is_file:
            raise click.UsageError("--csv: a live source's timeline needs a file name (NAME.csv)")
        outputs = Outputs(timeline=csv_file, summary=csv_file.with_name(csv_file.stem + ".summary.csv"),
                          sidecar=csv_file.with_suffix(".json"))
    for p in outputs.paths():
        if p.exists() and not options.get("overwrite"):
            raise click.UsageError(f"{p} exists; a live run does not replace files without --overwrite")
        p.parent.mkdir(parents=True, exist_ok=True)
    options.pop("overwrite", None)
    settings = _settings(options)
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, on_signal)
    from fervid.runner import process_live

    jsonl = None
    try:
        jsonl = sys.stdout if jsonl_path == "-" else (open(jsonl_path, "w", encoding="utf-8") if jsonl_path else None)
        res = process_live(inputs[0], outputs, settings, jsonl=jsonl, fmt=fmt, duration=duration,
                           progress=not quiet and jsonl_path != "-", reconnect=reconnect, show=show)
    except FervidError as err:
        fail(err, verbose)
        sys.exit(EXIT_SOME_FAILED)
    finally:
        if jsonl is not None and jsonl is not sys.stdout:
            jsonl.close()
    if not quiet:
        for path in [*res.written, *([Path(jsonl_path)] if jsonl_path not in (None, "-") else [])]:
            say(f"fervid: wrote {path}")
        say(f"fervid: {res.ended}: {_count(res.received, 'frame')} received, {res.frames} analysed, "
             f"{res.dropped} dropped; {_count(res.faces, 'face')}")
    sys.exit(EXIT_OK)


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" + ("" if n == 1 else "s")


def _expand(inputs, recursive: bool, exclude):
    from fervid.batch import expand_inputs

    try:
        return expand_inputs(inputs, recursive, exclude)
    except FervidError as err:
        raise click.UsageError(str(err)) from None


def _plan(*args, **kwargs):
    from fervid.batch import plan

    try:
        return plan(*args, **kwargs)
    except FervidError as err:
        raise click.UsageError(str(err)) from None


def _output(option: str, value: str, suffixes: tuple[str, ...], what: str, single: bool, on_store=None):
    """(path, names a file): a file exactly when its extension is one ``what`` is written as;
    no extension (or a trailing slash) names a folder; anything else is a usage error.
    ``on_store``: the path ``value`` names on a store (what is there is not looked at); without
    it ``value`` is a local path, and a URL is refused."""
    from pathlib import Path

    from fervid.storage import is_store_url

    local = on_store is None
    if local and is_store_url(value):
        raise click.UsageError(f"{option} {value}: a URL is taken only for the main output (-o, or --csv); "
                               "leave PATH out to write this beside it")
    path = Path(value) if local else Path(str(on_store))
    as_folder = value.endswith(("/", os.sep)) or not path.suffix
    if as_folder:
        if local and path.exists() and not path.is_dir():
            raise click.UsageError(f"{option} {value}: a file of that name exists; give a folder for the outputs")
        return path, False
    if path.suffix.lower() not in suffixes:
        raise click.UsageError(f"{option} {value}: {what} is written as {' or '.join(suffixes)}; give such a file "
                               "name, or a folder name without an extension (or ending in /)")
    if local and path.is_dir():
        raise click.UsageError(f"{option} {value}: is a folder; give a file name, or the folder without an extension")
    if not single:
        raise click.UsageError(f"{option} {value}: several inputs need an output folder, not a file name")
    return path, True


def _main_output(option: str, value: str, suffixes: tuple[str, ...], what: str, single: bool, places: dict):
    """:func:`_output` for the main output, which may also be a URL of a store (s3://...):
    (path, names a file, the store or None). On a store, every output goes beside it."""
    from fervid.storage import Store, is_store_url

    if not is_store_url(value):
        return (*_output(option, value, suffixes, what, single), None)
    try:
        store, path = Store.of(value)
    except FervidError as err:
        raise click.UsageError(str(err)) from None
    named = [f"--{kind}" for kind, where in places.items() if where is not None]
    if named:
        raise click.UsageError(f"{', '.join(named)}: with outputs on a store ({value}), the others go beside "
                               "them: leave PATH out")
    return (*_output(option, value, suffixes, what, single, on_store=path), store)


_PRODUCTS = (("html", ".html", "the page"), ("vtt", ".vtt", "WebVTT subtitles"), ("srt", ".srt", "SRT subtitles"),
             ("eaf", ".eaf", "the ELAN document"))


def _products(f):
    """--html, --vtt, --srt, --eaf: each beside the other outputs, or at PATH (a file for one input, else a folder)."""
    helps = {"html": "Also write a page per video that works offline: the video with its faces' timelines in step "
                     "(and OUT/index.html for a folder)",
             "vtt": "Also write WebVTT subtitles: a cue whenever a face's top emotion changes",
             "srt": "Also write the same subtitles as SRT",
             "eaf": "Also write an ELAN annotation document: one tier per face, its top-emotion segments"}
    for kind, ext, _ in reversed(_PRODUCTS):
        f = click.option(f"--{kind}", f"{kind}_path", is_flag=False, flag_value=".", default=None, type=click.Path(),
                         help=helps[kind] + f"; beside the other outputs, or at PATH ({ext} or a folder).")(f)
    return f


def _places(values: dict, one: bool) -> dict:
    """The products asked for, as batch.plan takes them."""
    places = {}
    for kind, ext, what in _PRODUCTS:
        value = values.pop(f"{kind}_path")
        if value is not None:
            places[kind] = None if value == "." else _output(f"--{kind}", value, (ext,), what, one)[0]
    return places


def _finish(job_list, folder, parquet: bool, quiet: bool) -> None:
    """What a run writes for all its videos together: the pages' index, the Parquet dataset."""
    from fervid.batch import write_index
    from fervid.storage import LOCAL

    written = []
    if any(job.outputs.html for job in job_list) and len(job_list) > 1:
        written.append(write_index(job_list, folder))
    if parquet:
        from fervid.outputs.parquet import write_dataset

        files = job_list[0].outputs.files if job_list else LOCAL
        pairs = [(job.outputs.timeline, job.outputs.summary) for job in job_list
                 if job.outputs.timeline is not None and files.is_file(job.outputs.timeline)]
        made = write_dataset(pairs, folder, files)
        written += [files.name(p) for p in sorted({p if p.name == "summary.parquet" else folder / "timeline.parquet"
                                                   for p in made})]
    for path in written:
        if path and not quiet:
            say(f"fervid: wrote {path}")


def _parquet_wanted(options: dict, with_csv: bool) -> tuple[bool, str | None]:
    ray_address, parquet = options.pop("ray_address"), options.pop("parquet")
    if parquet and not with_csv:
        raise click.UsageError("--parquet gathers the timeline CSVs: add --csv")
    return parquet or (ray_address is not None and with_csv), ray_address


def _is_single_file(inputs) -> bool:
    from pathlib import Path

    from fervid.storage import Store, is_store_url

    if len(inputs) != 1:
        return False
    if is_store_url(inputs[0]):
        try:
            store, path = Store.of(inputs[0])
            return not store.is_dir(path)
        except (FervidError, OSError) as err:
            raise click.UsageError(f"{inputs[0]}: {err}") from None
    return not Path(inputs[0]).is_dir()


@click.command(short_help="Annotated copies of videos, audio kept.")
@_common
@click.option("-o", "--output", type=click.Path(), default="fervid_out", show_default=True,
              help="Output video (for one input file) or output directory; a local path or a URL (s3://...).")
@click.option("--csv", "with_csv", is_flag=True, help="Also write the timeline and summary CSVs beside each video.")
@click.option("--preset", type=click.Choice(PRESETS), default=Encoding.preset, show_default=True,
              help="x264 speed/size trade: ultrafast annotates ~20% faster on 1080p, for ~1.7x the bytes.")
@click.option("--crf", type=click.IntRange(0, 51), default=Encoding.crf, show_default=True,
              help="x264 quality: lower is better and bigger (+6 about halves the size).")
@_products
@_live_options
def annotate(inputs, output, with_csv, preset, crf, recursive, jobs, overwrite, quiet, verbose, **options):
    """Write an annotated copy of each video (H.264, audio kept): boxes, IDs, emotions.

    \b
    Examples:
      fervid annotate interview.mp4 -o interview_annotated.mp4
      fervid annotate recordings/ -o annotated/ --recursive --jobs 2 --csv
      fervid annotate interview.mp4 -o out/interview.mp4 --html --vtt   # + a page, subtitles
    """
    if _live_asked(inputs, options):
        out, is_file = _output("-o", output, OUTPUT_SUFFIXES, "an annotated video", True)
        if not is_file:
            raise click.UsageError("-o: a live source's recording needs a file name (NAME.mkv plays as it grows)")
        return _run_live(inputs, "." if with_csv else None, out, quiet, verbose,
                         {**options, "encoding": Encoding(crf, preset), "overwrite": overwrite})
    for key in ("input_format", "duration", "jsonl_path", "reconnect", "show"):
        options.pop(key)
    one = _is_single_file(inputs)
    places = _places(options, one)
    out, single, store = _main_output("-o", output, OUTPUT_SUFFIXES, "an annotated video", one, places)
    parquet, ray_address = _parquet_wanted(options, with_csv)
    job_list = _plan(_expand(inputs, recursive, None if single else output if store else out), out, single,
                     video=True, timeline=with_csv, encoding=Encoding(crf, preset), places=places, store=store)
    _run(job_list, _settings(options), jobs, overwrite, quiet, verbose, ray_address=ray_address,
         after=lambda: _finish(job_list, out if not single else out.parent, parquet, quiet))


@click.command(short_help="Per-face emotion timelines: CSV, summary, JSON, plots.")
@_common
@click.option("--csv", "csv_path", is_flag=False, flag_value=".", default=None, type=click.Path(),
              help="Write the timeline CSV (and .summary.csv, .json): a file name for one input, else a directory "
                   "(a local path or a URL: s3://...) [default: the current directory]. Without --csv or --plot, "
                   "print each face's summary.")
@click.option("--plot", "plot_path", is_flag=False, flag_value=".", default=None, type=click.Path(),
              help="Also draw a PNG per video, one panel per face (needs matplotlib): beside the CSV, or at PATH.")
@_products
@_live_options
def timeline(inputs, csv_path, plot_path, recursive, jobs, overwrite, quiet, verbose, **options):
    """Per-face emotion timeline: one CSV row per face per analysed frame, plus a per-face summary.

    \b
    Columns: video, frame, time_s, face_id, x, y, w, h, det_score,
             angry, disgust, fear, happy, sad, surprise, neutral, emotion
    Examples:
      fervid timeline interview.mp4                  # summary table on the terminal
      fervid timeline interview.mp4 --csv out.csv    # out.csv, out.summary.csv, out.json
      fervid timeline interview.mp4 --csv out.csv --plot   # + out.png, one panel per face
      fervid timeline recordings/ --csv results/ -j 2
      fervid timeline s3://lab/videos/ --csv s3://lab/results/ --ray   # on S3, on a Ray cluster
      fervid timeline interview.mp4 --csv out.csv --html --vtt --eaf   # + out.html, out.vtt, out.eaf
    """
    from pathlib import Path

    from fervid.outputs.files import Outputs

    if _live_asked(inputs, options):
        return _run_live(inputs, csv_path, None, quiet, verbose, {**options, "overwrite": overwrite})
    one = _is_single_file(inputs)
    places = _places(options, one)
    store = None
    if csv_path is not None:
        out, single, store = _main_output("--csv", csv_path, (".csv",), "the timeline", one,
                                          {**places, "plot": None if plot_path in (None, ".") else plot_path})
    elif plot_path is not None:
        out, single = _output("--plot", plot_path, (".png",), "the plot", one)
    else:
        out, single = Path("."), False
    found = _expand(inputs, recursive, None if single else csv_path if store else out)
    parquet, ray_address = _parquet_wanted(options, csv_path is not None)
    settings = _settings(options)
    if csv_path is None and plot_path is None and not places:
        from fervid.batch import Job

        job_list = [Job(src, Outputs()) for src, _ in found]
        return _run(job_list, settings, jobs, True, quiet, verbose, print_tables=True, ray_address=ray_address)
    if plot_path is not None:
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            raise click.UsageError("--plot needs matplotlib: pip install 'fervid[plot]'") from None
    # --plot PATH beside --csv: the plots go to PATH (bare --plot: beside the CSV).
    plot_out = None
    if csv_path is not None and plot_path not in (None, "."):
        plot_out, _ = _output("--plot", plot_path, (".png",), "the plot", single)
    job_list = _plan(found, out, single, timeline=csv_path is not None, plot=plot_path is not None,
                     plot_out=plot_out, places=places, store=store)
    _run(job_list, settings, jobs, overwrite, quiet, verbose, ray_address=ray_address,
         after=lambda: _finish(job_list, out if not single else out.parent, parquet, quiet))


@click.command(short_help="Pages for timelines made earlier (NAME.csv -> NAME.html).")
@click.argument("results", nargs=-1, required=True, type=click.Path(exists=True))
@click.option("-q", "--quiet", is_flag=True, help="No 'wrote' lines.")
@click.option("-v", "--verbose", is_flag=True, help="Tracebacks on errors.")
def report(results, quiet, verbose):
    """Write the page of each timeline CSV that fervid wrote (beside it, NAME.html), and an
    index.html for a folder. The CSV's sidecar (NAME.json) and summary must be beside it.

    \b
    Examples:
      fervid report interview.csv
      fervid report results/            # every timeline below, + results/index.html
    """
    from pathlib import Path

    from fervid.remake import remake_page, timelines

    try:
        found = timelines([Path(r) for r in results])
        if not found:
            raise click.UsageError("no timeline CSV with its sidecar found in the given paths")
        failed = 0
        for csv_path in found:
            try:
                page = remake_page(csv_path)
                if not quiet:
                    say(f"fervid: wrote {page}")
            except (OSError, ValueError, KeyError) as err:
                failed += 1
                say(f"fervid: failed: {csv_path}: {err}")
        folders = [Path(r) for r in results if Path(r).is_dir()]
        if len(folders) == 1:
            from fervid.batch import Job, write_index
            from fervid.outputs.files import Outputs

            jobs = [Job(Path(c.stem), Outputs(html=c.with_suffix(".html"), sidecar=c.with_suffix(".json")))
                    for c in found]
            index = write_index(jobs, folders[0])
            if index and not quiet:
                say(f"fervid: wrote {index}")
    except FervidError as err:
        fail(err, verbose)
        sys.exit(EXIT_USAGE)
    sys.exit(EXIT_SOME_FAILED if failed else EXIT_OK)
