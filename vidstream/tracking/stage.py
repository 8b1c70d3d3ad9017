"""The tracker stage: one ByteTrack and one set of line and zone counters per stream.

>>> import numpy as np
>>> from vidstream import Detections, Frame
>>> tracker = Tracker(TrackerSettings(min_frames=1), lines=["door:0.5,1,0.5,0"])
>>> for i, x in enumerate(range(20, 140, 10)):          # one object walks to the right
...     frame = Frame.from_array(np.zeros((60, 160, 3), np.uint8), index=i).with_detections(
...         Detections(np.array([[x - 20, 20, x + 20, 50]]), np.array([0.5]), np.array([1])))
...     frame = tracker.process(frame)
...     if frame.events:
...         print(i, frame.detections.to_json()[0]["track"], frame.events[0].to_json())
7 1 {'line': 'door', 'direction': 'in', 'track': 1, 'label': 'person', 'time': 0.2333}
>>> tracker.describe()["lines"]
{'door': {'in': 1, 'out': 0, 'by_class': {'person': {'in': 1, 'out': 0}}}}
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..detections import Detections
from ..frames import Frame, StreamInfo
from ..labels import label_for
from ..settings import DEFAULTS
from ..stage import Stage
from .bytetrack import ByteTrack, TrackerSettings
from .counting import Line, StreamCounter, Zone, check_names, parse_line, parse_zone
from .kalman import STEP_S


@dataclass
class _StreamState:
    tracker: ByteTrack
    counter: StreamCounter
    labels: dict[int, str] = field(default_factory=dict)
    last_t: float | None = None
    offset: float = 0.0  # added to timestamps after a jump backwards (a reconnect)
    events: int = 0


class Tracker(Stage):
    """Tracks objects in every stream and counts them across lines and in zones.

    Each stream (``frame.stream``) gets its own :class:`ByteTrack` and counters, so ids and
    counts never mix between streams. On each frame the detections become those of confirmed
    tracks, with ``track_ids``; line crossings and zone entries and exits are added to
    ``frame.events``. Time comes from the frames' timestamps (``Frame.time``), or from their
    index and the stream's rate when they have none.

    For ByteTrack's second association the detector must keep its low-score detections:
    ``Detector(track_floor=settings.floor)``. ``lines`` and ``zones`` take :class:`Line` and
    :class:`Zone` objects or their text forms (``"NAME:x1,y1,x2,y2"``, ``"NAME:x,y;x,y;x,y"``).
    """

    name = "track"

    def __init__(
        self,
        settings: TrackerSettings | None = None,
        *,
        lines: Sequence[Line | str] = (),
        zones: Sequence[Zone | str] = (),
        margin: float = DEFAULTS.count_margin,
        anchor: str = DEFAULTS.count_anchor,
    ) -> None:
        self.settings = settings or TrackerSettings()
        self.lines = [parse_line(x) if isinstance(x, str) else x for x in lines]
        self.zones = [parse_zone(z) if isinstance(z, str) else z for z in zones]
        check_names(self.lines, self.zones)
        StreamCounter(self.lines, self.zones, margin=margin, anchor=anchor)  # validates
        self.margin = margin
        self.anchor = anchor
        self._rate = 1.0 / STEP_S
        self._streams: dict[int, _StreamState] = {}
        self._lock = threading.Lock()

    def open(self, info: StreamInfo | None = None) -> None:
        if info is not None and info.rate:
            self._rate = float(info.rate)

    def _state(self, stream: int) -> _StreamState:
        st = self._streams.get(stream)
        if st is None:
            st = self._streams[stream] = _StreamState(
                ByteTrack(self.settings),
                StreamCounter(self.lines, self.zones, margin=self.margin, anchor=self.anchor),
            )
        return st

    def _time(self, st: _StreamState, frame: Frame) -> float:
        t = frame.time
        if t is None:
            t = frame.index / self._rate
        t += st.offset
        if st.last_t is not None and t < st.last_t:  # timestamps restarted: keep going
            st.offset += st.last_t - t + 1.0 / self._rate
            t = st.last_t + 1.0 / self._rate
        st.last_t = t
        return t

    def process(self, frame: Frame) -> Frame:
        with self._lock:
            st = self._state(frame.stream)
            t = self._time(st, frame)
            detections = frame.detections if frame.detections is not None else Detections.empty()
            for part in (detections, detections.low):
                if part is not None:
                    for cid, label in zip(part.class_ids.tolist(), part.labels, strict=True):
                        st.labels.setdefault(cid, label)
            tracked = st.tracker.update(detections, t)
            events = st.counter.end(st.tracker.ended)
            ids = tracked.track_ids if tracked.track_ids is not None else np.zeros(0, np.int64)
            labels = [st.labels.get(c, label_for(c)) if c >= 0 else lab for c, lab in
                      zip(st.tracker.classes_of(ids), tracked.labels, strict=True)]
            events += st.counter.update(ids.tolist(), tracked.boxes, labels, t, frame.width,
                                        frame.height)
            st.events += len(events)
        out = frame.with_detections(tracked)
        return out.with_events(tuple(events)) if events else out

    # -- reports ---------------------------------------------------------------------------

    def describe_stream(self, stream: int) -> dict[str, Any]:
        """One stream's counts: ``{"tracks": N, "lines": {...}, "zones": {...}}``."""
        with self._lock:
            st = self._streams.get(stream)
            if st is None:
                st = _StreamState(ByteTrack(self.settings), StreamCounter(
                    self.lines, self.zones, margin=self.margin, anchor=self.anchor))
            out: dict[str, Any] = {"tracks": st.tracker.next_id - 1}
            report = st.counter.report()
        if self.lines:
            out["lines"] = report["lines"]
        if self.zones:
            out["zones"] = report["zones"]
        return out

    def describe(self) -> dict[str, Any]:
        """For the summary. One stream: ``{"tracking": {...}, "lines": {...}, "zones":
        {...}}``; many: each stream's under ``tracking.streams`` by its index."""
        s = self.settings
        info: dict[str, Any] = {
            "activation_threshold": s.activation_threshold,
            "floor": s.floor,
            "lost_buffer_s": s.lost_buffer_s,
            "min_iou": s.min_iou,
            "min_frames": s.min_frames,
            "anchor": self.anchor,
            "margin": self.margin,
        }
        streams = sorted(self._streams) or [0]
        if streams == [0]:
            one = self.describe_stream(0)
            info["tracks"] = one.pop("tracks")
            return {"tracking": info, **one}
        info["streams"] = {str(i): self.describe_stream(i) for i in streams}
        return {"tracking": info}


__all__ = ["Tracker"]
