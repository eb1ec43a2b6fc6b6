import numpy as np
import pytest

from conftest import fer_csv
from fervid.train import datasets
from fervid.errors import DataError


def test_kaggle_csv_plain_and_gz(tmp_path):
    for gz in (False, True):
        path = fer_csv(tmp_path / ("f.csv.gz" if gz else "f.csv"), {"Training": 14, "PublicTest": 7, "PrivateTest": 7}, gz=gz)
        data = datasets.load(path)
        assert data.images.shape == (28, 48, 48) and data.images.dtype == np.uint8
        assert len(data.split("Training")) == 14
        assert len(data.split("Test")) == 14
        assert set(data.labels.tolist()) == set(range(7))


def test_image_folder_layout(tmp_path):
    import cv2

    for split in ("train", "test"):
        for name in ("happy", "sad"):
            d = tmp_path / split / name
            d.mkdir(parents=True)
            for i in range(3):
                cv2.imwrite(str(d / f"{i}.png"), np.full((48, 48), 40 * i, np.uint8))
    data = datasets.load(tmp_path)
    assert len(data) == 12
    assert len(data.split("Training")) == 6
    assert set(data.split("Test").usage) == {"Test"}
    assert sorted(set(data.labels.tolist())) == [3, 4]


def test_ferplus_soft_labels(tmp_path):
    path = fer_csv(tmp_path / "f.csv", {"Training": 2})
    votes = tmp_path / "new.csv"
    votes.write_text("Usage,Image name,neutral,happiness,surprise,sadness,anger,disgust,fear,contempt,unknown,NF\n"
                     "Training,a.png,5,5,0,0,0,0,0,0,0,0\nTraining,,0,0,0,0,0,0,0,0,0,10\n")
    data = datasets.load(path, votes)
    assert data.soft.shape == (2, 7)
    assert data.soft[0, 6] == pytest.approx(0.5) and data.soft[0, 3] == pytest.approx(0.5)
    assert data.soft[1].sum() == 0  # not a face: no soft label


def _write(tmp_path, text, name="bad.csv"):
    p = tmp_path / name
    p.write_text(text)
    return p


PIX = " ".join(["7"] * 2304)


@pytest.mark.parametrize("text, words", [
    ("", "empty"),
    ("emotion,Usage\n0,Training\n", "missing column"),
    (f"emotion,pixels,Usage\n0,{' '.join(['1'] * 100)},Training\n", "line 2: 100 pixel values"),
    (f"emotion,pixels,Usage\n0,{PIX},Training\n0,{PIX[:-1]}x,Training\n", "line 3: pixel value 'x' is not a number"),
    (f"emotion,pixels,Usage\n0,{PIX},Validation\n", "unknown Usage 'Validation'"),
    (f"emotion,pixels,Usage\n9,{PIX},Training\n", "outside 0..6"),
    (f"emotion,pixels,Usage\nhappy,{PIX},Training\n", "not an integer"),
])
def test_malformed_csv_names_file_and_line(tmp_path, text, words):
    path = _write(tmp_path, text)
    with pytest.raises(DataError) as err:
        datasets.load(path)
    assert str(path) in str(err.value)
    assert words in str(err.value)


def test_corrupt_gzip_is_a_data_error(tmp_path):
    p = tmp_path / "f.csv.gz"
    p.write_bytes(b"not gzip at all")
    with pytest.raises(DataError, match="cannot be read"):
        datasets.load(p)


def test_missing_split_is_reported(tmp_path):
    data = datasets.load(fer_csv(tmp_path / "f.csv", {"Training": 7}))
    with pytest.raises(DataError, match="no rows in split 'PrivateTest'"):
        data.split("PrivateTest")


def test_pack_round_trip_and_a_bad_pack(tmp_path):
    from fervid.train.datasets import load, save_pack

    data = load(fer_csv(tmp_path / "fer.csv", {"Training": 20, "PublicTest": 5}))
    path = save_pack(data, tmp_path / "fer.npz.xz")
    back = load(path)
    assert np.array_equal(back.images, data.images) and np.array_equal(back.labels, data.labels)
    assert list(back.usage) == list(data.usage) and back.soft is None
    (tmp_path / "bad.npz.xz").write_bytes(b"not xz")
    with pytest.raises(DataError, match="bad.npz.xz"):
        load(tmp_path / "bad.npz.xz")
