"""Test clips made on the fly (nothing binary is committed)."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

from make_clip import encode
from tinymodel import red_square_frames


def red_square_clip(path: Path, frames: int = 30, width: int = 320, height: int = 240,
                    rate: Fraction = Fraction(30000, 1001), audio: bool = False,
                    **kwargs) -> list[tuple[int, int, int, int]]:
    """A clip of a red square moving right; returns its box in every frame."""
    boxes = []

    def images():
        for image, box in red_square_frames(frames, width, height):
            boxes.append(box)
            yield image

    encode(path, images(), rate=rate, audio=audio, **kwargs)
    return boxes


def clip_variant(path: Path, kind: str, frames: int = 60, width: int = 160, height: int = 120,
                 rate: Fraction = Fraction(30000, 1001), gop: int = 15) -> Path:
    """A red-square clip as ``kind``: "mp4" (index at the end), "faststart" (index first, as
    web video is), "fmp4" (fragmented, one fragment per keyframe) or "ts" (MPEG-TS), with a
    keyframe every ``gop`` frames so a damaged file still holds whole pictures to find."""
    import av

    fmt, options, codec_options = None, {}, {"preset": "veryfast"}
    if kind == "fmp4":
        options = {"movflags": "frag_keyframe+empty_moov+default_base_moof"}
        codec_options["bf"] = "0"
    elif kind == "faststart":
        options = {"movflags": "faststart"}
    elif kind == "ts":
        fmt = "mpegts"
    elif kind != "mp4":
        raise ValueError(f"unknown clip kind {kind!r}")
    with av.open(str(path), "w", format=fmt, options=options) as out:
        stream = out.add_stream("libx264", rate=rate)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.codec_context.time_base = 1 / rate
        stream.codec_context.gop_size = gop
        stream.options = codec_options
        for i, (image, _) in enumerate(red_square_frames(frames, width, height, size=20)):
            picture = av.VideoFrame.from_ndarray(image, format="rgb24")
            picture.pts, picture.time_base = i, 1 / rate
            for packet in stream.encode(picture):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return path


def count_frames(path: Path) -> int:
    """Frames a video file decodes to (raises if it cannot be opened)."""
    import av

    with av.open(str(path)) as c:
        return sum(1 for _ in c.decode(video=0))
