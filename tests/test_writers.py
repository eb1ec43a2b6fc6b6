import io

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings, strategies as st

from fervid.labels import EMOTIONS
from fervid.records import FaceResult
from fervid.outputs.rows import TIMELINE_COLUMNS
from fervid.outputs.summary import SUMMARY_COLUMNS, SummaryBuilder, format_summary_table, summary_rows
from fervid.outputs.writers import TimelineWriter, write_summary


def face(frame, t, fid, probs, score=0.9):
    return FaceResult(frame, t, fid, 10.0, 20.0, 30.0, 40.0, score, np.asarray(probs, float))


probs_st = st.lists(st.floats(0.001, 1), min_size=7, max_size=7).map(lambda v: np.array(v) / np.sum(v))
frames_st = st.lists(st.lists(st.tuples(st.integers(1, 6), probs_st), max_size=4, unique_by=lambda x: x[0]),
                     min_size=1, max_size=30)


@settings(max_examples=80, deadline=None)
@given(frames_st)
def test_timeline_and_summary_agree(frames):
    buf = io.StringIO()
    w = TimelineWriter(buf, "clip.mp4")
    sb = SummaryBuilder()
    n = 0
    for i, faces in enumerate(frames):
        res = [face(i, i * 0.04, fid, p) for fid, p in faces]
        w.write(res)
        sb.add_frame(i * 0.04, res)
        n += len(res)
    rows = summary_rows("clip.mp4", sb.finish(0.04))
    df = pd.read_csv(io.StringIO(buf.getvalue()))
    assert list(df.columns) == list(TIMELINE_COLUMNS)
    assert len(df) == n == w.rows  # no row lost
    if n:
        assert np.allclose(df[list(EMOTIONS)].sum(axis=1), 1, atol=1e-4)
        assert (df.groupby("frame")["face_id"].nunique() == df.groupby("frame").size()).all()
    assert sorted(r["face_id"] for r in rows) == sorted(df["face_id"].unique().tolist())
    for r in rows:
        mine = df[df.face_id == r["face_id"]]
        assert r["frames"] == len(mine)
        assert r["first_seen_s"] == pytest.approx(mine.time_s.min(), abs=1e-3)
        assert r["last_seen_s"] == pytest.approx(mine.time_s.max(), abs=1e-3)
        assert sum(r[f"share_{e}"] for e in EMOTIONS) == pytest.approx(1, abs=1e-3)
        assert sum(r[f"mean_{e}"] for e in EMOTIONS) == pytest.approx(1, abs=1e-3)
        assert r["seconds_visible"] == pytest.approx(0.04 * len(mine), abs=1e-6)


def test_summary_csv_and_table():
    sb = SummaryBuilder()
    sb.add_frame(0.0, [face(0, 0.0, 1, np.eye(7)[3]), face(0, 0.0, 2, np.eye(7)[6])])
    sb.add_frame(0.5, [face(1, 0.5, 1, np.eye(7)[3])])
    rows = summary_rows("v.mp4", sb.finish(0.5))
    buf = io.StringIO()
    write_summary(buf, rows)
    df = pd.read_csv(io.StringIO(buf.getvalue()))
    assert list(df.columns) == list(SUMMARY_COLUMNS)
    assert df.loc[df.face_id == 1, "dominant_emotion"].item() == "happy"
    assert df.loc[df.face_id == 1, "seconds_visible"].item() == pytest.approx(1.0)
    table = format_summary_table(rows)
    assert "happy" in table and "neutral" in table
    assert format_summary_table([]) == "no faces found"


def test_missed_detection_writes_empty_score():
    buf = io.StringIO()
    TimelineWriter(buf, "v").write([face(0, 0.0, 1, np.eye(7)[0], score=float("nan"))])
    df = pd.read_csv(io.StringIO(buf.getvalue()))
    assert np.isnan(df.det_score.item())
