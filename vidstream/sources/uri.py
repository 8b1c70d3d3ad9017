"""What an input string names: a live stream or a file, and how to show it without secrets.

>>> is_live("rtsp://cam.local/stream"), is_live("/dev/video0"), is_live("clip.mp4")
(True, True, False)
>>> mask_credentials("rtsp://admin:hunter2@10.0.0.5/stream")
'rtsp://***@10.0.0.5/stream'
"""

from __future__ import annotations

import os
import re
from typing import Any

#: URL schemes of inputs that never end and must not fall behind.
LIVE_SCHEMES = ("rtsp", "rtsps", "rtmp", "rtmps", "http", "https", "udp", "tcp", "srt", "rtp")

#: Query-string parameters whose value is masked: a name containing any of these words
#: (case-insensitive), e.g. ``password``, ``passwd``, ``token``, ``access_token``, ``apikey``,
#: ``key``, ``auth``, ``sig``, ``signature``, ``X-Amz-Signature``, ``secret``, ``credential``.
SECRET_PARAMS = ("pass", "pwd", "token", "key", "auth", "sig", "secret", "credential",
                 "session", "cookie")

# A URL as it appears inside any text: a scheme, then everything up to whitespace or a quote.
_URL = re.compile(r"""[a-zA-Z][a-zA-Z0-9+.-]*://[^\s'"<>]*""")
_SCHEME = re.compile(r"[a-zA-Z][a-zA-Z0-9+.-]*://")
# name=value in a query string (or a fragment): ? or & or ; before the name
_PARAM = re.compile(r"(?P<lead>[?&;#])(?P<name>[^=&;#?]+)=(?P<value>[^&;#]*)")


def mask_credentials(uri: str | os.PathLike[str]) -> str:
    """``uri`` with its credentials replaced by ``***``; anything that is not a URL unchanged.

    The user-info of a URL ends at the *last* ``@`` before the host, as FFmpeg splits it, so
    a password holding ``@`` is masked whole; query-string secrets (``?password=``,
    ``token=``, ``key=``, ``auth=``, ``sig=``...) are masked too:

    >>> mask_credentials("rtsp://user:p@ss@word@host/x")
    'rtsp://***@host/x'
    >>> mask_credentials("https://cam/live.m3u8?token=abc&fps=30&X-Amz-Signature=f00")
    'https://cam/live.m3u8?token=***&fps=30&X-Amz-Signature=***'
    >>> mask_credentials("/videos/a.mp4")
    '/videos/a.mp4'

    For a message that may contain URLs anywhere, use :func:`mask_text`.
    """
    text = str(uri)
    if _SCHEME.match(text):
        return _mask_url(text)  # all of it: a password may hold what would end a URL in text
    return mask_text(text)


def mask_text(text: str) -> str:
    """``text`` with the credentials of every URL in it masked (see :func:`mask_credentials`).

    A URL inside text ends at whitespace or a quote. Error lines and log lines go through
    this at the command line's boundary, so a URL a library repeats is not shown in clear.

    >>> mask_text("cannot open 'rtsp://u:pw@cam/x': refused")
    "cannot open 'rtsp://***@cam/x': refused"
    >>> mask_text("rtsp://cam/x?token=t0k: stream lost")
    'rtsp://cam/x?token=***: stream lost'

    """
    return _URL.sub(_mask_match, str(text))


def _mask_match(m: re.Match[str]) -> str:
    # punctuation that ends a sentence or a clause ("rtsp://h/x?token=t: refused") is not
    # part of the URL: masking it would swallow it into the secret
    url = m.group(0)
    tail = len(url) - len(url.rstrip(":,.;)]}"))
    return _mask_url(url[: len(url) - tail]) + url[len(url) - tail:]


def mask_record(record: Any) -> Any:
    """A JSON-like record (dicts, lists, strings) with :func:`mask_text` applied to every
    string in it: what a summary or a bench file writes.

    >>> mask_record({"error": "rtsp://u:pw@cam/x: lost", "frames": [1, 2]})
    {'error': 'rtsp://***@cam/x: lost', 'frames': [1, 2]}
    """
    if isinstance(record, str):
        return mask_text(record)
    if isinstance(record, dict):
        return {k: mask_record(v) for k, v in record.items()}
    if isinstance(record, list | tuple):
        return [mask_record(v) for v in record]
    return record


def _mask_url(url: str) -> str:
    scheme_end = url.index("://") + 3
    rest = url[scheme_end:]
    # FFmpeg (av_url_split): the authority ends at the first / ? or #; within it the
    # user-info ends at the last @.
    end = min((i for i in (rest.find(c) for c in "/?#") if i >= 0), default=len(rest))
    at = rest.rfind("@", 0, end)
    if at >= 0:
        rest = "***" + rest[at:]
    return url[:scheme_end] + _PARAM.sub(_mask_param, rest)


def _mask_param(m: re.Match[str]) -> str:
    name = m.group("name")
    if m.group("value") and any(word in name.lower() for word in SECRET_PARAMS):
        return f"{m.group('lead')}{name}=***"
    return m.group(0)


def is_live(uri: str | os.PathLike[str]) -> bool:
    """True for network URLs and capture devices, which never end and must not fall behind.

    >>> is_live("udp://127.0.0.1:1234"), is_live("/tmp/x.ts")
    (True, False)
    """
    uri = str(uri)
    scheme = uri.split("://", 1)[0].lower() if "://" in uri else ""
    return scheme in LIVE_SCHEMES or uri.startswith("/dev/video")
