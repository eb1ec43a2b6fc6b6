"""fervid's speed and memory against ffmpeg's decode-only floor (and, optionally, the PyPI `fer` package).

    python bench/bench.py                      # the two shared clips, 3 runs each
    python bench/bench.py --long               # + 1-minute and 20-minute 1080p loops, for memory
    python bench/bench.py --fer-python /tmp/fer-venv/bin/python   # + the fer package, in its own venv

Prints Markdown tables: per clip the floor, fervid timeline / annotate fps (whole process, wall
clock, median of runs), their ratio to the floor, peak resident memory of the process tree, the
time split per stage (from the JSON sidecar), and the classifiers alone in crops/s.
"""

from __future__ import annotations

import argparse
import compileall
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared" / "videos"
CLIPS = ["facenet_pytorch_video.mp4", "liveportrait_d6_faces.mp4"]


def ffmpeg() -> str:
    """The ffmpeg program that prepares clips (fervid itself needs none): imageio-ffmpeg's."""
    import imageio_ffmpeg

    return imageio_ffmpeg.get_ffmpeg_exe()


def tree_rss_mb(pid: int) -> float:
    """Resident memory of a process and all its descendants, from /proc.

    A child of the root still running the root's own command line is one caught between fork
    and exec (fervid starting its encoder): it shows the root's memory, which would count twice."""
    def cmdline(p: int) -> bytes:
        with open(f"/proc/{p}/cmdline", "rb") as fh:
            return fh.read()

    total, todo = 0, [pid]
    try:
        root_cmd = cmdline(pid)
    except OSError:
        return 0.0
    while todo:
        p = todo.pop()
        try:
            if p != pid and cmdline(p) == root_cmd:
                continue
            with open(f"/proc/{p}/status") as fh:
                for line in fh:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
            with open(f"/proc/{p}/task/{p}/children") as fh:
                todo += [int(c) for c in fh.read().split()]
        except (FileNotFoundError, ProcessLookupError):
            pass
    return total / 1024


