"""Detections of one frame, as plain validated arrays.

>>> import numpy as np
>>> d = Detections(boxes=np.array([[10, 20, 110, 220]], np.float32),
...                scores=np.array([0.9], np.float32), class_ids=np.array([1]))
>>> len(d), d.labels, d.to_json()[0]["box"]
(1, ('person',), [10.0, 20.0, 110.0, 220.0])
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np

from .labels import COCO_LABELS, label_for


@dataclass(frozen=True)
class Detection:
    """One detected object: box in pixels ``(x1, y1, x2, y2)`` of the original frame."""

    label: str
    class_id: int
    score: float
    box: tuple[float, float, float, float]


@dataclass(frozen=True, eq=False)
class Detections:
    """The objects found in one frame (boxes in pixels of the original frame, ``x1 y1 x2 y2``)."""

    boxes: np.ndarray
    scores: np.ndarray
    class_ids: np.ndarray
    labels: tuple[str, ...] = field(default=())

    def __post_init__(self) -> None:
        boxes = np.asarray(self.boxes, dtype=np.float32).reshape(-1, 4) if np.size(
            self.boxes
        ) else np.zeros((0, 4), np.float32)
        scores = np.asarray(self.scores, dtype=np.float32).reshape(-1)
        class_ids = np.asarray(self.class_ids).astype(np.int64).reshape(-1)
        n = len(boxes)
        if len(scores) != n or len(class_ids) != n:
            raise ValueError(
                f"Detections: expected boxes (N, 4), scores (N,) and class_ids (N,) of one N; "
                f"got boxes {np.shape(self.boxes)}, scores {np.shape(self.scores)}, "
                f"class_ids {np.shape(self.class_ids)}"
            )
        labels = tuple(self.labels) or tuple(label_for(int(c)) for c in class_ids)
        if len(labels) != n:
            raise ValueError(f"Detections: expected {n} labels, got {len(labels)}")
        object.__setattr__(self, "boxes", boxes)
        object.__setattr__(self, "scores", scores)
        object.__setattr__(self, "class_ids", class_ids)
        object.__setattr__(self, "labels", labels)

    @classmethod
    def empty(cls) -> Detections:
        return cls(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros(0, np.int64))

    @classmethod
    def from_od_api(
        cls,
        boxes: np.ndarray,
        scores: np.ndarray,
        classes: np.ndarray,
        width: int,
        height: int,
        *,
        num: float | None = None,
        threshold: float = 0.0,
        labels: dict[int, str] | None = None,
        keep: frozenset[int] | None = None,
    ) -> Detections:
        """From one image's Object Detection API outputs.

        ``boxes`` are normalised ``ymin, xmin, ymax, xmax``; they come back in pixels of a
        ``width`` x ``height`` frame as ``x1, y1, x2, y2``. ``keep`` limits the class ids.
        """
        n = len(scores) if num is None else min(int(num), len(scores))
        scores = np.asarray(scores[:n], np.float32)
        class_ids = np.asarray(classes[:n]).astype(np.int64)
        mask = scores >= threshold
        if keep is not None:
            mask &= np.isin(class_ids, list(keep))
        b = np.clip(np.asarray(boxes[:n], np.float32)[mask], 0.0, 1.0)
        pixels = np.stack(
            [b[:, 1] * width, b[:, 0] * height, b[:, 3] * width, b[:, 2] * height], axis=1
        ) if len(b) else np.zeros((0, 4), np.float32)
        ids = class_ids[mask]
        return cls(
            pixels,
            scores[mask],
            ids,
            tuple(label_for(int(c), labels) for c in ids),
        )

    def __len__(self) -> int:
        return len(self.boxes)

    def __iter__(self) -> Iterator[Detection]:
        for box, score, cid, label in zip(
            self.boxes, self.scores, self.class_ids, self.labels, strict=True
        ):
            x1, y1, x2, y2 = (float(v) for v in box)
            yield Detection(label, int(cid), float(score), (x1, y1, x2, y2))

    def to_json(self) -> list[dict]:
        """JSON-ready list: ``[{"label", "class_id", "score", "box": [x1, y1, x2, y2]}]``."""
        return [
            {
                "label": d.label,
                "class_id": d.class_id,
                "score": round(d.score, 4),
                "box": [round(v, 1) for v in d.box],
            }
            for d in self
        ]

    def count_by_label(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for label in self.labels:
            counts[label] = counts.get(label, 0) + 1
        return counts


def box_iou(a: Sequence[float], b: Sequence[float]) -> float:
    """Intersection over union of two ``x1, y1, x2, y2`` boxes (0 when they do not touch).

    >>> box_iou([0, 0, 10, 10], [5, 0, 15, 10])
    0.3333333333333333
    """
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


__all__ = ["COCO_LABELS", "Detection", "Detections", "box_iou"]
