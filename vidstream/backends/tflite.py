"""The converted default model's network on TensorFlow Lite (XNNPACK): the CPU fast path.

It answers like the SavedModel beside it (``input_tensor``: uint8 ``(B, H, W, 3)`` in, Object
Detection API outputs out) and finds the same boxes in about half the time on a CPU. The
network and its peak picking run in TF Lite; letterboxing, box decoding and per-class NMS run
here in NumPy, exactly as the SavedModel's graph does them.

One TF Lite interpreter holds one set of tensors: two threads calling it at once would
overwrite each other's input, so ``thread_safe`` is False (the detector serialises calls).

>>> p = LitePredictor(models.path("centernet"), LoadOptions())      # doctest: +SKIP
>>> p.bind({"inputs": "input_tensor"}, None)                        # doctest: +SKIP
>>> p({"inputs": frame})["detection_boxes"].shape                   # doctest: +SKIP
(1, 100, 4)
"""

from __future__ import annotations

import os
import time
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from ..errors import ModelError, ModelNotFoundError
from ..labels import COCO80_TO_COCO90
from ..models.metadata import metadata_file, read_metadata
from ..tfruntime import import_tensorflow, quiet_stderr, resolve_device
from .base import LoadOptions, ModelBackend, check_feed, map_names
from .centernet_decode import decode

OUTPUTS = ("detection_boxes", "detection_scores", "detection_classes", "num_detections")
# The frozen-graph spelling of the input, so the write-up's names work here too.
_ALIASES = {"image_tensor": "input_tensor"}


def tflite_file(ref: str | os.PathLike[str]) -> Path | None:
    """The TF Lite network ``ref`` names: a ``.tflite`` file, or the one a converted model
    directory's metadata names (a damaged ``vidstream.json`` is an error, not a "no")."""
    path = Path(ref)
    if path.suffix == ".tflite" and path.is_file():
        return path
    if path.is_dir():
        name = read_metadata(path).get("tflite")
        if name and (path / name).is_file():
            return path / name
    return None


def is_tflite(ref: str) -> bool:
    return tflite_file(ref) is not None


def runs_on_cpu(ref: str, options: LoadOptions) -> bool:
    """Whether ``backend="auto"`` picks TF Lite: only when the model would run on the CPU."""
    return resolve_device(options.use_ei, options.device)[0] == "/CPU:0"


def decoding(metadata: Mapping[str, Any]) -> dict[str, Any]:
    """How the network's outputs become detections: the converter's parameters from
    ``vidstream.json``, with the defaults of the networks it wrote before it recorded them.
    ``vidstream serve`` sends these to its TF Lite server, which decodes the same way.

    >>> decoding({"stride": 8})["stride"], decoding({})["num_classes"]
    (8, 80)
    """
    return {"num_classes": int(metadata.get("num_classes", 80)),
            "stride": int(metadata.get("stride", 4)),
            "max_detections": int(metadata.get("max_detections", 100)),
            "nms_iou": float(metadata.get("nms_iou", 0.5)),
            "min_score": float(metadata.get("min_score", 0.001))}


def _interpreter(path: Path, threads: int) -> Any:
    try:  # TF Lite's successor package, when installed
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        tf = import_tensorflow()
        Interpreter = tf.lite.Interpreter
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tf.lite.Interpreter's deprecation notice
        return Interpreter(model_path=str(path), num_threads=threads)


