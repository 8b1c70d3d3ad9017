"""``--track``, ``--line`` and ``--zone``: the tracking and counting options of detect and run.

The options are named like the RunConfig fields they set (``lines``, ``track_buffer_s``...), so
``detect`` fills its config by name; for ``run`` they default to None and override the file's
``[track]``, ``[[line]]`` and ``[[zone]]`` only when given.
"""

from __future__ import annotations

import argparse
from typing import Any

from ..config import RunConfig
from ..errors import ConfigError
from .common import non_negative_float, positive_int, unit_float

#: RunConfig fields these options set (``run`` passes them on as overrides).
FIELDS = ("track", "lines", "zones", "track_activation", "track_buffer_s", "track_min_iou",
          "track_min_frames", "count_margin", "count_anchor")


def line_spec(text: str) -> str:
    """A ``--line`` value, checked now: a wrong one is a usage error (exit 2)."""
    from ..tracking import parse_line  # lazily: scipy loads only for a run that tracks

    try:
        parse_line(text)
    except ConfigError as e:
        raise argparse.ArgumentTypeError(e.message) from None
    return text


def zone_spec(text: str) -> str:
    from ..tracking import parse_zone

    try:
        parse_zone(text)
    except ConfigError as e:
        raise argparse.ArgumentTypeError(e.message) from None
    return text


def add_options(p: argparse.ArgumentParser, *, overrides: bool = False) -> None:
    """Add the options to ``p``; ``overrides``: no defaults of their own (``run``)."""
    d = RunConfig()

    def default(value: Any) -> Any:
        return None if overrides else value

    g = p.add_argument_group(
        "tracking and counting",
        "Track objects across frames (ByteTrack, one tracker per stream) and count them. "
        "A line is NAME:x1,y1,x2,y2 and a zone NAME:x,y;x,y;x,y... in pixels, or in fractions "
        "of the frame when every value is in [0, 1]. Crossing a line from its left to its "
        "right, looking from x1,y1 towards x2,y2, counts as 'in'. Lines and zones imply "
        "--track.")
    g.add_argument("--track", action="store_true", default=default(False),
                   help="give each object a track id (in the video, the JSONL and the summary)")
    g.add_argument("--line", dest="lines", action="append", type=line_spec,
                   metavar="NAME:x1,y1,x2,y2",
                   help="count tracks crossing this line, each way and per class (repeatable)")
    g.add_argument("--zone", dest="zones", action="append", type=zone_spec,
                   metavar="NAME:x,y;x,y;...",
                   help="count tracks in this polygon: occupancy, entries, dwell time "
                   "(repeatable)")
    g.add_argument("--track-activation", type=unit_float, metavar="SCORE",
                   default=default(d.track_activation),
                   help="least score that starts a track; unset, the detector's --threshold, "
                   "which fits this detector's score range")
    g.add_argument("--track-buffer", dest="track_buffer_s", type=non_negative_float,
                   metavar="S", default=default(d.track_buffer_s),
                   help="seconds of video a lost track can be found again")
    g.add_argument("--track-min-iou", type=unit_float, metavar="IOU",
                   default=default(d.track_min_iou),
                   help="least overlap between a track's prediction and a detection")
    g.add_argument("--track-min-frames", type=positive_int, metavar="N",
                   default=default(d.track_min_frames),
                   help="frames in a row before a track gets an id (and is drawn and counted)")
    g.add_argument("--count-margin", type=non_negative_float, metavar="BOXES",
                   default=default(d.count_margin),
                   help="how far past a line a track must move to count, in box sizes "
                   "(flicker on the line never counts)")
    g.add_argument("--count-anchor", choices=("center", "bottom"),
                   default=default(d.count_anchor),
                   help="the point of a box that crosses lines and enters zones")
