"""Face crops in FER-2013's framing, classified in batches by an ONNX model that honours the contract.

The contract: one float32 input ``[N,1,S,S]`` of raw grey levels 0..255, one float32 output ``[N,7]``
of probabilities in the order of :data:`fervid.labels.EMOTIONS`; metadata says the rest.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from fervid._assets import models_dir
from fervid.errors import ModelError
from fervid.labels import EMOTIONS, NUM_CLASSES
from fervid.settings import DEFAULT_MODEL

MODELS_DIR = models_dir()
# FER-2013's framing relative to BlazeFace's box: BlazeFace (full range) run on 1,500 FER-2013
# Training faces padded into a larger canvas finds boxes whose side is 1/1.15 of the image side
# (IQR 1.05-1.27), centred 0.03 box heights below the image centre. bench/calibrate_crop.py measures it.
CROP_SCALE = 1.15
CROP_SHIFT_Y = -0.03
# Roll (degrees) below which the crop stays upright, and from which it is turned fully back; in
# between it is turned back in part, so that a head leaning about the threshold does not make
# the crops jump from one frame to the next. Chosen on PublicTest (bench/roll.py, README).
ROLL_RAMP = (7.0, 13.0)


def shipped_models() -> list[Path]:
    """The emotion models in models/ (the face detectors there are ONNX files too)."""
    return sorted(p for p in MODELS_DIR.glob("*.onnx") if not p.name.startswith("blaze_face"))


def resolve_model(name: str | None) -> Path:
    """A model name in models/ (``mini_xception``) or a path to an .onnx file."""
    name = name or DEFAULT_MODEL
    path = Path(name)
    if path.suffix.lower() != ".onnx":
        path = MODELS_DIR / f"{name}.onnx"
    if not path.is_file():
        shipped = [p.stem for p in shipped_models()]
        raise ModelError(f"{name}: model not found (shipped models: {', '.join(shipped) or 'none'}; or give a path to an .onnx file)")
    return path


def square_crop(gray: np.ndarray, box: tuple[float, float, float, float], size: int,
                scale: float = CROP_SCALE, shift_y: float = CROP_SHIFT_Y, roll: float = 0.0) -> np.ndarray:
    """A square of side ``scale`` x the box's larger side, centred on the box, resized to ``size``;
    edges replicated. With ``roll`` (degrees) beyond FER-2013's own faces' lean the square is
    turned with the face, so that its eyes come out about level, as FER-2013's are."""
    lo, hi = ROLL_RAMP
    turn = roll * min(max((abs(roll) - lo) / (hi - lo), 0.0), 1.0)
    if abs(turn) >= 0.5:
        # BlazeFace's box of a tilted face is smaller than of the same face upright, by about
        # the cosine of the tilt (PublicTest's faces turned 20 and 30 degrees: 0.94 and 0.89).
        return _levelled_crop(gray, box, size, scale / np.cos(np.radians(min(abs(turn), 60.0))), shift_y, turn)
    x0, y0, x1, y1 = box
    side = max(x1 - x0, y1 - y0) * scale
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2 + shift_y * (y1 - y0)
    h, w = gray.shape[:2]
    l, t = int(round(cx - side / 2)), int(round(cy - side / 2))
    s = max(1, int(round(side)))
    r, b = l + s, t + s
    if l >= 0 and t >= 0 and r <= w and b <= h:
        patch = gray[t:b, l:r]
    else:
        # The part inside the picture, at least its nearest row and column (a square wholly
        # outside replicates the edge), grown back to the square by replicating its edges.
        x0, y0 = min(max(l, 0), w - 1), min(max(t, 0), h - 1)
        x1, y1 = max(min(r, w), x0 + 1), max(min(b, h), y0 + 1)
        left, top = min(max(x0 - l, 0), s - (x1 - x0)), min(max(y0 - t, 0), s - (y1 - y0))
        patch = cv2.copyMakeBorder(gray[y0:y1, x0:x1], top, s - (y1 - y0) - top, left, s - (x1 - x0) - left,
                                   cv2.BORDER_REPLICATE)
    if s > 4 * size:  # a big face: decimate to under 4x first, area-averaging all of it is slow
        k = s // (2 * size)
        patch = patch[::k, ::k]
    interp = cv2.INTER_AREA if patch.shape[0] > size else cv2.INTER_LINEAR
    return cv2.resize(patch, (size, size), interpolation=interp)


