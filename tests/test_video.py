"""Probe, decode and encode on clips generated with ffmpeg: odd sizes, rotation tags, variable frame rate, audio."""

import time
from fractions import Fraction

import cv2
import numpy as np
import pytest

from conftest import ffmpeg, make_video
from fervid.errors import VideoError
from fervid.video.decode import Decoder, open_video
from fervid.video.encode import Encoder
from fervid.video.probe import probe


def test_probe_plain_clip(tmp_path):
    info = probe(make_video(tmp_path / "a.mp4", size="160x120", rate="25", seconds=1, audio=True))
    assert (info.width, info.height, info.rotation) == (160, 120, 0)
    assert info.fps == Fraction(25)
    assert info.audio_codec == "aac"
    assert info.duration == pytest.approx(1.0, abs=0.1)


def test_probe_ntsc_rate_is_exact(tmp_path):
    info = probe(make_video(tmp_path / "a.mp4", rate="30000/1001", seconds=0.5))
    assert info.fps == Fraction(30000, 1001)


@pytest.mark.parametrize("rotate, upright", [(90, (120, 160)), (180, (160, 120)), (270, (120, 160))])
def test_rotation_tag_gives_upright_frames(tmp_path, rotate, upright):
    src = make_video(tmp_path / "a.mp4", size="160x120", seconds=0.4)
    tagged = tmp_path / f"r{rotate}.mp4"
    ffmpeg("-display_rotation", str(rotate), "-i", str(src), "-c", "copy", str(tagged))
    info, dec = open_video(tagged)
    assert (info.width, info.height) == upright
    frames = list(dec)
    assert frames and frames[0].image.shape[:2] == (upright[1], upright[0])
    # Turned the way ffmpeg's own autorotate turns it, in both pixel formats.
    ffmpeg("-i", str(tagged), "-frames:v", "1", "-f", "rawvideo", "-pix_fmt", "bgr24", str(tmp_path / "ref.raw"))
    ref = np.frombuffer((tmp_path / "ref.raw").read_bytes(), np.uint8).reshape(upright[1], upright[0], 3)
    assert np.array_equal(frames[0].image, ref)
    first = next(iter(open_video(tagged, pix_fmt="yuv420p")[1]))
    assert np.abs(first.rgb()[..., ::-1].astype(int) - ref).mean() < 3


def test_odd_size_decodes(tmp_path):
    src = make_video(tmp_path / "odd.mkv", seconds=0.4, vf="scale=161:121", extra=["-pix_fmt", "yuv444p"])
    info, dec = open_video(src)
    frames = list(dec)
    assert (info.width, info.height) == (161, 121)
    assert len(frames) == 10 and frames[0].image.shape == (121, 161, 3)


