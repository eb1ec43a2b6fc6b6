"""The HTML page of one video: the video and its faces' timelines in step, in one file that works
offline (no network request: the script, the styles and the data are inline).

The page's data is the timeline downsampled for drawing (at most about ``MAX_POINTS`` a face,
each point the mean of the rows it covers, with the face's box for drawing over the original);
the full data stays in the CSV.
"""

from __future__ import annotations

import base64
import html
import json
import os
from pathlib import Path
from typing import IO

import numpy as np

from fervid import __version__
from fervid.labels import EMOTIONS
from fervid.outputs.sinks import Sink, Thumbnails
from fervid.outputs.style import EMOTION_HEX
from fervid.outputs.writers import finite

MAX_POINTS = 1500


class ReportSink(Sink):
    """Per face, the mean probabilities and the last box in bins of ``bin_s`` seconds, and a thumbnail."""

    def __init__(self, duration: float | None, step: float):
        span = duration or 0.0
        self.bin_s = max(step or 0.04, span / MAX_POINTS if span else 0.0, 0.001)
        self.thumbnails = Thumbnails()
        self._bins: dict[int, dict[int, list]] = {}  # face_id -> bin -> [prob sum (7), rows, box]

    def update(self, frame, faces) -> None:
        self.thumbnails.update(frame, faces)
        self.add(faces or ())

    def add(self, faces) -> None:
        """Rows into the series (the thumbnails need the frame: :meth:`update`)."""
        for f in faces:
            bins = self._bins.setdefault(f.face_id, {})
            k = int(f.time_s / self.bin_s)
            cell = bins.get(k)
            if cell is None:
                bins[k] = cell = [np.zeros(len(EMOTIONS)), 0, None]
            cell[0] += f.probs
            cell[1] += 1
            cell[2] = (f.x, f.y, f.w, f.h)

    def series(self) -> dict[str, dict]:
        out = {}
        for face_id, bins in self._bins.items():
            keys = sorted(bins)
            out[str(face_id)] = {
                "t": [round(k * self.bin_s, 3) for k in keys],
                "p": [[round(float(v), 3) for v in bins[k][0] / bins[k][1]] for k in keys],
                "b": [[round(v, 1) for v in bins[k][2]] for k in keys],
            }
        return out


def _jpeg(rgb: np.ndarray | None) -> str | None:
    import cv2

    if rgb is None:
        return None
    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 85])
    return "data:image/jpeg;base64," + base64.b64encode(buf.tobytes()).decode() if ok else None


def page_data(page: Path, video: Path, annotated: bool, summary: list[dict], sink: ReportSink,
              provenance: dict, src: str | None = None) -> dict:
    """Everything the page shows; ``video`` is referenced as ``src``, by default relative to the page."""
    info = provenance.get("input", {})
    series = sink.series()
    ends = [s["t"][-1] + sink.bin_s for s in series.values() if s["t"]]
    duration = info.get("duration") or (max(ends) if ends else 0.0)
    faces = []
    for row in summary:
        fid = int(row["face_id"])
        faces.append({
            "id": fid, "first": row["first_seen_s"], "last": row["last_seen_s"],
            "visible": row["seconds_visible"], "dominant": row["dominant_emotion"],
            "shares": {e: row[f"share_{e}"] for e in EMOTIONS}, "means": {e: row[f"mean_{e}"] for e in EMOTIONS},
            "thumb": _jpeg(sink.thumbnails.pictures.get(fid)),
        })
    fps = info.get("fps") or "0/1"
    num, den = (int(x) for x in str(fps).split("/")) if "/" in str(fps) else (float(fps), 1)
    model = provenance.get("model", {})
    return {
        "title": Path(str(info.get("path", video))).name,
        "video": {"src": src or os.path.relpath(video, page.parent).replace(os.sep, "/"), "annotated": annotated,
                  "fps": num / den if den else 0, "duration": duration,
                  "width": info.get("width"), "height": info.get("height")},
        "emotions": list(EMOTIONS), "colours": list(EMOTION_HEX), "bin": sink.bin_s,
        "faces": faces, "series": series,
        "provenance": {
            "fervid": provenance.get("fervid_version", __version__), "model": model.get("name"),
            "model accuracy (PrivateTest)": model.get("private_test_accuracy"),
            "complete": provenance.get("complete"), "warning": provenance.get("warning"),
            "created": provenance.get("created"), "settings": provenance.get("settings"),
            "frames decoded": provenance.get("frames_decoded"), "rows": provenance.get("rows"),
        },
    }


