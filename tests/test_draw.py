import cv2
import numpy as np

from fervid.outputs.draw import I420Canvas, draw_faces
from fervid.records import FaceResult
from fervid.outputs.style import EMOTION_BGR


def _gray_i420(w, h):
    bgr = np.full((h, w, 3), 128, np.uint8)
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2YUV_I420)


def test_box_label_and_bars_land_in_colour_on_the_i420_planes():
    w, h = 640, 360
    buf = _gray_i420(w, h)
    happy = np.array([0.0, 0.0, 0.0, 0.9, 0.05, 0.05, 0.0])
    draw_faces(I420Canvas(buf, w, h), [FaceResult(0, 0.0, 7, 200.0, 100.0, 120.0, 120.0, 0.9, happy)])
    bgr = cv2.cvtColor(buf, cv2.COLOR_YUV2BGR_I420)
    edge = bgr[160, 199:202].astype(int)  # the box's left edge, in the colour of "happy"
    assert np.abs(edge - np.array(EMOTION_BGR[3])).max(axis=1).min() < 40
    assert (bgr[150, 260] == 128).all()  # inside the box the picture is untouched
    assert np.abs(bgr[70:100, 200:300].astype(int) - 128).max() > 60  # the label above the box
    assert np.abs(bgr[222:228, 200:320].astype(int) - 128).max() > 60  # the stacked bar below it


def test_odd_sizes_and_faces_at_the_border_do_not_fail():
    w, h = 162, 122  # I420 buffers are padded to even sizes
    buf = _gray_i420(w, h)
    probs = np.full(7, 1 / 7)
    faces = [FaceResult(0, 0.0, 1, -10.0, -5.0, 60.0, 60.0, 0.9, probs),
             FaceResult(0, 0.0, 2, 130.0, 90.0, 40.0, 40.0, 0.9, probs)]
    draw_faces(I420Canvas(buf, 161, 121), faces)
    assert buf.shape == (183, 162)
