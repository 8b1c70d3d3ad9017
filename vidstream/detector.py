"""Detector stage: runs an EIPredictor-compatible model on batches of frames.

In a pipeline it sets ``frame.detections`` on every frame; alone, it finds objects in RGB
images from anywhere (here the first frame of a clip):

>>> from vidstream import VideoSource
>>> with VideoSource("clip.mp4") as source, Detector(threshold=0.4) as detector:
...     image = next(source.frames()).image          # uint8 RGB (1, H, W, 3)
...     detections = detector.detect(image)
>>> "person" in detections.labels
True
>>> person = next(d for d in detections if d.label == "person")
>>> 0.4 <= person.score <= 1 and person.box[2] > person.box[0]
True

Any callable taking ``{"inputs": uint8 (B, H, W, 3)}`` and returning the Object Detection API
outputs (``detection_boxes``, ``detection_scores``, ``detection_classes``, ``num_detections``)
can stand in for the model, e.g. an :class:`~vidstream.predictor.EIPredictor` built with the
write-up's names, or a test double.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from .detections import Detections
from .errors import ConfigError, ModelError
from .frames import Frame, StreamInfo
from .labels import COCO_LABELS
from .stage import Stage

Predictor = Callable[[Mapping[str, Any]], Mapping[str, Any]]

# Caller-side keys for each output; the write-up spells scores "detections_scores".
_OUTPUT_KEYS = {
    "boxes": ("detection_boxes", "detection_boxes:0"),
    "scores": ("detection_scores", "detections_scores", "detection_scores:0"),
    "classes": ("detection_classes", "detection_classes:0"),
    "num": ("num_detections", "num_detections:0"),
}


def class_ids_for(names: Iterable[str], labels: Mapping[int, str] = COCO_LABELS) -> frozenset[int]:
    """Label-map ids of class ``names``; the error lists the known names."""
    by_name = {v: k for k, v in labels.items()}
    ids = set()
    for name in names:
        name = name.strip()
        if name.isdigit():
            ids.add(int(name))
        elif name in by_name:
            ids.add(by_name[name])
        else:
            raise ConfigError(
                f"unknown class {name!r}; known classes: {', '.join(sorted(by_name))}"
            )
    return frozenset(ids)


def load_predictor(
    model: str | os.PathLike,
    device: str | None = None,
    progress: Callable[[str], None] | None = None,
    backend: str = "auto",
    threads: int | None = None,
) -> Any:
    """A predictor on ``model`` (name or path) answering with the detector's keys.

    ``backend``: ``tf`` (an :class:`EIPredictor` on the SavedModel or frozen graph), ``tflite``
    (the converted default model's TF Lite network, CPU only) or ``auto`` (TF Lite when the
    model has one and no GPU is used, else TensorFlow).
    """
    from . import models
    from .predictor import EIPredictor, read_metadata, resolve_device

    path = models.resolve(str(model), progress=progress)
    device = device or "auto"
    if backend not in ("auto", "tf", "tflite"):
        raise ConfigError(f"unknown backend {backend!r}; use auto, tf or tflite")
    has_lite = bool(read_metadata(path).get("tflite"))
    if backend == "tflite" and not has_lite:
        raise ModelError(f"{path}: has no TF Lite model (only converted default models do)")
    if backend == "tflite" or (backend == "auto" and has_lite and
                               resolve_device(False, device)[0] == "/CPU:0"):
        from .lite import LitePredictor

        return LitePredictor(path, threads=threads)
    if Path(path).is_dir():
        probe = EIPredictor(path, device=device, warmup=False)
        inputs = list(probe.inputs.values())
        if len(inputs) != 1:
            raise ModelError(f"{path}: expected one image input, the model has {inputs}")
        missing = [k for k in ("detection_boxes", "detection_scores", "detection_classes")
                   if k not in probe.output_keys]
        if missing:
            raise ModelError(
                f"{path}: not an Object Detection API model: no outputs {missing}; "
                f"it has: {', '.join(probe.output_keys)}"
            )
        outputs = {k: k for k in ("detection_boxes", "detection_scores", "detection_classes")}
        if "num_detections" in probe.output_keys:
            outputs["num_detections"] = "num_detections"
        return EIPredictor(path, {"inputs": inputs[0]}, outputs, device=device)
    names = {k: k + ":0" for k in ("detection_boxes", "detection_scores", "detection_classes",
                                   "num_detections")}
    return EIPredictor(path, {"inputs": "image_tensor:0"}, names, device=device)


class Detector(Stage):
    """Finds objects in each frame and attaches them as ``frame.detections``.

    ``model`` is a known model name (default ``centernet``), a SavedModel directory, a frozen
    graph ``.pb``, or an already built predictor callable. Loading happens in ``open()``, timed
    as ``model_load_s``.
    """

    name = "detect"

    def __init__(
        self,
        model: str | os.PathLike | Predictor | None = None,
        *,
        threshold: float = 0.4,
        batch_size: int = 1,
        classes: Iterable[str] | None = None,
        input_size: tuple[int, int] | None = None,
        device: str | None = None,
        labels: Mapping[int, str] | None = None,
        backend: str = "auto",
        threads: int | None = None,
        progress: Callable[[str], None] | None = None,
    ) -> None:
        if not 0.0 <= threshold <= 1.0:
            raise ConfigError(f"threshold must be between 0 and 1, got {threshold}")
        if batch_size < 1:
            raise ConfigError(f"batch size must be >= 1, got {batch_size}")
        self.model = model if model is not None else "centernet"
        self.threshold = threshold
        self.batch_size = batch_size
        self.labels = dict(labels) if labels is not None else COCO_LABELS
        self.keep = class_ids_for(classes, self.labels) if classes else None
        self.input_size = input_size
        self.device = device
        self.backend = backend
        self.threads = threads
        self.progress = progress
        self.predictor: Any = None
        self.model_load_s = 0.0
        self._keys: dict[str, str] = {}
        self._max_batch: int | None = None
        self._letterbox = False
        self._own_predictor = False  # built here (warmed up here) or given by the caller
        self._warm = False

    def preload(self) -> None:
        """Load the model now; the pipeline calls this before it connects to a live source."""
        self.open()

    def open(self, info: StreamInfo | None = None) -> None:
        t0 = time.perf_counter()
        if self.predictor is None:  # else loaded already (preload())
            if callable(self.model) and not isinstance(self.model, str | os.PathLike):
                self.predictor = self.model
            else:
                self.predictor = load_predictor(self.model, self.device, self.progress,
                                                self.backend, self.threads)
                self._own_predictor = True
            if self.input_size is None:
                self.input_size = getattr(self.predictor, "input_size", None)
            self._max_batch = getattr(self.predictor, "max_batch", None)
            self._letterbox = getattr(self.predictor, "resize", "stretch") == "letterbox"
        if info is not None and self._own_predictor and not self._warm:
            self._warm_up(info)
        self.model_load_s += time.perf_counter() - t0

    def _warm_up(self, info: StreamInfo) -> None:
        """One call at the run's batch size and frame shape, so one-time set-up (memory
        plans, kernel choices: 250 ms for TF Lite's first batch of 4) is paid here, in
        model_load_s, and not by the first frames of the run."""
        probe = Frame.from_array(np.zeros((1, info.height, info.width, 3), np.uint8))
        w, h = self._model_size(probe) if self.input_size else (info.width, info.height)
        batch = min(self.batch_size, self._max_batch or self.batch_size)
        self.predictor({"inputs": np.zeros((batch, h, w, 3), np.uint8)})
        self._warm = True

    def process_batch(self, frames: list[Frame]) -> list[Frame]:
        if self.predictor is None:
            self.open()
        out: list[Frame] = []
        step = self._max_batch or len(frames)
        for run in _same_size_runs(frames):
            for start in range(0, len(run), step):
                out.extend(self._detect(run[start : start + step]))
        return out

    def process(self, frame: Frame) -> Frame:
        return self.process_batch([frame])[0]

    def prepare(self, frame: Frame) -> None:
        """Scale ``frame`` to the model's input (cached on the frame); run by the thread
        before this one, so the detector thread only runs the model."""
        if self.input_size and isinstance(frame, Frame):
            frame.rgb(*self._model_size(frame))

    def detect(self, image: np.ndarray | Frame) -> Detections:
        """The objects in one RGB uint8 image, ``(H, W, 3)`` or ``(1, H, W, 3)``, or a Frame.

        For frames from another library: OpenCV gives BGR, convert first
        (``cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)``). Boxes are in pixels of ``image``. The
        model loads on the first call unless ``open()`` (or ``with``) loaded it already.
        """
        frame = image if isinstance(image, Frame) else Frame.from_array(image)
        detections = self.process(frame).detections
        return detections if detections is not None else Detections.empty()

    def _detect(self, frames: list[Frame]) -> list[Frame]:
        if self.input_size:
            images = [f.rgb(*self._model_size(f)) for f in frames]
        else:
            images = [f.image for f in frames]
        batch = images[0] if len(images) == 1 else np.concatenate(images, axis=0)
        result = self.predictor({"inputs": batch})
        get = self._getter(result)
        boxes, scores, classes = get("boxes"), get("scores"), get("classes")
        num = get("num", required=False)
        out = []
        for i, f in enumerate(frames):
            dets = Detections.from_od_api(
                boxes[i], scores[i], classes[i], f.width, f.height,
                num=None if num is None else float(np.reshape(num, -1)[i]),
                threshold=self.threshold, labels=self.labels, keep=self.keep,
            )
            out.append(f.with_detections(dets))
        return out

    def _model_size(self, frame: Frame) -> tuple[int, int]:
        """The size to scale ``frame`` to before the model (the model fits it exactly)."""
        w, h = self.input_size  # type: ignore[misc]
        if not self._letterbox:
            return w, h
        scale = min(w / frame.width, h / frame.height)
        return max(1, round(frame.width * scale)), max(1, round(frame.height * scale))

    def _getter(self, result: Mapping[str, Any]) -> Callable[..., Any]:
        def get(role: str, required: bool = True) -> Any:
            key = self._keys.get(role)
            if key is None:
                key = next((k for k in _OUTPUT_KEYS[role] if k in result), None)
                if key is None:
                    if not required:
                        return None
                    raise ModelError(
                        f"the model returned {sorted(result)}; expected one of "
                        f"{list(_OUTPUT_KEYS[role])} for {role}"
                    )
                self._keys[role] = key
            return np.asarray(result[key])

        return get

    def describe(self) -> dict:
        info = {"batch_size": self.batch_size, "threshold": self.threshold}
        describe = getattr(self.predictor, "describe", None)
        if callable(describe):
            info.update(describe())
        else:
            info.setdefault("model", str(self.model))
        info["model_load_s"] = round(self.model_load_s, 4)
        return info


def _same_size_runs(frames: list[Frame]) -> list[list[Frame]]:
    """Consecutive frames of one size: one batch holds images of one shape (a letterboxed
    frame's fitted size depends on its own size, so this holds for fixed-size models too)."""
    runs: list[list[Frame]] = []
    for f in frames:
        if runs and (runs[-1][0].width, runs[-1][0].height) == (f.width, f.height):
            runs[-1].append(f)
        else:
            runs.append([f])
    return runs