def write_page(fh: IO[str], data: dict) -> None:
    payload = json.dumps(finite(data), separators=(",", ":"), allow_nan=False).replace("</", "<\\/")
    fh.write(_TEMPLATE.replace("__TITLE__", html.escape(data["title"])).replace("__DATA__", payload))


def write_index(fh: IO[str], entries: list[dict]) -> None:
    """The folder's index: each video's page with its faces' dominant emotions."""
    colour = dict(zip(EMOTIONS, EMOTION_HEX))
    rows = []
    for e in entries:
        chips = " ".join(f'<span class="chip" style="background:{colour.get(d, "#888")}">#{fid} {html.escape(d)}</span>'
                         for fid, d in e["dominant"])
        rows.append(f'<tr><td><a href="{html.escape(e["href"])}">{html.escape(e["name"])}</a></td>'
                    f'<td>{len(e["dominant"])}</td><td>{chips or "no faces"}</td>'
                    f'<td>{"" if e.get("complete", True) else "decoded in part"}</td></tr>')
    fh.write(_INDEX.replace("__ROWS__", "\n".join(rows)).replace("__VERSION__", __version__))


_STYLE = """
body{font:14px/1.4 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;color:#222;background:#fafafa}
header{padding:10px 16px;background:#fff;border-bottom:1px solid #ddd}
h1{font-size:18px;margin:0}
main{padding:12px 16px;max-width:1240px}
.chip{display:inline-block;color:#fff;border-radius:9px;padding:0 7px;margin:1px;font-size:12px}
table{border-collapse:collapse;background:#fff}
th,td{padding:4px 8px;border-bottom:1px solid #eee;text-align:left;white-space:nowrap}
th{cursor:pointer;user-select:none;background:#f3f3f3}
"""

