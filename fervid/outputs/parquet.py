"""One Parquet dataset for a whole run, gathered from the per-video CSVs: ``timeline.parquet/``
partitioned by video (``video=NAME/``), and ``summary.parquet``, so that a thousand videos'
timelines load with one ``pandas.read_parquet`` (or DuckDB, Spark) call. Needs pyarrow (the
``ray`` and ``parquet`` extras)."""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path
from urllib.parse import quote

from fervid.errors import FervidError
from fervid.storage import LOCAL, Files
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


def write_dataset(pairs: list[tuple[Path, Path | None]], folder: Path, files: Files = LOCAL) -> list[Path]:
    """``pairs``: each video's timeline CSV and summary CSV (which exist), on ``files`` (local,
    or a store); returns what was written."""
    import pandas as pd

    pa, pq = _pyarrow()
    if not pairs:
        return []
    root = folder / "timeline.parquet"
    written, summaries = [], []
    # Each file is made in a local folder (beside its final name when local: one rename) and put.
    with tempfile.TemporaryDirectory(prefix=".fervid-parquet-", dir=folder if files is LOCAL else None) as tmp:
        def put(table, path: Path) -> Path:
            local = Path(tmp) / "part.parquet"
            pq.write_table(table, local)
            files.put(local, path)
            return path

        for timeline, summary in pairs:
            with files.open(timeline, "rb") as fh:
                df = pd.read_csv(fh, dtype={"video": "string"}, keep_default_na=True)
            if summary is not None and files.is_file(summary):
                with files.open(summary, "rb") as fh:
                    summaries.append(pd.read_csv(fh, dtype={"video": "string", "dominant_emotion": "string"}))
            if df.empty:
                continue
            name = str(df["video"].iloc[0])
            part = root / f"video={quote(name, safe='')}"
            key = hashlib.sha1(os.fsencode(os.path.relpath(timeline, folder))).hexdigest()[:12]
            table = pa.Table.from_pandas(df.drop(columns="video").astype(_TYPES), preserve_index=False)
            written.append(put(table, part / f"part-{key}.parquet"))
        if summaries:
            table = pa.Table.from_pandas(pd.concat(summaries, ignore_index=True), preserve_index=False)
            written.append(put(table, folder / "summary.parquet"))
    return written