def _levelled_crop(gray: np.ndarray, box: tuple[float, float, float, float], size: int, scale: float,
                   shift_y: float, roll: float) -> np.ndarray:
    """The turned square: the upright square holding it is cropped and shrunk as usual (to about
    the output's scale), then turned by ``roll`` about its centre and cut to ``size``."""
    x0, y0, x1, y1 = box
    side = max(x1 - x0, y1 - y0) * scale
    a = np.radians(roll)
    dy = shift_y * (y1 - y0)  # the crop's centre is shifted along the face's own vertical
    cx, cy = (x0 + x1) / 2 - dy * np.sin(a), (y0 + y1) / 2 + dy * np.cos(a)
    reach = side * (abs(np.cos(a)) + abs(np.sin(a)))
    outer = int(np.ceil(size * reach / side)) + 2
    patch = square_crop(gray, (cx - reach / 2, cy - reach / 2, cx + reach / 2, cy + reach / 2), outer,
                        scale=1.0, shift_y=0.0)
    m = cv2.getRotationMatrix2D(((outer - 1) / 2, (outer - 1) / 2), roll, size * reach / (side * outer))
    m[:, 2] += (size - outer) / 2
    return cv2.warpAffine(patch, m, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


@dataclass(frozen=True)
class ModelInfo:
    path: str
    name: str
    sha256: str
    input_size: int
    metadata: dict


# Metadata that ``fervid mirror`` writes into a model whose graph already reads mirror images.
MIRRORED = ("test_time_augmentation", "mirror")


class Classifier:
    """``predict(crops)`` for uint8 crops ``[N,S,S]`` -> probabilities ``[N,7]``."""

    def __init__(self, model: str | None = None, device: str = "cpu", threads: int = 0, tta: bool = False):
        import onnxruntime as ort

        path = resolve_model(model)
        opts = ort.SessionOptions()
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if threads:
            opts.intra_op_num_threads = threads
        opts.log_severity_level = 3
        # ONNX Runtime's worker threads spin after each run by default; in fervid the classifier
        # shares the cores with the detector and ffmpeg, which that spinning would starve.
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        providers = ["CPUExecutionProvider"]
        if device == "cuda":
            if "CUDAExecutionProvider" not in ort.get_available_providers():
                raise ModelError("--device cuda: onnxruntime has no CUDA provider here (pip install onnxruntime-gpu)")
            providers.insert(0, "CUDAExecutionProvider")
        try:
            self.session = ort.InferenceSession(str(path), opts, providers=providers)
        except Exception as err:  # noqa: BLE001 - onnxruntime raises several unrelated types
            raise ModelError(f"{path}: not a loadable ONNX model ({str(err).splitlines()[0][:200]})") from None
        self.input_size = check_contract(self.session, path)
        self.input_name = self.session.get_inputs()[0].name
        check_outputs(self, path)
        meta = dict(self.session.get_modelmeta().custom_metadata_map)
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        self.info = ModelInfo(str(path), path.stem, digest, self.input_size, meta)
        # A model that averages mirror images in its graph (``fervid mirror``) would only repeat the work.
        self.tta = tta and not self.mirrored

    @property
    def mirrored(self) -> bool:
        return self.info.metadata.get(MIRRORED[0]) == MIRRORED[1]

    def predict(self, crops: np.ndarray) -> np.ndarray:
        """Probabilities; with ``tta`` the mean over each crop and its mirror image (twice the work)."""
        if len(crops) == 0:
            return np.zeros((0, NUM_CLASSES), np.float32)
        x = crops.astype(np.float32, copy=False).reshape(len(crops), 1, self.input_size, self.input_size)
        if not self.tta:
            return self.session.run(None, {self.input_name: x})[0]
        both = self.session.run(None, {self.input_name: np.concatenate([x, x[..., ::-1]])})[0]
        return (both[: len(x)] + both[len(x):]) / 2


def check_outputs(clf: "Classifier", path: Path) -> None:
    """Run a probe batch (flat grey, noise, a gradient) and refuse a model whose outputs are not
    probabilities: logits or NaN written as probabilities would look like results."""
    s = clf.input_size
    rng = np.random.default_rng(0)
    probe = np.stack([np.full((s, s), 128, np.uint8), rng.integers(0, 256, (s, s), dtype=np.uint8),
                      np.tile(np.linspace(0, 255, s, dtype=np.uint8), (s, 1))])
    try:
        out = np.asarray(clf.session.run(None, {clf.input_name: probe.astype(np.float32)[:, None]})[0], np.float64)
    except Exception as err:  # noqa: BLE001 - onnxruntime raises several unrelated types
        raise ModelError(f"{path}: the model fails on a test batch ({str(err).splitlines()[0][:200]})") from None
    if out.shape != (len(probe), NUM_CLASSES) or not np.isfinite(out).all():
        raise ModelError(f"{path}: the model's outputs on a test batch are not finite numbers of shape [N,{NUM_CLASSES}]")
    if out.min() < -1e-6 or np.abs(out.sum(1) - 1).max() > 1e-3:
        raise ModelError(f"{path}: the model's outputs are not probabilities (each row must be non-negative "
                         f"and sum to 1; got rows summing to {out.sum(1).round(3).tolist()}): add a softmax")


def check_contract(session, path: Path) -> int:
    """Refuse a model that breaks the contract, saying what the contract expects; returns the input size."""
    expected = (f"fervid expects one float32 input [N,1,S,S] of grey levels 0..255 and one float32 output "
                f"[N,{NUM_CLASSES}] of probabilities ({', '.join(EMOTIONS)})")
    ins, outs = session.get_inputs(), session.get_outputs()
    if len(ins) != 1 or len(outs) != 1:
        raise ModelError(f"{path}: the model has {len(ins)} inputs and {len(outs)} outputs; {expected}")
    shape, oshape = ins[0].shape, outs[0].shape
    if ins[0].type != "tensor(float)" or outs[0].type != "tensor(float)":
        raise ModelError(f"{path}: input is {ins[0].type}, output {outs[0].type}; {expected}")
    if (len(shape) != 4 or shape[1] != 1 or not isinstance(shape[2], int) or shape[2] != shape[3]
            or not 8 <= shape[2] <= 1024):
        raise ModelError(f"{path}: input shape is {shape}; {expected}")
    if len(oshape) != 2 or oshape[1] != NUM_CLASSES:
        raise ModelError(f"{path}: output shape is {oshape}; {expected}")
    names = dict(session.get_modelmeta().custom_metadata_map).get("class_names")
    if names and tuple(names.split(",")) != EMOTIONS:
        raise ModelError(f"{path}: classes are {names}; {expected}")
    return int(shape[2])
