"""Stable face IDs: detections matched to tracks by an optimal assignment (LAPJV) on a pluggable cost.

Detections arrive only on key frames (a few per second), so tracks are matched across gaps of
0.1-0.3 s; the cost therefore mixes overlap with centre distance relative to face size, and a
track survives detector dropouts for ``max_age`` seconds. A shot cut ends every track
(``reset``) so two people are never merged across a cut.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np
import lap

from fervid.boxes import iou_matrix
from fervid.detect import Detection

CostFn = Callable[[np.ndarray, np.ndarray], np.ndarray]


def iou_distance_cost(tracks: np.ndarray, dets: np.ndarray) -> np.ndarray:
    """0 for identical boxes, 1 for no overlap; centre distance in face sizes breaks the ties of no overlap."""
    iou = iou_matrix(tracks, dets)
    tc = (tracks[:, None, :2] + tracks[:, None, 2:]) / 2
    dc = (dets[None, :, :2] + dets[None, :, 2:]) / 2
    area = (tracks[:, None, 2] - tracks[:, None, 0]) * (tracks[:, None, 3] - tracks[:, None, 1])
    dist = np.linalg.norm(tc - dc, axis=2) / np.sqrt(np.maximum(area, 1e-6))
    return np.where(iou > 0, 1 - iou, 1 + dist)


@dataclass
class Track:
    id: int
    box: np.ndarray  # x0, y0, x1, y1 at last_time
    score: float
    last_time: float
    velocity: np.ndarray = field(default_factory=lambda: np.zeros(2))  # of the centre, pixels per second
    hits: int = 1

    def predict(self, time_s: float) -> np.ndarray:
        """The last box moved at the centre's velocity; the size is kept, so a box never turns inside out."""
        shift = self.velocity * (time_s - self.last_time)
        return self.box + np.concatenate([shift, shift])


@dataclass(frozen=True)
class TrackedFace:
    """A detection with the ID of the track it belongs to."""

    face_id: int
    detection: Detection


class Tracker:
    """``update(detections, time_s)`` returns the detections that belong to a track, with IDs; IDs are never reused."""

    def __init__(self, cost: CostFn = iou_distance_cost, max_cost: float = 1.6, max_age: float = 1.5,
                 activation: float = 0.0):
        self.cost, self.max_cost, self.max_age = cost, max_cost, max_age
        self.activation = activation  # a detection below this score may extend a track but not start one
        self.tracks: list[Track] = []
        self.next_id = 1

    def reset(self) -> None:
        """End every track (a shot cut); new faces get new IDs."""
        self.tracks = []

    def update(self, detections: Sequence[Detection], time_s: float) -> list[TrackedFace]:
        self.tracks = [t for t in self.tracks if time_s - t.last_time <= self.max_age]
        dets = np.array([d.xyxy for d in detections], dtype=float).reshape(-1, 4)
        assigned: dict[int, Track] = {}
        if self.tracks and len(dets):
            pred = np.array([t.predict(time_s) for t in self.tracks])
            cost = self.cost(pred, dets)
            _, cols, _ = lap.lapjv(cost, extend_cost=True, cost_limit=self.max_cost)
            for r, c in enumerate(cols):
                if c >= 0 and cost[r, c] <= self.max_cost:
                    assigned[int(c)] = self.tracks[r]
        out = []
        for i, det in enumerate(detections):
            track = assigned.get(i)
            if track is None and det.score < self.activation:
                continue
            if track is None:
                track = Track(self.next_id, dets[i], det.score, time_s)
                self.next_id += 1
                self.tracks.append(track)
            else:
                dt = time_s - track.last_time
                if dt > 0:
                    v = (_centre(dets[i]) - _centre(track.box)) / dt
                    track.velocity = 0.5 * track.velocity + 0.5 * v if track.hits > 1 else v
                track.box, track.score, track.last_time = dets[i], det.score, time_s
                track.hits += 1
            out.append(TrackedFace(track.id, det))
        return out


def _centre(box: np.ndarray) -> np.ndarray:
    return (box[:2] + box[2:]) / 2