class LitePredictor(ModelBackend):
    """A converted model's TF Lite network with the Object Detection API call contract."""

    format = "tflite"
    thread_safe = False
    resize = "letterbox"
    max_batch = None

    def __init__(self, ref: str | os.PathLike[str], options: LoadOptions) -> None:
        t0 = time.perf_counter()
        self.model_dir = str(ref)
        path = tflite_file(ref)
        if path is None:
            raise ModelNotFoundError(
                f"{ref}: has no TF Lite model (only converted default models do)",
                param="backend",
            )
        self.metadata = read_metadata(path)
        if not self.metadata:  # the decoding below needs the converter's parameters
            raise ModelError(f"{path}: no {metadata_file(path).name} beside it; vidstream runs "
                             "only the TF Lite networks it converted itself")
        if options.device == "gpu":
            raise ModelError(f"{ref}: TF Lite runs on the CPU here, device gpu was requested",
                             param="device")
        self.threads = options.threads or min(os.cpu_count() or 1, 4)
        self._interp = _interpreter(path, self.threads)
        inp = self._interp.get_input_details()[0]
        self._input = inp["index"]
        self.input_size: tuple[int, int] = (int(inp["shape"][2]), int(inp["shape"][1]))
        params = decoding(self.metadata)
        self.num_classes: int = params["num_classes"]
        self.stride: int = params["stride"]
        self.max_detections: int = params["max_detections"]
        self.nms_iou: float = params["nms_iou"]
        self.min_score: float = params["min_score"]
        self.device = f"CPU (TF Lite XNNPACK, {self.threads} threads)"
        self.model_inputs = ["input_tensor"]
        self.model_outputs = list(OUTPUTS)
        self.input_specs = {"input_tensor": ((None, None, None, 3), np.dtype(np.uint8))}
        self._batch = 0
        self._buffer = np.zeros((0,), np.float32)
        self._geometry: tuple[int, int, int, int] | None = None
        # TF Lite prints its XNNPACK banner on an interpreter's first allocation. Do that
        # here, at load time (the main thread, where quiet_stderr may redirect fd 2), so no
        # later call from a worker thread has anything to hide.
        with quiet_stderr():
            self._plan(1)
        self.bind(None, None)
        self.load_s = time.perf_counter() - t0

    def bind(self, input_names: Mapping[str, str] | None,
             output_names: Mapping[str, str] | None) -> None:
        self.inputs = map_names(input_names, self.model_inputs, "input", self.model_dir,
                                _ALIASES)
        self.outputs = map_names(output_names, self.model_outputs, "output", self.model_dir)

    def _plan(self, batch: int) -> None:
        w, h = self.input_size
        self._interp.resize_tensor_input(self._input, [batch, h, w, 3])
        self._interp.allocate_tensors()
        self._batch = batch
        self._buffer = np.zeros((batch, h, w, 3), np.float32)
        self._geometry = None

    def _letterbox(self, images: np.ndarray) -> tuple[np.ndarray, int, int, int, int]:
        batch, ih, iw = images.shape[:3]
        w, h = self.input_size
        scale = min(h / ih, w / iw)
        nh, nw = round(ih * scale), round(iw * scale)
        top, left = (h - nh) // 2, (w - nw) // 2
        if batch > self._batch:
            # A smaller batch (the last of a run) reuses this allocation, padded: growing
            # and shrinking would re-plan the network each time. The detector warms up at
            # the run's batch size in open(), so this rarely happens during a run.
            self._plan(batch)
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

    def __call__(self, feed: Mapping[str, Any]) -> dict[str, np.ndarray]:
        check_feed(feed, self.inputs)
        images = np.asarray(next(iter(feed.values())))
        if images.ndim != 4 or images.shape[3] != 3:
            raise ModelError(f"expected images (B, H, W, 3), got {images.shape}")
        x, top, left, nh, nw = self._letterbox(images)
        self._interp.set_tensor(self._input, x)
        self._interp.invoke()
        n = len(images)
        scores, idx, ltrb = (o[:n] for o in self._outputs())
        found = self._decode(scores, idx, ltrb, top, left, nh, nw)
        return {caller: found[name] for caller, name in self.outputs.items()}

    def _outputs(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        outs = [self._interp.get_tensor(d["index"]) for d in self._interp.get_output_details()]
        ltrb = next(o for o in outs if o.ndim == 3)
        idx = next(o for o in outs if o.ndim == 2 and np.issubdtype(o.dtype, np.integer))
        scores = next(o for o in outs if o.ndim == 2 and np.issubdtype(o.dtype, np.floating))
        return scores, idx, ltrb

    def _decode(self, scores: np.ndarray, idx: np.ndarray, ltrb: np.ndarray,
                top: int, left: int, nh: int, nw: int) -> dict[str, np.ndarray]:
        return decode(scores, idx, ltrb, input_width=self.input_size[0], stride=self.stride,
                      num_classes=self.num_classes, classes=COCO80_TO_COCO90,
                      max_detections=self.max_detections, min_score=self.min_score,
                      nms_iou=self.nms_iou, top=top, left=left, height=nh, width=nw)
