"""The default detector on TensorFlow Lite (XNNPACK): the CPU fast path.

:class:`LitePredictor` answers the same call as an
:class:`~vidstream.predictor.EIPredictor` on the converted SavedModel (``{"inputs": uint8
(B, H, W, 3)}`` in, Object Detection API outputs out) and finds the same boxes, in about half
the time on a CPU. The network and its peak picking run in TF Lite; letterboxing, box decoding
and per-class NMS run here in NumPy, exactly as the SavedModel's graph does them.

>>> p = LitePredictor(models.path("centernet"))              # doctest: +SKIP
>>> p({"inputs": frame})["detection_boxes"].shape            # doctest: +SKIP
(1, 100, 4)
"""

from __future__ import annotations

import os
import time
import warnings
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from .errors import ModelError, ModelNotFoundError
from .labels import COCO80_TO_COCO90
from .predictor import import_tensorflow, quiet_stderr, read_metadata

_COCO90 = np.asarray(COCO80_TO_COCO90, np.float32)


def _interpreter(path: Path, threads: int) -> Any:
    try:  # TF Lite's successor package, when installed
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        tf = import_tensorflow()
        Interpreter = tf.lite.Interpreter
    with warnings.catch_warnings(), quiet_stderr():
        warnings.simplefilter("ignore")  # tf.lite.Interpreter's deprecation notice
        return Interpreter(model_path=str(path), num_threads=threads)


def nms(boxes: np.ndarray, scores: np.ndarray, classes: np.ndarray, iou: float) -> np.ndarray:
    """Indices kept by greedy per-class non-max suppression, best score first.

    >>> b = np.array([[0, 0, 1, 1], [0, 0, 1, 0.9], [0, 0, 1, 1]], np.float32)
    >>> nms(b, np.array([0.9, 0.8, 0.7]), np.array([1, 1, 2]), 0.5).tolist()
    [0, 2]
    """
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


