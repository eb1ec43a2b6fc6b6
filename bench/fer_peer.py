"""Run the PyPI `fer` package on one video, the way its README does; print one JSON line.

Runs inside fer's own virtual environment (it brings TensorFlow):
    python3 -m venv /tmp/fer-venv && /tmp/fer-venv/bin/pip install fer
    /tmp/fer-venv/bin/python bench/fer_peer.py VIDEO
"""

import json
import os
import resource
import sys
import tempfile
import time

t0 = time.perf_counter()
from fer.fer import FER  # noqa: E402
from fer.classes import Video  # noqa: E402

video_path = os.path.abspath(sys.argv[1])
with tempfile.TemporaryDirectory() as tmp:
    os.chdir(tmp)  # fer writes data.csv into the working directory
    detector = FER(mtcnn=False)  # the default Haar-cascade face detector
    video = Video(video_path, outdir=tmp)
    t1 = time.perf_counter()
    raw = video.analyze(detector, display=False, save_frames=False, save_video=False, annotate_frames=False)
    t2 = time.perf_counter()
frames = len(raw)
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"frames": frames, "analyze_s": t2 - t1, "total_s": t2 - t0, "peak_mb": peak}))
