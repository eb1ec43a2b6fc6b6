"""One Parquet dataset for a whole run, gathered from the per-video CSVs: ``timeline.parquet/``
partitioned by video (``video=NAME/``), and ``summary.parquet``, so that a thousand videos'
timelines load with one ``pandas.read_parquet`` (or DuckDB, Spark) call. Needs pyarrow (the
``ray`` and ``parquet`` extras)."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from urllib.parse import quote

from fervid.errors import FervidError
from fervid.labels import EMOTIONS

_TYPES = {"frame": "int64", "time_s": "float64", "face_id": "int64", "x": "float64", "y": "float64", "w": "float64",
          "h": "float64", "det_score": "float64", **{e: "float64" for e in EMOTIONS}, "emotion": "string"}


def _pyarrow():
    try:
        import pyarrow  # noqa: F401
        import pyarrow.parquet as pq

        return pyarrow, pq
    except ImportError:
        raise FervidError("Parquet needs pyarrow: pip install 'fervid[parquet]'") from None


def write_dataset(pairs: list[tuple[Path, Path | None]], folder: Path) -> list[Path]:
    """``pairs``: each video's timeline CSV and summary CSV (which exist); returns what was written."""
    import pandas as pd

    pa, pq = _pyarrow()
    root = folder / "timeline.parquet"
    written, summaries = [], []
    for timeline, summary in pairs:
        df = pd.read_csv(timeline, dtype={"video": "string"}, keep_default_na=True)
        if summary is not None and summary.is_file():
            summaries.append(pd.read_csv(summary, dtype={"video": "string", "dominant_emotion": "string"}))
        if df.empty:
            continue
        name = str(df["video"].iloc[0])
        part = root / f"video={quote(name, safe='')}"
        part.mkdir(parents=True, exist_ok=True)
        key = hashlib.sha1(os.fsencode(os.path.relpath(timeline, folder))).hexdigest()[:12]
        table = pa.Table.from_pandas(df.drop(columns="video").astype(_TYPES), preserve_index=False)
        written.append(_atomic(pq, table, part / f"part-{key}.parquet"))
    if summaries:
        table = pa.Table.from_pandas(pd.concat(summaries, ignore_index=True), preserve_index=False)
        written.append(_atomic(pq, table, folder / "summary.parquet"))
    return written


def _atomic(pq, table, path: Path) -> Path:
    tmp = path.with_name(f".{path.stem}.part{os.getpid()}{path.suffix}")
    pq.write_table(table, tmp)
    os.replace(tmp, path)
    return path
