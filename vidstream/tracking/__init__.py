"""Tracking and counting: ByteTrack per stream, line crossings and zone occupancy.

* :class:`ByteTrack` and :class:`TrackerSettings`: one stream's tracker (numpy and scipy);
* :class:`Line`, :class:`Zone`, :func:`parse_line`, :func:`parse_zone`, :class:`CountEvent`,
  :class:`StreamCounter`: counting lines (in/out) and zones (occupancy, entries, dwell);
* :class:`Tracker`: the pipeline stage that runs both for every stream.

>>> from vidstream.tracking import Tracker, TrackerSettings
>>> Tracker(TrackerSettings(), lines=["door:0.5,0,0.5,1"]).lines[0].relative
True
"""

from .bytetrack import ByteTrack, TrackerSettings, iou_matrix
from .counting import (
    CountEvent,
    Line,
    LineCounter,
    StreamCounter,
    Zone,
    ZoneCounter,
    parse_line,
    parse_zone,
)
from .stage import Tracker

__all__ = [
    "ByteTrack",
    "CountEvent",
    "Line",
    "LineCounter",
    "StreamCounter",
    "Tracker",
    "TrackerSettings",
    "Zone",
    "ZoneCounter",
    "iou_matrix",
    "parse_line",
    "parse_zone",
]
