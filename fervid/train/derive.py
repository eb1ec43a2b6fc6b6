"""Models made from shipped models without training (8-bit copies, mirror-averaged copies, ensembles).

Each is a new model, so it is scored afresh: PublicTest on every call (to decide whether it may
replace what it was made from), PrivateTest only with ``final`` (once, for the model that will ship); both go
into its metadata with the command that made it.
"""

from __future__ import annotations

import os
from pathlib import Path

from fervid.train import datasets
from fervid.analysis.classify import Classifier
from fervid.train.evaluate import predict_all
from fervid.train.modelfile import save_with_metadata


def score_splits(model: str, fer: datasets.FerData, final: bool) -> dict[str, str]:
    """Metadata entries with the model's PublicTest (and with ``final`` PrivateTest) accuracy."""
    clf = Classifier(model)
    scores = {}
    for split, key in (("PublicTest", "public_test_accuracy"), ("PrivateTest", "private_test_accuracy")):
        if split in fer.usage and (final or split == "PublicTest"):
            part = fer.split(split)
            scores[key] = f"{(predict_all(clf, part.images).argmax(1) == part.labels).mean():.4f}"
        else:
            scores[key] = "not measured"
    return scores


def write_scored(proto, out: str | os.PathLike, meta: dict, data: str, final: bool) -> dict:
    """Write ``proto`` to ``out`` with ``meta``, score the file as it stands, and write the scores
    into it too; return the metadata."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    save_with_metadata(proto, out, meta)
    meta = {**meta, **score_splits(str(out), datasets.load(data), final)}
    save_with_metadata(proto, out, meta)
    return meta
