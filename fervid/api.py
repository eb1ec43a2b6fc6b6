"""The Python entry point: ``fervid.analyze(path)`` returns the timeline as a pandas DataFrame."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from fervid.analysis.detect import DetectorSettings
from fervid.labels import EMOTIONS
from fervid.analysis.pipeline import Analyzer, Settings
from fervid.runner import decoding_warning, fps_to_every
from fervid.video.decode import Decoder
from fervid.video.probe import probe
from fervid.outputs.writers import TIMELINE_COLUMNS


def analyze(path: str | Path, *, model: str | None = None, every: int = 1, fps: float | None = None,
            min_face: int = 20, smooth: float = 0.3, detect_every: float = 0.2, classify_every: float = 1 / 15,
            tiles: str = "auto", device: str = "cpu") -> pd.DataFrame:
    """One row per face per analysed frame, the columns of ``fervid timeline --csv``. A damaged
    video gives the rows of what decoded, with a warning; one that decodes not at all raises
    :class:`fervid.errors.VideoError`."""
    info = probe(path)
    settings = Settings(model=model, detector=DetectorSettings(tiles=tiles), detect_every=detect_every,
                        classify_every=classify_every, min_face=min_face, smooth=smooth, device=device)
    decoder = Decoder(info, pix_fmt="yuv420p", every=fps_to_every(float(info.fps), fps, every))
    analyzer = Analyzer(settings)
    rows, last_time = [], None
    try:
        for frame, faces in analyzer.run(decoder, float(info.fps) / decoder.every, keep_pixels=False):
            last_time = frame.time_s
            for f in faces or ():
                rows.append((Path(path).name, f.frame, f.time_s, f.face_id, f.x, f.y, f.w, f.h, f.det_score,
                             *f.probs, f.emotion))
    finally:
        analyzer.close()
    warning = decoding_warning(path, decoder.report, last_time, info.duration, "the rows")
    if warning:  # as the CLI warns: a damaged video's timeline ends where decoding stopped
        warnings.warn(warning, stacklevel=2)
    df = pd.DataFrame(rows, columns=list(TIMELINE_COLUMNS))
    return df.astype({"frame": np.int64, "face_id": np.int64, "time_s": float, "det_score": float,
                      **{e: float for e in EMOTIONS}})
