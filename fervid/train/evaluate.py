"""Score any contract-honouring ONNX model on FER-2013: accuracy, per-class P/R/F1, confusion matrix, speed.

Runs on onnxruntime alone, so it judges the exact file the pipeline ships, not a torch twin of it.
"""

from __future__ import annotations

import csv
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fervid.train import datasets
from fervid.analysis.classify import Classifier
from fervid.labels import EMOTIONS, NUM_CLASSES


@dataclass
class Scores:
    accuracy: float
    precision: np.ndarray
    recall: np.ndarray
    f1: np.ndarray
    confusion: np.ndarray  # counts, rows = true class
    n: int

    @property
    def macro_f1(self) -> float:
        return float(self.f1.mean())

    @property
    def confusion_normalised(self) -> np.ndarray:
        return self.confusion / np.maximum(self.confusion.sum(1, keepdims=True), 1)


def score(labels: np.ndarray, predicted: np.ndarray) -> Scores:
    cm = np.zeros((NUM_CLASSES, NUM_CLASSES), dtype=np.int64)
    np.add.at(cm, (labels, predicted), 1)
    tp = np.diag(cm).astype(float)
    precision = tp / np.maximum(cm.sum(0), 1)
    recall = tp / np.maximum(cm.sum(1), 1)
    f1 = np.where(precision + recall > 0, 2 * precision * recall / np.maximum(precision + recall, 1e-12), 0.0)
    return Scores(float(tp.sum() / max(len(labels), 1)), precision, recall, f1, cm, len(labels))


def predict_all(clf: Classifier, images: np.ndarray, batch: int = 256) -> np.ndarray:
    if images.shape[1] != clf.input_size:
        import cv2

        images = np.stack([cv2.resize(im, (clf.input_size,) * 2, interpolation=cv2.INTER_LINEAR) for im in images])
    return np.concatenate([clf.predict(images[i:i + batch]) for i in range(0, len(images), batch)])


def crops_per_second(clf: Classifier, batch: int, seconds: float = 2.0) -> float:
    x = np.random.default_rng(0).integers(0, 256, (batch, clf.input_size, clf.input_size), dtype=np.uint8)
    clf.predict(x)
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        clf.predict(x)
        n += batch
    return n / (time.perf_counter() - t0)


def format_report(s: Scores, split: str, model: str) -> str:
    where = "Test (PublicTest and PrivateTest mixed, as image folders ship it)" if split == "Test" else split
    lines = [f"{model} on {where} ({s.n} faces): accuracy {s.accuracy * 100:.2f}%, macro-F1 {s.macro_f1 * 100:.2f}%",
             f"{'class':>9} {'precision':>9} {'recall':>7} {'F1':>6} {'support':>7}"]
    support = s.confusion.sum(1)
    for i, name in enumerate(EMOTIONS):
        lines.append(f"{name:>9} {s.precision[i]:9.3f} {s.recall[i]:7.3f} {s.f1[i]:6.3f} {support[i]:7d}")
    return "\n".join(lines)


def write_confusion_csv(path: Path, s: Scores) -> None:
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["true \\ predicted", *EMOTIONS])
        for name, row in zip(EMOTIONS, s.confusion_normalised):
            w.writerow([name, *(f"{v:.4f}" for v in row)])


def write_report(out: Path, s: Scores, report: str, split: str, model: str, command: str) -> list[Path]:
    """report.txt (with the command that made it), confusion.csv, and confusion.png (the paper's Fig. 9)."""
    from fervid.outputs.plots import confusion_png

    out.mkdir(parents=True, exist_ok=True)
    paths = [out / "report.txt", out / "confusion.csv", out / "confusion.png"]
    paths[0].write_text(f"{report}\n({command})\n")
    write_confusion_csv(paths[1], s)
    confusion_png(paths[2], s.confusion_normalised, f"{model} on FER-2013 {split}: {s.accuracy * 100:.1f}%")
    return paths


def evaluate(model: str, data: str, split: str = "PrivateTest", tta: bool = False) -> tuple[Scores, Classifier]:
    fer = datasets.load(data).split(split)
    clf = Classifier(model, tta=tta)
    probs = predict_all(clf, fer.images)
    return score(fer.labels, probs.argmax(1)), clf


def record_accuracy(path: str, split: str, accuracy: float) -> None:
    """Write a split's accuracy into the model's metadata, e.g. for a model trained where
    PrivateTest was not at hand. PrivateTest is written once: a model that has it is refused."""
    import onnx

    from fervid.errors import ModelError
    from fervid.train.modelfile import save_with_metadata

    keys = {"PublicTest": "public_test_accuracy", "PrivateTest": "private_test_accuracy"}
    if split not in keys:
        raise ModelError(f"--record: only PublicTest or PrivateTest accuracy is recorded, not {split}")
    proto = onnx.load(path)
    key = keys[split]
    recorded = {p.key: p.value for p in proto.metadata_props}.get(key, "")
    if split == "PrivateTest" and recorded not in ("", "not measured"):
        raise ModelError(f"{path}: PrivateTest accuracy is already recorded ({recorded}); it is measured once")
    save_with_metadata(proto, path, {key: f"{accuracy:.4f}"}, keep=True)
