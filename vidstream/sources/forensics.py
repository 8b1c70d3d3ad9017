"""Was a file read to its end complete? Truncation told from the file's own structure.

A truncated ordinary MP4 can open and decode with no error at all, and transport streams and
fragmented MP4 state no frame count; so once a file has been decoded to its end,
:func:`incomplete` looks at what the container promised and at its last bytes, and says in
words why the input ended early (the source's ``ended_early``), or returns None:

>>> incomplete("clip.mp4", "mov,mp4,m4a,3gp,3g2,mj2", stated_frames=12, decoded=12)
>>> incomplete("clip.mp4", "mov,mp4,m4a,3gp,3g2,mj2", stated_frames=12, decoded=10)
'the input states 12 frames; 10 were decoded'
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import BinaryIO


def incomplete(
    path: str | os.PathLike[str],
    format_name: str,
    *,
    stated_frames: int | None,
    decoded: int,
    decode_errors: int = 0,
    corrupt_frames: int = 0,
) -> str | None:
    """Why a file decoded to its end is not the whole video, or None when it is.

    In order of evidence: its structure is cut, fewer frames than it states came out,
    packets could not be decoded, pictures were damaged (concealed by the decoder).
    """
    # Transport streams and fragmented MP4 state no frame count; a cut file is told by
    # its last packet or box running past the end of the file.
    cut = truncated(Path(path), format_name)
    if cut:
        return cut
    if stated_frames and decoded < stated_frames:
        return f"the input states {stated_frames} frames; {decoded} were decoded"
    if decode_errors:
        return f"{decode_errors} packets could not be decoded"
    if corrupt_frames:
        return f"{corrupt_frames} frames are damaged (concealed by the decoder)"
    return None


def truncated(path: Path, format_name: str) -> str | None:
    """How a file is cut short (``"the file is truncated: it ends inside a 'moof' box"``),
    or None when its structure ends cleanly at its last byte (or its format is not one
    this knows: MPEG-TS, MP4/MOV)."""
    formats = set(format_name.split(","))
    try:
        with path.open("rb") as fh:
            if "mpegts" in formats:
                return ts_truncated(fh, path.stat().st_size)
            if "mp4" in formats or "mov" in formats:
                return mp4_truncated(fh, path.stat().st_size)
    except OSError:
        pass
    return None


def ts_truncated(fh: BinaryIO, size: int) -> str | None:
    """A transport stream is cut when its size is not a whole number of packets."""
    head = fh.read(3 * 204 + 4)
    # 188-byte packets; 192 (M2TS: a 4-byte timestamp first); 204 (with Reed-Solomon bytes)
    for packet, sync in ((188, 0), (192, 4), (204, 0)):
        if all(len(head) > sync + k * packet and head[sync + k * packet] == 0x47
               for k in range(3)):
            if size % packet:
                return "the file is truncated: it ends inside a transport-stream packet"
            return None
    return None


def mp4_truncated(fh: BinaryIO, size: int) -> str | None:
    """An MP4 is cut when its last top-level box runs past the end of the file.

    >>> import io
    >>> box = (16).to_bytes(4, "big") + b"free" + bytes(8)
    >>> mp4_truncated(io.BytesIO(box), 16), mp4_truncated(io.BytesIO(box[:12]), 12)
    (None, "the file is truncated: it ends inside a 'free' box")
    """
    offset = 0
    while offset < size:  # top-level boxes: 32-bit size + type, or size 1 + 64-bit size
        fh.seek(offset)
        header = fh.read(16)
        if len(header) < 8:
            return "the file is truncated: it ends inside a box header"
        box_size, kind = int.from_bytes(header[:4], "big"), header[4:8]
        if not all(32 <= c < 127 for c in kind):  # a box type is four printable characters
            return None  # damaged, not cut: the frame count and decode errors will tell
        name = kind.decode("ascii")
        if box_size == 1:
            if len(header) < 16:
                return f"the file is truncated: it ends inside the header of a {name!r} box"
            box_size = int.from_bytes(header[8:16], "big")
        elif box_size == 0:
            return None  # the last box runs to the end of the file by definition
        if box_size < 8:
            return None
        if offset + box_size > size:
            return f"the file is truncated: it ends inside a {name!r} box"
        offset += box_size
    return None
