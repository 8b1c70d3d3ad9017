"""Decoder stage: frames, timestamps and the errors bad input gets."""

from __future__ import annotations

import json
from fractions import Fraction

import av
import numpy as np
import pytest
from media import red_square_clip

from vidstream import (
    ArraySource,
    CorruptInputError,
    EmptyInputError,
    FrameTooLargeError,
    InputNotFoundError,
    NoVideoStreamError,
    Pipeline,
    VideoSource,
)
from vidstream.sources import is_live, mask_credentials


@pytest.fixture(scope="module")
def clip(media_dir):
    path = media_dir / "squares.mp4"
    boxes = red_square_clip(path, frames=30)
    return path, boxes


def test_frames_have_index_pts_time_base_and_rgb_image(clip):
    path, boxes = clip
    src = VideoSource(path)
    info = src.open()
    try:
        frames = list(src.frames())
    finally:
        src.close()
    assert (info.width, info.height, info.rate, info.frames) == (320, 240,
                                                                Fraction(30000, 1001), 30)
    assert [f.index for f in frames] == list(range(30))
    assert frames[0].image.shape == (1, 240, 320, 3) and frames[0].image.dtype == np.uint8
    step = round(1 / (info.rate * info.time_base))
    assert [f.pts for f in frames] == [i * step for i in range(30)]
    assert frames[10].time == pytest.approx(10 * 1001 / 30000)
    # the red square is where it was drawn (through H.264)
    x1, y1, x2, y2 = boxes[5]
    r, g, b = frames[5].image[0, (y1 + y2) // 2, (x1 + x2) // 2]
    assert r > 180 and g < 80 and b < 80


def test_scaled_rgb_comes_from_swscale(clip):
    src = VideoSource(clip[0])
    src.open()
    frame = next(src.frames())
    src.close()
    small = frame.rgb(160, 120)
    assert small.shape == (1, 120, 160, 3)
    # same picture as a full-size conversion scaled down
    full = frame.image[0].astype(int)
    assert abs(small[0].astype(int).mean() - full.mean()) < 2


def test_max_frames(clip):
    src = VideoSource(clip[0], max_frames=7)
    info = src.open()
    assert info.frames == 7
    assert len(list(src.frames())) == 7
    src.close()


def test_missing_file(tmp_path):
    with pytest.raises(InputNotFoundError, match=r"nope\.mp4: no such file"):
        VideoSource(tmp_path / "nope.mp4").open()


def test_empty_file(tmp_path):
    p = tmp_path / "empty.mp4"
    p.touch()
    with pytest.raises(EmptyInputError, match="empty.mp4: file is empty"):
        VideoSource(p).open()


def test_text_renamed_mp4(tmp_path):
    p = tmp_path / "notes.mp4"
    p.write_text("these are my notes, not a video\n" * 20)
    with pytest.raises(CorruptInputError, match=r"notes\.mp4: not a readable video"):
        VideoSource(p).open()


def test_random_bytes(tmp_path):
    p = tmp_path / "random.mp4"
    p.write_bytes(np.random.default_rng(1).integers(0, 256, 100_000, dtype=np.uint8).tobytes())
    with pytest.raises((CorruptInputError, EmptyInputError), match="random.mp4"):
        VideoSource(p).open()


def test_audio_only_file_has_no_video_stream(tmp_path):
    p = tmp_path / "tone.m4a"
    with av.open(str(p), "w") as out:
        s = out.add_stream("aac", rate=48000)
        s.layout = "mono"
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp",
                                           layout="mono")
        frame.sample_rate = 48000
        for i in range(10):
            frame.pts = i * 1024
            for pkt in s.encode(frame):
                out.mux(pkt)
        for pkt in s.encode(None):
            out.mux(pkt)
    with pytest.raises(NoVideoStreamError, match=r"tone\.m4a: no video stream \(streams: audio\)"):
        VideoSource(p).open()


