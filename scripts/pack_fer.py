"""Pack FER-2013 Training + PublicTest (and FER+ soft labels) for a GPU machine.

    python scripts/pack_fer.py ../shared/data/fer2013.csv.gz --ferplus ../shared/data/ferplus/fer2013new.csv \\
        -o .gpu/fer2013_train_public.npz.xz

The data must travel with the working tree (at most 64 MiB in all): the xz pack of the two splits
is about 57 MB. PrivateTest stays behind on purpose: it is measured here, once, for the chosen model.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from fervid.train import datasets


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("data")
    ap.add_argument("--ferplus")
    ap.add_argument("-o", "--out", required=True)
    args = ap.parse_args()
    fer = datasets.load(args.data, args.ferplus)
    keep = np.isin(fer.usage, ["Training", "PublicTest"])
    sub = datasets.FerData(fer.images[keep], fer.labels[keep], fer.usage[keep], fer.source,
                           None if fer.soft is None else fer.soft[keep])
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    path = datasets.save_pack(sub, args.out)
    print(f"wrote {path}: {len(sub)} faces, {path.stat().st_size / 1e6:.1f} MB")


if __name__ == "__main__":
    main()
