"""Face detection with MediaPipe's BlazeFace, plus tiling so that small faces in big frames are found.

BlazeFace sees the whole frame at 128 or 192 pixels, so a 40-pixel face in a 1080p crowd shrinks to
a few pixels and vanishes. Running it also on overlapping tiles, each seen at the model's own
resolution, finds those faces; above 1080p on coarser tiles too, so that no face size falls
between two levels (:func:`tile_levels`). One non-maximum suppression merges the passes.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import cv2
import numpy as np

from fervid._assets import models_dir
from fervid.analysis.blazeface import MediaPipeBlazeFace, OnnxBlazeFace
from fervid.analysis.boxes import clip_box, iou_matrix
from fervid.errors import ModelError
from fervid.records import Detection  # noqa: F401 - part of this module's API
from fervid.settings import DetectorSettings

MODELS_DIR = models_dir()
DETECTOR_MODELS = {"full": "blaze_face_full_range", "short": "blaze_face_short_range"}
RUNTIMES = {"onnx": ".onnx", "mediapipe": ".tflite"}
FIRST_STEP, STEP = 3.3, 2.0  # largest ratio of region sides: whole frame to the first tiles, tiles to finer tiles


def model_path(name: str, runtime: str = "onnx") -> Path:
    """``full`` or ``short`` (the vendored BlazeFace models, in the runtime's format), or a path."""
    if runtime not in RUNTIMES:
        raise ModelError(f"{runtime}: unknown face detector runtime (expected one of {', '.join(RUNTIMES)})")
    path = Path(name)
    if not path.suffix:
        path = MODELS_DIR / (DETECTOR_MODELS.get(name, name) + RUNTIMES[runtime])
    if not path.is_file():
        raise ModelError(f"{path}: face detector model not found (expected one of {', '.join(DETECTOR_MODELS)})")
    return path


def _grid(width: int, height: int, n: int) -> tuple[int, int]:
    """Columns and rows of near-square tiles, ``n`` of them along the frame's short side."""
    if width >= height:
        return max(1, round(width / (height / n))), n
    return n, max(1, round(height / (width / n)))


def tile_levels(width: int, height: int, spec: str, overlap: float = 0.25) -> list[tuple[int, int]]:
    """The tile grids (columns, rows), coarsest first, that the detector scans besides the whole frame.

    ``auto`` aims the finest grid at tiles of about 480 pixels on the short side. A face must also
    be found at some level between the whole frame and those tiles: too small for a coarser level
    to see, too big to lie whole in a finer tile (a quarter of its side, the overlap), it is lost.
    So where the finest tiles are too far below the frame, coarser grids come first, each step at
    most ``FIRST_STEP`` from the whole frame and ``STEP`` between grids. Measured on the 1080p
    crowd upscaled, following the faces that 1080p follows: on 3840x2160, 7x4 tiles alone (a
    step of 5.5) kept 72% of their rows with 1.75 IDs a face, 4x2 then 7x4 90% with 1.25; on
    2560x1440, 5x3 alone 89% / 1.25, 2x1 then 5x3 (steps of 1.75 and 2.3) 80% / 1.50, 4x2 then
    5x3 96% / 1.17. On 1080p, one step of 3.1 from the frame to 4x2 tiles: a 2x1 level between
    found one face more in 183. ``COLSxROWS`` is one grid, ``AxB+CxD`` several, coarsest first."""
    if spec == "off":
        return []
    if spec != "auto":
        levels = [tuple(max(1, int(v)) for v in part.lower().split("x")) for part in spec.split("+")]
        return [lv for lv in levels if lv != (1, 1)]
    n = round(min(width, height) / 480)
    if n <= 1:
        return []

    def side(grid: tuple[int, int]) -> float:  # the longer side of its tiles
        cols, rows = grid
        return max(width / (cols - (cols - 1) * overlap), height / (rows - (rows - 1) * overlap))

    grids = [_grid(width, height, k) for k in range(1, n + 1)]  # coarse to fine
    levels = [grids[-1]]
    while max(width, height) / side(levels[0]) > FIRST_STEP:
        coarser = next((g for g in grids if side(g) / side(levels[0]) <= STEP and g != levels[0]), None)
        if coarser is None or side(coarser) <= side(levels[0]):
            break
        levels.insert(0, coarser)
    return levels


def tiles(width: int, height: int, cols: int, rows: int, overlap: float) -> list[tuple[int, int, int, int]]:
    """Overlapping tiles (x0, y0, x1, y1) covering the frame; a face cut by one edge is whole in a neighbour."""
    if cols == rows == 1:
        return []
    tw = width / (cols - (cols - 1) * overlap) if cols > 1 else width
    th = height / (rows - (rows - 1) * overlap) if rows > 1 else height
    out = []
    for r in range(rows):
        for c in range(cols):
            x0 = int(round(c * tw * (1 - overlap)))
            y0 = int(round(r * th * (1 - overlap)))
            out.append((x0, y0, min(width, int(round(x0 + tw))), min(height, int(round(y0 + th)))))
    return out


def nms(dets: list[Detection], iou: float) -> list[Detection]:
    """Keep the best-scoring box of each overlapping group; also drop a box half inside a kept one (tiles see faces at other scales)."""
    dets = sorted(dets, key=lambda d: -d.score)
    kept: list[Detection] = []
    for d in dets:
        if kept:
            boxes = np.array([k.xyxy for k in kept])
            ov = iou_matrix(np.array([d.xyxy]), boxes)[0]
            x0 = np.maximum(boxes[:, 0], d.x)
            y0 = np.maximum(boxes[:, 1], d.y)
            x1 = np.minimum(boxes[:, 2], d.x + d.w)
            y1 = np.minimum(boxes[:, 3], d.y + d.h)
            inside = np.clip(x1 - x0, 0, None) * np.clip(y1 - y0, 0, None) / max(d.w * d.h, 1e-9)
            if (ov > iou).any() or (inside > 0.5).any():
                continue
        kept.append(d)
    return kept


class FaceDetector:
    """``detect(rgb)`` on an upright RGB frame, key frame after key frame of one video; ``reset()`` at a cut.

    Not thread-safe, so one per worker. With ``workers`` > 1 the passes of a tiled frame are shared
    by that many threads, each with its own copy of the network: in fervid's pipeline the classifier
    runs beside the detector and the second core would otherwise wait for it whenever the detector
    is behind (the 1080p crowd). The result is the same whatever the number of workers."""

    def __init__(self, settings: DetectorSettings = DetectorSettings(), workers: int = 1):
        self.settings = settings
        self.path = model_path(settings.model, settings.runtime)
        self._models = [self._load()]
        self.input_side = self._models[0].input_side
        self._workers = max(1, workers) if self.path.suffix == ".onnx" else 1
        self._pool: ThreadPoolExecutor | None = None
        self._grid: dict[tuple[int, int], list] = {}
        # Tiles where no face was found lately are scanned less often (in turn, every
        # ``tile_refresh`` calls): most of a frame is walls and sky, and a face walking into
        # such a tile is still found within a few key frames.
        self._idle: dict[int, int] = {}
        self._calls = 0
        self.passes = 0

    def _load(self):
        s = self.settings
        if self.path.suffix == ".tflite":
            return MediaPipeBlazeFace(self.path, s.min_score, s.nms_iou)
        return OnnxBlazeFace(self.path, s.min_score, s.nms_iou)

    def _run(self, model, image, box: tuple[int, int, int, int]) -> list[Detection]:
        """One detector pass on the region ``box`` (x0, y0, x1, y1) of the frame; boxes in frame pixels.

        A region bigger than the model's input is first shrunk (area-averaged) to fit it, straight
        from the decoder's planes when ``image`` is a decoded frame."""
        x0, y0, x1, y1 = box
        w, h = x1 - x0, y1 - y0
        scale = self.input_side / max(w, h)
        # Shrunk to fit, to even sides (I420 halves them); a smaller region is passed as it is.
        size = (w, h) if scale >= 1 else (max(2, 2 * round(w * scale / 2)), max(2, 2 * round(h * scale / 2)))
        if hasattr(image, "rgb_resized"):
            small = image.rgb_resized(box, size)
        elif size == (w, h):
            small = image[y0:y1, x0:x1]
        else:
            small = cv2.resize(image[y0:y1, x0:x1], size, interpolation=cv2.INTER_AREA)
        sx, sy = w / small.shape[1], h / small.shape[0]
        return [Detection(d.x * sx + x0, d.y * sy + y0, d.w * sx, d.h * sy, d.score, d.roll)
                for d in model.detect(np.ascontiguousarray(small))]

    def _scan(self, image, boxes: list[tuple[int, int, int, int]]) -> list[list[Detection]]:
        """Each region's detections, in order; regions dealt round-robin to the workers."""
        n = min(self._workers, len(boxes))
        if n == 1:
            return [self._run(self._models[0], image, b) for b in boxes]
        while len(self._models) < n:
            self._models.append(self._load())
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self._workers - 1, thread_name_prefix="fervid-detect")

        def share(k: int) -> list[list[Detection]]:
            return [self._run(self._models[k], image, b) for b in boxes[k::n]]

        futures = [self._pool.submit(share, k) for k in range(1, n)]
        parts = [share(0)] + [f.result() for f in futures]
        out: list[list[Detection]] = [[] for _ in boxes]
        for k, part in enumerate(parts):
            out[k::n] = part
        return out

    def detect(self, image) -> list[Detection]:
        """Faces in an upright RGB picture ``[h,w,3]``, or in a decoded frame (anything with
        ``width``, ``height`` and ``rgb_resized``, like :class:`fervid.video.decode.Frame`)."""
        w, h = (image.width, image.height) if hasattr(image, "rgb_resized") else image.shape[1::-1]
        if (w, h) not in self._grid:
            ov = self.settings.tile_overlap
            self._grid[(w, h)] = [t for c, r in tile_levels(w, h, self.settings.tiles, ov) for t in tiles(w, h, c, r, ov)]
        grid, refresh = self._grid[(w, h)], max(1, self.settings.tile_refresh)
        scan = []
        for i in range(len(grid)):
            idle = self._idle.get(i)
            if idle is None or idle < refresh or (self._calls + i) % refresh == 0:
                scan.append(i)
            else:
                self._idle[i] = idle + 1
        found = self._scan(image, [(0, 0, w, h)] + [grid[i] for i in scan])
        dets = found[0]
        for i, tile_dets in zip(scan, found[1:]):
            dets += tile_dets
            self._idle[i] = 0 if tile_dets else (self._idle.get(i) or 0) + 1
        self._calls += 1
        self.passes += 1 + len(scan)
        return [clip(d, w, h) for d in nms(dets, self.settings.nms_iou) if d.w > 1 and d.h > 1]

    def reset(self) -> None:
        """A new shot: scan every tile on the next call."""
        self._idle.clear()

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown()
            self._pool = None
        for model in self._models:
            model.close()


def clip(d: Detection, width: int, height: int) -> Detection:
    x0, y0, x1, y1 = (float(v) for v in clip_box(np.array(d.xyxy), width, height))
    return Detection(x0, y0, x1 - x0, y1 - y0, d.score, d.roll)
