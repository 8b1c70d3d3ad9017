"""Sources: frames from a file, a network stream or a camera (PyAV), or from numpy arrays.

>>> with VideoSource("clip.mp4") as src:              # open() now, close() on exit
...     print(src.info.width, src.info.height, src.info.rate)
...     times = [frame.time for frame in src.frames()]
640 360 30000/1001
>>> len(times), round(times[1], 4)
(12, 0.0334)

Network URLs and ``/dev/video*`` are live: read with timeouts, reconnected with backoff, and
never shown with their credentials:

>>> is_live("rtsp://admin:hunter2@10.0.0.5/stream")
True
>>> VideoSource("rtsp://admin:hunter2@10.0.0.5/stream").display
'rtsp://***@10.0.0.5/stream'

The modules, one job each: :mod:`.uri` (what an input string names), :mod:`.video` (open,
read, decode; the decode-error budget), :mod:`.live` (stalls, reconnects, real-time pacing),
:mod:`.forensics` (was a file complete?), :mod:`.arrays` (frames from numpy arrays).
"""

from __future__ import annotations

from ..settings import DEFAULTS
from .arrays import ArraySource
from .uri import LIVE_SCHEMES, is_live, mask_credentials
from .video import VideoSource

#: Kept for callers of the old module; the defaults live in :data:`vidstream.settings.DEFAULTS`.
DEFAULT_MAX_PIXELS = DEFAULTS.max_pixels
DEFAULT_MAX_DECODE_ERRORS = DEFAULTS.max_decode_errors

__all__ = [
    "DEFAULT_MAX_DECODE_ERRORS",
    "DEFAULT_MAX_PIXELS",
    "LIVE_SCHEMES",
    "ArraySource",
    "VideoSource",
    "is_live",
    "mask_credentials",
]
