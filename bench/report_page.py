"""How fast the HTML page opens for long videos with several faces, in headless Chromium.

    python bench/report_page.py [--hours 1 2] [--faces 4]

Each page holds synthetic timelines (10 analysed frames a second, every face seen throughout,
its top emotion changing every few seconds) over the example video; the table gives the page's
size, the time from navigation to the first paint and to the lanes drawn, and the load event.
Needs the test extra (playwright) and Debian's chromium.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
from pathlib import Path

import numpy as np

from fervid.outputs.report import ReportSink, page_data, write_page
from fervid.records import FaceResult

ROOT = Path(__file__).resolve().parent.parent
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run", "--disable-quic"]


def make_page(folder: Path, hours: float, faces: int) -> Path:
    duration = hours * 3600
    sink = ReportSink(duration, 0.1)
    rng = np.random.default_rng(0)
    for k in range(int(duration * 10)):
        t = k / 10
        rows = []
        for fid in range(1, faces + 1):
            p = rng.dirichlet(np.ones(7)) * 0.3
            p[(k // 40 + fid) % 7] += 0.7
            rows.append(FaceResult(k, t, fid, 40.0 * fid, 50.0, 60.0, 60.0, 0.9, p))
        sink.add(rows)
    summary = [{"face_id": fid, "first_seen_s": 0.0, "last_seen_s": duration, "seconds_visible": duration,
                "dominant_emotion": "happy", **{f"share_{e}": 1 / 7 for e in ("angry", "disgust", "fear", "happy",
                                                                                   "sad", "surprise", "neutral")},
                **{f"mean_{e}": 1 / 7 for e in ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")}}
               for fid in range(1, faces + 1)]
    record = {"input": {"path": "long.mp4", "fps": "10/1", "duration": duration}, "model": {"name": "synthetic"}}
    page = folder / f"long_{hours:g}h_{faces}faces.html"
    with open(page, "w", encoding="utf-8") as fh:
        write_page(fh, page_data(page, ROOT / "examples" / "astronaut.mp4", False, summary, sink, record))
    return page


def measure(browser, page: Path, runs: int) -> tuple[float, float, float]:
    paint, drawn, load = [], [], []
    for _ in range(runs):
        tab = browser.new_page(viewport={"width": 1280, "height": 800})
        tab.goto(page.as_uri(), wait_until="load")
        tab.wait_for_function("performance.getEntriesByName('first-contentful-paint').length > 0")
        paint.append(tab.evaluate("performance.getEntriesByName('first-contentful-paint')[0].startTime"))
        drawn.append(tab.evaluate("performance.getEntriesByName('fervid-drawn')[0].startTime"))
        load.append(tab.evaluate("performance.getEntriesByType('navigation')[0].loadEventEnd"))
        tab.close()
    return statistics.median(paint), statistics.median(drawn), statistics.median(load)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--hours", nargs="*", type=float, default=[1.0, 2.0])
    ap.add_argument("--faces", type=int, default=4)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    from playwright.sync_api import sync_playwright

    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    with tempfile.TemporaryDirectory() as tmp, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=ARGS)
        print("| video | faces | page MB | first paint ms | lanes drawn ms | load ms |")
        print("|---|---|---|---|---|---|")
        for hours in args.hours:
            page = make_page(Path(tmp), hours, args.faces)
            paint, drawn, load = measure(browser, page, args.runs)
            print(f"| {hours:g} h | {args.faces} | {page.stat().st_size / 1e6:.1f} | {paint:.0f} | {drawn:.0f} | {load:.0f} |")
        browser.close()


if __name__ == "__main__":
    main()
