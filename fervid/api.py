"""The Python entry point: ``fervid.analyze(path)`` returns the timeline as a pandas DataFrame.

It is the per-file path of the CLI (:func:`fervid.runner.process_file`) with an in-memory sink
instead of files, so the two give the same rows for the same settings.
"""

from __future__ import annotations

import inspect
import warnings
from pathlib import Path, PurePosixPath

from fervid.settings import Settings, options_spec


def analyze(path, settings: Settings | None = None, /, **options):
    from fervid.outputs.files import Outputs
    from fervid.outputs.sinks import RowsSink
    from fervid.runner import process_file
    from fervid.storage import is_store_url, process_staged

    if settings is not None and options:
        raise TypeError("give either a Settings or keyword options, not both")
    settings = settings if settings is not None else Settings.from_options(**options)
    if is_store_url(str(path)):  # s3://...: read from a local copy
        rows = RowsSink(PurePosixPath(str(path)).name)
        result = process_staged(str(path), Outputs(), settings, progress=False, sinks=[rows])
    else:
        rows = RowsSink(Path(path).name)
        result = process_file(path, Outputs(), settings, progress=False, sinks=[rows])
    if result.warning:  # as the CLI warns: a damaged video's timeline ends where decoding stopped
        warnings.warn(result.warning, stacklevel=2)
    return rows.frame()


def _document(fn) -> None:
    """The keyword options' real signature and help, from :class:`~fervid.settings.Settings`."""
    params = [inspect.Parameter("path", inspect.Parameter.POSITIONAL_ONLY, annotation="str | os.PathLike"),
              inspect.Parameter("settings", inspect.Parameter.POSITIONAL_ONLY, default=None,
                                annotation="Settings | None")]
    lines = []
    for name, default, meta in options_spec():
        params.append(inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default,
                                        annotation=meta["kind"].__name__ + (" | None" if meta["optional"] else "")))
        shown = f" [default: {meta['shown']}]" if meta["shown"] else ""
        lines.append(f"    {name}: {meta['help']}{shown}")
    fn.__signature__ = inspect.Signature(params, return_annotation="pandas.DataFrame")
    fn.__doc__ = "\n".join([
        "One row per face per analysed frame, the columns of ``fervid timeline --csv``, as a DataFrame.",
        "``path`` is a local video or the URL of one on a store (``s3://...``, read from a local copy).",
        "",
        "Give a :class:`fervid.Settings`, or its everyday options as keywords (checked: a value out of",
        "range raises :class:`fervid.errors.SettingsError`, a ValueError). A damaged video gives the rows",
        "of what decoded, with a warning; one that decodes not at all raises :class:`fervid.errors.VideoError`.",
        "",
        "Options:",
        *lines,
    ])


_document(analyze)
