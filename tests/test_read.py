"""The read stage: batching across stretches, reading faces less often and interpolating between."""

import numpy as np
import pytest

from fervid.analysis.read import FaceReader, Located
from fervid.analysis.smooth import EmaSmoother
from fervid.video.decode import Frame


class LinearClassifier:
    """Probabilities linear in the crop's brightness, so that interpolating readings in time is exact
    when brightness changes linearly in time; records every batch it is given."""

    input_size = 48

    def __init__(self):
        self.batches: list[int] = []

    def predict(self, crops: np.ndarray) -> np.ndarray:
        self.batches.append(len(crops))
        b = crops.reshape(len(crops), -1).mean(1) / 255.0
        out = np.zeros((len(crops), 7), np.float32)
        out[:, 3], out[:, 6] = b, 1 - b
        return out


def stretches(n_frames=90, fps=30.0, key_every=6, faces=(1, 2)):
    """Frames whose brightness rises linearly, cut into stretches ending on key frames; two faces,
    the second one only from frame 20 on."""
    frames, out = [], []
    for i in range(n_frames):
        gray = np.full((120, 160), 40 + 2 * i, np.uint8)
        frame = Frame(i, i / fps, gray, 160, 120)
        boxes = [Located(fid, np.array([10.0 + 60 * k, 20, 60 + 60 * k, 70]), 0.9)
                 for k, fid in enumerate(faces) if fid == 1 or i >= 20]
        frames.append((frame, gray, boxes))
        if (i + 1) % key_every == 0 or i == n_frames - 1:
            out.append(frames)
            frames = []
    return out


def run(reader, plans):
    results = []
    for plan in plans:
        results += list(reader.update(plan))
    return results + list(reader.flush())


def test_every_frame_gets_the_same_reading_whether_read_or_interpolated():
    every_frame = LinearClassifier()
    sparse = LinearClassifier()
    a = run(FaceReader(every_frame, EmaSmoother(0), classify_every=0), stretches())
    b = run(FaceReader(sparse, EmaSmoother(0), classify_every=0.1), stretches())
    assert [f.index for f, _ in a] == [f.index for f, _ in b] == list(range(90))
    for (_, ra), (_, rb) in zip(a, b):
        assert [r.face_id for r in ra] == [r.face_id for r in rb]
        for x, y in zip(ra, rb):
            np.testing.assert_allclose(x.probs, y.probs, atol=1e-6)
    assert sum(sparse.batches) < 0.5 * sum(every_frame.batches)


def test_crops_from_many_stretches_share_a_batch_and_the_held_bytes_are_bounded():
    clf = LinearClassifier()
    reader = FaceReader(clf, EmaSmoother(0), classify_every=0, batch=64)
    run(reader, stretches())
    assert max(clf.batches) >= 64 and len(clf.batches) <= 3  # 160 crops, batch 64 asked for
    clf = LinearClassifier()
    reader = FaceReader(clf, EmaSmoother(0), classify_every=0, batch=64, max_bytes=120 * 160 * 12)
    out = run(reader, stretches())
    assert len(out) == 90 and max(clf.batches) <= 2 * 12  # flushed after every two stretches of 6 frames


def test_a_face_is_read_on_its_first_frame_and_a_lost_face_keeps_its_last_reading():
    clf = LinearClassifier()
    plans = stretches(n_frames=30, faces=(1, 2))
    for plan in plans[4:]:  # face 2 leaves after frame 23: it is last read no later than there
        for i, (frame, gray, boxes) in enumerate(plan):
            plan[i] = (frame, gray, [b for b in boxes if b[0] == 1])
    out = run(FaceReader(clf, EmaSmoother(0), classify_every=1.0), plans)
    face2 = {f.index: r for f, rows in out for r in rows if r.face_id == 2}
    assert min(face2) == 20 and max(face2) == 23
    brightness = (40 + 2 * 20) / 255  # its first frame's own reading
    assert face2[20].probs[3] == pytest.approx(brightness, abs=1e-6)


def test_unanalysed_frames_pass_through_in_order():
    clf = LinearClassifier()
    plans = stretches(n_frames=12)
    plans[0][1] = (plans[0][1][0], None, None)
    out = run(FaceReader(clf, EmaSmoother(0.3), classify_every=0.05), plans)
    assert [f.index for f, _ in out] == list(range(12)) and out[1][1] is None


def test_without_pixels_frames_come_back_empty_and_only_the_crop_count_flushes():
    clf = LinearClassifier()
    reader = FaceReader(clf, EmaSmoother(0), classify_every=0, batch=64, max_bytes=1, keep_pixels=False)
    out = run(reader, stretches())
    assert len(out) == 90 and all(f.image.size == 0 for f, _ in out)
    assert max(clf.batches) >= 64