@pytest.mark.parametrize("size", ["161x121", "160x120"])
def test_i420_frames_have_even_planes_and_the_picture_itself(tmp_path, size):
    """Odd sides are padded for I420 (ffmpeg's pad filter); even ones go through unpadded."""
    w, h = (int(v) for v in size.split("x"))
    src = make_video(tmp_path / "v.mkv", seconds=0.2, vf=f"scale={w}:{h}", extra=["-pix_fmt", "yuv444p"])
    info, dec = open_video(src, pix_fmt="yuv420p")
    bgr = [f.image for f in open_video(src)[1]]
    frames = list(dec)
    ew, eh = w + w % 2, h + h % 2
    assert [f.image.shape for f in frames] == [(eh * 3 // 2, ew)] * len(bgr)
    for f, ref in zip(frames, bgr):
        assert f.gray().shape == (h, w) and f.rgb().shape == (h, w, 3)
        grey = 16 + cv2.cvtColor(ref, cv2.COLOR_BGR2GRAY) * (219 / 255)  # Y is in video range, 16..235
        assert np.abs(f.gray() - grey).mean() < 2  # the same picture, up to the conversions


def vfr_clip(tmp_path):
    """Frames at 0, 0.05, 0.2, 0.45, 0.8, 1.25 s: gaps that keep growing, kept by the MKV container."""
    src = make_video(tmp_path / "cfr.mkv", rate="20", seconds=0.3)
    out = tmp_path / "vfr.mkv"
    ffmpeg("-i", str(src), "-vf", "setpts=0.05*N*N/TB", "-fps_mode", "passthrough",
           "-c:v", "libx264", "-preset", "ultrafast", str(out))
    return out


def test_variable_frame_rate_times_come_from_the_stream(tmp_path):
    info, dec = open_video(vfr_clip(tmp_path))
    times = [f.time_s for f in dec]
    assert np.allclose(times, [0, 0.05, 0.2, 0.45, 0.8, 1.25], atol=0.002)


def test_sampling_keeps_original_indices_and_times(tmp_path):
    info = probe(make_video(tmp_path / "a.mp4", rate="25", seconds=1))
    frames = list(Decoder(info, every=5))
    assert [f.index for f in frames] == [0, 5, 10, 15, 20]
    assert [round(f.time_s, 3) for f in frames] == [0.0, 0.2, 0.4, 0.6, 0.8]


def test_a_started_decoder_gives_the_same_frames_and_an_unused_one_stops(tmp_path):
    info = probe(make_video(tmp_path / "a.mp4", rate="25", seconds=1))
    plain = [(f.index, f.time_s, int(f.image.sum())) for f in Decoder(info, pix_fmt="yuv420p")]
    early = Decoder(info, pix_fmt="yuv420p").start()  # as a batch opens its next file
    time.sleep(0.2)  # ffmpeg decodes a few frames ahead, then waits for the reader
    assert [(f.index, f.time_s, int(f.image.sum())) for f in early] == plain
    assert early.report.returncode == 0
    unused = Decoder(info, pix_fmt="yuv420p").start()
    unused.close()
    assert unused.report.returncode is not None  # ffmpeg stopped, not left waiting on its pipe
    unused.close()  # closing twice is harmless


def test_closing_a_decoder_ends_a_consumer_waiting_in_another_thread(tmp_path):
    import threading

    # A shallow queue, so that ffmpeg is still running when the decoder is closed.
    dec = Decoder(probe(make_video(tmp_path / "a.mp4", rate="25", seconds=8)), pix_fmt="yuv420p", queue_bytes=1)
    got = []

    def consume():
        for f in dec:
            got.append(f.index)
            time.sleep(0.01)

    t = threading.Thread(target=consume)
    t.start()
    time.sleep(0.3)
    dec.close()  # as a runner does when its file fails
    t.join(timeout=5)
    assert not t.is_alive() and 0 < len(got) < 200
    assert dec.report.damaged  # stopped early: not the whole video


def reencode(src, out, pix_fmt="bgr24"):
    """Decode ``src`` and encode every frame to ``out``; returns the input's info and frame times."""
    info, dec = open_video(src, pix_fmt=pix_fmt)
    enc = Encoder(out, info, pix_fmt=pix_fmt)
    times = []
    for f in dec:
        enc.write(f.image, f.time_s)
        times.append(f.time_s)
    enc.close()
    return info, times


def test_encode_round_trip_keeps_count_times_and_audio(tmp_path):
    src = make_video(tmp_path / "a.mp4", rate="30000/1001", seconds=1.0, audio=True)
    info, times = reencode(src, tmp_path / "out.mp4")
    out_info, out_dec = open_video(tmp_path / "out.mp4")
    out_times = [f.time_s for f in out_dec]
    assert len(out_times) == len(times)
    assert np.abs(np.array(out_times) - np.array(times)).max() < 0.02
    assert out_info.audio_codec == "aac"
    assert out_info.duration == pytest.approx(info.duration, abs=0.05)


def test_encode_variable_frame_rate_keeps_each_time(tmp_path):
    _, times = reencode(vfr_clip(tmp_path), tmp_path / "out.mp4")
    out = [f.time_s for f in open_video(tmp_path / "out.mp4")[1]]
    assert np.allclose(out, times, atol=0.002)


def offgrid_clip(path, times_ms):
    """A clip whose frames sit at the given milliseconds, off any frame-rate grid (written with
    PyAV: ffmpeg's own encoder would round them to 1/rate)."""
    import av
    from fractions import Fraction

    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = 160, 120, "yuv420p"
        stream.codec_context.time_base = Fraction(1, 1000)
        for i, t in enumerate(times_ms):
            frame = av.VideoFrame.from_ndarray(np.full((120, 160, 3), i * 20, np.uint8), format="rgb24")
            frame.pts, frame.time_base = t, Fraction(1, 1000)
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path


@pytest.mark.parametrize("suffix", [".mp4", ".mkv"])
def test_encode_keeps_times_off_the_frame_rate_grid(tmp_path, suffix):
    """Frames 20 ms and 66 ms in must not move to 40 and 80 ms, onto a 1/25 s grid (an encoder
    clock of 1/frame rate would put them there)."""
    times_ms = [0, 20, 66, 138, 236, 360, 510, 686]
    src = offgrid_clip(tmp_path / "src.mkv", times_ms)
    _, times = reencode(src, tmp_path / f"out{suffix}")
    assert np.allclose(times, np.array(times_ms) / 1000, atol=1e-6)
    out = [f.time_s for f in open_video(tmp_path / f"out{suffix}")[1]]
    assert np.allclose(out, times, atol=0.001)


def test_encoding_refuses_unknown_preset_and_crf():
    from fervid.video.encode import Encoding

    assert Encoding().preset == "superfast"
    with pytest.raises(ValueError, match="preset"):
        Encoding(preset="sluggish")
    with pytest.raises(ValueError, match="crf"):
        Encoding(crf=60)


def test_encode_odd_size_is_padded_to_even(tmp_path):
    src = make_video(tmp_path / "odd.mkv", seconds=0.2, vf="scale=161:121", extra=["-pix_fmt", "yuv444p"])
    reencode(src, tmp_path / "out.mp4")
    assert (probe(tmp_path / "out.mp4").width, probe(tmp_path / "out.mp4").height) == (162, 122)


@pytest.mark.parametrize("content, words", [
    (b"", "empty"),
    (b"hello, this is text\n" * 20, "not a readable video"),
])
def test_not_a_video(tmp_path, content, words):
    p = tmp_path / "x.mp4"
    p.write_bytes(content)
    with pytest.raises(VideoError, match=words):
        probe(p)


def test_audio_only_file_is_named_as_such(tmp_path):
    p = tmp_path / "sound.mp4"
    ffmpeg("-f", "lavfi", "-i", "sine=duration=0.5", "-c:a", "aac", str(p))
    with pytest.raises(VideoError, match="audio but no video"):
        probe(p)


@pytest.mark.parametrize("sar, coded, rotate, shown", [("4/3", "120x120", 0, (160, 120)),
                                                      ("3/4", "160x120", 0, (160, 160)),
                                                      ("4/3", "120x120", 90, (120, 160))])
def test_non_square_pixels_are_decoded_in_the_shape_they_are_shown(tmp_path, sar, coded, rotate, shown):
    """DV, DVD and HDV store pixels that are not square (SAR); frames come scaled to the picture
    that players show, and turned after that, as the rotation tag applies to the shown picture."""
    src = make_video(tmp_path / "a.mp4", size=coded, seconds=0.4, vf=f"setsar={sar}")
    if rotate:
        ffmpeg("-display_rotation", str(rotate), "-i", str(src), "-c", "copy", str(tmp_path / "r.mp4"))
        src = tmp_path / "r.mp4"
    info, dec = open_video(src)
    assert info.sar == Fraction(sar) and (info.width, info.height) == shown
    assert info.as_dict()["sar"] == sar.replace("/", ":")
    frames = list(dec)
    assert len(frames) == 10 and frames[0].image.shape[:2] == (shown[1], shown[0])
    # The picture ffmpeg shows: turned by its autorotate, then scaled to the shown size (it
    # scales and converts colour in two steps, fervid in one: a few levels apart on testsrc2's edges).
    ffmpeg("-i", str(src), "-frames:v", "1", "-vf", f"scale={shown[0]}:{shown[1]}:flags=bicubic", "-f", "rawvideo",
           "-pix_fmt", "bgr24", str(tmp_path / "ref.raw"))
    ref = np.fromfile(tmp_path / "ref.raw", np.uint8).reshape(shown[1], shown[0], 3)
    assert np.abs(frames[0].image.astype(int) - ref).mean() < 6


def _shown_grey(path, tmp_path):
    """The first frame's grey levels as a player shows them (its range applied)."""
    raw = tmp_path / "shown.raw"
    ffmpeg("-i", str(path), "-frames:v", "1", "-vf", "scale=out_range=pc,format=gray", "-f", "rawvideo", str(raw))
    return np.fromfile(raw, np.uint8).astype(int)


def test_full_range_video_comes_in_video_range_and_is_annotated_as_shown(tmp_path):
    """Full-range sources (webcams' MJPEG, some phones and screen recorders: "pc", yuvj420p) come
    as video-range I420, which the detector's colour conversion, the crops and the encoder all
    assume: else the annotated copy of one would have its blacks and whites clipped."""
    src = make_video(tmp_path / "pc.mp4", size="160x120", seconds=0.4, vf="scale=out_range=pc",
                     extra=["-color_range", "pc"])
    for f in open_video(src, pix_fmt="yuv420p")[1]:
        y = f.gray()
        assert y.min() >= 14 and y.max() <= 237  # video range (x264's rounding aside)
    out = tmp_path / "out.mp4"
    reencode(src, out, pix_fmt="yuv420p")
    a, b = _shown_grey(src, tmp_path), _shown_grey(out, tmp_path)
    assert a.min() < 8 and a.max() > 220  # testsrc2 in the full range
    assert np.abs(a - b).mean() < 2


@pytest.mark.parametrize("tags, pix_fmt, colour", [
    ("", "yuv420p", ("", "", "")),
    ("colorspace=bt709:color_primaries=bt709:color_trc=bt709", "yuv420p", ("bt709", "bt709", "bt709")),
    ("colorspace=bt2020nc:color_primaries=bt2020:color_trc=arib-std-b67", "yuv420p10le",
     ("bt2020nc", "bt2020", "arib-std-b67")),
    ("colorspace=smpte170m:color_primaries=smpte170m:color_trc=bt709", "yuv420p", ("smpte170m", "smpte170m", "bt709")),
    ("color_primaries=bt709:color_trc=iec61966-2-1", "gbrp", ("", "", "")),  # RGB: the encoder's own matrix
])
def test_probe_reads_the_colour_description(tmp_path, tags, pix_fmt, colour):
    vf = ",".join(x for x in (f"setparams={tags}" if tags else "", f"format={pix_fmt}") if x)
    src = tmp_path / "c.mkv"
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=64x48:rate=5:duration=0.4", "-vf", vf, "-c:v", "ffv1", str(src))
    assert probe(src).colour == colour


def test_annotated_copy_keeps_the_colour_description(tmp_path):
    """An HDR phone video (HLG, BT.2020) whose annotated copy lost its tags would be shown washed out."""
    src = make_video(tmp_path / "hlg.mkv", seconds=0.4,
                     vf="setparams=color_primaries=bt2020:color_trc=arib-std-b67:colorspace=bt2020nc")
    info, _ = reencode(src, tmp_path / "out.mp4", pix_fmt="yuv420p")
    assert info.colour == ("bt2020nc", "bt2020", "arib-std-b67")
    assert probe(tmp_path / "out.mp4").colour == info.colour


@pytest.mark.parametrize("suffix, codecs", [(".mp4", ("aac", "aac")), (".mkv", ("aac", "pcm_s16le"))])
def test_every_audio_stream_is_kept(tmp_path, suffix, codecs):
    """A recorder's second microphone, a translation: all audio streams come through, copied where
    the output takes their codec (PCM into MP4 becomes AAC)."""
    src = tmp_path / "two.mkv"
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=160x120:rate=25:duration=1", "-f", "lavfi", "-i", "sine=frequency=330:duration=1",
           "-f", "lavfi", "-i", "sine=frequency=550:duration=1", "-map", "0", "-map", "1", "-map", "2", "-c:v", "libx264",
           "-preset", "ultrafast", "-c:a:0", "aac", "-c:a:1", "pcm_s16le", str(src))
    assert probe(src).audio_codecs == ("aac", "pcm_s16le")
    out = tmp_path / f"out{suffix}"
    reencode(src, out)
    assert probe(out).audio_codecs == codecs


def test_probe_reads_rotation_ntsc_rate_and_audio(tmp_path):
    src = make_video(tmp_path / "a.mp4", size="160x96", rate="30000/1001", seconds=0.5, audio=True)
    turned = tmp_path / "turned.mov"
    ffmpeg("-display_rotation", "-90", "-i", str(src), "-c", "copy", str(turned))
    info = probe(turned)
    assert (info.width, info.height, info.rotation) == (96, 160, 270)
    assert info.fps == Fraction(30000, 1001) and info.audio_codec == "aac" and info.pix_fmt == "yuv420p"
    assert info.duration == pytest.approx(0.5, abs=0.05) and info.codec == "h264"


def test_the_default_video_stream_is_read_not_a_picture_listed_before_it(tmp_path):
    clip = make_video(tmp_path / "clip.mp4", size="160x120", seconds=1.0)
    still = tmp_path / "cover.png"
    ffmpeg("-f", "lavfi", "-i", "color=red:size=64x64", "-frames:v", "1", str(still))
    both = tmp_path / "both.mkv"  # stream 0: a one-frame picture; stream 1: the video, marked default
    ffmpeg("-i", str(still), "-i", str(clip), "-map", "0", "-map", "1", "-c", "copy",
           "-disposition:v:0", "0", "-disposition:v:1", "default", str(both))
    info, dec = open_video(both, pix_fmt="gray")
    assert (info.stream, info.width, info.height) == (1, 160, 120)
    frames = list(dec)
    assert len(frames) == 25 and frames[0].image.shape == (120, 160)


def test_probe_skips_cover_art(tmp_path):
    clip = make_video(tmp_path / "clip.mp4", size="160x96", seconds=0.5)
    cover = tmp_path / "cover.jpg"
    ffmpeg("-f", "lavfi", "-i", "color=red:size=64x64", "-frames:v", "1", str(cover))
    art = tmp_path / "art.mp4"  # the cover (an attached picture) listed first, the video not marked default
    ffmpeg("-i", str(cover), "-i", str(clip), "-map", "0", "-map", "1", "-c", "copy",
           "-disposition:v:0", "attached_pic", "-disposition:v:1", "0", str(art))
    import av

    with av.open(str(art)) as c:
        streams = {s.index: s.codec_context.name for s in c.streams.video}
        pic = [s.index for s in c.streams.video if s.disposition & av.stream.Disposition.attached_pic]
    assert sorted(streams.values()) == ["h264", "mjpeg"] and len(pic) == 1
    info = probe(art)
    assert (info.width, info.height, info.codec) == (160, 96, "h264") and info.stream != pic[0]


def _cut(src, dst, fraction=None, noise_at=None):
    data = bytearray(src.read_bytes())
    if noise_at is not None:
        mid = int(len(data) * noise_at)
        data[mid:mid + 4000] = bytes((i * 151 + 7) % 256 for i in range(4000))
    dst.write_bytes(bytes(data[: int(len(data) * fraction)] if fraction else data))
    return dst


def test_a_truncated_file_is_reported_as_such_and_decodes_up_to_the_cut(tmp_path):
    src = make_video(tmp_path / "a.mp4", rate="25", seconds=2, extra=["-movflags", "+faststart"])
    info, dec = open_video(_cut(src, tmp_path / "cut.mp4", 0.6))
    frames = list(dec)
    assert 10 < len(frames) < 50
    assert dec.report.damaged and dec.report.cause == "the file ends early, probably truncated"
    assert "the video is damaged (the file ends early" in dec.report.summary(frames[-1].time_s, info.duration)


def test_corrupt_data_in_the_middle_is_reported_and_decoding_goes_on(tmp_path):
    src = make_video(tmp_path / "a.mp4", rate="25", seconds=2)
    ts = tmp_path / "a.ts"
    ffmpeg("-i", str(src), "-c", "copy", "-f", "mpegts", str(ts))
    info, dec = open_video(_cut(ts, tmp_path / "bad.ts", noise_at=0.5))
    frames = list(dec)
    assert len(frames) > 40 and frames[-1].time_s > 1.8  # on past the damage, to the end
    assert dec.report.damaged and dec.report.returncode == 0


def test_a_size_change_mid_stream_is_scaled_back_to_the_first_size(tmp_path):
    """Joined TS clips change the picture size mid-stream; every frame keeps the probed size."""
    import cv2

    small, big = tmp_path / "a.ts", tmp_path / "b.ts"
    make_video(small, size="160x120", seconds=0.4, extra=["-bsf:v", "h264_mp4toannexb"])
    make_video(big, size="320x240", seconds=0.4)
    joined = tmp_path / "joined.ts"
    ffmpeg("-i", f"concat:{small}|{big}", "-c", "copy", str(joined))
    info, dec = open_video(joined, pix_fmt="yuv420p")
    frames = list(dec)
    assert (info.width, info.height) == (160, 120) and len(frames) == 20
    assert {f.image.shape for f in frames} == {(180, 160)}
    first_big = next(iter(open_video(big, pix_fmt="yuv420p")[1])).gray()
    ref = cv2.resize(first_big, (160, 120), interpolation=cv2.INTER_AREA).astype(int)
    assert np.abs(frames[10].gray().astype(int) - ref).mean() < 6


def test_times_count_from_the_file_start_as_players_show_them(tmp_path):
    """An MPEG-TS file starts its clock anywhere (here about 1.4 s); times count from that start."""
    src = make_video(tmp_path / "a.mp4", rate="25", seconds=1)
    ts = tmp_path / "a.ts"
    ffmpeg("-i", str(src), "-c", "copy", "-f", "mpegts", str(ts))
    info, dec = open_video(ts)
    times = [f.time_s for f in dec]
    assert info.start_time > 1
    assert times[0] == pytest.approx(0, abs=0.05) and np.allclose(np.diff(times), 0.04, atol=1e-3)


@pytest.mark.parametrize("odd", [False, True])  # odd: the I420 planes are padded to even
def test_rgb_resized_from_i420_matches_converting_first(tmp_path, odd):
    """Shrinking the YUV planes before the colour conversion gives the picture that converting
    the whole frame and then shrinking gives, up to resampling noise."""
    import cv2

    path = tmp_path / "c.mkv"
    make_video(path, size="320x240", seconds=0.2, vf="scale=321:243" if odd else None, extra=["-pix_fmt", "yuv444p"])
    frame = next(iter(open_video(path, pix_fmt="yuv420p")[1]))
    w, h = frame.width, frame.height
    for box, out in (((0, 0, w, h), (96, 72)), ((31, 17, 251, 181), (110, 82)), ((0, 0, w, h), (w - w % 2, h - h % 2))):
        x0, y0, x1, y1 = box
        ref = cv2.resize(frame.rgb()[y0:y1, x0:x1], out, interpolation=cv2.INTER_AREA).astype(int)
        got = frame.rgb_resized(box, out).astype(int)
        assert got.shape == ref.shape == (out[1], out[0], 3)
        # testsrc2's sharp colour bars are the worst case; odd sides with 4:4:4 chroma a little worse still
        assert np.abs(got - ref).mean() < (7 if odd else 6)


def test_decoding_threads_one_up_to_1080p_two_above(tmp_path):
    from dataclasses import replace

    info = probe(make_video(tmp_path / "a.mp4", seconds=0.2))

    def threads(**size) -> int:
        return Decoder(replace(info, **size), pix_fmt="yuv420p").auto_threads()

    assert threads() == 1 and threads(width=1920, height=1080) == 1
    assert threads(width=3840, height=2160) == 2
    frames = list(Decoder(info, threads=3))  # asked for: as given, and the same pictures
    assert [f.image.sum() for f in frames] == [f.image.sum() for f in Decoder(info)]


def test_ffmpegs_libraries_load_in_the_decoding_thread_not_at_import():
    """Loading PyAV costs ~45 ms; imported by the decoder's thread it overlaps the networks
    loading (and `fervid train` never needs it). A fresh interpreter tells."""
    import subprocess
    import sys

    code = "import sys, fervid.runner, fervid.video.decode; print('av' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False"]


