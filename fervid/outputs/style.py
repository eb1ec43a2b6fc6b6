"""One look for every picture fervid makes: the annotated video, timeline plots, confusion matrices."""

from __future__ import annotations

# One colour per emotion, in the order of fervid.labels.EMOTIONS (colour-blind-safe Okabe-Ito palette).
EMOTION_HEX = ("#D55E00", "#009E73", "#CC79A7", "#E69F00", "#0072B2", "#56B4E9", "#999999")


def _bgr(hex_colour: str) -> tuple[int, int, int]:
    r, g, b = (int(hex_colour[i:i + 2], 16) for i in (1, 3, 5))
    return b, g, r


EMOTION_BGR = tuple(_bgr(c) for c in EMOTION_HEX)
FONT_FAMILY = "DejaVu Sans"
FIGURE_DPI = 120


def apply_matplotlib_style() -> None:
    """Shared fonts and sizes for matplotlib figures (call before plotting)."""
    import matplotlib

    matplotlib.use("Agg")
    matplotlib.rcParams.update({"font.family": FONT_FAMILY, "font.size": 9, "axes.titlesize": 10,
                                "axes.spines.top": False, "axes.spines.right": False, "figure.dpi": FIGURE_DPI})
