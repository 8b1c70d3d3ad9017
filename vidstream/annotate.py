"""Drawing detections: boxes, labels and scores, with OpenCV.

>>> import numpy as np
>>> from vidstream.detections import Detections
>>> img = np.zeros((240, 320, 3), np.uint8)
>>> d = Detections(np.array([[20, 30, 200, 220]]), np.array([0.9]), np.array([1]))
>>> Annotator().annotate(img, d) is img and bool(img.any())
True
"""

from __future__ import annotations

import colorsys
from dataclasses import dataclass

import cv2
import numpy as np

from .detections import Detections


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

    def __init__(self, show_scores: bool = True, thickness: int | None = None) -> None:
        self.show_scores = show_scores
        self.thickness = thickness

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
            (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, weight)
            ty = y1 - 2 if y1 - th - base - 2 >= 0 else y1 + th + base + 2
            tags.append(_Tag((x1, y1, x2, y2), class_color(d.class_id), text,
                             (x1 + 1, ty - base + 1), (x1, ty - th - base, x1 + tw + 2, ty + 2)))
        return tags

    def annotate(self, image: np.ndarray, detections: Detections | None) -> np.ndarray:
        """Draw on a BGR ``(H, W, 3)`` image; returns it."""
        if detections is None or len(detections) == 0:
            return image
        h, w = image.shape[:2]
        t, scale, weight = self._style(h)
        for tag in self._tags(h, w, detections):
            x1, y1, x2, y2 = tag.box
            cv2.rectangle(image, (x1, y1), (x2, y2), tag.color, t, cv2.LINE_AA)
            lx1, ly1, lx2, ly2 = tag.label
            cv2.rectangle(image, (lx1, ly1), (lx2, ly2), tag.color, cv2.FILLED)
            cv2.putText(image, tag.text, tag.origin, cv2.FONT_HERSHEY_SIMPLEX, scale,
                        (0, 0, 0), weight, cv2.LINE_AA)
        return image

    def annotate_yuv420(self, y: np.ndarray, u: np.ndarray, v: np.ndarray,
                        detections: Detections | None) -> None:
        """Draw on the planes of a 4:2:0 picture: ``y`` is (H, W), ``u``/``v`` (H/2, W/2)."""
        if detections is None or len(detections) == 0:
            return
        h, w = y.shape[:2]
        t, scale, weight = self._style(h)
        tc = max(1, t // 2)
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
