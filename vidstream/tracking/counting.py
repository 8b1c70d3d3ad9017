"""Counting tracked objects: line crossings (in/out, per class) and zones (occupancy, dwell).

**Lines.** ``Line("door", (x1, y1), (x2, y2))`` is directed from its start to its end. A track
crossing from the line's *left* side to its *right* side, as seen standing at the start and
facing the end in the picture (y grows downwards), counts as ``in``; the other way as ``out``.
Equivalently, ``in`` is the line's direction turned 90° clockwise on screen. So a vertical line
drawn downwards (``0.5,0,0.5,1``) counts right-to-left movement as ``in``; drawn upwards
(``0.5,1,0.5,0``) it counts left-to-right as ``in``; a horizontal line drawn left to right
(``0,0.5,1,0.5``) counts downward movement as ``in``. Only crossings within the segment count.

**Hysteresis.** A track is on a side of a line only once its anchor is past the line by
``margin`` times the box's extent across the line (0.15: 51 px for a person 340 px wide
crossing a vertical line); in the band between it keeps the side it had. A crossing is a change
of side, so a box whose centre wobbles on the line (CenterNet's boxes of one walking person
change width by 80 px from frame to frame) counts nothing until it really is across. Zones use
the same margin (times the box's mean side) around their edges.

**Anchor.** The point of a box that crosses: its centre (``center``, default) or its
bottom-centre (``bottom``: the feet, for lines drawn on the ground). A box cut by the frame's
border is first extended to the size the track had when last seen whole, so an object leaving
(or entering) through a line at the frame's edge still crosses it: the anchor of a clipped box
can never reach the edge, the anchor of its whole box does. A track first seen cut by the
border is placed again once its whole size is known: if its whole box was then on the other
side of a line (without margin: it is one sighting), it crossed in between.

**Zones.** A polygon; a track is inside when its anchor is (with the margin). Occupancy counts
confirmed tracks inside now (a track briefly lost stays inside until it ends); an entry is a
track going inside, including one first seen inside; dwell is the time between entry and exit
(or the track's last sighting, when it ends inside or the report is made), from timestamps.

Only confirmed tracks reach the counters (the tracker reports no others), and a track is
counted by the class its detections voted for most.

>>> line = parse_line("door:0.5,1,0.5,0")                  # fractions; in = left to right
>>> counter = StreamCounter([line], [], margin=0.15)
>>> for i, x in enumerate(range(100, 900, 50)):            # one track walks to the right
...     _ = counter.update([7], [[x - 20, 100, x + 20, 200]], ["person"], i / 30, 1000, 500)
>>> counter.report()["lines"]["door"]
{'in': 1, 'out': 0, 'by_class': {'person': {'in': 1, 'out': 0}}}
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import ConfigError
from ..settings import ANCHORS, DEFAULTS

Point = tuple[float, float]

_NAME = re.compile(r"^[A-Za-z0-9_.\-]+$")
_BORDER_PX = 2.0  # a box edge this close to the frame's border is cut by it
_SIZE_EMA = 0.3  # weight of the newest whole box in a track's remembered size


@dataclass(frozen=True)
class Line:
    """A directed counting line; ``relative``: coordinates are fractions of the frame."""

    name: str
    start: Point
    end: Point
    relative: bool = False

    def __post_init__(self) -> None:
        if self.start == self.end:
            raise ConfigError(f"line {self.name!r}: start and end are the same point",
                              param="lines")

    def in_pixels(self, width: int, height: int) -> Line:
        if not self.relative:
            return self
        return Line(self.name, (self.start[0] * width, self.start[1] * height),
                    (self.end[0] * width, self.end[1] * height))

    def to_dict(self) -> dict[str, Any]:
        return {"start": list(self.start), "end": list(self.end), "relative": self.relative}


@dataclass(frozen=True)
class Zone:
    """A polygon zone; ``relative``: coordinates are fractions of the frame."""

    name: str
    points: tuple[Point, ...]
    relative: bool = False

    def __post_init__(self) -> None:
        if len(self.points) < 3:
            raise ConfigError(f"zone {self.name!r}: needs at least 3 points, got "
                              f"{len(self.points)}", param="zones")
        if abs(_area(self.points)) <= 0:
            raise ConfigError(f"zone {self.name!r}: the polygon has no area", param="zones")

    def in_pixels(self, width: int, height: int) -> Zone:
        if not self.relative:
            return self
        return Zone(self.name, tuple((x * width, y * height) for x, y in self.points))

    def to_dict(self) -> dict[str, Any]:
        return {"points": [list(p) for p in self.points], "relative": self.relative}


def _area(points: Sequence[Point]) -> float:
    xs = np.array([p[0] for p in points])
    ys = np.array([p[1] for p in points])
    return float(np.dot(xs, np.roll(ys, -1)) - np.dot(ys, np.roll(xs, -1))) / 2


def _split_name(text: str, what: str, param: str, syntax: str) -> tuple[str, str]:
    name, sep, rest = text.partition(":")
    name = name.strip()
    if not sep or not name or not rest.strip():
        raise ConfigError(f"{what} {text!r}: expected {syntax}", param=param)
    if not _NAME.match(name):
        raise ConfigError(f"{what} {text!r}: the name may hold letters, digits, '_', '-' and "
                          f"'.'", param=param)
    return name, rest


def _numbers(text: str, whole: str, what: str, param: str) -> list[float]:
    try:
        values = [float(v) for v in text.split(",")]
    except ValueError:
        raise ConfigError(f"{what} {whole!r}: {text!r} is not a list of numbers",
                          param=param) from None
    if not all(math.isfinite(v) for v in values):
        raise ConfigError(f"{what} {whole!r}: coordinates must be finite", param=param)
    return values


def _relative(values: Iterable[float]) -> bool:
    return all(0.0 <= v <= 1.0 for v in values)


def parse_line(text: str) -> Line:
    """A line from ``NAME:x1,y1,x2,y2``: pixels, or fractions of the frame when every value
    is in [0, 1].

    >>> parse_line("door:0.5,0,0.5,1")
    Line(name='door', start=(0.5, 0.0), end=(0.5, 1.0), relative=True)
    >>> parse_line("door:0,0,1")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    vidstream.errors.ConfigError: line 'door:0,0,1': expected 4 numbers x1,y1,x2,y2, got 3 ...
    """
    syntax = "NAME:x1,y1,x2,y2"
    name, rest = _split_name(text, "line", "lines", syntax)
    v = _numbers(rest, text, "line", "lines")
    if len(v) != 4:
        raise ConfigError(f"line {text!r}: expected 4 numbers x1,y1,x2,y2, got {len(v)}",
                          param="lines")
    return Line(name, (v[0], v[1]), (v[2], v[3]), _relative(v))


def parse_zone(text: str) -> Zone:
    """A zone from ``NAME:x,y;x,y;x,y...`` (at least 3 points): pixels, or fractions of the
    frame when every value is in [0, 1].

    >>> parse_zone("till:0,0;0.5,0;0.5,0.5").points
    ((0.0, 0.0), (0.5, 0.0), (0.5, 0.5))
    """
    syntax = "NAME:x,y;x,y;x,y..."
    name, rest = _split_name(text, "zone", "zones", syntax)
    points = []
    for part in rest.split(";"):
        if not part.strip():
            continue
        xy = _numbers(part, text, "zone", "zones")
        if len(xy) != 2:
            raise ConfigError(f"zone {text!r}: expected points x,y separated by ';', got "
                              f"{part!r}", param="zones")
        points.append((xy[0], xy[1]))
    return Zone(name, tuple(points), _relative(v for p in points for v in p))


def check_names(lines: Sequence[Line], zones: Sequence[Zone]) -> None:
    """A ConfigError when two lines (or two zones) share a name: their counts would merge."""
    for items, what in ((lines, "line"), (zones, "zone")):
        names = [item.name for item in items]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ConfigError(f"{what} names must differ: {', '.join(dup)} given twice",
                              param=f"{what}s")


@dataclass(frozen=True)
class CountEvent:
    """A track crossing a line (``in``/``out``) or entering/leaving a zone (``enter``/``exit``).

    ``time`` is the frame's time in seconds; ``dwell_s`` the visit's length on ``exit``.
    """

    kind: str  # "line" | "zone"
    name: str
    direction: str  # line: "in" | "out"; zone: "enter" | "exit"
    track: int
    label: str
    time: float
    dwell_s: float | None = None

    def to_json(self) -> dict[str, Any]:
        """``{"line": "door", "direction": "in", "track": 17, "label": "person", "time": 3.2}``"""
        out: dict[str, Any] = {self.kind: self.name, "direction": self.direction,
                               "track": self.track, "label": self.label,
                               "time": round(self.time, 4)}
        if self.dwell_s is not None:
            out["dwell_s"] = round(self.dwell_s, 3)
        return out


def _anchors(boxes: np.ndarray, anchor: str) -> np.ndarray:
    x = (boxes[:, 0] + boxes[:, 2]) / 2
    y = boxes[:, 3] if anchor == "bottom" else (boxes[:, 1] + boxes[:, 3]) / 2
    return np.stack([x, y], axis=1)


class LineCounter:
    """Crossings of one line (in pixels) by tracks, with hysteresis."""

    def __init__(self, line: Line, margin: float = DEFAULTS.count_margin) -> None:
        self.line = line
        self.margin = margin
        a = np.array(line.start, float)
        d = np.array(line.end, float) - a
        self._a, self._d = a, d
        self._len2 = float(d @ d)
        self._normal = np.array([-d[1], d[0]]) / math.sqrt(self._len2)  # points to the right
        self._side: dict[int, int] = {}
        self._first: dict[int, int] = {}  # the side each track was first seen on
        self.counts = {"in": 0, "out": 0}
        self.by_class: dict[str, dict[str, int]] = {}

    def _sides(self, boxes: np.ndarray, points: np.ndarray, margin: float | None = None
               ) -> tuple[list[int], list[float]]:
        rel = points - self._a
        dist = rel @ self._normal  # > 0: right side
        along = (rel @ self._d) / self._len2
        extent = np.abs(self._normal[0]) * (boxes[:, 2] - boxes[:, 0]) + np.abs(
            self._normal[1]) * (boxes[:, 3] - boxes[:, 1])
        band = (self.margin if margin is None else margin) * extent
        sides = np.where(dist > band, 1, np.where(dist < -band, -1, 0))
        return sides.tolist(), along.tolist()

    def _count(self, tid: int, side: int, label: str, t: float) -> CountEvent:
        direction = "in" if side > 0 else "out"
        self.counts[direction] += 1
        per = self.by_class.setdefault(label, {"in": 0, "out": 0})
        per[direction] += 1
        return CountEvent("line", self.line.name, direction, tid, label, t)

    def update(self, ids: Sequence[int], boxes: np.ndarray, points: np.ndarray,
               labels: Sequence[str], t: float) -> list[CountEvent]:
        sides, along = self._sides(boxes, points)
        events = []
        for tid, side, al, label in zip(ids, sides, along, labels, strict=True):
            if side == 0:
                continue
            before = self._side.get(tid)
            self._side[tid] = side
            if before is None:
                self._first[tid] = side
            elif before != side and 0.0 <= al <= 1.0:
                events.append(self._count(tid, side, label, t))
        return events

    def replay_first(self, tid: int, box: np.ndarray, point: np.ndarray, label: str,
                     t: float) -> list[CountEvent]:
        """A track's first sighting, seen again now that its whole size is known (it was cut
        by the border): if that puts it on the other side than where it was first placed,
        it crossed in between (it came in through a line on the frame's edge). No margin
        here: this is one sighting, it cannot flicker, and by the time a track is confirmed
        an object coming in is often less than the margin past an edge line."""
        sides, along = self._sides(box[None], point[None], margin=0.0)
        side = sides[0]
        first = self._first.get(tid)
        if side == 0 or side == first:
            return []
        self._first[tid] = side
        if first is None:
            self._side[tid] = side
            return []
        if not 0.0 <= along[0] <= 1.0:
            return []
        return [self._count(tid, -side, label, t)]

    def forget(self, ids: Iterable[int]) -> None:
        for tid in ids:
            self._side.pop(tid, None)
            self._first.pop(tid, None)

    def report(self) -> dict[str, Any]:
        return {**self.counts, "by_class": {k: dict(v) for k, v in sorted(self.by_class.items())}}


@dataclass
class _Visit:
    label: str
    start: float
    last: float


@dataclass
class _Dwell:
    visits: int = 0
    total: float = 0.0
    longest: float = 0.0

    def add(self, seconds: float) -> None:
        self.visits += 1
        self.total += seconds
        self.longest = max(self.longest, seconds)


class ZoneCounter:
    """Occupancy, entries and dwell of one polygon zone (in pixels), with hysteresis."""

    def __init__(self, zone: Zone, margin: float = DEFAULTS.count_margin) -> None:
        self.zone = zone
        self.margin = margin
        pts = np.array(zone.points, float)
        self._a = pts
        self._b = np.roll(pts, -1, axis=0)
        self._inside: dict[int, bool] = {}
        self._visits: dict[int, _Visit] = {}
        self.entries = 0
        self.entries_by_class: dict[str, int] = {}
        self._dwell = _Dwell()
        self._dwell_by_class: dict[str, _Dwell] = {}

    def signed_distance(self, points: np.ndarray) -> np.ndarray:
        """Distance of each point to the polygon's edge: positive inside, negative outside."""
        p = points[:, None, :]
        a, b = self._a[None], self._b[None]
        ab = b - a
        t = np.clip(((p - a) * ab).sum(-1) / np.maximum((ab * ab).sum(-1), 1e-12), 0, 1)
        dist = np.linalg.norm(p - (a + t[..., None] * ab), axis=-1).min(axis=1)
        py, px = p[..., 1], p[..., 0]
        ay, by, ax, bx = a[..., 1], b[..., 1], a[..., 0], b[..., 0]
        with np.errstate(divide="ignore", invalid="ignore"):
            cross = ((ay > py) != (by > py)) & (px < ax + (py - ay) * (bx - ax) / (by - ay))
        inside = cross.sum(axis=1) % 2 == 1
        return np.where(inside, dist, -dist)

    def update(self, ids: Sequence[int], boxes: np.ndarray, points: np.ndarray,
               labels: Sequence[str], t: float) -> list[CountEvent]:
        sd = self.signed_distance(points) if len(points) else np.zeros(0)
        band = self.margin * ((boxes[:, 2] - boxes[:, 0]) + (boxes[:, 3] - boxes[:, 1])) / 2
        events = []
        for tid, d, b, label in zip(ids, sd.tolist(), band.tolist(), labels, strict=True):
            visit = self._visits.get(tid)
            if visit is not None:
                visit.last = t
            now = True if d > b else False if d < -b else None
            if now is None or (tid in self._inside and now == self._inside[tid]):
                continue
            self._inside[tid] = now
            if now:
                self.entries += 1
                self.entries_by_class[label] = self.entries_by_class.get(label, 0) + 1
                self._visits[tid] = _Visit(label, t, t)
                events.append(CountEvent("zone", self.zone.name, "enter", tid, label, t))
            elif visit is not None:
                events.append(self._end(tid, t))
        return events

    def _end(self, tid: int, t: float) -> CountEvent:
        visit = self._visits.pop(tid)
        seconds = max(t - visit.start, 0.0)
        self._dwell.add(seconds)
        self._dwell_by_class.setdefault(visit.label, _Dwell()).add(seconds)
        return CountEvent("zone", self.zone.name, "exit", tid, visit.label, t, seconds)

    def forget(self, ids: Iterable[int]) -> list[CountEvent]:
        """Tracks that ended: a visit in progress ends at the track's last sighting."""
        events = []
        for tid in ids:
            visit = self._visits.get(tid)
            if visit is not None:
                events.append(self._end(tid, visit.last))
            self._inside.pop(tid, None)
        return events

    def occupancy(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for visit in self._visits.values():
            out[visit.label] = out.get(visit.label, 0) + 1
        return dict(sorted(out.items()))

    def report(self) -> dict[str, Any]:
        """Occupancy now, entries, and dwell (visits in progress count up to now)."""
        total = _Dwell(self._dwell.visits, self._dwell.total, self._dwell.longest)
        by_class = {k: _Dwell(v.visits, v.total, v.longest)
                    for k, v in self._dwell_by_class.items()}
        for visit in self._visits.values():
            seconds = visit.last - visit.start
            total.add(seconds)
            by_class.setdefault(visit.label, _Dwell()).add(seconds)

        def dwell(d: _Dwell) -> dict[str, Any]:
            return {"visits": d.visits,
                    "mean": round(d.total / d.visits, 3) if d.visits else None,
                    "max": round(d.longest, 3) if d.visits else None}

        occupancy = self.occupancy()
        return {
            "occupancy": sum(occupancy.values()),
            "entries": self.entries,
            "dwell_s": dwell(total),
            "by_class": {
                label: {"occupancy": occupancy.get(label, 0),
                        "entries": self.entries_by_class.get(label, 0),
                        "dwell_s": dwell(by_class.get(label, _Dwell()))}
                for label in sorted(set(self.entries_by_class) | set(occupancy))
            },
        }


@dataclass
class _Size:
    w: float | None = None
    h: float | None = None
    pending: np.ndarray | None = field(default=None, repr=False)  # first sighting, cut


class StreamCounter:
    """Every line and zone of one stream, fed the confirmed tracks of each frame.

    Lines and zones given in fractions are placed on the first frame (and again if the frame
    size changes). ``update`` takes each track's id, box (pixels) and label and the frame's
    time and size, and returns the events of this frame; ``end(ids)`` tells it tracks ended.
    """

    def __init__(self, lines: Sequence[Line] = (), zones: Sequence[Zone] = (), *,
                 margin: float = DEFAULTS.count_margin,
                 anchor: str = DEFAULTS.count_anchor) -> None:
        if anchor not in ANCHORS:
            raise ConfigError(f"anchor must be one of {', '.join(ANCHORS)}, got {anchor!r}",
                              param="count_anchor")
        if not 0.0 <= margin <= 5.0:
            raise ConfigError(f"margin must be between 0 and 5 box sizes, got {margin}",
                              param="count_margin")
        check_names(lines, zones)
        self.lines, self.zones = list(lines), list(zones)
        self.margin, self.anchor = margin, anchor
        self.line_counters: list[LineCounter] = []
        self.zone_counters: list[ZoneCounter] = []
        self._size: tuple[int, int] | None = None
        self._sizes: dict[int, _Size] = {}

    def _place(self, width: int, height: int) -> None:
        if self._size == (width, height):
            return
        old_lines, old_zones = self.line_counters, self.zone_counters
        self.line_counters = [LineCounter(x.in_pixels(width, height), self.margin)
                              for x in self.lines]
        self.zone_counters = [ZoneCounter(z.in_pixels(width, height), self.margin)
                              for z in self.zones]
        if old_lines or old_zones:  # a new frame size: keep the counts, sides restart
            for new, old in zip(self.line_counters, old_lines, strict=True):
                new.counts, new.by_class = old.counts, old.by_class
            for new_z, old_z in zip(self.zone_counters, old_zones, strict=True):
                new_z.entries, new_z.entries_by_class = old_z.entries, old_z.entries_by_class
                new_z._dwell, new_z._dwell_by_class = old_z._dwell, old_z._dwell_by_class
        self._size = (width, height)

    def update(self, ids: Sequence[int], boxes: Any, labels: Sequence[str], t: float,
               width: int, height: int) -> list[CountEvent]:
        self._place(width, height)
        if not self.lines and not self.zones:
            return []
        boxes = np.asarray(boxes, float).reshape(-1, 4)
        whole = np.empty_like(boxes)
        replay: list[tuple[int, np.ndarray, str]] = []
        for i, (tid, box) in enumerate(zip(ids, boxes, strict=True)):
            whole[i], first = self._whole(int(tid), box, width, height)
            if first is not None:
                replay.append((int(tid), first, str(labels[i])))
        events = self._feed([int(i) for i in ids], whole, [str(x) for x in labels], t)
        for tid, box, label in replay:  # a track first seen cut by the border, placed now
            point = _anchors(box[None], self.anchor)[0]
            for lc in self.line_counters:
                events += lc.replay_first(tid, box, point, label, t)
        return events

    def _feed(self, ids: Sequence[int], boxes: np.ndarray, labels: Sequence[str],
              t: float) -> list[CountEvent]:
        points = _anchors(boxes, self.anchor)
        events: list[CountEvent] = []
        for lc in self.line_counters:
            events += lc.update(ids, boxes, points, labels, t)
        for zc in self.zone_counters:
            events += zc.update(ids, boxes, points, labels, t)
        return events

    def _whole(self, tid: int, box: np.ndarray, width: int, height: int
               ) -> tuple[np.ndarray, np.ndarray | None]:
        """The track's box extended past the frame's border to its remembered size, and its
        first sighting extended likewise once that size is known, if it was cut then."""
        x1, y1, x2, y2 = box.tolist()
        cut_x = (x1 <= _BORDER_PX) != (x2 >= width - _BORDER_PX)
        cut_y = (y1 <= _BORDER_PX) != (y2 >= height - _BORDER_PX)
        size = self._sizes.get(tid)
        if size is None:
            size = self._sizes[tid] = _Size()
            if cut_x or cut_y:
                size.pending = box.copy()
        if not cut_x:
            size.w = x2 - x1 if size.w is None else size.w + _SIZE_EMA * (x2 - x1 - size.w)
        if not cut_y:
            size.h = y2 - y1 if size.h is None else size.h + _SIZE_EMA * (y2 - y1 - size.h)
        first = None
        if size.pending is not None:
            p = size.pending
            px = (p[0] <= _BORDER_PX) != (p[2] >= width - _BORDER_PX)
            py = (p[1] <= _BORDER_PX) != (p[3] >= height - _BORDER_PX)
            if (not px or size.w is not None) and (not py or size.h is not None):
                first = self._extend(p, size, width, height)
                size.pending = None
        return self._extend(box, size, width, height), first

    @staticmethod
    def _extend(box: np.ndarray, size: _Size, width: int, height: int) -> np.ndarray:
        x1, y1, x2, y2 = box.tolist()
        left, right = x1 <= _BORDER_PX, x2 >= width - _BORDER_PX
        top, bottom = y1 <= _BORDER_PX, y2 >= height - _BORDER_PX
        if left and not right and size.w is not None:
            x1 = min(x1, x2 - size.w)
        elif right and not left and size.w is not None:
            x2 = max(x2, x1 + size.w)
        if top and not bottom and size.h is not None:
            y1 = min(y1, y2 - size.h)
        elif bottom and not top and size.h is not None:
            y2 = max(y2, y1 + size.h)
        return np.array([x1, y1, x2, y2])

    def end(self, ids: Iterable[int]) -> list[CountEvent]:
        """Tracks that ended: forget them (a zone visit ends at the last sighting)."""
        ids = list(ids)
        events: list[CountEvent] = []
        for lc in self.line_counters:
            lc.forget(ids)
        for zc in self.zone_counters:
            events += zc.forget(ids)
        for tid in ids:
            self._sizes.pop(tid, None)
        return events

    def report(self) -> dict[str, Any]:
        """``{"lines": {NAME: {"in", "out", "by_class"}}, "zones": {NAME: {...}}}``."""
        if self._size is None:  # no frame yet: zero counts under every name
            self._place(1, 1)
        return {
            "lines": {lc.line.name: lc.report() for lc in self.line_counters},
            "zones": {zc.zone.name: zc.report() for zc in self.zone_counters},
        }


__all__ = [
    "CountEvent",
    "Line",
    "LineCounter",
    "StreamCounter",
    "Zone",
    "ZoneCounter",
    "check_names",
    "parse_line",
    "parse_zone",
]
