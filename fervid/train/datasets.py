"""FER-2013 in the forms users have: the Kaggle CSV (plain or .gz) and the image-folder layout;
and fervid's own packed form (``.npz.xz``), small enough to travel to a GPU machine.

Loading needs only numpy, so ``fervid evaluate`` works without the training extra.
Every malformed input stops with one :class:`DataError` naming the file and the line.
"""

from __future__ import annotations

import csv
import gzip
import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fervid.errors import DataError
from fervid.labels import EMOTIONS, NUM_CLASSES

SIZE = 48
USAGES = ("Training", "PublicTest", "PrivateTest")
# Image-folder layouts name the test split "test"; it mixes PublicTest and PrivateTest.
FOLDER_SPLITS = {"train": "Training", "test": "Test"}
# FER+ columns in our class order (contempt, unknown and NF are not FER-2013 classes).
FERPLUS_COLUMNS = ("anger", "disgust", "fear", "happiness", "sadness", "surprise", "neutral")
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".pgm", ".tif", ".tiff"}


@dataclass(frozen=True)
class FerData:
    """Faces as uint8 ``[N, 48, 48]``, labels ``[N]``, the split of each row, optional soft labels ``[N, 7]``."""

    images: np.ndarray
    labels: np.ndarray
    usage: np.ndarray
    source: str
    soft: np.ndarray | None = None

    def split(self, name: str) -> "FerData":
        """Rows of one split; ``Test`` means PublicTest and PrivateTest together."""
        if name == "Test":
            mask = np.isin(self.usage, ["PublicTest", "PrivateTest", "Test"])
        else:
            mask = self.usage == name
        if not mask.any():
            present = ", ".join(sorted(set(self.usage.tolist()))) or "none"
            raise DataError(f"{self.source}: no rows in split {name!r} (splits present: {present})")
        soft = None if self.soft is None else self.soft[mask]
        return FerData(self.images[mask], self.labels[mask], self.usage[mask], self.source, soft)

    def __len__(self) -> int:
        return len(self.labels)


def load(path: str | Path, ferplus: str | Path | None = None) -> FerData:
    """Load a Kaggle CSV or an image-folder tree, optionally with FER+ votes as soft labels."""
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: no such file or directory")
    if path.name.endswith(".npz.xz"):
        data = _load_pack(path)
    else:
        data = _load_folder(path) if path.is_dir() else _load_csv(path)
    if ferplus is not None:
        if path.is_dir():
            raise DataError(f"{ferplus}: FER+ votes align with fer2013.csv rows, not with an image folder")
        data = FerData(data.images, data.labels, data.usage, data.source, load_ferplus(ferplus, len(data)))
    return data


def save_pack(data: FerData, path: str | Path) -> Path:
    """Faces, labels, splits and soft labels in one xz-compressed npz (``NAME.npz.xz``)."""
    import lzma

    path = Path(path)
    buf = io.BytesIO()
    arrays = {"images": data.images, "labels": data.labels, "usage": data.usage.astype(str)}
    if data.soft is not None:
        arrays["soft"] = data.soft
    np.savez(buf, **arrays)
    with lzma.open(path, "wb", preset=6) as fh:
        fh.write(buf.getvalue())
    return path


def _load_pack(path: Path) -> FerData:
    import lzma

    try:
        with lzma.open(path, "rb") as fh:
            arrays = np.load(io.BytesIO(fh.read()), allow_pickle=False)
            soft = arrays["soft"] if "soft" in arrays.files else None
            return FerData(arrays["images"], arrays["labels"], arrays["usage"], str(path), soft)
    except (lzma.LZMAError, ValueError, KeyError, OSError) as err:
        raise DataError(f"{path}: not a fervid FER pack ({err})") from None


def _open_text(path: Path) -> io.TextIOBase:
    if path.suffix == ".gz":
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8", newline="")
    return open(path, encoding="utf-8", newline="")


