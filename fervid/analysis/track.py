"""Stable face IDs: detections matched to tracks by an optimal assignment (LAPJV) on a pluggable cost.

Detections arrive only on key frames (a few per second), so tracks are matched across gaps of
0.1-0.3 s; the cost therefore mixes overlap with centre distance and change of size, both relative
to face size, and a track survives detector dropouts for ``max_age`` seconds. A track seen once
has no velocity yet, so it may be matched farther away (``first_reach``): a face crossing the frame
fast is one ID, not one per key frame. A face that was lost while it held still and comes back
to the same place within ``relink`` seconds gets its ID back (an interviewee looking down at
notes, a hand over the face). A shot cut ends every track (``reset``) so two people are never
merged across a cut.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np
import lap

from fervid.analysis.boxes import iou_matrix
from fervid.analysis.detect import Detection

CostFn = Callable[[np.ndarray, np.ndarray], np.ndarray]
_NEVER = 1e9


def iou_distance_cost(tracks: np.ndarray, dets: np.ndarray) -> np.ndarray:
    """0 for identical boxes, 1 for no overlap; centre distance in face sizes breaks the ties of no overlap."""
    iou = iou_matrix(tracks, dets)
    tc = (tracks[:, None, :2] + tracks[:, None, 2:]) / 2
    dc = (dets[None, :, :2] + dets[None, :, 2:]) / 2
    area = (tracks[:, None, 2] - tracks[:, None, 0]) * (tracks[:, None, 3] - tracks[:, None, 1])
    dist = np.linalg.norm(tc - dc, axis=2) / np.sqrt(np.maximum(area, 1e-6))
    return np.where(iou > 0, 1 - iou, 1 + dist)


def iou_distance_size_cost(tracks: np.ndarray, dets: np.ndarray, max_ratio: float = 1.6) -> np.ndarray:
    """``iou_distance_cost`` plus the change of face size (|log| of the side ratio); a face more than
    ``max_ratio`` times bigger or smaller is never the same one (inf). Without it a small face
    could take over the track of a big one that left, or a box merged over two faces a track."""
    side_t = np.sqrt(np.prod(np.maximum(tracks[:, 2:] - tracks[:, :2], 1e-6), axis=1))[:, None]
    side_d = np.sqrt(np.prod(np.maximum(dets[:, 2:] - dets[:, :2], 1e-6), axis=1))[None, :]
    change = np.abs(np.log(side_t / side_d))
    return np.where(change <= np.log(max_ratio), iou_distance_cost(tracks, dets) + change, np.inf)


@dataclass
class Track:
    id: int
    box: np.ndarray  # x0, y0, x1, y1 at last_time
    score: float
    last_time: float
    velocity: np.ndarray = field(default_factory=lambda: np.zeros(2))  # of the centre, pixels per second
    hits: int = 1
    roll: float = 0.0  # of the last detection, degrees

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
    """``update(detections, time_s)`` returns the detections that belong to a track, with IDs; a new
    face never gets an ID that was used before."""

    def __init__(self, cost: CostFn = iou_distance_size_cost, max_cost: float = 1.6, max_age: float = 1.5,
                 activation: float = 0.0, first_reach: float = 3.0, relink: float = 10.0):
        self.cost, self.max_cost, self.max_age = cost, max_cost, max_age
        # Lost tracks that may be taken up again: seen a few times, lost while holding still
        # (moving under half a face size a second), for ``relink`` seconds. A walker in a crowd
        # is not held for, so another one passing the same place later does not take the ID.
        self.relink = relink
        self.lost: list[Track] = []
        # The cost a track seen only once may be matched at, when nothing else is in reach (3.0:
        # two face sizes away with the default cost). On the 1080p crowd clip a woman crossing the
        # foreground at ~9 face sizes a second got a new ID on each of 7 key frames; with it, one.
        self.first_reach = max(first_reach, max_cost)
        self.activation = activation  # a detection below this score may extend a track but not start one
        self.tracks: list[Track] = []
        self.next_id = 1

    def reset(self) -> None:
        """End every track (a shot cut); new faces get new IDs."""
        self.tracks = []
        self.lost = []

    def update(self, detections: Sequence[Detection], time_s: float) -> list[TrackedFace]:
        live = [t for t in self.tracks if time_s - t.last_time <= self.max_age]
        self.lost += [t for t in self.tracks if time_s - t.last_time > self.max_age and _still(t)]
        self.lost = [t for t in self.lost if time_s - t.last_time <= self.relink]
        self.tracks = live
        dets = np.array([d.xyxy for d in detections], dtype=float).reshape(-1, 4)
        assigned: dict[int, Track] = {}
        if self.tracks and len(dets):
            pred = np.array([t.predict(time_s) for t in self.tracks])
            cost = self.cost(pred, dets)
            cost = np.where(cost <= self.max_cost, cost, _reach_far(cost, self.first_reach,
                                                                    np.array([t.hits == 1 for t in self.tracks])))
            _, cols, _ = lap.lapjv(cost, extend_cost=True, cost_limit=self.first_reach)
            for r, c in enumerate(cols):
                if c >= 0 and cost[r, c] <= self.first_reach:
                    assigned[int(c)] = self.tracks[r]
        self._relink(dets, detections, assigned)
        out = []
        for i, det in enumerate(detections):
            track = assigned.get(i)
            if track is None and det.score < self.activation:
                continue
            if track is None:
                track = Track(self.next_id, dets[i], det.score, time_s, roll=det.roll)
                self.next_id += 1
                self.tracks.append(track)
            else:
                dt = time_s - track.last_time
                if dt > 0:
                    v = (_centre(dets[i]) - _centre(track.box)) / dt
                    track.velocity = 0.5 * track.velocity + 0.5 * v if track.hits > 1 else v
                track.box, track.score, track.last_time, track.roll = dets[i], det.score, time_s, det.roll
                track.hits += 1
            out.append(TrackedFace(track.id, det))
        return out

    def _relink(self, dets: np.ndarray, detections: Sequence[Detection], assigned: dict[int, Track]) -> None:
        """Give unmatched detections, one each, a lost track that stood where they are (its last
        box, no motion assumed over the gap); the track is live again, moving from there."""
        free = [i for i in range(len(dets)) if i not in assigned and detections[i].score >= self.activation]
        if not free or not self.lost:
            return
        cost = self.cost(np.array([t.box for t in self.lost]), dets[free])
        cost = np.where(cost <= self.max_cost, cost, _NEVER)
        _, cols, _ = lap.lapjv(cost, extend_cost=True, cost_limit=self.max_cost)
        taken = set()
        for r, c in enumerate(cols):
            if c >= 0 and cost[r, c] <= self.max_cost:
                track = self.lost[r]
                track.velocity = np.zeros(2)
                assigned[free[c]] = track
                self.tracks.append(track)
                taken.add(track.id)
        self.lost = [t for t in self.lost if t.id not in taken]


def _still(track: Track, hits: int = 3, speed: float = 0.5) -> bool:
    """Seen ``hits`` times and moving under ``speed`` face sizes a second when lost."""
    side = np.sqrt(max(np.prod(track.box[2:] - track.box[:2]), 1e-6))
    return track.hits >= hits and float(np.linalg.norm(track.velocity)) < speed * side


def _reach_far(cost: np.ndarray, far: float, first: np.ndarray) -> np.ndarray:
    """Costs up to ``far`` kept (the rest made impossible) only for a track seen once and a
    detection that are each other's only candidate within ``far``: among dim faces that flicker
    in a crowd, a farther reach would join two people."""
    within = cost <= far
    alone = (within.sum(1, keepdims=True) == 1) & (within.sum(0, keepdims=True) == 1)
    return np.where(within & alone & first[:, None], cost, _NEVER)  # finite: LAPJV needs numbers


def _centre(box: np.ndarray) -> np.ndarray:
    return (box[:2] + box[2:]) / 2