_TEMPLATE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>__TITLE__ · fervid</title>
<style>""" + _STYLE + """
#top{display:flex;gap:16px;align-items:flex-start;flex-wrap:wrap}
#stage{position:relative;background:#000;max-width:640px}
#stage video{display:block;max-width:640px;max-height:420px}
#overlay{position:absolute;left:0;top:0;pointer-events:none}
#controls{display:flex;gap:6px;align-items:center;margin:6px 0}
#controls button{font-size:13px;padding:3px 9px}
#clock{font-variant-numeric:tabular-nums;min-width:150px}
#legend{margin:8px 0}
#lanes{margin-top:6px}
.lane{display:flex;align-items:center;gap:8px;margin:4px 0;background:#fff;border:1px solid #e4e4e4;padding:4px}
.lane img,.lane .noimg{width:56px;height:56px;border-radius:4px;flex:none;background:#ddd}
.lane .name{width:110px;flex:none;font-size:12px}
.lane canvas{flex:1;height:70px;cursor:pointer;min-width:200px}
#prov{font-size:12px;background:#fff;border:1px solid #e4e4e4;padding:6px 10px;max-width:560px}
#prov td{padding:2px 6px;white-space:normal}
</style></head>
<body>
<header><h1>__TITLE__</h1><div id="sub"></div></header>
<main>
<div id="top">
  <div>
    <div id="stage"><video id="video" preload="auto" playsinline></video><canvas id="overlay"></canvas></div>
    <div id="controls">
      <button id="play" title="play or pause (space)">play</button>
      <button id="back" title="one frame back (,)">&#9664; frame</button>
      <button id="fwd" title="one frame forward (.)">frame &#9654;</button>
      <span id="clock"></span>
    </div>
  </div>
  <table id="prov"></table>
</div>
<div id="legend"></div>
<div>Sort faces by <select id="sort"><option value="id">ID</option><option value="first">first seen</option>
<option value="visible">time visible</option><option value="dominant">dominant emotion</option></select>
· click or drag on a lane to go there</div>
<div id="lanes"></div>
<h2 style="font-size:15px">Faces</h2>
<table id="faces"></table>
</main>
<script id="data" type="application/json">__DATA__</script>
<script>
"use strict";
const D = JSON.parse(document.getElementById("data").textContent);
const E = D.emotions, C = D.colours;
const video = document.getElementById("video"), overlay = document.getElementById("overlay");
video.src = D.video.src;
const duration = () => (isFinite(video.duration) && video.duration > 0) ? video.duration : D.video.duration;
const step = D.video.fps > 0 ? 1 / D.video.fps : 0.04;
const fmt = s => { s = Math.max(0, s || 0); const m = Math.floor(s / 60); return m + ":" + (s - 60 * m).toFixed(2).padStart(5, "0"); };
const pct = v => (v == null ? "-" : (100 * v).toFixed(0) + "%");

document.getElementById("sub").textContent = D.faces.length + (D.faces.length === 1 ? " face" : " faces") +
  " · model " + (D.provenance.model || "?") + (D.provenance.complete === false ? " · decoded in part" : "");
document.getElementById("legend").innerHTML = E.map((e, k) =>
  '<span class="chip" style="background:' + C[k] + '">' + e + "</span>").join(" ");
const prov = document.getElementById("prov");
for (const [k, v] of Object.entries(D.provenance)) {
  if (v == null) continue;
  const tr = prov.insertRow(); tr.insertCell().textContent = k;
  tr.insertCell().textContent = typeof v === "object" ? Object.entries(v).filter(([, x]) => typeof x !== "object")
    .map(([a, b]) => a + " " + (typeof b === "number" ? +b.toPrecision(4) : b)).join(", ") : String(v);
}

function topOf(p) { let b = 0; for (let k = 1; k < p.length; k++) if (p[k] > p[b]) b = k; return b; }
function at(series, t) {  // the point of a face's series nearest before t, within a bin
  const ts = series.t; let lo = 0, hi = ts.length - 1, best = -1;
  while (lo <= hi) { const mid = (lo + hi) >> 1; if (ts[mid] <= t) { best = mid; lo = mid + 1; } else hi = mid - 1; }
  return best >= 0 && t - ts[best] <= 2 * D.bin ? best : -1;
}

const lanes = [];
function buildLanes() {
  const key = document.getElementById("sort").value;
  const faces = D.faces.slice().sort((a, b) => key === "id" ? a.id - b.id : key === "first" ? a.first - b.first :
    key === "visible" ? b.visible - a.visible : a.dominant.localeCompare(b.dominant) || a.id - b.id);
  const box = document.getElementById("lanes"); box.textContent = ""; lanes.length = 0;
  for (const f of faces) {
    const div = document.createElement("div"); div.className = "lane"; div.dataset.face = f.id;
    const img = f.thumb ? Object.assign(document.createElement("img"), {src: f.thumb, alt: "face " + f.id}) :
      Object.assign(document.createElement("div"), {className: "noimg"});
    const name = document.createElement("div"); name.className = "name";
    name.innerHTML = "<b>#" + f.id + "</b><br>" + f.dominant + "<br>" + fmt(f.first) + "–" + fmt(f.last);
    const canvas = document.createElement("canvas");
    div.append(img, name, canvas); box.append(div);
    const lane = {face: f, canvas, series: D.series[String(f.id)] || {t: [], p: [], b: []}, picture: null};
    lanes.push(lane); attachSeek(canvas);
  }
  drawLanes();
}
function drawLanes() {
  for (const lane of lanes) {
    const c = lane.canvas, r = window.devicePixelRatio || 1, w = c.clientWidth, h = c.clientHeight;
    c.width = Math.round(w * r); c.height = Math.round(h * r);
    const g = document.createElement("canvas"); g.width = c.width; g.height = c.height;
    const x = g.getContext("2d"); x.scale(r, r);
    const T = duration() || 1, s = lane.series, strip = 10, top = strip + 3, H = h - top - 2;
    x.fillStyle = "#fff"; x.fillRect(0, 0, w, h);
    x.strokeStyle = "#eee"; x.beginPath(); x.moveTo(0, top + H / 2); x.lineTo(w, top + H / 2); x.stroke();
    for (let i = 0; i < s.t.length; i++) {  // the top-emotion strip
      const joined = i + 1 < s.t.length && s.t[i + 1] - s.t[i] <= 3 * D.bin;  // no gap where the face is seen
      const x0 = Math.floor(s.t[i] / T * w), x1 = Math.max(x0 + 1, Math.ceil((joined ? s.t[i + 1] : s.t[i] + D.bin) / T * w));
      x.fillStyle = C[topOf(s.p[i])]; x.fillRect(x0, 0, x1 - x0, strip);
    }
    for (let k = 0; k < E.length; k++) {  // the 7 probabilities, broken where the face is unseen
      x.strokeStyle = C[k]; x.lineWidth = 1.2; x.beginPath();
      for (let i = 0; i < s.t.length; i++) {
        const px = (s.t[i] + D.bin / 2) / T * w, py = top + H - s.p[i][k] * H;
        if (i === 0 || s.t[i] - s.t[i - 1] > 3 * D.bin) x.moveTo(px, py); else x.lineTo(px, py);
      }
      x.stroke();
    }
    lane.picture = g;
  }
  drawPlayheads();
}
function drawPlayheads() {
  const T = duration() || 1, t = video.currentTime;
  for (const lane of lanes) {
    const c = lane.canvas, x = c.getContext("2d");
    if (!lane.picture) continue;
    x.setTransform(1, 0, 0, 1, 0, 0); x.drawImage(lane.picture, 0, 0);
    const px = Math.round(t / T * c.width);
    x.fillStyle = "#d00"; x.fillRect(px - 1, 0, 2, c.height);
  }
  document.getElementById("clock").textContent = fmt(t) + " / " + fmt(duration()) +
    " · frame " + Math.round(t / step);
  drawBoxes();
}
function attachSeek(canvas) {
  let dragging = false;
  const seek = ev => { const r = canvas.getBoundingClientRect();
    video.currentTime = Math.min(Math.max(0, (ev.clientX - r.left) / r.width), 1) * duration(); drawPlayheads(); };
  canvas.addEventListener("pointerdown", ev => { dragging = true; canvas.setPointerCapture(ev.pointerId); seek(ev); });
  canvas.addEventListener("pointermove", ev => { if (dragging) seek(ev); });
  canvas.addEventListener("pointerup", () => { dragging = false; });
}
function drawBoxes() {  // over the original video only: the annotated copy has its own
  const w = video.clientWidth, h = video.clientHeight;
  overlay.width = w; overlay.height = h; overlay.style.width = w + "px"; overlay.style.height = h + "px";
  if (D.video.annotated || !video.videoWidth) return;
  const x = overlay.getContext("2d"), sx = w / video.videoWidth, sy = h / video.videoHeight, t = video.currentTime;
  x.font = "12px system-ui,sans-serif"; x.lineWidth = 2;
  for (const lane of lanes) {
    const i = at(lane.series, t); if (i < 0) continue;
    const [bx, by, bw, bh] = lane.series.b[i], k = topOf(lane.series.p[i]);
    x.strokeStyle = C[k]; x.strokeRect(bx * sx, by * sy, bw * sx, bh * sy);
    const label = "#" + lane.face.id + " " + E[k] + " " + pct(lane.series.p[i][k]);
    x.fillStyle = C[k]; x.fillRect(bx * sx, by * sy - 16, x.measureText(label).width + 8, 16);
    x.fillStyle = "#fff"; x.fillText(label, bx * sx + 4, by * sy - 4);
  }
}
function buildTable() {
  const t = document.getElementById("faces");
  const cols = [["", null], ["face", "id"], ["first seen", "first"], ["last seen", "last"], ["visible", "visible"],
                ["dominant", "dominant"], ...E.map(e => [e, e])];
  let key = "id", down = false;
  const render = () => {
    const rows = D.faces.slice().sort((a, b) => {
      const va = E.includes(key) ? a.shares[key] : a[key], vb = E.includes(key) ? b.shares[key] : b[key];
      const c = typeof va === "string" ? va.localeCompare(vb) : va - vb; return down ? -c : c; });
    t.innerHTML = "<tr>" + cols.map(([n, k]) => "<th data-k='" + (k || "") + "'>" + n + "</th>").join("") + "</tr>" +
      rows.map(f => "<tr data-face='" + f.id + "'><td>" + (f.thumb ? "<img src='" + f.thumb + "' width=32 height=32>" : "") +
        "</td><td>#" + f.id + "</td><td>" + fmt(f.first) + "</td><td>" + fmt(f.last) + "</td><td>" +
        f.visible.toFixed(1) + " s</td><td>" + f.dominant + "</td>" +
        E.map(e => "<td>" + pct(f.shares[e]) + "</td>").join("") + "</tr>").join("");
    t.querySelectorAll("th").forEach(th => th.onclick = () => {
      if (!th.dataset.k) return; down = th.dataset.k === key ? !down : false; key = th.dataset.k; render(); });
    t.querySelectorAll("tr[data-face]").forEach(tr => tr.onclick = () => {
      const f = D.faces.find(g => String(g.id) === tr.dataset.face); video.currentTime = f.first; drawPlayheads(); });
  };
  render();
}

const playButton = document.getElementById("play");
playButton.onclick = () => (video.paused ? video.play() : video.pause());
video.addEventListener("play", () => { playButton.textContent = "pause"; requestAnimationFrame(tick); });
video.addEventListener("pause", () => { playButton.textContent = "play"; });
const stepBy = n => { video.pause(); video.currentTime = Math.min(Math.max(0, video.currentTime + n * step), duration()); };
document.getElementById("back").onclick = () => stepBy(-1);
document.getElementById("fwd").onclick = () => stepBy(1);
document.addEventListener("keydown", ev => {
  if (ev.target.tagName === "SELECT") return;
  if (ev.key === " ") { ev.preventDefault(); playButton.click(); }
  else if (ev.key === ",") stepBy(-1); else if (ev.key === ".") stepBy(1);
});
function tick() { drawPlayheads(); if (!video.paused && !video.ended) requestAnimationFrame(tick); }
for (const ev of ["seeked", "timeupdate", "loadedmetadata"]) video.addEventListener(ev, drawPlayheads);
video.addEventListener("loadedmetadata", drawLanes);
window.addEventListener("resize", drawLanes);
document.getElementById("sort").onchange = buildLanes;
buildLanes(); buildTable();
performance.mark("fervid-drawn");
</script>
</body></html>
"""

_INDEX = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>fervid · videos</title>
<style>""" + _STYLE + """</style></head>
<body><header><h1>Videos</h1><div>made by fervid __VERSION__</div></header>
<main><table><tr><th>video</th><th>faces</th><th>dominant emotion of each face</th><th></th></tr>
__ROWS__
</table></main></body></html>
"""
