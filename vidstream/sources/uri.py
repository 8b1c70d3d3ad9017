"""What an input string names: a live stream or a file, and how to show it without secrets.

>>> is_live("rtsp://cam.local/stream"), is_live("/dev/video0"), is_live("clip.mp4")
(True, True, False)
>>> mask_credentials("rtsp://admin:hunter2@10.0.0.5/stream")
'rtsp://***@10.0.0.5/stream'
"""

from __future__ import annotations

import os
import re

#: URL schemes of inputs that never end and must not fall behind.
LIVE_SCHEMES = ("rtsp", "rtsps", "rtmp", "rtmps", "http", "https", "udp", "tcp", "srt", "rtp")

_CREDENTIALS = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)(?P<cred>[^/@\s]+)@")


def mask_credentials(uri: str | os.PathLike[str]) -> str:
    """``rtsp://user:secret@host/x`` -> ``rtsp://***@host/x``; anything else unchanged.

    >>> mask_credentials("/videos/a.mp4")
    '/videos/a.mp4'
    """
    return _CREDENTIALS.sub(r"\g<scheme>***@", str(uri))


def is_live(uri: str | os.PathLike[str]) -> bool:
    """True for network URLs and capture devices, which never end and must not fall behind.

    >>> is_live("udp://127.0.0.1:1234"), is_live("/tmp/x.ts")
    (True, False)
    """
    uri = str(uri)
    scheme = uri.split("://", 1)[0].lower() if "://" in uri else ""
    return scheme in LIVE_SCHEMES or uri.startswith("/dev/video")