def timed(cmd: list[str]) -> tuple[float, float]:
    """Wall seconds and peak tree RSS (MB) of one command."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    peak = [0.0]

    def poll():
        while proc.poll() is None:
            peak[0] = max(peak[0], tree_rss_mb(proc.pid))
            time.sleep(0.05)

    th = threading.Thread(target=poll, daemon=True)
    th.start()
    _, err = proc.communicate()
    wall = time.perf_counter() - t0
    th.join()
    if proc.returncode:
        raise RuntimeError(f"{' '.join(cmd)} failed: {err.decode()[-500:]}")
    return wall, peak[0]


def count_frames(path: Path) -> int:
    from fervid.video.decode import open_video

    info, dec = open_video(path, pix_fmt="gray", every=1)
    return sum(1 for _ in dec)


def decode_only(path: Path) -> list[str]:
    """The floor: ffmpeg decoding the video stream and throwing the frames away."""
    return [ffmpeg(), "-v", "error", "-i", str(path), "-map", "0:v:0", "-f", "null", "-"]


def median_run(cmd, runs):
    results = [timed(cmd) for _ in range(runs)]
    return statistics.median(r[0] for r in results), max(r[1] for r in results)


def bench_clip(path: Path, runs: int, tmp: Path, fer_python: str | None) -> dict:
    frames = count_frames(path)
    row = {"clip": path.name, "frames": frames}
    floor, _ = median_run(decode_only(path), runs)
    row["floor_fps"] = frames / floor
    fervid = [sys.executable, "-m", "fervid"]
    wall, rss = median_run([*fervid, "timeline", str(path), "--csv", str(tmp / "t.csv"), "-q", "--overwrite"], runs)
    row.update(timeline_fps=frames / wall, timeline_mb=rss)
    row["timeline_stages"] = json.loads((tmp / "t.json").read_text())["stage_seconds"]
    wall, rss = median_run([*fervid, "annotate", str(path), "-o", str(tmp / "a.mp4"), "-q", "--overwrite"], runs)
    row.update(annotate_fps=frames / wall, annotate_mb=rss)
    row["annotate_stages"] = json.loads((tmp / "a.json").read_text())["stage_seconds"]
    if fer_python:
        out = subprocess.run([fer_python, str(ROOT / "bench" / "fer_peer.py"), str(path)], capture_output=True,
                             text=True)
        if out.returncode == 0:
            fer = json.loads(out.stdout.strip().splitlines()[-1])
            row.update(fer_fps=fer["frames"] / fer["analyze_s"], fer_total_fps=fer["frames"] / fer["total_s"],
                       fer_mb=fer["peak_mb"])
        else:
            row["fer_error"] = out.stderr[-300:]
    return row


def classifier_speed() -> list[tuple[str, dict[int, float]]]:
    from fervid.analysis.classify import Classifier, shipped_models
    from fervid.train.evaluate import crops_per_second

    out = []
    for model in shipped_models():
        clf = Classifier(str(model))
        out.append((model.stem, {b: crops_per_second(clf, b, 2.0) for b in (1, 16, 64)}))
    return out


def jobs_scaling(tmp: Path, runs: int) -> tuple[float, float]:
    """A folder of 8 short clips (5 s of the 512x512 clip each): wall seconds with -j 1 and -j 2."""
    folder = tmp / "short_clips"
    folder.mkdir()
    src = SHARED / "liveportrait_d10_surprise.mp4"
    for i in range(8):
        subprocess.run([ffmpeg(), "-v", "error", "-y", "-ss", str(i), "-i", str(src), "-t", "5", "-c:v", "libx264",
                        "-preset", "ultrafast", str(folder / f"clip{i}.mp4")], check=True)
    out = []
    for jobs in (1, 2):
        cmd = [sys.executable, "-m", "fervid", "timeline", str(folder), "--csv", str(tmp / f"j{jobs}"), "-q",
               "--overwrite", "-j", str(jobs)]
        out.append(median_run(cmd, runs)[0])
    return out[0], out[1]


def make_loop(src: Path, minutes: float, dst: Path) -> Path:
    from fervid.video.probe import probe

    loops = max(0, int(minutes * 60 / probe(src).duration + 0.999) - 1)
    subprocess.run([ffmpeg(), "-v", "error", "-y", "-stream_loop", str(loops), "-i", str(src), "-t", str(minutes * 60),
                    "-c", "copy", str(dst)], check=True)
    return dst


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--long", nargs="*", type=float, default=None, metavar="MINUTES",
                    help="also 1080p loops of these lengths, for memory flatness (default 1 20)")
    ap.add_argument("--fer-python", default=None, help="python of a venv with the PyPI fer package")
    ap.add_argument("--clips", nargs="*", default=None)
    args = ap.parse_args()
    # fervid as its users run it: with its bytecode cached. Where PYTHONDONTWRITEBYTECODE is set
    # (this project's machine sets it) every run would compile fervid's modules again first.
    compileall.compile_dir(str(ROOT / "fervid"), quiet=1)
    clips = [Path(c) for c in args.clips] if args.clips else [SHARED / c for c in CLIPS]
    print(f"machine: {os.cpu_count()} cores; runs per number: {args.runs} (median)\n")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for clip in clips:
            rows.append(bench_clip(clip, args.runs, Path(tmp), args.fer_python))
        print("| clip | frames | decode floor fps | timeline fps (x floor) | annotate fps (x floor) | peak MB timeline / annotate |"
              + (" fer fps analyze / total | fervid/fer | fer MB |" if args.fer_python else ""))
        print("|---|---|---|---|---|---|" + ("---|---|---|" if args.fer_python else ""))
        for r in rows:
            line = (f"| {r['clip']} | {r['frames']} | {r['floor_fps']:.0f} | {r['timeline_fps']:.1f} "
                    f"({r['timeline_fps'] / r['floor_fps']:.2f}x) | {r['annotate_fps']:.1f} "
                    f"({r['annotate_fps'] / r['floor_fps']:.2f}x) | {r['timeline_mb']:.0f} / {r['annotate_mb']:.0f} |")
            if args.fer_python:
                if "fer_fps" in r:
                    line += (f" {r['fer_fps']:.1f} / {r['fer_total_fps']:.1f} | {r['timeline_fps'] / r['fer_total_fps']:.1f}x |"
                             f" {r['fer_mb']:.0f} |")
                else:
                    line += f" failed: {r['fer_error'][-80:]!r} | | |"
            print(line)
        print("\nSeconds per stage (from the JSON sidecar; 'decode (waiting)' is decoding that did not overlap):\n")
        stages = sorted({k for r in rows for k in (*r["timeline_stages"], *r["annotate_stages"])})
        print("| clip | command | " + " | ".join(stages) + " |")
        print("|---|---|" + "---|" * len(stages))
        for r in rows:
            for cmd in ("timeline", "annotate"):
                st = r[f"{cmd}_stages"]
                print(f"| {r['clip']} | {cmd} | " + " | ".join(f"{st.get(s, 0):.2f}" for s in stages) + " |")
        print("\nClassifier alone (onnxruntime, this machine):\n")
        print("| model | batch 1 | batch 16 | batch 64 |")
        print("|---|---|---|---|")
        for name, speed in classifier_speed():
            print(f"| {name} | " + " | ".join(f"{speed[b]:,.0f}" for b in (1, 16, 64)) + " crops/s |")
        one, two = jobs_scaling(Path(tmp), args.runs)
        print(f"\nBatch of 8 five-second 512x512 clips, timeline: -j 1 {one:.1f} s, -j 2 {two:.1f} s: "
              f"{one / two:.2f}x\n")
        if args.long is not None:
            from fervid.video.probe import probe

            print("\nMemory against length (timeline, 1080p crowd clip looped):\n")
            print("| length | frames | decode floor fps | timeline fps (x floor) | peak MB |")
            print("|---|---|---|---|---|")
            for minutes in args.long or (1, 20):
                src = make_loop(SHARED / CLIPS[0], minutes, Path(tmp) / f"loop{minutes}.mp4")
                n = probe(src).estimated_frames  # from the header: decoding 20 minutes to count is slow
                # The loop's own floor: the short clip's includes ffmpeg's start-up, a long one's does not.
                floor, _ = timed(decode_only(src))
                wall, rss = timed([sys.executable, "-m", "fervid", "timeline", str(src), "--csv",
                                   str(Path(tmp) / "l.csv"), "-q", "--overwrite"])
                print(f"| {minutes:g} min | {n} | {n / floor:.0f} | {n / wall:.1f} ({floor / wall:.2f}x) | {rss:.0f} |")


if __name__ == "__main__":
    main()
