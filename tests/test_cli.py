"""End to end through the command line, on generated videos and the shipped example."""

import json

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from conftest import EXAMPLE_VIDEO, ffmpeg, make_face_video, make_video
from fervid.cli import main
from fervid.labels import EMOTIONS
from fervid.video.decode import open_video
from fervid.video.probe import probe
from fervid.outputs.rows import TIMELINE_COLUMNS


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def test_version_and_help():
    assert run("--version").output.startswith("fervid, version")
    out = run("timeline", "--help").output
    assert "--csv" in out and "angry, disgust" in out


def test_annotate_example_keeps_frames_timing_and_audio(tmp_path):
    out = tmp_path / "annotated.mp4"
    res = run("annotate", EXAMPLE_VIDEO, "-o", out, "-q")
    assert res.exit_code == 0, res.output
    src, dst = probe(EXAMPLE_VIDEO), probe(out)
    assert dst.audio_codec == "aac" and dst.codec == "h264"
    assert dst.duration == pytest.approx(src.duration, abs=0.05)
    src_t = [f.time_s for f in open_video(EXAMPLE_VIDEO, pix_fmt="gray")[1]]
    dst_t = [f.time_s for f in open_video(out, pix_fmt="gray")[1]]
    assert len(dst_t) == len(src_t)
    assert np.allclose(dst_t, src_t, atol=0.03)
    assert (tmp_path / "annotated.json").is_file()
    assert not list(tmp_path.glob(".*part*"))


def test_annotate_encoder_options_change_size_and_are_recorded(tmp_path):
    src = make_face_video(tmp_path / "in.mp4", seconds=1.0, size=160)
    sizes = {}
    for crf in (18, 40):
        out = tmp_path / f"crf{crf}.mp4"
        assert run("annotate", src, "-o", out, "-q", "--crf", crf, "--preset", "ultrafast").exit_code == 0
        sizes[crf] = out.stat().st_size
        meta = json.loads(out.with_suffix(".json").read_text())
        assert meta["video_encoding"] == {"codec": "libx264", "crf": crf, "preset": "ultrafast"}
        assert "encoding" not in meta["outputs"]
    assert sizes[40] < sizes[18] / 2
    assert run("annotate", src, "-o", tmp_path / "x.mp4", "--preset", "sluggish").exit_code == 2


def test_timeline_csv_columns_types_and_ids(tmp_path, two_face_video):
    csv = tmp_path / "t.csv"
    res = run("timeline", two_face_video, "--csv", csv, "-q")
    assert res.exit_code == 0, res.output
    df = pd.read_csv(csv)
    assert list(df.columns) == list(TIMELINE_COLUMNS)
    assert df.frame.dtype.kind == "i" and df.face_id.dtype.kind == "i" and df.time_s.dtype.kind == "f"
    assert df.face_id.nunique() == 2
    assert (df.groupby("frame").size() == 2).mean() > 0.9
    assert np.allclose(df[list(EMOTIONS)].sum(axis=1), 1, atol=1e-3)
    assert set(df.emotion) <= set(EMOTIONS)
    left = df[df.x < 180].face_id.unique()
    assert len(left) == 1  # the left face keeps one ID
    summary = pd.read_csv(tmp_path / "t.summary.csv")
    assert sorted(summary.face_id) == sorted(df.face_id.unique())
    meta = json.loads((tmp_path / "t.json").read_text())
    assert len(meta["model"]["sha256"]) == 64 and meta["complete"] is True
    assert meta["input"]["width"] == 384 and meta["smoothing"]["tau_s"] == 0.3


def test_timeline_without_csv_prints_summary(face_video):
    res = run("timeline", face_video, "-q")
    assert res.exit_code == 0
    assert "dominant" in res.output and "50 frames, 1 face\n" in res.output


def test_sampling_every_n(tmp_path, face_video):
    csv = tmp_path / "t.csv"
    assert run("timeline", face_video, "--csv", csv, "--every", "5", "-q").exit_code == 0
    df = pd.read_csv(csv)
    assert len(df) == 10 and (df.frame % 5 == 0).all()


def test_rotated_video_gives_upright_boxes(tmp_path):
    upright = make_face_video(tmp_path / "upright.mp4", seconds=1)
    sideways = tmp_path / "sideways.mp4"
    # Store the frames turned 90 degrees clockwise, with a display matrix that turns them back.
    ffmpeg("-i", str(upright), "-vf", "transpose=1", "-c:v", "libx264", "-preset", "ultrafast",
           "-metadata:s:v:0", "rotate=0", str(tmp_path / "raw.mp4"))
    ffmpeg("-display_rotation", "90", "-i", str(tmp_path / "raw.mp4"), "-c", "copy", str(sideways))
    a, b = tmp_path / "a.csv", tmp_path / "b.csv"
    assert run("timeline", upright, "--csv", a, "-q").exit_code == 0
    assert run("timeline", sideways, "--csv", b, "-q").exit_code == 0
    da, db = pd.read_csv(a), pd.read_csv(b)
    assert probe(sideways).rotation in (90, 270)
    assert len(db) > 0
    assert abs(da.x.median() - db.x.median()) < 8 and abs(da.y.median() - db.y.median()) < 8
    assert (db.h / db.w).median() == pytest.approx((da.h / da.w).median(), abs=0.1)


