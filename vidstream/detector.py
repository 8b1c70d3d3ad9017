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

The model is a :class:`~vidstream.predictor.Predictor` taking ``{"inputs": uint8 (B, H, W, 3)}``
and returning the Object Detection API outputs (``detection_boxes``, ``detection_scores``,
``detection_classes``, ``num_detections``): by default an
:class:`~vidstream.predictor.EIPredictor` (on the CPU, running the default model's TF Lite
network), or one you built with the write-up's names, or a test double. A plain callable gets
the protocol's defaults.
"""

from __future__ import annotations

import os
import threading
import time
import weakref
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import numpy as np

from .backends import check_backend
from .backends.base import Predictor
from .detections import Detections
from .errors import ConfigError, ModelError
from .frames import Frame, StreamInfo
from .labels import COCO_LABELS
from .settings import DEFAULTS
from .stage import Stage

# Caller-side keys for each output; the write-up spells scores "detections_scores".
_OUTPUT_KEYS = {
    "boxes": ("detection_boxes", "detection_boxes:0"),
    "scores": ("detection_scores", "detections_scores", "detection_scores:0"),
    "classes": ("detection_classes", "detection_classes:0"),
    "num": ("num_detections", "num_detections:0"),
}
_OD_REQUIRED = ("detection_boxes", "detection_scores", "detection_classes")


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
                f"unknown class {name!r}; known classes: {', '.join(sorted(by_name))}",
                param="classes",
            )
    return frozenset(ids)


def load_predictor(
    model: str | os.PathLike[str],
    device: str | None = None,
    progress: Callable[[str], None] | None = None,
    backend: str = DEFAULTS.backend,
    threads: int | None = None,
) -> Predictor:
    """An :class:`~vidstream.predictor.EIPredictor` on ``model`` (name or path), answering
    ``{"inputs": images}`` with the Object Detection API keys.

    ``backend``: ``tf`` (the SavedModel or frozen graph), ``tflite`` (a converted model's TF
    Lite network, CPU only) or ``auto`` (TF Lite when the model has one and runs on the CPU).
    The model is loaded once: its own names are read, then bound to the detector's.
    """
    from . import models
    from .predictor import EIPredictor

    path = models.resolve(str(model), progress=progress)
    p = EIPredictor(path, device=device or DEFAULTS.device, backend=backend, threads=threads,
                    warmup=False)
    if p.format == "frozen_graph":  # TF1 OD API exports: tensor names fixed by the API
        p.rename({"inputs": "image_tensor:0"},
                 {k: k + ":0" for k in (*_OD_REQUIRED, "num_detections")})
    else:
        inputs = p.model_inputs
        if len(inputs) != 1:
            raise ModelError(f"{path}: expected one image input, the model has {inputs}")
        missing = [k for k in _OD_REQUIRED if k not in p.output_keys]
        if missing:
            raise ModelError(
                f"{path}: not an Object Detection API model: no outputs {missing}; "
                f"it has: {', '.join(p.output_keys)}"
            )
        outputs = {k: k for k in _OD_REQUIRED}
        if "num_detections" in p.output_keys:
            outputs["num_detections"] = "num_detections"
        p.rename({"inputs": inputs[0]}, outputs)
    t0 = time.perf_counter()
    p.warm_up()
    p.warmup_s = time.perf_counter() - t0
    return p


class FunctionPredictor(Predictor):
    """A plain callable as a :class:`Predictor`, with the protocol's defaults (any input
    size, stretch, any batch, thread safe)."""

    def __init__(self, fn: Callable[[Mapping[str, Any]], Mapping[str, Any]]) -> None:
        self.fn = fn

    def __call__(self, feed: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        return dict(self.fn(feed))

    def describe(self) -> dict[str, Any]:
        return {"model": getattr(self.fn, "__name__", None) or type(self.fn).__name__}


def as_predictor(obj: Predictor | Callable[[Mapping[str, Any]], Mapping[str, Any]]
                 ) -> Predictor:
    """``obj`` as a :class:`Predictor`: one as is, a plain callable wrapped with the defaults.

    An object that declares some of the protocol's members but not all is a TypeError: its
    ``input_size`` (say) would otherwise be silently ignored.

    >>> as_predictor(lambda feed: {}).thread_safe
    True
    """
    if isinstance(obj, Predictor):
        return obj
    if not callable(obj):
        raise TypeError(f"not a predictor or a callable: {obj!r}")
    members = ("input_size", "resize", "max_batch", "thread_safe", "load_s", "warmup_s",
               "describe")
    declared = [m for m in members if hasattr(obj, m)]
    if declared:
        missing = [m for m in members if m not in declared]
        raise TypeError(
            f"{type(obj).__name__} declares {', '.join(declared)} but not {', '.join(missing)}:"
            " subclass vidstream.predictor.Predictor to get the defaults"
        )
    return FunctionPredictor(obj)


# One lock per non-thread-safe predictor, shared by every Detector that calls it: two
# pipelines (two Detectors) given one TF Lite predictor must not call it at once.
_LOCKS: dict[int, threading.Lock] = {}
_LOCKS_GUARD = threading.Lock()


def _lock_for(predictor: object) -> threading.Lock:
    with _LOCKS_GUARD:
        lock = _LOCKS.get(id(predictor))
        if lock is None:
            lock = _LOCKS[id(predictor)] = threading.Lock()
            try:  # forget the lock with the predictor (its id may be reused)
                weakref.finalize(predictor, _LOCKS.pop, id(predictor), None)
            except TypeError:  # not weak-referenceable: keep the lock for the process
                pass
        return lock


class Detector(Stage):
    """Finds objects in each frame and attaches them as ``frame.detections``.

    ``model`` is a known model name (default ``centernet``), a SavedModel directory, a frozen
    graph ``.pb``, a converted model's ``.tflite``, or an already built predictor: a
    :class:`~vidstream.predictor.Predictor` (an :class:`~vidstream.predictor.EIPredictor`, a
    test double) or a plain callable. Loading happens in ``open()``, timed as
    ``model_load_s``. A predictor that is not ``thread_safe`` is called under a lock, so one
    may serve several pipelines. With ``batch_size > 1``, ``linger`` is how long (seconds) a
    batch waits after its first frame for the rest (None: until it is full or the streams end).

    ``track_floor``: for a tracker after this stage, also keep the detections scoring in
    ``[track_floor, threshold)``, as ``frame.detections.low``; the detections themselves (what
    sinks draw and write) stay those at or above ``threshold``.

    ``classes`` keeps only the objects of those classes (COCO names); the rest are left out
    of ``frame.detections``, so they are neither recorded nor drawn. In the example clip the
    cup scores about 0.33:

    >>> from vidstream import VideoSource
    >>> with VideoSource("clip.mp4") as source:
    ...     image = next(source.frames()).image
    >>> with Detector(threshold=0.3) as everything:
    ...     found = everything.detect(image)
    >>> sorted({"person", "cup"} & set(found.labels))
    ['cup', 'person']
    >>> with Detector(threshold=0.3, classes=["person"]) as people:
    ...     kept = people.detect(image)
    >>> kept.labels
    ('person',)
    """

    name = "detect"

    def __init__(
        self,
        model: str | os.PathLike[str] | Predictor | Callable[..., Any] | None = None,
        *,
        threshold: float = DEFAULTS.threshold,
        batch_size: int = DEFAULTS.batch_size,
        classes: Iterable[str] | None = None,
        input_size: tuple[int, int] | None = None,
        device: str = DEFAULTS.device,
        labels: Mapping[int, str] | None = None,
        backend: str = DEFAULTS.backend,
        threads: int | None = None,
        progress: Callable[[str], None] | None = None,
        track_floor: float | None = None,
        linger: float | None = None,
    ) -> None:
        if not 0.0 <= threshold <= 1.0:
            raise ConfigError(f"threshold must be between 0 and 1, got {threshold}",
                              param="threshold")
        if track_floor is not None and not 0.0 <= track_floor <= 1.0:
            raise ConfigError(f"track floor must be between 0 and 1, got {track_floor}",
                              param="track_floor")
        if batch_size < 1:
            raise ConfigError(f"batch size must be >= 1, got {batch_size}", param="batch_size")
        check_backend(backend)
        self.model = model if model is not None else DEFAULTS.model
        self.threshold = threshold
        self.track_floor = track_floor
        self.batch_size = batch_size
        self.labels = dict(labels) if labels is not None else COCO_LABELS
        self.keep = class_ids_for(classes, self.labels) if classes else None
        self.input_size = input_size
        self.device = device
        self.backend = backend
        self.threads = threads
        self.progress = progress
        self.linger = linger
        self.predictor: Predictor | None = None
        self.model_load_s = 0.0
        self._keys: dict[str, str] = {}
        self._max_batch: int | None = None
        self._letterbox = False
        self._lock: threading.Lock | None = None  # set when the predictor is not thread safe
        self._own_predictor = False  # built here (warmed up here) or given by the caller
        self._reload = False  # closed: the next open() loads the model again
        self._warm = False

    def preload(self) -> None:
        """Load the model now; the pipeline calls this before it connects to a live source."""
        self.open()

    def open(self, info: StreamInfo | None = None) -> None:
        t0 = time.perf_counter()
        if self._reload:  # closed after an earlier run
            self.predictor, self._reload, self._warm = None, False, False
        if self.predictor is None:  # else loaded already (preload())
            loaded: Any  # a Predictor, or a plain callable to adapt
            if isinstance(self.model, str | os.PathLike):
                loaded = load_predictor(self.model, self.device, self.progress, self.backend,
                                        self.threads)
                self._own_predictor = True
            else:
                loaded = self.model
            predictor = as_predictor(loaded)
            if self.input_size is None:
                self.input_size = predictor.input_size
            self._max_batch = predictor.max_batch
            self._letterbox = predictor.resize == "letterbox"
            self._lock = None if predictor.thread_safe else _lock_for(predictor)
            self.predictor = predictor
        if info is not None and self._own_predictor and not self._warm:
            self._warm_up(info)
        self.model_load_s += time.perf_counter() - t0

    def close(self) -> None:
        """Release a model this detector loaded (a remote model's connection); one the
        caller gave belongs to the caller. It stays described, and loads again on open."""
        if self._own_predictor and self.predictor is not None:
            close = getattr(self.predictor, "close", None)
            if close is not None:
                close()
            self._reload = True

    def _warm_up(self, info: StreamInfo) -> None:
        """One call at the run's batch size and frame shape, so one-time set-up (memory
        plans, kernel choices: 250 ms for TF Lite's first batch of 4) is paid here, in
        model_load_s and in the thread that opens the pipeline, not by the first frames."""
        probe = Frame.from_array(np.zeros((1, info.height, info.width, 3), np.uint8))
        w, h = self._model_size(probe) if self.input_size else (info.width, info.height)
        batch = min(self.batch_size, self._max_batch or self.batch_size)
        self._predict(np.zeros((batch, h, w, 3), np.uint8))
        self._warm = True

    def _predict(self, images: np.ndarray) -> Mapping[str, Any]:
        assert self.predictor is not None  # open() ran
        if self._lock is None:
            return self.predictor({"inputs": images})
        with self._lock:
            return self.predictor({"inputs": images})

    def process_batch(self, frames: list[Frame]) -> list[Frame | None]:
        return list(self._detect_all(frames))

    def process(self, frame: Frame) -> Frame:
        return self._detect_all([frame])[0]

    def _detect_all(self, frames: list[Frame]) -> list[Frame]:
        if self.predictor is None:
            self.open()
        out: list[Frame] = []
        step = self._max_batch or len(frames)
        for run in _same_size_runs(frames):
            for start in range(0, len(run), step):
                out.extend(self._detect(run[start : start + step]))
        return out

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
        result = self._predict(batch)
        get = self._getter(result)
        boxes, scores, classes = get("boxes"), get("scores"), get("classes")
        num = get("num", required=False)
        out = []
        for i, f in enumerate(frames):
            dets = Detections.from_od_api(
                boxes[i], scores[i], classes[i], f.width, f.height,
                num=None if num is None else float(np.reshape(num, -1)[i]),
                threshold=self.threshold, labels=self.labels, keep=self.keep,
                low_floor=self.track_floor,
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

    def describe(self) -> dict[str, Any]:
        info: dict[str, Any] = {"batch_size": self.batch_size, "threshold": self.threshold}
        if self.track_floor is not None:
            info["track_floor"] = self.track_floor
        if self.predictor is not None:
            info.update(self.predictor.describe())
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
