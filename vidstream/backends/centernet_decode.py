"""Turning the converted CenterNet network's peaks into Object Detection API outputs.

Numpy only, and no vidstream imports: the Triton server process (``vidstream serve``, in its
own environment with numpy < 2) loads this file by its path, so it decodes exactly as the local
TF Lite backend does. Keep it that way.

>>> b = np.array([[0, 0, 1, 1], [0, 0, 1, 0.9], [0, 0, 1, 1]], np.float32)
>>> nms(b, np.array([0.9, 0.8, 0.7]), np.array([1, 1, 2]), 0.5).tolist()
[0, 2]
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def nms(boxes: np.ndarray, scores: np.ndarray, classes: np.ndarray, iou: float) -> np.ndarray:
    """Indices kept by greedy per-class non-max suppression, best score first."""
    order = np.argsort(-scores, kind="stable")
    # Shift each class far away so one pass suppresses within classes only.
    shifted = boxes[order] + (classes[order].astype(np.float32) * 4.0)[:, None]
    area = (shifted[:, 2] - shifted[:, 0]) * (shifted[:, 3] - shifted[:, 1])
    alive = np.ones(len(order), bool)
    for i in range(len(order)):
        if not alive[i]:
            continue
        rest = np.nonzero(alive[i + 1 :])[0] + i + 1
        if not len(rest):
            break
        y1 = np.maximum(shifted[i, 0], shifted[rest, 0])
        x1 = np.maximum(shifted[i, 1], shifted[rest, 1])
        y2 = np.minimum(shifted[i, 2], shifted[rest, 2])
        x2 = np.minimum(shifted[i, 3], shifted[rest, 3])
        inter = np.clip(y2 - y1, 0, None) * np.clip(x2 - x1, 0, None)
        union = area[i] + area[rest] - inter
        overlap = np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)
        alive[rest[overlap > iou]] = False
    return order[alive]


def decode(scores: np.ndarray, idx: np.ndarray, ltrb: np.ndarray, *, input_width: int,
           stride: int, num_classes: int, classes: Sequence[float] | np.ndarray,
           max_detections: int, min_score: float, nms_iou: float,
           top: int = 0, left: int = 0, height: int, width: int) -> dict[str, np.ndarray]:
    """The network's outputs (peak scores, peak indices, box sides) as ``detection_*``
    arrays, boxes normalised to the image placed at ``top``/``left`` with size
    ``height`` x ``width`` inside the network's input (letterboxed); ``classes`` maps the
    network's class index to the COCO id reported."""
    coco = np.asarray(classes, np.float32)
    batch = scores.shape[0]
    grid_w = input_width // stride
    cls = idx % num_classes
    cell = idx // num_classes
    ys = (cell // grid_w * stride - top).astype(np.float32)
    xs = (cell % grid_w * stride - left).astype(np.float32)
    boxes = np.stack([(ys - ltrb[..., 1]) / height, (xs - ltrb[..., 0]) / width,
                      (ys + ltrb[..., 3]) / height, (xs + ltrb[..., 2]) / width], axis=-1)
    out_boxes = np.zeros((batch, max_detections, 4), np.float32)
    out_scores = np.zeros((batch, max_detections), np.float32)
    out_classes = np.zeros((batch, max_detections), np.float32)
    num = np.zeros(batch, np.float32)
    for i in range(batch):
        live = np.nonzero(scores[i] > min_score)[0]
        keep = live[nms(boxes[i, live], scores[i, live], cls[i, live], nms_iou)]
        keep = keep[:max_detections]
        n = len(keep)
        out_boxes[i, :n] = np.clip(boxes[i, keep], 0.0, 1.0)
        out_scores[i, :n] = scores[i, keep]
        out_classes[i, :n] = coco[cls[i, keep]]
        num[i] = n
    return {"detection_boxes": out_boxes, "detection_scores": out_scores,
            "detection_classes": out_classes, "num_detections": num}