def test_batch_goes_on_past_bad_files_and_resumes(tmp_path, face_video):
    src = tmp_path / "in"
    (src / "sub").mkdir(parents=True)
    (src / "good.mp4").write_bytes(face_video.read_bytes())
    (src / "sub" / "nested good.mp4").write_bytes(face_video.read_bytes())
    (src / "empty.mp4").write_bytes(b"")
    (src / "text.mp4").write_text("not a video\n" * 10)
    out = tmp_path / "out"
    res = run("timeline", src, "--csv", out, "-r", "-q")
    assert res.exit_code == 1
    assert "2 done" in res.output and "2 failed" in res.output
    assert "empty.mp4: the file is empty" in res.output
    assert "text.mp4: not a readable video" in res.output
    assert (out / "good.csv").is_file() and (out / "sub" / "nested good.csv").is_file()
    res = run("timeline", src, "--csv", out, "-r", "-q")
    assert "2 skipped" in res.output and res.exit_code == 1


def test_output_equal_to_input_is_refused(tmp_path, face_video):
    target = tmp_path / "v.mp4"
    target.write_bytes(face_video.read_bytes())
    before = target.read_bytes()
    res = run("annotate", target, "-o", target, "-q")
    assert res.exit_code == 1 and "overwrite the input" in res.output
    assert target.read_bytes() == before


def test_bad_model_is_a_usage_error(tmp_path, face_video):
    res = run("timeline", face_video, "--model", "no_such_model", "-q")
    assert res.exit_code == 2 and "model not found" in res.output


def test_video_without_faces(tmp_path):
    v = make_video(tmp_path / "noface.mp4", seconds=0.5)
    csv = tmp_path / "n.csv"
    assert run("timeline", v, "--csv", csv, "-q").exit_code == 0
    df = pd.read_csv(csv)
    assert len(df) == 0 and list(df.columns) == list(TIMELINE_COLUMNS)


def test_python_api_matches_cli(tmp_path, face_video):
    import fervid

    df = fervid.analyze(face_video)
    csv = tmp_path / "t.csv"
    run("timeline", face_video, "--csv", csv, "-q")
    cli = pd.read_csv(csv)
    assert len(df) == len(cli)
    assert np.allclose(df.happy.to_numpy(), cli.happy.to_numpy(), atol=1e-4)


def test_a_session_loads_the_networks_once_for_many_videos(face_video, two_face_video, monkeypatch):
    import fervid
    from fervid.analysis.pipeline import Models

    alone = [fervid.analyze(v) for v in (face_video, two_face_video)]
    loads = []
    load = Models.load
    monkeypatch.setattr(Models, "load", classmethod(lambda cls, s: loads.append(s) or load(s)))
    with fervid.Session() as session:
        together = [session.analyze(v) for v in (face_video, two_face_video, face_video)]
    assert len(loads) == 1
    for a, b in zip(alone + alone[:1], together):
        pd.testing.assert_frame_equal(a, b)
    with pytest.raises(ValueError, match="closed"):
        session.analyze(face_video)
    with pytest.raises(TypeError):
        fervid.Session(fervid.Settings(), fps=5)


def test_python_api_warns_when_a_video_is_damaged(tmp_path):
    import warnings

    import fervid

    whole_video = make_face_video(tmp_path / "whole.mp4", extra=["-movflags", "+faststart"])
    data = whole_video.read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: int(len(data) * 0.6)])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        df = fervid.analyze(cut)
        whole = fervid.analyze(whole_video)
        with fervid.Session() as session:
            session.analyze(cut)
    assert 0 < len(df) < len(whole)
    assert len(caught) == 2 and all("the results cover what was decoded" in str(w.message) for w in caught)
    assert {w.filename for w in caught} == {__file__}  # the warning names the caller's line


def test_parallel_jobs_give_the_same_rows(tmp_path, face_video, two_face_video):
    src = tmp_path / "in"
    src.mkdir()
    (src / "a.mp4").write_bytes(face_video.read_bytes())
    (src / "b.mp4").write_bytes(two_face_video.read_bytes())
    (src / "bad.mp4").write_text("nope")
    one, two = tmp_path / "one", tmp_path / "two"
    assert run("timeline", src, "--csv", one, "-q", "-j", "1").exit_code == 1
    res = run("timeline", src, "--csv", two, "-q", "-j", "2")
    assert res.exit_code == 1 and "2 done" in res.output and "1 failed" in res.output
    for name in ("a.csv", "b.csv"):
        a, b = pd.read_csv(one / name), pd.read_csv(two / name)
        assert len(a) == len(b) and np.allclose(a.happy, b.happy, atol=1e-4)


