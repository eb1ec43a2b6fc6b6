"""Everything that changes the numbers fervid writes, in one place: defaults, allowed ranges, help.

The dataclasses are the one source. The CLI builds its options from the fields' metadata
(:func:`options`), :func:`fervid.analyze` takes the same names as keyword arguments, and every
value is checked when a settings object is made, whoever makes it. This module imports nothing
heavy: the CLI reads it to build ``--help``.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field, fields
from typing import Any, Iterator

from fervid.errors import SettingsError

DEFAULT_MODEL = "resnet_ms_x3_int8"
DEVICES = ("cpu", "cuda")
MAX_TILES = 16  # columns or rows of one grid: 16x16 is 256 detector passes a key frame already
_TILES = re.compile(r"[1-9]\d*x[1-9]\d*(\+[1-9]\d*x[1-9]\d*)*")


def _opt(default: Any, help: str, *, kind: type | None = None, lo: float | None = None, hi: float | None = None,
         above: bool = False, choices: tuple | None = None, shown: str | None = None, cli: bool = True) -> Any:
    """A field with what the CLI and the checks need: its ``kind`` (the default's type unless the
    default is None, which then means "not set"); ``lo``..``hi`` inclusive (``above``: ``lo``
    itself excluded); ``shown``: how ``--help`` prints the default; ``cli`` False for settings that
    only the library and the benchmarks set."""
    meta = {"help": help, "kind": kind or type(default), "optional": default is None, "lo": lo, "hi": hi,
            "above": above, "choices": choices, "shown": shown, "cli": cli}
    return field(default=default, metadata=meta)


def _range_text(meta: dict) -> str:
    lo, hi = meta["lo"], meta["hi"]
    if lo is not None and hi is not None:
        return f"from {lo} to {hi}"
    if lo is not None:
        return f"above {lo}" if meta["above"] else f"at least {lo}"
    return f"at most {hi}"


def check_value(name: str, value: Any, meta: dict) -> Any:
    """``value`` if it is allowed for the setting ``name``, else :class:`SettingsError` saying what is."""
    kind = meta["kind"]
    if value is None:
        if meta["optional"]:
            return value
        raise SettingsError(f"{name}: a value is needed")
    if meta.get("choices") is not None:
        if value not in meta["choices"]:
            raise SettingsError(f"{name}: {value!r} is not one of {', '.join(map(str, meta['choices']))}")
        return value
    if kind is bool:
        if not isinstance(value, bool):
            raise SettingsError(f"{name}: expected True or False, got {value!r}")
        return value
    if kind in (int, float):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise SettingsError(f"{name}: expected a number, got {value!r}")
        if kind is int and value != int(value):
            raise SettingsError(f"{name}: expected a whole number, got {value!r}")
        if not math.isfinite(value):
            raise SettingsError(f"{name}: {value} is not a finite number")
        lo, hi = meta.get("lo"), meta.get("hi")
        if (lo is not None and (value < lo or (meta.get("above") and value == lo))) or (hi is not None and value > hi):
            raise SettingsError(f"{name}: {value} is out of range (allowed: {_range_text(meta)})")
        return kind(value)
    if not isinstance(value, str):
        raise SettingsError(f"{name}: expected text, got {value!r}")
    return value


def _check_all(obj) -> None:
    for f in fields(obj):
        if f.metadata:
            object.__setattr__(obj, f.name, check_value(f.name, getattr(obj, f.name), f.metadata))


def check_tiles(spec: str) -> str:
    if spec in ("auto", "off"):
        return spec
    if not isinstance(spec, str) or not _TILES.fullmatch(spec.lower()):
        raise SettingsError(f"tiles: {spec!r} is not auto, off, COLSxROWS such as 3x2, "
                            "or grids coarsest first such as 4x2+7x4")
    if any(int(n) > MAX_TILES for n in re.findall(r"\d+", spec)):
        raise SettingsError(f"tiles: {spec!r} has more than {MAX_TILES} columns or rows in a grid")
    return spec.lower()


@dataclass(frozen=True)
class DetectorSettings:
    """The face detector's knobs; only ``tiles`` is an everyday option."""

    tiles: str = _opt("auto", "Detector tiling for small faces in big frames: auto, off, COLSxROWS, "
                              "or grids coarsest first (4x2+7x4).")
    model: str = _opt("full", "BlazeFace's full or short range model, or a path to one.", cli=False)
    runtime: str = _opt("onnx", "onnx, or mediapipe: the same BlazeFace through MediaPipe (boxes in whole "
                                "model pixels).", choices=("onnx", "mediapipe"), cli=False)
    min_score: float = _opt(0.5, "Detector score a box needs.", lo=0, hi=1, cli=False)
    tile_overlap: float = _opt(0.25, "Share of a tile's side that it overlaps its neighbour.", lo=0, hi=0.9, cli=False)
    nms_iou: float = _opt(0.3, "Overlap above which two boxes are one face.", lo=0, hi=1, cli=False)
    tile_refresh: int = _opt(3, "A tile that found no face lately is scanned on every Nth call only (1: always).",
                             lo=1, cli=False)

    def __post_init__(self):
        _check_all(self)
        object.__setattr__(self, "tiles", check_tiles(self.tiles))

    def as_dict(self) -> dict:
        return dict(self.__dict__)


