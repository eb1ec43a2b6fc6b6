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
    with Session(settings, **options) as session:
        return session._analyze(path)


class Session:
    """The networks loaded once for many videos (loading costs 0.05-0.1 s, a fifth of a short
    clip's work)::

        with fervid.Session(fps=5) as session:
            frames = {p: session.analyze(p) for p in paths}

    Takes what :func:`analyze` takes; ``session.analyze(path)`` gives what ``analyze`` gives.
    """

    def __init__(self, settings: Settings | None = None, /, **options):
        from fervid.analysis.pipeline import Models

        if settings is not None and options:
            raise TypeError("give either a Settings or keyword options, not both")
        self.settings = settings if settings is not None else Settings.from_options(**options)
        self.models = Models.load(self.settings)

    def analyze(self, path):
        """One video's timeline, as :func:`fervid.analyze` gives it."""
        return self._analyze(path)

    def _analyze(self, path):  # one frame below both analyze()s: a warning names their caller
        from fervid.outputs.files import Outputs
        from fervid.outputs.sinks import RowsSink
        from fervid.runner import process_file
        from fervid.storage import is_store_url, process_staged

        if self.models is None:
            raise ValueError("this fervid.Session is closed")
        on_store = is_store_url(str(path))  # s3://...: read from a local copy
        rows = RowsSink(PurePosixPath(str(path)).name if on_store else Path(path).name)
        run = process_staged if on_store else process_file
        result = run(str(path) if on_store else path, Outputs(), self.settings, progress=False, models=self.models,
                     sinks=[rows])
        if result.warning:  # as the CLI warns: a damaged video's timeline ends where decoding stopped
            warnings.warn(result.warning, stacklevel=3)
        return rows.frame()

    def close(self) -> None:
        if self.models is not None:
            self.models.close()
            self.models = None

    def __enter__(self) -> Session:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


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
