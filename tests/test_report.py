"""The report outputs: the HTML page in a real headless browser, WebVTT and SRT subtitles read by
FFmpeg, the ELAN document checked against the EAF 3.0 schema's rules."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from conftest import ffmpeg_exe
from fervid.cli import main

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run", "--disable-quic", "--autoplay-policy=no-user-gesture-required",
        "--mute-audio"]


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture(scope="module")
def outputs(tmp_path_factory, two_face_video):
    """One two-face video through timeline with every report output, and annotated with a page."""
    d = tmp_path_factory.mktemp("report")
    src = d / "in" / "talk.mp4"
    src.parent.mkdir()
    shutil.copy(two_face_video, src)
    res = run("timeline", src, "--csv", d / "t" / "talk.csv", "--html", "--vtt", "--srt", "--eaf", "-q")
    assert res.exit_code == 0, res.output
    res = run("annotate", src, "-o", d / "a" / "talk.mp4", "--html", "-q")
    assert res.exit_code == 0, res.output
    return d


def cues(text: str, sep: str) -> list[tuple[float, float, str]]:
    found = []
    pattern = rf"(\d\d):(\d\d):(\d\d){sep}(\d{{3}}) --> (\d\d):(\d\d):(\d\d){sep}(\d{{3}})\n(.+)"
    for m in re.finditer(pattern, text):
        h1, m1, s1, ms1, h2, m2, s2, ms2, label = m.groups()
        found.append((int(h1) * 3600 + int(m1) * 60 + int(s1) + int(ms1) / 1000,
                      int(h2) * 3600 + int(m2) * 60 + int(s2) + int(ms2) / 1000, label))
    return found


def test_subtitles_have_a_cue_per_change_of_top_emotion(outputs):
    import pandas as pd

    vtt = (outputs / "t" / "talk.vtt").read_text()
    srt = (outputs / "t" / "talk.srt").read_text()
    assert vtt.startswith("WEBVTT\n")
    a, b = cues(vtt, r"\."), cues(srt, ",")
    assert a and a == b
    assert all(re.fullmatch(r"#\d+ (angry|disgust|fear|happy|sad|surprise|neutral) \d+%", lab) for *_, lab in a)
    assert all(end > start for start, end, _ in a)
    rows = pd.read_csv(outputs / "t" / "talk.csv")
    for fid, face in rows.groupby("face_id"):  # as many cues as runs of one emotion in the timeline
        runs = (face.emotion != face.emotion.shift()).sum()
        assert sum(lab.startswith(f"#{fid} ") for *_, lab in a) == runs


@pytest.mark.parametrize("name", ["talk.vtt", "talk.srt"])
def test_ffmpeg_reads_the_subtitles_as_a_subtitle_stream(outputs, name):
    path = outputs / "t" / name
    out = subprocess.run([ffmpeg_exe(), "-hide_banner", "-i", str(path), "-f", "srt", "-"],
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert "Subtitle" in out.stderr and len(cues(out.stdout, ",")) == len(cues(path.read_text(), r"[.,]"))


def test_the_eaf_keeps_the_schemas_rules(outputs):
    """The rules of ELAN's EAF 3.0 schema that the document uses: element order, required
    attributes, unique IDs, references that resolve, times in whole milliseconds."""
    path = outputs / "t" / "talk.eaf"
    root = ET.parse(path).getroot()
    assert root.tag == "ANNOTATION_DOCUMENT" and {"DATE", "AUTHOR", "VERSION"} <= set(root.attrib)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d\d:\d\d", root.attrib["DATE"])
    order = [c.tag for c in root]
    assert order[0] == "HEADER" and order[1] == "TIME_ORDER"
    assert order[2:] == ["TIER"] * (len(order) - 3) + ["LINGUISTIC_TYPE"]
    media = root.find("HEADER/MEDIA_DESCRIPTOR")
    assert media.attrib["MEDIA_URL"].startswith("file:///") and media.attrib["MIME_TYPE"] == "video/mp4"
    assert (path.parent / media.attrib["RELATIVE_MEDIA_URL"]).resolve() == (outputs / "in" / "talk.mp4").resolve()
    slots = {s.attrib["TIME_SLOT_ID"]: int(s.attrib["TIME_VALUE"]) for s in root.iter("TIME_SLOT")}
    values = [int(s.attrib["TIME_VALUE"]) for s in root.iter("TIME_SLOT")]
    assert values == sorted(values) and min(values) >= 0
    types = {t.attrib["LINGUISTIC_TYPE_ID"] for t in root.iter("LINGUISTIC_TYPE")}
    ids = list(slots)
    tiers = root.findall("TIER")
    assert len({t.attrib["TIER_ID"] for t in tiers}) == len(tiers) >= 2
    for tier in tiers:
        assert tier.attrib["LINGUISTIC_TYPE_REF"] in types
        for a in tier.iter("ALIGNABLE_ANNOTATION"):
            ids.append(a.attrib["ANNOTATION_ID"])
            assert slots[a.attrib["TIME_SLOT_REF1"]] < slots[a.attrib["TIME_SLOT_REF2"]]
            assert a.find("ANNOTATION_VALUE").text in {"angry", "disgust", "fear", "happy", "sad", "surprise",
                                                       "neutral"}
    assert len(ids) == len(set(ids)) and all(re.fullmatch(r"[A-Za-z_][\w.-]*", i) for i in ids)  # xsd:ID
    xsd = os.environ.get("FERVID_EAF_XSD")  # ELAN's own schema file, where one is at hand
    if xsd:
        xmlschema = pytest.importorskip("xmlschema")
        xmlschema.XMLSchema(xsd).validate(str(path))


def test_a_folder_run_gets_an_index_of_its_pages(tmp_path, face_video, two_face_video):
    src = tmp_path / "in"
    src.mkdir()
    shutil.copy(face_video, src / "one.mp4")
    shutil.copy(two_face_video, src / "two.mp4")
    res = run("timeline", src, "--csv", tmp_path / "out", "--html", "-q")
    assert res.exit_code == 0, res.output
    index = (tmp_path / "out" / "index.html").read_text()
    assert 'href="one.html"' in index and 'href="two.html"' in index and index.count("#2 ") == 1


def test_report_remakes_the_page_a_run_made(outputs, tmp_path):
    made = page_json(outputs / "t" / "talk.html")
    copy = tmp_path / "t"
    shutil.copytree(outputs / "t", copy)
    (copy / "talk.html").unlink()
    res = run("report", copy / "talk.csv")
    assert res.exit_code == 0 and "wrote" in res.output
    remade = page_json(copy / "talk.html")
    assert remade["faces"] and [f["thumb"] is not None for f in remade["faces"]] == [True] * len(remade["faces"])
    for face in made["series"]:  # the same points; the CSV's rounding aside
        a, b = made["series"][face], remade["series"][face]
        assert a["t"] == b["t"] and np.allclose(a["p"], b["p"], atol=2e-3) and np.allclose(a["b"], b["b"], atol=0.1)
    assert [f["dominant"] for f in made["faces"]] == [f["dominant"] for f in remade["faces"]]


def page_json(page: Path) -> dict:
    text = page.read_text()
    blob = text.split('<script id="data" type="application/json">', 1)[1].split("</script>", 1)[0]
    return json.loads(blob)


def test_an_hour_of_rows_is_drawn_from_a_bounded_series():
    from fervid.outputs.report import MAX_POINTS, ReportSink
    from fervid.records import FaceResult

    sink = ReportSink(3600.0, 1 / 10)
    for k in range(36000):  # an hour at 10 analysed frames a second, one face
        sink.add([FaceResult(k, k / 10, 1, 10, 10, 50, 50, 0.9, np.eye(7)[k // 3000 % 7])])
    series = sink.series()["1"]
    assert len(series["t"]) <= MAX_POINTS + 1 and np.allclose(np.sum(series["p"], 1), 1, atol=0.01)


@pytest.fixture(scope="module")
def browser():
    if CHROMIUM is None:
        pytest.skip("no Chromium installed (Debian: apt install chromium)")
    playwright = pytest.importorskip("playwright.sync_api")
    with playwright.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


@pytest.mark.parametrize("which", ["t", "a"])  # the page over the original, and over the annotated copy
def test_the_page_works_offline_in_a_real_browser(browser, outputs, tmp_path, which):
    page = browser.new_page(viewport={"width": 1280, "height": 800})
    problems, requests = [], []
    page.on("console", lambda m: problems.append(m.text) if m.type in ("error", "warning") else None)
    page.on("pageerror", lambda e: problems.append(str(e)))
    page.on("request", lambda r: requests.append(r.url))
    page.goto((outputs / which / "talk.html").as_uri())
    page.wait_for_function("document.getElementById('video').readyState >= 2", timeout=15000)
    assert not problems and all(u.startswith(("file:", "data:")) for u in requests), (problems, requests)
    assert page.locator(".lane").count() == 2 and page.locator("#faces tr[data-face]").count() == 2

    # Clicking a lane moves the video there, within a frame.
    duration = page.evaluate("document.getElementById('video').duration")
    fps = page_json(outputs / which / "talk.html")["video"]["fps"]
    lane = page.locator(".lane canvas").first
    box = lane.bounding_box()
    page.mouse.click(box["x"] + 0.6 * box["width"], box["y"] + box["height"] / 2)
    page.wait_for_function("!document.getElementById('video').seeking")
    t = page.evaluate("document.getElementById('video').currentTime")
    assert abs(t - 0.6 * duration) <= 1 / fps + 1e-3

    # Dragging moves it along; the frame buttons step by one frame.
    page.mouse.move(box["x"] + 0.2 * box["width"], box["y"] + 10)
    page.mouse.down()
    page.mouse.move(box["x"] + 0.3 * box["width"], box["y"] + 10)
    page.mouse.up()
    t = page.evaluate("document.getElementById('video').currentTime")
    assert abs(t - 0.3 * duration) <= 1 / fps + 1e-3
    page.click("#fwd")
    page.wait_for_function("!document.getElementById('video').seeking")
    assert abs(page.evaluate("document.getElementById('video').currentTime") - t - 1 / fps) < 1e-3

    # Playing moves the video, the clock and the playhead.
    page.evaluate("document.getElementById('video').currentTime = 0")
    before = lane.screenshot()
    clock = page.inner_text("#clock")
    page.evaluate("document.getElementById('video').play()")
    page.wait_for_function("document.getElementById('video').currentTime > 0.5", timeout=10000)
    assert page.inner_text("#clock") != clock and lane.screenshot() != before
    page.evaluate("document.getElementById('video').pause()")
    page.screenshot(path=str(tmp_path / f"page_{which}.png"))
    assert (tmp_path / f"page_{which}.png").stat().st_size > 10_000
    page.close()
