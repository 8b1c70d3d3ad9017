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
    track: int | None = None  # the tracker's id, when a tracker ran


@dataclass(frozen=True, eq=False)
class Detections:
    """The objects found in one frame (boxes in pixels of the original frame, ``x1 y1 x2 y2``).

    ``track_ids`` (int, -1 for none) is set by a tracker: each detection's track. ``low``
    holds the detections the detector found below its threshold, down to a tracker's floor
    (``Detector(track_floor=...)``): only a tracker reads them (ByteTrack's second
    association); everything else sees the same detections as without them.

    >>> d = Detections(np.array([[0, 0, 10, 10]]), np.array([0.5]), np.array([1]),
    ...                track_ids=np.array([17]))
    >>> d.to_json()[0]["track"], next(iter(d)).track
    (17, 17)
    """

    boxes: np.ndarray
    scores: np.ndarray
    class_ids: np.ndarray
    labels: tuple[str, ...] = field(default=())
    track_ids: np.ndarray | None = None
    low: Detections | None = field(default=None, repr=False)

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
        if self.track_ids is not None:
            track_ids = np.asarray(self.track_ids)
            if track_ids.size and not np.issubdtype(track_ids.dtype, np.integer):
                raise ValueError(f"Detections: expected integer track_ids, got {track_ids.dtype}")
            track_ids = track_ids.astype(np.int64).reshape(-1)
            if len(track_ids) != n:
                raise ValueError(
                    f"Detections: expected track_ids (N,) with N = {n}, got "
                    f"{np.shape(self.track_ids)}"
                )
            object.__setattr__(self, "track_ids", track_ids)
        if self.low is not None and not isinstance(self.low, Detections):
            raise ValueError(f"Detections: expected low to be Detections, got {self.low!r}")

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
        low_floor: float | None = None,
    ) -> Detections:
        """From one image's Object Detection API outputs.

        ``boxes`` are normalised ``ymin, xmin, ymax, xmax``; they come back in pixels of a
        ``width`` x ``height`` frame as ``x1, y1, x2, y2``. ``keep`` limits the class ids.
        With ``low_floor``, the detections scoring in ``[low_floor, threshold)`` come back as
        ``.low`` (for a tracker).
        """
        n = len(scores) if num is None else min(int(num), len(scores))
        scores = np.asarray(scores[:n], np.float32)
        class_ids = np.asarray(classes[:n]).astype(np.int64)
        low = None
        if low_floor is not None and low_floor < threshold:
            low = cls.from_od_api(boxes[:n], scores, class_ids, width, height,
                                  threshold=low_floor, labels=labels, keep=keep)
            low = low.select(low.scores < threshold)
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
            low=low,
        )

    def select(self, which: np.ndarray) -> Detections:
        """The detections at ``which`` (a boolean mask or indices), track ids kept, no ``low``.

        >>> d = Detections(np.zeros((3, 4)), np.array([0.2, 0.6, 0.9]), np.array([1, 3, 1]))
        >>> d.select(d.scores > 0.5).labels
        ('car', 'person')
        """
        idx = np.arange(len(self))[np.asarray(which)]
        return Detections(
            self.boxes[idx], self.scores[idx], self.class_ids[idx],
            tuple(self.labels[i] for i in idx.tolist()),
            track_ids=None if self.track_ids is None else self.track_ids[idx],
        )

    def __len__(self) -> int:
        return len(self.boxes)

    def __iter__(self) -> Iterator[Detection]:
        tracks = (self.track_ids.tolist() if self.track_ids is not None
                  else [None] * len(self))
        for box, score, cid, label, track in zip(
            self.boxes, self.scores, self.class_ids, self.labels, tracks, strict=True
        ):
            x1, y1, x2, y2 = (float(v) for v in box)
            yield Detection(label, int(cid), float(score), (x1, y1, x2, y2),
                            None if track is None or track < 0 else int(track))

    def to_json(self) -> list[dict]:
        """JSON-ready list: ``[{"label", "class_id", "score", "box": [x1, y1, x2, y2]}]``,
        with ``"track"`` (an id, or None for -1) when the detections carry track ids."""
        out = []
        for d in self:
            item: dict = {
                "label": d.label,
                "class_id": d.class_id,
                "score": round(d.score, 4),
                "box": [round(v, 1) for v in d.box],
            }
            if self.track_ids is not None:
                item["track"] = d.track
            out.append(item)
        return out

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
