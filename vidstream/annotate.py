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

import cv2
import numpy as np

from .detections import Detections


def class_color(class_id: int) -> tuple[int, int, int]:
    """A stable, distinct BGR colour per class (golden-ratio hues)."""
    h = (class_id * 0.618033988749895) % 1.0
    r, g, b = colorsys.hsv_to_rgb(h, 0.85, 1.0)
    return int(b * 255), int(g * 255), int(r * 255)


class Annotator:
    """Draws boxes and ``label score`` tags on a BGR image, in place.

    Line width and text size follow the image height, so 480p and 4K both read well.
    """

    def __init__(self, show_scores: bool = True, thickness: int | None = None) -> None:
        self.show_scores = show_scores
        self.thickness = thickness

    def annotate(self, image: np.ndarray, detections: Detections | None) -> np.ndarray:
        if detections is None or len(detections) == 0:
            return image
        h, w = image.shape[:2]
        t = self.thickness or max(1, round(h / 360))
        scale = max(0.4, h / 1800)
        for d in detections:
            color = class_color(d.class_id)
            x1, y1, x2, y2 = (round(v) for v in d.box)
            x1, x2 = max(0, min(x1, w - 1)), max(0, min(x2, w - 1))
            y1, y2 = max(0, min(y1, h - 1)), max(0, min(y2, h - 1))
            cv2.rectangle(image, (x1, y1), (x2, y2), color, t, cv2.LINE_AA)
            text = f"{d.label} {d.score:.2f}" if self.show_scores else d.label
            (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, max(1, t // 2))
            ty = y1 - 2 if y1 - th - base - 2 >= 0 else y1 + th + base + 2
            cv2.rectangle(image, (x1, ty - th - base), (x1 + tw + 2, ty + 2), color, cv2.FILLED)
            cv2.putText(image, text, (x1 + 1, ty - base + 1), cv2.FONT_HERSHEY_SIMPLEX, scale,
                        (0, 0, 0), max(1, t // 2), cv2.LINE_AA)
        return image
