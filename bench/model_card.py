"""Print the model-card table of models/README.md from the shipped ONNX files and this machine.

    python bench/model_card.py [models/*.onnx]

Accuracies come from each file's metadata (written once by `fervid train`, PrivateTest measured
once for the chosen checkpoint); parameters, file size and crops/s are measured here and now.
"""

from __future__ import annotations

import os
import platform
import sys
from pathlib import Path

from fervid.analysis.classify import Classifier, shipped_models
from fervid.train.evaluate import crops_per_second

ROOT = Path(__file__).resolve().parent.parent


def pct(value: str | None) -> str:
    try:
        return f"{float(value) * 100:.2f}%"
    except (TypeError, ValueError):
        return value or "-"


def main() -> None:
    paths = [Path(p) for p in sys.argv[1:]] or shipped_models()
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores\n")
    print("| model | parameters | ONNX size | PublicTest | PrivateTest | crops/s batch 1 | crops/s batch 64 "
          "| training | epochs |")
    print("|---|---|---|---|---|---|---|---|---|")
    for path in paths:
        clf = Classifier(str(path))
        m = clf.info.metadata
        speed = {b: crops_per_second(clf, b, 3.0) for b in (1, 64)}
        hours = float(m.get("training_seconds", "nan")) / 3600
        print(f"| {path.stem} | {int(m.get('parameters', 0)):,} | {path.stat().st_size / 1e6:.2f} MB "
              f"| {pct(m.get('public_test_accuracy'))} | {pct(m.get('private_test_accuracy'))} "
              f"| {speed[1]:,.0f} | {speed[64]:,.0f} | {hours:.1f} h | {m.get('epochs', '-')} |")


if __name__ == "__main__":
    main()
