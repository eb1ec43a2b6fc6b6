import numpy as np
import pandas as pd
import pytest

pytest.importorskip("matplotlib")

from fervid.errors import FervidError  # noqa: E402
from fervid.labels import EMOTIONS  # noqa: E402
from fervid.outputs.plots import confusion_png, timeline_png  # noqa: E402


def _timeline(faces):
    rows = []
    for fid in faces:
        for i in range(50):
            p = np.full(7, 0.05)
            p[(fid + i // 20) % 7] = 0.7
            rows.append({"video": "v", "frame": i, "time_s": i / 25, "face_id": fid, **dict(zip(EMOTIONS, p))})
    return pd.DataFrame(rows)


def test_two_faces_two_panels(tmp_path):
    import matplotlib.image as mpimg

    out = tmp_path / "t.png"
    thumbs = {1: np.zeros((96, 96, 3), np.uint8)}
    assert timeline_png(out, _timeline([1, 2]), thumbs, title="v") == 2
    img = mpimg.imread(out)
    assert img.shape[0] > 200 and np.isfinite(img).all()


def test_no_faces_is_a_clear_message(tmp_path):
    with pytest.raises(FervidError, match="no faces were found"):
        timeline_png(tmp_path / "t.png", _timeline([]).reindex(columns=["face_id", "time_s", *EMOTIONS]), title="v")
    assert not (tmp_path / "t.png").exists()


def test_confusion_png(tmp_path):
    out = tmp_path / "c.png"
    confusion_png(out, np.eye(7), "test")
    assert out.stat().st_size > 1000


def test_plot_path_beside_csv_is_honoured(tmp_path, face_video):
    """--plot PATH with --csv puts the plot at PATH, not beside the CSV (bare --plot does that)."""
    from click.testing import CliRunner

    from fervid.cli import main

    csv, png = tmp_path / "a" / "t.csv", tmp_path / "b" / "p.png"
    res = CliRunner().invoke(main, ["timeline", str(face_video), "--csv", str(csv), "--plot", str(png), "-q"])
    assert res.exit_code == 0, res.output
    assert csv.is_file() and png.is_file() and not csv.with_suffix(".png").exists()
    res = CliRunner().invoke(main, ["timeline", str(face_video), "--csv", str(csv), "--plot", "-q", "--overwrite"])
    assert res.exit_code == 0 and csv.with_suffix(".png").is_file()


def test_panel_titles_name_the_summarys_dominant_emotion(tmp_path, monkeypatch):
    """The plot, the summary CSV and the terminal table name one dominant emotion per face:
    the summary's (highest mean probability), passed in."""
    import matplotlib.axes

    titles = []
    real = matplotlib.axes.Axes.set_title
    monkeypatch.setattr(matplotlib.axes.Axes, "set_title",
                        lambda self, label, *a, **k: titles.append(label) or real(self, label, *a, **k))
    timeline_png(tmp_path / "t.png", _timeline([1, 2]), title="v", dominant_emotions={1: "fear", 2: "sad"})
    assert any(t.startswith("face 1:") and t.endswith("dominant: fear") for t in titles)
    assert any(t.startswith("face 2:") and t.endswith("dominant: sad") for t in titles)