def _load_csv(path: Path) -> FerData:
    try:
        with _open_text(path) as fh:
            reader = csv.reader(fh)
            header = next(reader, None)
            if header is None:
                raise DataError(f"{path}: the file is empty (expected a header 'emotion,pixels,Usage')")
            header = [h.strip() for h in header]
            missing = [c for c in ("emotion", "pixels") if c not in header]
            if missing:
                raise DataError(f"{path}, line 1: missing column(s) {', '.join(missing)} (header is {','.join(header)})")
            i_emo, i_pix = header.index("emotion"), header.index("pixels")
            i_use = header.index("Usage") if "Usage" in header else None
            images, labels, usage = [], [], []
            for row in reader:
                line = reader.line_num
                if not row:
                    continue
                if len(row) != len(header):
                    raise DataError(f"{path}, line {line}: {len(row)} fields, expected {len(header)}")
                try:
                    label = int(row[i_emo])
                except ValueError:
                    raise DataError(f"{path}, line {line}: emotion {row[i_emo]!r} is not an integer") from None
                if not 0 <= label < NUM_CLASSES:
                    raise DataError(f"{path}, line {line}: emotion {label} is outside 0..{NUM_CLASSES - 1}")
                tokens = row[i_pix].split()
                if len(tokens) != SIZE * SIZE:
                    raise DataError(f"{path}, line {line}: {len(tokens)} pixel values, expected {SIZE * SIZE}")
                try:
                    pixels = np.array(tokens, dtype=np.int32)
                except ValueError:
                    bad = next(t for t in tokens if not t.isdigit())
                    raise DataError(f"{path}, line {line}: pixel value {bad!r} is not a number") from None
                if pixels.min() < 0 or pixels.max() > 255:
                    raise DataError(f"{path}, line {line}: pixel values must lie in 0..255")
                use = row[i_use].strip() if i_use is not None else "Training"
                if use not in USAGES:
                    raise DataError(f"{path}, line {line}: unknown Usage {use!r} (expected one of {', '.join(USAGES)})")
                images.append(pixels.astype(np.uint8).reshape(SIZE, SIZE))
                labels.append(label)
                usage.append(use)
    except (OSError, EOFError, UnicodeDecodeError, csv.Error) as err:
        raise DataError(f"{path}: cannot be read as a FER-2013 CSV ({err})") from None
    if not images:
        raise DataError(f"{path}: no data rows after the header")
    return FerData(np.stack(images), np.array(labels, dtype=np.int64), np.array(usage), str(path))


def _load_folder(root: Path) -> FerData:
    import cv2

    images, labels, usage = [], [], []
    splits = [d for d in sorted(root.iterdir()) if d.is_dir() and d.name.lower() in FOLDER_SPLITS]
    if not splits:
        raise DataError(f"{root}: expected sub-folders train/ and test/ with one folder per emotion inside")
    for split_dir in splits:
        for class_dir in sorted(d for d in split_dir.iterdir() if d.is_dir()):
            name = class_dir.name.lower()
            if name not in EMOTIONS:
                raise DataError(f"{class_dir}: unknown class folder (expected one of {', '.join(EMOTIONS)})")
            for file in sorted(class_dir.iterdir()):
                if file.suffix.lower() not in IMAGE_SUFFIXES:
                    continue
                img = cv2.imread(str(file), cv2.IMREAD_GRAYSCALE)
                if img is None:
                    raise DataError(f"{file}: not a readable image")
                if img.shape != (SIZE, SIZE):
                    img = cv2.resize(img, (SIZE, SIZE), interpolation=cv2.INTER_AREA)
                images.append(img)
                labels.append(EMOTIONS.index(name))
                usage.append(FOLDER_SPLITS[split_dir.name.lower()])
    if not images:
        raise DataError(f"{root}: no images found under train/ or test/")
    return FerData(np.stack(images), np.array(labels, dtype=np.int64), np.array(usage), str(root))


def load_ferplus(path: str | Path, expected_rows: int) -> np.ndarray:
    """FER+ votes as ``[N, 7]`` probabilities; rows without usable votes are all-zero (callers fall back)."""
    path = Path(path)
    try:
        with open(path, encoding="utf-8", newline="") as fh:
            reader = csv.DictReader(fh)
            if reader.fieldnames is None:
                raise DataError(f"{path}: the file is empty")
            missing = [c for c in FERPLUS_COLUMNS if c not in reader.fieldnames]
            if missing:
                raise DataError(f"{path}, line 1: missing FER+ column(s) {', '.join(missing)}")
            votes = []
            for row in reader:
                try:
                    votes.append([float(row[c]) for c in FERPLUS_COLUMNS])
                except (TypeError, ValueError):
                    raise DataError(f"{path}, line {reader.line_num}: vote counts must be numbers") from None
    except OSError as err:
        raise DataError(f"{path}: cannot be read ({err})") from None
    if len(votes) != expected_rows:
        raise DataError(f"{path}: {len(votes)} rows, but the FER-2013 file has {expected_rows}; they must align row by row")
    v = np.array(votes, dtype=np.float32)
    total = v.sum(axis=1, keepdims=True)
    return np.divide(v, total, out=np.zeros_like(v), where=total > 0)
