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


def huge_header_h264(path: Path, width: int, height: int) -> Path:
    """A raw H.264 stream of one tiny frame whose header claims ``width`` x ``height``: a
    hostile file of a few hundred bytes (its sequence parameter set is rewritten)."""
    import io

    import av
    import numpy as np

    buf = io.BytesIO()
    with av.open(buf, "w", format="h264") as out:
        s = out.add_stream("libx264", rate=25)
        s.width, s.height, s.pix_fmt = 16, 16, "yuv420p"
        s.options = {"profile": "baseline", "preset": "ultrafast"}
        f = av.VideoFrame.from_ndarray(np.zeros((16, 16, 3), np.uint8), format="rgb24")
        f.pts = 0
        for p in [*s.encode(f), *s.encode(None)]:
            out.mux(p)
    units = []
    for nal in buf.getvalue().split(b"\x00\x00\x00\x01"):
        if nal and nal[0] & 0x1F == 7:  # the SPS
            nal = nal[:1] + _escape(_resized_sps(_unescape(nal[1:]), width, height))
        if nal:
            units.append(b"\x00\x00\x00\x01" + nal)
    path.write_bytes(b"".join(units))
    return path


def _resized_sps(rbsp: bytes, width: int, height: int) -> bytes:
    """A baseline-profile SPS with its size fields replaced (the rest copied bit for bit)."""
    bits = "".join(f"{b:08b}" for b in rbsp)
    pos = 0

    def u(n: int) -> str:
        nonlocal pos
        pos += n
        return bits[pos - n:pos]

    def ue() -> str:
        start = pos
        zeros = 0
        while u(1) == "0":
            zeros += 1
        u(zeros)
        return bits[start:pos]

    def ue_bits(v: int) -> str:
        b = f"{v + 1:b}"
        return "0" * (len(b) - 1) + b

    head = u(8)
    assert int(head, 2) == 66, "expected a baseline-profile SPS"
    out = head + u(16) + ue() + ue()  # constraints, level, sps id, log2_max_frame_num
    poc = ue()
    out += poc
    if int(poc, 2) == 1:  # "1": pic_order_cnt_type 0
        out += ue()
    out += ue() + u(1)  # max_num_ref_frames, gaps_in_frame_num_allowed
    ue()
    ue()  # the old size in macroblocks
    out += ue_bits(width // 16 - 1) + ue_bits(height // 16 - 1) + bits[pos:]
    out += "0" * (-len(out) % 8)
    return bytes(int(out[i:i + 8], 2) for i in range(0, len(out), 8))


def _unescape(data: bytes) -> bytes:
    out, zeros = bytearray(), 0
    for x in data:
        if zeros >= 2 and x == 3:
            zeros = 0
            continue
        out.append(x)
        zeros = zeros + 1 if x == 0 else 0
    return bytes(out)


def _escape(data: bytes) -> bytes:
    out, zeros = bytearray(), 0
    for x in data:
        if zeros >= 2 and x <= 3:
            out.append(3)
            zeros = 0
        out.append(x)
        zeros = zeros + 1 if x == 0 else 0
    return bytes(out)