def test_a_damage_report_keeps_the_first_and_the_latest_complaints():
    from fervid.video.decode import DecodeReport

    report = DecodeReport()
    for i in range(1000):
        report.note(f"corrupt packet at byte {i}")
    assert len(report.messages) == 20 and report.damaged and report.cause == "corrupt frames"
    assert report.messages[0].endswith(" 0") and report.messages[-1].endswith(" 999")


def test_an_unexpected_error_while_decoding_is_reported_not_swallowed(tmp_path, monkeypatch):
    """The decoder runs in a thread: an error there must reach the report, or a run would end
    early with outputs that look complete."""
    info = probe(make_video(tmp_path / "a.mp4", rate="25", seconds=1))
    real, calls = Decoder._image, []

    def failing(self, frame):
        calls.append(frame)
        if len(calls) > 5:
            raise ValueError("an unexpected pixel format")
        return real(self, frame)

    monkeypatch.setattr(Decoder, "_image", failing)
    dec = Decoder(info, pix_fmt="yuv420p")
    frames = list(dec)
    assert len(frames) == 5 and dec.report.damaged and dec.report.returncode == 1
    assert dec.report.cause == "decoding failed: ValueError: an unexpected pixel format"
    assert "decoding stopped after 5 frames" in dec.report.summary()


def test_a_fault_while_encoding_fails_the_file_instead_of_hanging(tmp_path, monkeypatch):
    from fervid.video import encode

    def broken(self, image, time_s):
        raise ValueError("a frame the encoder cannot take")

    info, dec = open_video(make_video(tmp_path / "a.mp4", rate="25", seconds=1))
    monkeypatch.setattr(encode.Encoder, "_encode", broken)
    enc = Encoder(tmp_path / "out.mp4", info)
    with pytest.raises(VideoError, match="ValueError: a frame the encoder cannot take"):
        for f in dec:  # more frames than the queue holds: a dead encoding thread must not block
            enc.write(f.image, f.time_s)
        enc.close()
