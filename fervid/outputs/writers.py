"""File writers, one per format; each takes an open text file and streams (memory does not grow
with the video's length)."""

from __future__ import annotations

import csv
import json
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
    json.dump(record, fh, indent=2, default=str)
    fh.write("\n")
