"""Figures: the confusion matrix (the paper's Fig. 9) and per-face emotion timelines. Needs matplotlib."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from fervid.errors import FervidError
from fervid.labels import EMOTIONS
from fervid.style import EMOTION_HEX, apply_matplotlib_style


def _pyplot():
    try:
        apply_matplotlib_style()
        import matplotlib.pyplot as plt
    except ImportError:
        raise FervidError("figures need matplotlib: pip install 'fervid[plot]'") from None
    return plt


def confusion_png(path: Path, confusion_normalised: np.ndarray, title: str) -> None:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5.4, 4.8))
    im = ax.imshow(confusion_normalised, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(EMOTIONS)), EMOTIONS, rotation=45, ha="right")
    ax.set_yticks(range(len(EMOTIONS)), EMOTIONS)
    for tick, colour in zip(ax.get_yticklabels(), EMOTION_HEX):
        tick.set_color(colour)
    for tick, colour in zip(ax.get_xticklabels(), EMOTION_HEX):
        tick.set_color(colour)
    for i in range(len(EMOTIONS)):
        for j in range(len(EMOTIONS)):
            v = confusion_normalised[i, j]
            ax.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=8, color="white" if v > 0.5 else "black")
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