def test_output_dir_inside_the_input_dir_is_not_read_back(tmp_path, face_video):
    src = tmp_path / "videos"
    src.mkdir()
    (src / "a.mp4").write_bytes(face_video.read_bytes())
    out = src / "annotated"
    assert run("annotate", src, "-o", out, "-r", "-q").exit_code == 0
    res = run("annotate", src, "-o", out, "-r", "-q")
    assert res.exit_code == 0 and "1 skipped" in res.output  # not 2 inputs: annotated/a.mp4 is left out


def test_two_inputs_with_the_same_name_are_refused(tmp_path, face_video):
    for d in ("x", "y"):
        (tmp_path / d).mkdir()
        (tmp_path / d / "same.mp4").write_bytes(face_video.read_bytes())
    res = run("timeline", tmp_path / "x" / "same.mp4", tmp_path / "y" / "same.mp4", "--csv", tmp_path / "o", "-q")
    assert res.exit_code == 2 and "would write the same outputs" in res.output


def test_a_batch_loads_the_networks_once_and_each_video_starts_afresh(tmp_path, face_video, monkeypatch):
    """Files of one process share the classifier and the detector; the detector's per-video
    state (which tiles are idle) is reset, so a file's rows do not depend on the file before."""
    from fervid.analysis.pipeline import Models

    loads = []
    real = Models.load.__func__
    monkeypatch.setattr(Models, "load", classmethod(lambda cls, s: loads.append(1) or real(cls, s)))
    src = tmp_path / "in"
    src.mkdir()
    for name in ("a.mp4", "b.mp4"):
        (src / name).write_bytes(face_video.read_bytes())
    assert run("timeline", src, "--csv", tmp_path / "out", "-q").exit_code == 0
    assert len(loads) == 1
    a, b = pd.read_csv(tmp_path / "out" / "a.csv"), pd.read_csv(tmp_path / "out" / "b.csv")
    assert len(a) == len(b) > 0 and np.allclose(a[list(EMOTIONS)], b[list(EMOTIONS)])


def test_the_cli_module_loads_no_numpy_so_openblas_starts_no_threads():
    """``fervid.cli`` sets OPENBLAS_NUM_THREADS=1 for the numpy and OpenCV its commands load
    later; that only works while importing it loads neither (a fresh interpreter tells)."""
    import subprocess
    import sys

    code = ("import os, sys; os.environ.pop('OPENBLAS_NUM_THREADS', None); import fervid.cli; "
            "print('numpy' in sys.modules, 'cv2' in sys.modules, os.environ['OPENBLAS_NUM_THREADS'])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False", "1"]


def test_squeezed_pixels_give_the_faces_of_the_shown_picture(tmp_path):
    """A face stored at three quarters of its width with a 4:3 sample aspect ratio (as HDV stores
    1920x1080 in 1440x1080) is read as it is shown: the same boxes, in the shown picture's pixels,
    and the same emotions as from square pixels (squeezed, the top emotion agreed on 58% of a
    real clip's frames), and the annotated copy has square pixels."""
    plain = make_face_video(tmp_path / "plain.mp4", seconds=1.0)
    squeezed = make_face_video(tmp_path / "squeezed.mp4", seconds=1.0, post="scale=174:232,setsar=4/3")
    out = {}
    for video in (plain, squeezed):
        csv = tmp_path / f"{video.stem}.csv"
        assert CliRunner().invoke(main, ["timeline", str(video), "--csv", str(csv), "-q"]).exit_code == 0
        out[video.stem] = pd.read_csv(csv)
    a, b = out["plain"], out["squeezed"]
    assert len(a) == len(b) == 25
    assert np.abs(a[["x", "y", "w", "h"]].values - b[["x", "y", "w", "h"]].values).max() < 6
    assert (a.emotion == b.emotion).mean() >= 0.9
    annotated = tmp_path / "ann.mp4"
    assert CliRunner().invoke(main, ["annotate", str(squeezed), "-o", str(annotated), "-q"]).exit_code == 0
    info = probe(annotated)
    assert (info.width, info.height, info.sar) == (232, 232, 1)


def test_a_face_hidden_for_seconds_keeps_its_id(tmp_path):
    """A hand over the face, or a look down, for 2.5 s: the face comes back under its ID, read
    afresh (its first row back is a reading, not a blend across the gap)."""
    src = make_face_video(tmp_path / "hidden.mp4", seconds=6.0,
                          post="drawbox=x=60:y=10:w=100:h=100:color=gray:t=fill:enable='between(t,1.5,4)'")
    csv = tmp_path / "t.csv"
    assert CliRunner().invoke(main, ["timeline", str(src), "--csv", str(csv), "-q"]).exit_code == 0
    df = pd.read_csv(csv)
    assert df.face_id.nunique() == 1
    assert df.time_s.min() < 0.1 and df.time_s.max() > 5.9
    assert not ((df.time_s > 2.2) & (df.time_s < 3.9)).any()  # no face while hidden


@pytest.mark.parametrize("command", ["annotate", "timeline", "evaluate", "explain", "train", "quantize", "mirror",
                                     "ensemble"])
def test_every_command_help_shows_an_example(command):
    res = run(command, "--help")
    assert res.exit_code == 0 and "Example" in res.output and "fervid " + command in res.output
