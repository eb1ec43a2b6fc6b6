"""Settings have one source: the dataclasses' defaults and checks, read by the CLI and the Python API."""

from __future__ import annotations

import inspect
import math
import subprocess
import sys
from dataclasses import fields

import click
import pytest
from hypothesis import given, settings as hyp_settings, strategies as st

import fervid
from fervid.cli import main
from fervid.errors import SettingsError
from fervid.outputs.rows import csv_fields
from fervid.settings import DetectorSettings, Settings, options_spec

from conftest import make_face_video


def parse(*args: str) -> dict:
    """What ``fervid timeline`` makes of its arguments, without running it (click's parser and callbacks)."""
    cmd = main.commands["timeline"]
    return cmd.make_context("timeline", ["clip.mp4", *args]).params


def test_defaults_come_from_the_dataclasses():
    params = parse()
    for name, default, _ in options_spec():
        assert params[name] == default, name
    assert params["classify_every"] == 1 / 15  # not a rounded copy of it
    sig = inspect.signature(fervid.analyze)
    for name, default, _ in options_spec():
        assert sig.parameters[name].default == default
    assert "classify_every" in fervid.analyze.__doc__ and "tiles" in fervid.analyze.__doc__


@pytest.mark.parametrize("bad", [dict(every=0), dict(every=1.5), dict(fps=0), dict(fps=-5.0), dict(fps=math.inf),
                                 dict(smooth=math.nan), dict(detect_every=math.inf), dict(classify_every=-1),
                                 dict(min_face=-1), dict(device="tpu"), dict(tta="yes"), dict(model=3),
                                 dict(tiles="3by2"), dict(tiles="200x200"), dict(colour="red")])
def test_bad_values_are_refused_when_settings_are_made(bad):
    with pytest.raises(SettingsError) as err:
        Settings.from_options(**bad)
    assert isinstance(err.value, ValueError) and str(err.value).split(":")[0] in (*bad, "unknown setting(s)")


def test_the_api_refuses_bad_options_before_opening_the_video():
    with pytest.raises(ValueError, match="tiles"):
        fervid.analyze("no-such-file.mp4", tiles="3by2")
    with pytest.raises(TypeError):
        fervid.analyze("no-such-file.mp4", Settings(), every=2)


def test_nested_and_library_only_settings_are_checked_too():
    with pytest.raises(SettingsError, match="runtime"):
        DetectorSettings(runtime="tflite")
    with pytest.raises(SettingsError, match="steady"):
        Settings(steady=0)
    assert DetectorSettings(tiles="4X2+7x4").tiles == "4x2+7x4"


NUMERIC = [(name, meta) for name, _, meta in options_spec() if meta["kind"] in (int, float)]


@hyp_settings(max_examples=200, deadline=None)
@given(st.sampled_from(NUMERIC), st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(-10**6, 10**6),
                                           st.sampled_from(["nan", "inf", "-inf", "1e400", "0x10", "", " 1", "1/15"])))
def test_every_numeric_option_is_checked_when_parsed(option, value):
    name, meta = option
    flag = "--" + name.replace("_", "-")
    try:
        params = parse(flag, str(value))
    except click.UsageError as err:  # exit code 2, with the allowed range or kind in the message
        assert err.exit_code == 2
        return
    got = params[name]
    assert math.isfinite(got)
    Settings.from_options(**{name: got})  # whatever the parser lets through, the settings accept


@hyp_settings(max_examples=100, deadline=None)
@given(st.text(min_size=0, max_size=20))
def test_tiles_option_accepts_only_grids(text):
    try:
        value = parse("--tiles", text)["tiles"]
    except click.UsageError as err:
        assert err.exit_code == 2
        return
    assert value in ("auto", "off") or all(1 <= int(n) <= 16 for grid in value.split("+") for n in grid.split("x"))


def cli_rows(tmp_path, video) -> list[str]:
    csv = tmp_path / (video.stem + ".csv")
    subprocess.run([sys.executable, "-m", "fervid", "timeline", str(video), "--csv", str(csv), "-q"], check=True)
    return csv.read_text().splitlines()[1:]


@pytest.mark.parametrize("kind", ["30fps", "vfr"])
def test_cli_and_api_give_identical_rows(tmp_path, kind):
    if kind == "30fps":
        video = make_face_video(tmp_path / "c30.mp4", rate=30, seconds=1.5)
    else:  # frames 0, 12 or 24 ms off a 30 fps grid, kept as they are by Matroska
        video = make_face_video(tmp_path / "vfr.mkv", rate=30, seconds=1.5,
                                post="setpts=N/(30*TB)+0.012*mod(N\\,3)/TB", extra=["-fps_mode", "passthrough"])
    df = fervid.analyze(video)
    api = [",".join(csv_fields(tuple(row))) for row in df.itertuples(index=False)]
    cli = cli_rows(tmp_path, video)
    assert len(api) > 30 and api == cli
    if kind == "vfr":
        steps = df.drop_duplicates("frame").time_s.diff().dropna().round(3).unique()
        assert len(steps) > 1  # the clip really is off the grid


def test_the_runtime_never_imports_the_model_making_side(face_video):
    code = ("import sys, fervid; fervid.analyze(sys.argv[1]); "
            "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'onnx') or m.startswith('fervid.train')); "
            "print(bad); sys.exit(1 if bad else 0)")
    res = subprocess.run([sys.executable, "-c", code, str(face_video)], capture_output=True, text=True)
    assert res.returncode == 0, res.stdout + res.stderr


def test_every_settings_field_is_checked_or_nested():
    for cls in (Settings, DetectorSettings):
        for f in fields(cls):
            assert f.metadata or f.name == "detector", f"{cls.__name__}.{f.name} has no check"
