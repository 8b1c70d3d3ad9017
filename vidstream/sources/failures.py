"""What PyAV raises on broken input, and each such error said in a few words.

PyAV raises more than ``av.FFmpegError`` on bad input: ``UnicodeDecodeError`` from corrupt
metadata, a bare ``IndexError`` from a corrupt MPEG-TS demux, ``EOFError``, ``ValueError``.
Sources catch :data:`READ_ERRORS` at the boundary and translate them into
:mod:`vidstream.errors` whose message names the input and the cause:

>>> import av
>>> describe_error(av.error.InvalidDataError(1094995529, "Invalid data found", "x.mp4"))
'Invalid data found'
>>> describe_error(IndexError("list index out of range"))
'corrupt container'
"""

from __future__ import annotations

import re

import av

from ..errors import VidstreamError

#: Errors PyAV raises on broken input besides its own FFmpegError family.
READ_ERRORS: tuple[type[BaseException], ...] = (
    av.FFmpegError, OSError, UnicodeDecodeError, IndexError, ValueError, EOFError,
)


def describe_error(e: BaseException) -> str:
    """``e`` in words, without FFmpeg's error number and the path it repeats.

    One of our own errors is said by its message, without the ``(see param)`` hint: the
    words go inside another message (a reconnect warning, a "stream lost" error).
    """
    if isinstance(e, VidstreamError):
        return " ".join(e.message.split())
    text = " ".join(str(e).split())
    # FFmpeg messages repeat the path: "[Errno 1094995529] Invalid data ...: 'x.mp4'"
    text = re.sub(r"^\[Errno -?\d+\]\s*", "", text)
    text = re.sub(r":\s*'[^']*'$", "", text)
    if isinstance(e, UnicodeDecodeError):
        return "corrupt metadata"
    if isinstance(e, IndexError):
        return "corrupt container"
    return text or type(e).__name__
