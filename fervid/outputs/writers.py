"""File writers, one per format; each takes an open text file and streams (memory does not grow
with the video's length)."""

from __future__ import annotations

import csv
import json
import math
from typing import IO, Iterable, Sequence

from fervid.outputs.rows import TIMELINE_COLUMNS, csv_fields, timeline_row
from fervid.outputs.summary import SUMMARY_COLUMNS
from fervid.records import FaceResult


class TimelineWriter:
    """One row per face per analysed frame."""

    def __init__(self, fh: IO[str], video: str):
        self.video = video
        self._csv = csv.writer(fh, lineterminator="\n")
        self._csv.writerow(TIMELINE_COLUMNS)
        self.rows = 0

    def write(self, faces: Iterable[FaceResult]) -> None:
        for f in faces:
            self._csv.writerow(csv_fields(timeline_row(self.video, f)))
            self.rows += 1


def write_summary(fh: IO[str], rows: Sequence[dict]) -> None:
    w = csv.DictWriter(fh, SUMMARY_COLUMNS, lineterminator="\n")
    w.writeheader()
    w.writerows(rows)


def write_sidecar(fh: IO[str], record: dict) -> None:
    """Strict JSON: a number that is not finite is written as null (JSON has no NaN)."""
    json.dump(_finite(record), fh, indent=2, default=str, allow_nan=False)
    fh.write("\n")


def _finite(value):
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value
