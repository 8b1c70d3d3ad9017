"""Drawing detections: boxes, labels, scores and track ids, counting lines and zones, with OpenCV.

>>> import numpy as np
>>> from vidstream.detections import Detections
>>> img = np.zeros((240, 320, 3), np.uint8)
>>> d = Detections(np.array([[20, 30, 200, 220]]), np.array([0.9]), np.array([1]))
>>> Annotator().annotate(img, d) is img and bool(img.any())
True

With counting lines, each line is drawn with its running ``in``/``out`` counts, taken from the
crossing events the tracker puts on each frame (``frame.events``):

>>> from vidstream.tracking import parse_line
>>> a = Annotator(lines=[parse_line("door:0.5,0,0.5,1")])
>>> a.overlay_text(), a.has_overlays
(['door in 0 out 0'], True)
"""

from __future__ import annotations

import colorsys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import cv2
import numpy as np

from .detections import Detections

if TYPE_CHECKING:
    from .tracking.counting import CountEvent, Line, Zone

LINE_COLOR = (0, 255, 255)  # BGR yellow: counting lines
ZONE_COLOR = (255, 128, 0)  # BGR blue: zones


def class_color(class_id: int) -> tuple[int, int, int]:
    """A stable, distinct BGR colour per class (golden-ratio hues)."""
    h = (class_id * 0.618033988749895) % 1.0
    r, g, b = colorsys.hsv_to_rgb(h, 0.85, 1.0)
    return int(b * 255), int(g * 255), int(r * 255)


def bgr_to_yuv(color: tuple[int, int, int]) -> tuple[int, int, int]:
    """BT.601 limited-range Y, U, V of a BGR colour (what H.264 video usually stores)."""
    b, g, r = color
    y = 16 + 0.257 * r + 0.504 * g + 0.098 * b
    u = 128 - 0.148 * r - 0.291 * g + 0.439 * b
    v = 128 + 0.439 * r - 0.368 * g - 0.071 * b
    return round(y), round(u), round(v)


@dataclass(frozen=True)
class _Tag:
    box: tuple[int, int, int, int]
    color: tuple[int, int, int]
    text: str
    origin: tuple[int, int]  # text baseline start
    label: tuple[int, int, int, int]  # filled label background