@dataclass(frozen=True)
class Settings:
    """Everything that changes the numbers fervid writes; recorded in the JSON sidecar."""

    model: str | None = _opt(None, "Emotion model: a name in models/ or a path to an .onnx file.",
                             kind=str, shown=DEFAULT_MODEL)
    every: int = _opt(1, "Analyse one frame in N (annotate holds the last result between).", lo=1)
    fps: float | None = _opt(None, "Analyse about F frames per second (overrides --every).", kind=float,
                             lo=0, above=True)
    min_face: int = _opt(20, "Ignore faces smaller than this many pixels.", lo=0)
    smooth: float = _opt(0.3, "Smoothing time constant in seconds (0: none).", lo=0)
    detect_every: float = _opt(0.2, "Seconds between face detections, twice that while every face holds "
                                    "still (boxes are interpolated between).", lo=0, hi=3600)
    classify_every: float = _opt(1 / 15, "Seconds between emotion readings of a face (probabilities are "
                                         "interpolated between); 0: every frame.", lo=0, hi=3600, shown="1/15")
    device: str = _opt("cpu", "Where the emotion model runs.", choices=DEVICES)
    tta: bool = _opt(False, "Average each face with its mirror image (twice the classifier work).")
    detector: DetectorSettings = field(default_factory=DetectorSettings)
    # Set by the library and the benchmarks, not on the command line:
    steady: int = _opt(2, "Key frames this many times further apart while every face holds still (1: never).",
                       lo=1, cli=False)
    coast: float = _opt(0.5, "Seconds a lost face keeps its predicted box.", lo=0, cli=False)
    relink: float = _opt(10.0, "Seconds a face lost while holding still may come back to its place under its ID.",
                         lo=0, cli=False)
    activation: float = _opt(0.0, "Detector score a face needs to start a track (weaker ones only extend tracks).",
                             lo=0, hi=1, cli=False)
    threads: int = _opt(0, "Classifier threads; 0: one, and two detector threads on tiled frames "
                           "(one job, 4+ cores).", lo=0, cli=False)

    def __post_init__(self):
        _check_all(self)
        if not isinstance(self.detector, DetectorSettings):
            raise SettingsError(f"detector: expected DetectorSettings, got {self.detector!r}")

    @classmethod
    def from_options(cls, **options) -> "Settings":
        """Settings from the flat option names of the CLI and :func:`fervid.analyze` (``tiles`` included)."""
        own = {f.name for f in fields(cls)}
        det = {f.name for f in fields(DetectorSettings) if f.metadata.get("cli")}  # tiles
        unknown = set(options) - own - det
        if unknown:
            raise SettingsError(f"unknown setting(s): {', '.join(sorted(unknown))} "
                                f"(known: {', '.join(name for name, _, _ in options_spec())})")
        detector = DetectorSettings(**{k: v for k, v in options.items() if k in det})
        return cls(**{k: v for k, v in options.items() if k in own}, detector=detector)

    def as_dict(self) -> dict:
        d = dict(self.__dict__)
        d["detector"] = self.detector.as_dict()
        return d


def options_spec() -> Iterator[tuple[str, Any, dict]]:
    """(name, default, metadata) of each everyday option, in ``--help`` order."""
    for cls in (Settings, DetectorSettings):
        for f in fields(cls):
            if f.metadata and f.metadata["cli"]:
                yield f.name, f.default, dict(f.metadata)