def test_truncated_mp4_is_an_error_not_zero_frames(clip, tmp_path):
    data = clip[0].read_bytes()
    p = tmp_path / "cut.mp4"
    p.write_bytes(data[: len(data) // 2])  # moov is at the end: nothing decodable
    with pytest.raises((EmptyInputError, CorruptInputError), match="cut.mp4"):
        VideoSource(p).open()


def test_max_pixels_refuses_huge_frames(clip):
    with pytest.raises(FrameTooLargeError) as err:
        VideoSource(clip[0], max_pixels=1000).open()
    # the library names its own parameter, never a command-line flag
    assert err.value.param == "max_pixels"
    assert str(err.value).endswith("320x240 exceeds the limit of 1000 pixels (see max_pixels)")


def test_credentials_are_masked():
    assert mask_credentials("rtsp://admin:s3cret@10.1.2.3:554/live") == "rtsp://***@10.1.2.3:554/live"
    assert mask_credentials("/videos/a.mp4") == "/videos/a.mp4"
    assert VideoSource("rtsp://u:p@host/x").display == "rtsp://***@host/x"


def test_live_detection():
    assert is_live("rtsp://cam/1") and is_live("udp://127.0.0.1:1234") and is_live("/dev/video0")
    assert not is_live("clip.mp4") and not is_live("/tmp/x.ts")


def test_array_source_summary_is_json():
    """Regression: ArraySource put a Fraction in ``StreamInfo.duration_s`` (declared float),
    so ``json.dumps(summary.to_dict())`` raised TypeError for every ArraySource run."""
    images = [np.zeros((8, 8, 3), np.uint8)] * 10
    summary = Pipeline(ArraySource(images, rate=Fraction(30000, 1001))).run()
    assert isinstance(summary.info.duration_s, float)
    assert summary.info.duration_s == pytest.approx(10 * 1001 / 30000)
    assert json.loads(json.dumps(summary.to_dict()))["input"]["duration_s"] == pytest.approx(
        10 * 1001 / 30000)


def test_the_sources_package_exports():
    """What other modules import from ``vidstream.sources``; the defaults are the settings'."""
    import vidstream.sources as sources
    from vidstream.settings import DEFAULTS

    assert sources.__all__ == ["DEFAULT_MAX_DECODE_ERRORS", "DEFAULT_MAX_PIXELS", "LIVE_SCHEMES",
                               "ArraySource", "VideoSource", "is_live", "mask_credentials"]
    assert all(getattr(sources, name) is not None for name in sources.__all__)
    aliases = sources.DEFAULT_MAX_PIXELS, sources.DEFAULT_MAX_DECODE_ERRORS
    assert aliases == (DEFAULTS.max_pixels, DEFAULTS.max_decode_errors)
    src = VideoSource("rtsp://cam/1")
    assert (src.max_pixels, src.stall_timeout, src.reconnect) == (
        DEFAULTS.max_pixels, DEFAULTS.stall_timeout, DEFAULTS.reconnect)


# -- issue 11, item 2: every form of credential is masked ----------------------------------
@pytest.mark.parametrize(("uri", "shown"), [
    # FFmpeg splits user-info from host at the LAST @ before the path: so must the mask
    ("rtsp://user:p@ss@word@cam.local/x", "rtsp://***@cam.local/x"),
    ("rtsp://user:p@ss@10.0.0.5:554/live?x=1", "rtsp://***@10.0.0.5:554/live?x=1"),
    ("https://cam/live.m3u8?token=abc123&fps=30", "https://cam/live.m3u8?token=***&fps=30"),
    ("rtsp://cam/stream?user=admin&password=hunter2", "rtsp://cam/stream?user=admin&password=***"),
    ("http://h/v.ts?api_key=K&auth=A&sig=S&X-Amz-Signature=Z&secret=Q",
     "http://h/v.ts?api_key=***&auth=***&sig=***&X-Amz-Signature=***&secret=***"),
    ("rtmp://u:pw@h/app?access_token=T", "rtmp://***@h/app?access_token=***"),
    ("/videos/a@b.mp4", "/videos/a@b.mp4"),
])
def test_every_form_of_credential_is_masked(uri, shown):
    assert mask_credentials(uri) == shown
    assert VideoSource(uri).display == shown


def test_urls_inside_messages_and_records_are_masked():
    from vidstream.sources.uri import mask_record, mask_text

    line = "lost rtsp://u:p@ss@word@h/x: 'http://h/y?token=t0k' again"
    assert mask_text(line) == "lost rtsp://***@h/x: 'http://h/y?token=***' again"
    record = {"error": line, "streams": [{"uri": "rtsp://a:b@c@h/x"}], "frames": 3}
    masked = mask_record(record)
    assert "ss@word" not in str(masked) and "t0k" not in str(masked) and "b@c" not in str(masked)
    assert masked["frames"] == 3