class Annotator:
    """Draws boxes and ``label score`` tags, in place, on a BGR image or on the Y, U and V
    planes of a 4:2:0 picture (no colour conversion: the encoder takes the planes as they are).

    Line width and text size follow the image height, so 480p and 4K both read well.
    """

    def __init__(self, show_scores: bool = True, thickness: int | None = None, *,
                 lines: Sequence[Line] = (), zones: Sequence[Zone] = ()) -> None:
        self.show_scores = show_scores
        self.thickness = thickness
        self.lines = list(lines)
        self.zones = list(zones)
        self.counts = {line.name: {"in": 0, "out": 0} for line in self.lines}

    @property
    def has_overlays(self) -> bool:
        """Whether there is something to draw on every frame, detections or not."""
        return bool(self.lines or self.zones)

    def note(self, events: Iterable[CountEvent]) -> None:
        """Count the line crossings among a frame's events (what the lines show)."""
        for e in events:
            if e.kind == "line" and e.name in self.counts and e.direction in ("in", "out"):
                self.counts[e.name][e.direction] += 1

    def overlay_text(self) -> list[str]:
        return [f"{name} in {c['in']} out {c['out']}" for name, c in self.counts.items()]

    def _overlays(self, h: int, w: int) -> tuple[list[np.ndarray], list[np.ndarray],
                                                  list[tuple[str, tuple[int, int]]]]:
        """Pixel polylines of the lines and zones, and their captions with positions."""
        lines, zones, captions = [], [], []
        for line, text in zip(self.lines, self.overlay_text(), strict=True):
            px = line.in_pixels(w, h)
            pts = np.array([px.start, px.end], np.float64).round().astype(np.int32)
            pts[:, 0] = pts[:, 0].clip(0, w - 1)
            pts[:, 1] = pts[:, 1].clip(0, h - 1)
            lines.append(pts)
            x, y = pts.min(axis=0)
            captions.append((text, (int(x) + 4, max(int(y) + 20, 20))))
        for zone in self.zones:
            pz = zone.in_pixels(w, h)
            pts = np.array(pz.points, np.float64).round().astype(np.int32)
            zones.append(pts)
            x, y = pts.min(axis=0)
            captions.append((zone.name, (max(int(x), 0) + 4, max(int(y), 0) + 20)))
        return lines, zones, captions

    def _style(self, h: int) -> tuple[int, float, int]:
        t = self.thickness or max(1, round(h / 360))
        return t, max(0.4, h / 1800), max(1, t // 2)

    def _tags(self, h: int, w: int, detections: Detections) -> list[_Tag]:
        _, scale, weight = self._style(h)
        tags = []
        for d in detections:
            x1, y1, x2, y2 = (round(v) for v in d.box)
            x1, x2 = max(0, min(x1, w - 1)), max(0, min(x2, w - 1))
            y1, y2 = max(0, min(y1, h - 1)), max(0, min(y2, h - 1))
            text = f"{d.label} {d.score:.2f}" if self.show_scores else d.label
            if d.track is not None and d.track >= 0:
                text = f"#{d.track} {text}"
            (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, weight)
            ty = y1 - 2 if y1 - th - base - 2 >= 0 else y1 + th + base + 2
            tags.append(_Tag((x1, y1, x2, y2), class_color(d.class_id), text,
                             (x1 + 1, ty - base + 1), (x1, ty - th - base, x1 + tw + 2, ty + 2)))
        return tags

    def annotate(self, image: np.ndarray, detections: Detections | None,
                 events: Iterable[CountEvent] = ()) -> np.ndarray:
        """Draw on a BGR ``(H, W, 3)`` image; returns it."""
        self.note(events)
        h, w = image.shape[:2]
        t, scale, weight = self._style(h)
        if self.has_overlays:
            lines, zones, captions = self._overlays(h, w)
            cv2.polylines(image, lines, False, LINE_COLOR, t + 1, cv2.LINE_AA)
            cv2.polylines(image, zones, True, ZONE_COLOR, t, cv2.LINE_AA)
            for text, origin in captions:
                cv2.putText(image, text, origin, cv2.FONT_HERSHEY_SIMPLEX, scale, LINE_COLOR,
                            weight, cv2.LINE_AA)
        if detections is None or len(detections) == 0:
            return image
        for tag in self._tags(h, w, detections):
            x1, y1, x2, y2 = tag.box
            cv2.rectangle(image, (x1, y1), (x2, y2), tag.color, t, cv2.LINE_AA)
            lx1, ly1, lx2, ly2 = tag.label
            cv2.rectangle(image, (lx1, ly1), (lx2, ly2), tag.color, cv2.FILLED)
            cv2.putText(image, tag.text, tag.origin, cv2.FONT_HERSHEY_SIMPLEX, scale,
                        (0, 0, 0), weight, cv2.LINE_AA)
        return image

    def annotate_yuv420(self, y: np.ndarray, u: np.ndarray, v: np.ndarray,
                        detections: Detections | None,
                        events: Iterable[CountEvent] = ()) -> None:
        """Draw on the planes of a 4:2:0 picture: ``y`` is (H, W), ``u``/``v`` (H/2, W/2)."""
        self.note(events)
        h, w = y.shape[:2]
        t, scale, weight = self._style(h)
        tc = max(1, t // 2)
        if self.has_overlays:
            lines, zones, captions = self._overlays(h, w)
            for shapes, color, closed, width in ((lines, LINE_COLOR, False, t + 1),
                                                 (zones, ZONE_COLOR, True, t)):
                cy, cu, cv = bgr_to_yuv(color)
                cv2.polylines(y, shapes, closed, cy, width)
                half = [p // 2 for p in shapes]
                cv2.polylines(u, half, closed, cu, max(1, width // 2))
                cv2.polylines(v, half, closed, cv, max(1, width // 2))
            for text, origin in captions:
                cv2.putText(y, text, origin, cv2.FONT_HERSHEY_SIMPLEX, scale, 235, weight,
                            cv2.LINE_AA)
        if detections is None or len(detections) == 0:
            return
        for tag in self._tags(h, w, detections):
            cy, cu, cv = bgr_to_yuv(tag.color)
            x1, y1, x2, y2 = tag.box
            lx1, ly1, lx2, ly2 = tag.label
            cv2.rectangle(y, (x1, y1), (x2, y2), cy, t)
            cv2.rectangle(y, (lx1, ly1), (lx2, ly2), cy, cv2.FILLED)
            for plane, value in ((u, cu), (v, cv)):
                cv2.rectangle(plane, (x1 // 2, y1 // 2), (x2 // 2, y2 // 2), value, tc)
                cv2.rectangle(plane, (lx1 // 2, ly1 // 2), (lx2 // 2, ly2 // 2), value,
                              cv2.FILLED)
            # dark text on the luma plane alone: the label keeps its colour under it
            cv2.putText(y, tag.text, tag.origin, cv2.FONT_HERSHEY_SIMPLEX, scale, 16, weight,
                        cv2.LINE_AA)
