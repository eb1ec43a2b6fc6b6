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


def _clock(seconds: float, sep: str) -> str:
    ms = max(0, round(seconds * 1000))
    return f"{ms // 3_600_000:02d}:{ms // 60_000 % 60:02d}:{ms // 1000 % 60:02d}{sep}{ms % 1000:03d}"


def write_vtt(fh: IO[str], segments: Sequence) -> None:
    """WebVTT: one cue per segment ("#2 happy 87%"); faces seen at once give cues side by side."""
    fh.write("WEBVTT\n\n")
    for s in segments:
        fh.write(f"{_clock(s.start, '.')} --> {_clock(s.end, '.')}\n{s.label()}\n\n")


def write_srt(fh: IO[str], segments: Sequence) -> None:
    for n, s in enumerate(segments, 1):
        fh.write(f"{n}\n{_clock(s.start, ',')} --> {_clock(s.end, ',')}\n{s.label()}\n\n")


def write_eaf(fh: IO[str], segments: Sequence, media: str, relative_media: str, mime: str = "video/mp4") -> None:
    """An ELAN annotation document (EAF 3.0): one tier per face ("face 2"), its annotations the
    face's top-emotion segments, so that they can be reviewed and corrected in ELAN."""
    import datetime
    import xml.etree.ElementTree as ET

    doc = ET.Element("ANNOTATION_DOCUMENT", {
        "AUTHOR": "fervid", "DATE": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "FORMAT": "3.0", "VERSION": "3.0"})
    header = ET.SubElement(doc, "HEADER", {"MEDIA_FILE": "", "TIME_UNITS": "milliseconds"})
    ET.SubElement(header, "MEDIA_DESCRIPTOR", {"MEDIA_URL": media, "RELATIVE_MEDIA_URL": relative_media,
                                               "MIME_TYPE": mime})
    order = ET.SubElement(doc, "TIME_ORDER")
    tiers: dict[int, ET.Element] = {}
    for face in sorted({s.face_id for s in segments}):
        tiers[face] = ET.Element("TIER", {"TIER_ID": f"face {face}", "LINGUISTIC_TYPE_REF": "emotion"})
    slots = []
    for n, s in enumerate(sorted(segments, key=lambda s: (s.face_id, s.start)), 1):
        slots += [(round(s.start * 1000), 2 * n - 1), (round(s.end * 1000), 2 * n)]
        annotation = ET.SubElement(tiers[s.face_id], "ANNOTATION")
        aligned = ET.SubElement(annotation, "ALIGNABLE_ANNOTATION", {
            "ANNOTATION_ID": f"a{n}", "TIME_SLOT_REF1": f"ts{2 * n - 1}", "TIME_SLOT_REF2": f"ts{2 * n}"})
        ET.SubElement(aligned, "ANNOTATION_VALUE").text = s.emotion
    for ms, k in sorted(slots):  # in time order, as ELAN keeps them
        ET.SubElement(order, "TIME_SLOT", {"TIME_SLOT_ID": f"ts{k}", "TIME_VALUE": str(max(0, ms))})
    doc.extend(tiers.values())
    ET.SubElement(doc, "LINGUISTIC_TYPE", {"LINGUISTIC_TYPE_ID": "emotion", "TIME_ALIGNABLE": "true",
                                           "GRAPHIC_REFERENCES": "false"})
    ET.indent(doc)
    fh.write('<?xml version="1.0" encoding="UTF-8"?>\n')
    fh.write(ET.tostring(doc, encoding="unicode"))
    fh.write("\n")


def write_sidecar(fh: IO[str], record: dict) -> None:
    """Strict JSON: a number that is not finite is written as null (JSON has no NaN)."""
    json.dump(finite(record), fh, indent=2, default=str, allow_nan=False)
    fh.write("\n")


def finite(value):
    """``value`` with every number that is not finite made None (JSON has no NaN)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite(v) for v in value]
    return value
