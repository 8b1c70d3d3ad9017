"""EIPredictor: TensorFlow's old Predictor call shape, whatever runs the model underneath.

The constructor and call of the EIPredictor write-up work word for word::

    ei_predictor = EIPredictor(
        model_dir=PATH_TO_FROZEN_GRAPH,
        input_names={"inputs": "image_tensor:0"},
        output_names={"detections_scores": "detection_scores:0",
                      "detection_classes": "detection_classes:0",
                      "detection_boxes": "detection_boxes:0",
                      "num_detections": "num_detections:0"},
        use_ei=True)
    outputs = ei_predictor({"inputs": frame})   # a dict of numpy arrays, keyed by your names

``model_dir`` is a model reference: a TF2 SavedModel directory (names are signature keys,
``name:0`` also accepted), a TF1 frozen graph ``.pb`` (tensor names, ``:0`` optional), or a
model vidstream converted, whose TF Lite network runs when the model runs on the CPU
(``backend="auto"``). The backend is chosen by :mod:`vidstream.backends`; the caller's names
are honoured by every one. Elastic Inference is retired: ``use_ei=True`` now means "use an
accelerator", a GPU visible to TensorFlow, and says once, clearly, when there is none.

A model is code (a graph can read and write files): load only models you trust.

>>> p = EIPredictor(models.path("centernet"), {"inputs": "input_tensor"})   # doctest: +SKIP
>>> p.format, p.thread_safe                                                  # doctest: +SKIP
('tflite', False)
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from typing import Any

import numpy as np

from .backends import LoadOptions, ModelBackend, resolve
from .backends.base import Predictor
from .backends.remote import remote_ref
from .backends.tensorflow import first_line
from .errors import ModelError
from .settings import DEFAULTS

# Other modules import these TensorFlow helpers from here; their home is tfruntime.
from .tfruntime import configure_threads, gpu_names, import_tensorflow, resolve_device

__all__ = [
    "EIPredictor",
    "Predictor",
    "configure_threads",
    "gpu_names",
    "import_tensorflow",
    "resolve_device",
]


class EIPredictor(Predictor):
    """Load a model once; call it with a dict, get a dict of numpy arrays.

    Keyword-only options: ``signature`` (SavedModels), ``device`` (``auto``, ``cpu`` or
    ``gpu``; None: ``auto`` if ``use_ei`` else ``cpu``), ``warmup`` (one call on random data
    now, timed as ``warmup_s``), ``backend`` (``auto``, ``tf``, ``tflite`` or a registered
    one) and ``threads`` (CPU threads, for TF Lite).

    ``endpoint`` (``triton://HOST:PORT/NAME`` or ``tfserving://...``): the model runs on that
    server, the accelerator shared over the network, as Elastic Inference's was; the call is
    unchanged. With ``fallback=True`` the local ``model_dir`` answers while the server is down.
    """

    def __init__(
        self,
        model_dir: str | os.PathLike[str],
        input_names: Mapping[str, str] | None = None,
        output_names: Mapping[str, str] | None = None,
        use_ei: bool = False,
        *,
        signature: str = "serving_default",
        device: str | None = None,
        warmup: bool = True,
        backend: str = DEFAULTS.backend,
        threads: int | None = None,
        endpoint: str | None = None,
        fallback: bool = False,
    ) -> None:
        t0 = time.perf_counter()
        self.model_dir = os.fspath(model_dir)
        options = LoadOptions(use_ei=use_ei, device=device, signature=signature,
                              threads=threads)
        ref = remote_ref(endpoint, model_dir, fallback) if endpoint else model_dir
        self.backend: ModelBackend = resolve(ref, backend=backend, options=options)
        if input_names is not None or output_names is not None:
            self.backend.bind(input_names, output_names)
        self.load_s = time.perf_counter() - t0
        self.warmup_s = 0.0
        if warmup:
            t1 = time.perf_counter()
            self.warm_up()
            self.warmup_s = time.perf_counter() - t1

    # -- what the backend says ---------------------------------------------------------------
    @property
    def format(self) -> str:
        """``saved_model``, ``frozen_graph``, ``tflite``... : what runs the model."""
        return self.backend.format

    @property
    def device(self) -> str:
        """Where the model runs, in words (``CPU (no GPU found)``, ``GPU (NVIDIA H100)``)."""
        return self.backend.device

    @property
    def metadata(self) -> Mapping[str, Any]:
        """The ``vidstream.json`` beside a converted model ({} for others)."""
        return self.backend.metadata

    @property
    def inputs(self) -> dict[str, str]:
        """``{your input name: the model's}``."""
        return self.backend.inputs

    @property
    def outputs(self) -> dict[str, str]:
        """``{your output name: the model's}``."""
        return self.backend.outputs

    @property
    def output_keys(self) -> list[str]:
        """Every output the model has, bound or not."""
        return self.backend.output_keys

    @property
    def model_inputs(self) -> list[str]:
        """Every input the model has."""
        return self.backend.model_inputs

    @property
    def input_specs(self) -> dict[str, tuple[tuple[int | None, ...], np.dtype]]:
        """``{model input name: (shape, numpy dtype)}``; a None dimension takes any size."""
        return self.backend.input_specs

    @property
    def input_size(self) -> tuple[int, int] | None:  # type: ignore[override]
        """``(width, height)`` the model prefers its images at, when it says so."""
        return self.backend.input_size

    @property
    def resize(self) -> str:  # type: ignore[override]
        """How the model fits images to ``input_size``: ``letterbox`` or ``stretch``."""
        return self.backend.resize

    @property
    def max_batch(self) -> int | None:  # type: ignore[override]
        """The largest batch the model takes (None: any)."""
        return self.backend.max_batch

    @property
    def thread_safe(self) -> bool:  # type: ignore[override]
        """Whether two threads may call it at once (False for TF Lite)."""
        return self.backend.thread_safe

    # -- calling -------------------------------------------------------------------------------
    def rename(self, input_names: Mapping[str, str] | None = None,
               output_names: Mapping[str, str] | None = None) -> EIPredictor:
        """Answer to other names without loading the model again (None: the model's own)."""
        self.backend.bind(input_names, output_names)
        return self

    def __call__(self, feed: Mapping[str, Any]) -> dict[str, np.ndarray]:
        return self.backend(feed)

    def warm_up(self) -> None:
        """One call on random data (as the seed did, ``(1, 100, 100, 3)`` for images)."""
        rng = np.random.default_rng(0)
        feed = {}
        for caller, name in self.inputs.items():
            shape, dtype = self.input_specs[name]
            if not shape:
                shape = (1, 100, 100, 3)
            concrete = [d if d else (1 if i == 0 else 3 if i == len(shape) - 1 else 100)
                        for i, d in enumerate(shape)]
            if np.issubdtype(dtype, np.integer):
                feed[caller] = rng.integers(0, 255, concrete).astype(dtype)
            else:
                feed[caller] = rng.random(concrete).astype(dtype)
        try:
            self(feed)
        except Exception as e:
            raise ModelError(f"{self.model_dir}: warm-up call failed: {first_line(e)}") from e

    def describe(self) -> dict[str, Any]:
        """``model``, ``model_dir``, ``model_format`` and ``device``, for the run summary."""
        return self.backend.describe()

    def close(self) -> None:
        """Release what the model holds open (a remote model's connection and its request
        threads); :meth:`describe` still answers afterwards."""
        self.backend.close()
