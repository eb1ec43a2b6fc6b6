"""``fervid report``: pages for outputs made earlier, from their timeline CSV, summary and sidecar.

The rows are replayed through the same sinks a run uses, so a page made later is the page the
run would have made; thumbnails are taken from the video, at each face's most confident row.
"""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import numpy as np

from fervid.errors import OutputError
from fervid.labels import EMOTIONS
from fervid.outputs.report import ReportSink, page_data, write_page
from fervid.outputs.sinks import thumbnail
from fervid.records import FaceResult


def timelines(paths: list[Path]) -> list[Path]:
    """The timeline CSVs among ``paths`` (folders searched below), each with its JSON sidecar."""
    found = []
    for p in paths:
        for csv_path in sorted(p.rglob("*.csv")) if p.is_dir() else [p]:
            if csv_path.name.endswith(".summary.csv") or csv_path.name.startswith("."):
                continue
            if not csv_path.with_suffix(".json").is_file():
                if not p.is_dir():
                    raise OutputError(f"{csv_path}: no sidecar {csv_path.with_suffix('.json').name} beside it; "
                                      "give a timeline CSV that fervid wrote")
                continue
            found.append(csv_path)
    return found


def remake_page(csv_path: Path) -> Path:
    """``NAME.html`` beside ``NAME.csv``."""
    record = json.loads(csv_path.with_suffix(".json").read_text(encoding="utf-8"))
    info = record.get("input", {})
    outputs = record.get("outputs", {})
    annotated = Path(outputs["video"]) if outputs.get("video") else None
    if annotated is not None and not annotated.is_absolute():
        annotated = csv_path.parent / annotated.name
    video = annotated if annotated is not None and annotated.is_file() else Path(info.get("path", ""))
    step = 1 / _fps(info.get("fps")) * int(record.get("settings", {}).get("every", 1) or 1)
    sink = ReportSink(info.get("duration"), step)
    best: dict[int, tuple[float, FaceResult]] = {}
    with open(csv_path, newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            f = FaceResult(int(row["frame"]), float(row["time_s"]), int(row["face_id"]), float(row["x"]),
                           float(row["y"]), float(row["w"]), float(row["h"]),
                           float(row["det_score"]) if row["det_score"] else float("nan"),
                           np.array([float(row[e]) for e in EMOTIONS]))
            sink.add([f])
            if f.det_score == f.det_score and f.det_score > best.get(f.face_id, (-1.0, None))[0]:
                best[f.face_id] = (f.det_score, f)
    sink.thumbnails.pictures.update(_thumbnails(video, [f for _, f in best.values()]))
    summary_path = csv_path.with_name(csv_path.stem + ".summary.csv")
    with open(summary_path, newline="", encoding="utf-8") as fh:
        summary = [{k: (v if k in ("video", "dominant_emotion") else float(v)) for k, v in row.items()}
                   for row in csv.DictReader(fh)]
    page = csv_path.with_suffix(".html")
    data = page_data(page, video, annotated is not None and video == annotated, summary, sink, record)
    tmp = page.with_name(f".{page.stem}.part{os.getpid()}.html")
    with open(tmp, "w", encoding="utf-8") as fh:
        write_page(fh, data)
    os.replace(tmp, page)
    return page


def _fps(text) -> float:
    try:
        num, _, den = str(text).partition("/")
        return float(num) / float(den or 1) or 25.0
    except (TypeError, ValueError, ZeroDivisionError):
        return 25.0


def _thumbnails(video: Path, rows: list[FaceResult]) -> dict[int, np.ndarray]:
    """Each face's picture at its row, decoded from the video; none where the video cannot be read."""
    from fervid.video.decode import open_video

    wanted = {}
    for f in rows:
        wanted.setdefault(f.frame, []).append(f)
    pictures = {}
    if not wanted or not video.is_file():
        return pictures
    try:
        _, decoder = open_video(video, pix_fmt="bgr24")
        last = max(wanted)
        for frame in decoder:
            if frame.index in wanted:
                rgb = frame.rgb()
                for f in wanted[frame.index]:
                    pictures[f.face_id] = thumbnail(rgb, f)
            if frame.index >= last:
                break
        decoder.close()
    except Exception:  # noqa: BLE001 - a page without pictures is still a page
        pass
    return pictures
