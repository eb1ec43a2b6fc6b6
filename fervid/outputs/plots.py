"""Figures: the confusion matrix (the paper's Fig. 9) and per-face emotion timelines. Needs matplotlib."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from fervid.errors import FervidError
from fervid.labels import EMOTIONS
from fervid.outputs.style import EMOTION_HEX, apply_matplotlib_style


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


MAX_PANELS = 12


def timeline_png(path: Path, df, thumbnails: dict | None = None, title: str = "",
                 dominant_emotions: dict[int, str] | None = None) -> int:
    """One panel per face (longest-seen first): thumbnail, the 7 probabilities over time, a dominant-emotion band.

    ``df`` has the timeline CSV's columns; ``dominant_emotions`` (face_id -> emotion) is the summary's
    ``dominant_emotion``, so that the figure names the same one; returns the number of panels drawn.
    """
    if df is None or len(df) == 0:
        raise FervidError(f"{title or 'timeline'}: no faces were found, so there is nothing to plot")
    plt = _pyplot()
    from matplotlib.colors import ListedColormap

    order = df.groupby("face_id").size().sort_values(ascending=False).index.tolist()
    shown = order[:MAX_PANELS]
    t0, t1 = float(df.time_s.min()), float(df.time_s.max())
    height = 1.0 + 1.7 * len(shown)
    fig = plt.figure(figsize=(10, height))
    grid = fig.add_gridspec(len(shown), 2, width_ratios=[1, 9], hspace=0.55, wspace=0.16,
                            top=1 - 0.85 / height, bottom=0.45 / height, left=0.02, right=0.98)
    cmap = ListedColormap(EMOTION_HEX)
    for i, fid in enumerate(shown):
        face = df[df.face_id == fid].sort_values("time_s")
        ax_img = fig.add_subplot(grid[i, 0])
        ax_img.axis("off")
        thumb = (thumbnails or {}).get(int(fid))
        if thumb is not None:
            ax_img.imshow(thumb)
        ax = fig.add_subplot(grid[i, 1])
        probs = face[list(EMOTIONS)].to_numpy()
        times = face.time_s.to_numpy()
        # Gaps (face not visible) stay gaps: break the lines where time jumps.
        step = np.median(np.diff(times)) if len(times) > 1 else 0.04
        breaks = np.where(np.diff(times) > 3 * step)[0] + 1
        for k, (name, colour) in enumerate(zip(EMOTIONS, EMOTION_HEX)):
            for seg_t, seg_p in zip(np.split(times, breaks), np.split(probs[:, k], breaks)):
                ax.plot(seg_t, seg_p, color=colour, lw=1.2, label=name if seg_t is times or len(breaks) == 0 else None)
        dominant = probs.argmax(1)
        ax.imshow(dominant[None, :], aspect="auto", cmap=cmap, vmin=-0.5, vmax=6.5,
                  extent=(times[0], times[-1] + step, 1.04, 1.14), interpolation="nearest")
        ax.set_xlim(t0, t1 + step)
        ax.set_ylim(0, 1.15)
        ax.set_yticks([0, 0.5, 1])
        ax.set_ylabel("probability")
        main = (dominant_emotions or {}).get(int(fid)) or EMOTIONS[int(probs.mean(0).argmax())]
        ax.set_title(f"face {fid}: {len(face)} frames, {times[0]:.1f}-{times[-1]:.1f} s, dominant: {main}", loc="left")
        if i == len(shown) - 1:
            ax.set_xlabel("time (s)")
    handles = [plt.Line2D([], [], color=c, lw=2) for c in EMOTION_HEX]
    fig.legend(handles, EMOTIONS, loc="center", ncol=7, frameon=False, bbox_to_anchor=(0.5, 1 - 0.45 / height))
    extra = len(order) - len(shown)
    heading = title + (f"  ({extra} more faces not shown)" if extra else "")
    if heading:
        fig.suptitle(heading, y=1 - 0.12 / height, fontsize=10, va="top")
    fig.savefig(path)
    plt.close(fig)
    return len(shown)


def saliency_grid_png(path: Path, crops: np.ndarray, captions: list[str], columns: list[tuple[str, np.ndarray, np.ndarray, np.ndarray]]) -> None:
    """Rows: faces. Columns: the crop, then per (title, maps, classes, probs) the guided back-propagation map."""
    plt = _pyplot()
    n, m = len(crops), 1 + len(columns)
    fig, axes = plt.subplots(n, m, figsize=(1.9 * m, 2.05 * n), squeeze=False)
    for i in range(n):
        axes[i, 0].imshow(crops[i], cmap="gray", vmin=0, vmax=255)
        axes[i, 0].set_title(captions[i], fontsize=7)
        for j, (title, maps, classes, probs) in enumerate(columns, start=1):
            axes[i, j].imshow(_visible(maps[i]), cmap="gray", vmin=0, vmax=1)
            k = int(classes[i])
            axes[i, j].set_title(f"{title}\n{EMOTIONS[k]} {probs[i, k] * 100:.0f}%", fontsize=7,
                                 color=EMOTION_HEX[k])
        for ax in axes[i]:
            ax.set_xticks([])
            ax.set_yticks([])
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def _visible(grad: np.ndarray) -> np.ndarray:
    """Positive guidance scaled to 0..1 (the 99th percentile saturates), as guided back-propagation is usually shown."""
    g = np.clip(grad, 0, None)
    top = np.percentile(g, 99)
    return np.clip(g / top, 0, 1) if top > 0 else np.zeros_like(g)
