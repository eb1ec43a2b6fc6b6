"""Compare another checkout's decoder with this one's, file by file: frame counts, times, pixels.

    git worktree add /tmp/old <commit>
    python bench/compare_decoding.py /tmp/old VIDEO...

For each file and pixel format (yuv420p, bgr24): frames, whether the indices match, the largest
time difference, how many frames are pixel-identical, the largest difference of mean grey, and
each side's damage report: a change to the decoder should leave every column equal.
"""
import os
import pickle
import subprocess
import sys

tree, files = sys.argv[1], sys.argv[2:]
code = r'''
import sys, pickle, hashlib, numpy as np
sys.path.insert(0, sys.argv[1])
from fervid.video.decode import open_video
out = {}
for f in sys.argv[2:]:
    for fmt in ("yuv420p", "bgr24"):
        try:
            info, dec = open_video(f, pix_fmt=fmt)
            fr = [(x.index, round(x.time_s, 4), x.image.shape, hashlib.md5(x.image.tobytes()).hexdigest(), float(x.gray().mean())) for x in dec]
            out[(f, fmt)] = (fr, dec.report.damaged, dec.report.cause if dec.report.damaged else "")
        except Exception as e:
            out[(f, fmt)] = ("ERR " + str(e)[:100],)
pickle.dump(out, sys.stdout.buffer)
'''
env = dict(os.environ)
a = pickle.loads(subprocess.run([sys.executable, "-c", code, tree, *files], capture_output=True, env=env).stdout)
b = pickle.loads(subprocess.run([sys.executable, "-c", code, os.path.dirname(os.path.dirname(os.path.abspath(__file__))), *files], capture_output=True, env=env).stdout)
for k in a:
    ra, rb = a[k], b[k]
    name = k[0].split("/")[-1] + " " + k[1]
    if len(ra) == 1 or len(rb) == 1:
        print(name, "A:", ra[0] if len(ra) == 1 else "ok", "B:", rb[0] if len(rb) == 1 else "ok"); continue
    fa, fb = ra[0], rb[0]
    same_px = sum(x[3] == y[3] for x, y in zip(fa, fb))
    dt = max((abs(x[1] - y[1]) for x, y in zip(fa, fb)), default=0)
    dg = max((abs(x[4] - y[4]) for x, y in zip(fa, fb)), default=0)
    print(f"{name}: frames {len(fa)} vs {len(fb)}, idx same {[x[0] for x in fa] == [y[0] for y in fb]}, max dt {dt:.4f}, "
          f"identical pixels {same_px}/{min(len(fa), len(fb))}, max gray-mean diff {dg:.2f}, damaged {ra[1]}/{rb[1]} {ra[2]!r}/{rb[2]!r}")