class LitePredictor:
    """The converted default model's TF Lite network, with the OD API call contract."""

    format = "tflite"

    def __init__(self, model_dir: str | os.PathLike, threads: int | None = None,
                 warmup: bool = True) -> None:
        t0 = time.perf_counter()
        self.model_dir = str(model_dir)
        self.metadata = read_metadata(model_dir)
        name = self.metadata.get("tflite")
        if not name or not (Path(model_dir) / name).is_file():
            raise ModelNotFoundError(f"{model_dir}: no TF Lite model beside the SavedModel")
        self.threads = threads or min(os.cpu_count() or 1, 4)
        self._interp = _interpreter(Path(model_dir) / name, self.threads)
        inp = self._interp.get_input_details()[0]
        self._input = inp["index"]
        self.input_size: tuple[int, int] = (int(inp["shape"][2]), int(inp["shape"][1]))
        self.resize = "letterbox"
        self.max_batch: int | None = None
        self.num_classes = int(self.metadata.get("num_classes", 80))
        self.stride = int(self.metadata.get("stride", 4))
        self.max_detections = int(self.metadata.get("max_detections", 100))
        self.nms_iou = float(self.metadata.get("nms_iou", 0.5))
        self.min_score = float(self.metadata.get("min_score", 0.001))
        self.device = f"CPU (TF Lite XNNPACK, {self.threads} threads)"
        self._batch = 0
        self._buffer = np.zeros((0,), np.float32)
        self._geometry: tuple[int, int, int, int] | None = None
        self.load_s = time.perf_counter() - t0
        self.warmup_s = 0.0
        if warmup:
            t1 = time.perf_counter()
            self({"inputs": np.zeros((1, 100, 100, 3), np.uint8)})
            self.warmup_s = time.perf_counter() - t1

    def _letterbox(self, images: np.ndarray) -> tuple[np.ndarray, int, int, int, int]:
        batch, ih, iw = images.shape[:3]
        w, h = self.input_size
        scale = min(h / ih, w / iw)
        nh, nw = round(ih * scale), round(iw * scale)
        top, left = (h - nh) // 2, (w - nw) // 2
        if batch > self._batch:
            # A smaller batch (the last of a run) reuses this allocation, padded: growing
            # and shrinking would re-plan the network each time.
            self._interp.resize_tensor_input(self._input, [batch, h, w, 3])
            with quiet_stderr():  # TF Lite announces its XNNPACK delegate on every allocation
                self._interp.allocate_tensors()
            self._batch = batch
            self._buffer = np.zeros((batch, h, w, 3), np.float32)
            self._geometry = None
        buf = self._buffer
        if self._geometry != (top, left, nh, nw):  # else the padding is still zero
            buf.fill(0.0)
            self._geometry = (top, left, nh, nw)
        for i in range(batch):
            img = images[i]
            if (nh, nw) != (ih, iw):  # the detector usually hands over fitted images
                img = cv2.resize(img, (nw, nh), interpolation=cv2.INTER_LINEAR)
            buf[i, top : top + nh, left : left + nw] = img
        return buf, top, left, nh, nw

    def __call__(self, feed: dict[str, Any]) -> dict[str, np.ndarray]:
        if set(feed) != {"inputs"}:
            raise ModelError(f"LitePredictor called with {sorted(feed)}; expected ['inputs']")
        images = np.asarray(feed["inputs"])
        if images.ndim != 4 or images.shape[3] != 3:
            raise ModelError(f"expected images (B, H, W, 3), got {images.shape}")
        x, top, left, nh, nw = self._letterbox(images)
        self._interp.set_tensor(self._input, x)
        self._interp.invoke()
        n = len(images)
        scores, idx, ltrb = (o[:n] for o in self._outputs())
        return self._decode(scores, idx, ltrb, top, left, nh, nw)

    def _outputs(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        outs = [self._interp.get_tensor(d["index"]) for d in self._interp.get_output_details()]
        ltrb = next(o for o in outs if o.ndim == 3)
        idx = next(o for o in outs if o.ndim == 2 and np.issubdtype(o.dtype, np.integer))
        scores = next(o for o in outs if o.ndim == 2 and np.issubdtype(o.dtype, np.floating))
        return scores, idx, ltrb

    def _decode(self, scores: np.ndarray, idx: np.ndarray, ltrb: np.ndarray,
                top: int, left: int, nh: int, nw: int) -> dict[str, np.ndarray]:
        batch = scores.shape[0]
        grid_w = self.input_size[0] // self.stride
        cls = idx % self.num_classes
        cell = idx // self.num_classes
        ys = (cell // grid_w * self.stride - top).astype(np.float32)
        xs = (cell % grid_w * self.stride - left).astype(np.float32)
        boxes = np.stack([(ys - ltrb[..., 1]) / nh, (xs - ltrb[..., 0]) / nw,
                          (ys + ltrb[..., 3]) / nh, (xs + ltrb[..., 2]) / nw], axis=-1)
        out_boxes = np.zeros((batch, self.max_detections, 4), np.float32)
        out_scores = np.zeros((batch, self.max_detections), np.float32)
        out_classes = np.zeros((batch, self.max_detections), np.float32)
        num = np.zeros(batch, np.float32)
        for i in range(batch):
            live = np.nonzero(scores[i] > self.min_score)[0]
            keep = live[nms(boxes[i, live], scores[i, live], cls[i, live], self.nms_iou)]
            keep = keep[: self.max_detections]
            n = len(keep)
            out_boxes[i, :n] = np.clip(boxes[i, keep], 0.0, 1.0)
            out_scores[i, :n] = scores[i, keep]
            out_classes[i, :n] = _COCO90[cls[i, keep]]
            num[i] = n
        return {"detection_boxes": out_boxes, "detection_scores": out_scores,
                "detection_classes": out_classes, "num_detections": num}

    def describe(self) -> dict:
        return {"model": self.metadata.get("name", Path(self.model_dir).name),
                "model_dir": self.model_dir, "model_format": "tflite", "device": self.device}
