"""What every predictor declares (:class:`Predictor`) and what every backend builds on.

A predictor is called with a dict of arrays keyed by the caller's names and answers with a
dict of numpy arrays keyed by the caller's names. Everything else a detector needs to know
about it is a declared member with a default, so a test double can state only what differs:

>>> import numpy as np
>>> class Ones(Predictor):
...     input_size = (64, 64)                       # the rest keeps the defaults
...     def __call__(self, feed):
...         return {"detection_scores": np.ones((len(feed["inputs"]), 1), np.float32)}
>>> p = Ones()
>>> isinstance(p, Predictor), p.thread_safe, p.resize, p.max_batch
(True, True, 'stretch', None)
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from ..errors import TensorNameError

# A model reference: a path (SavedModel directory, .pb, .tflite) or, later, a URI.
ModelRef = str | os.PathLike[str]


@runtime_checkable
class Predictor(Protocol):
    """A model you call: ``predictor({"inputs": images}) -> {"detection_boxes": ..., ...}``.

    Subclass it to get the defaults below; an object that has every member matches it
    without subclassing.
    """

    #: ``(width, height)`` the model wants its images at (None: any size; the detector then
    #: passes frames at their own size).
    input_size: tuple[int, int] | None = None
    #: How images are fitted to ``input_size``: ``letterbox`` (keep the aspect ratio, pad) or
    #: ``stretch``. The detector scales frames the same way before the call.
    resize: str = "stretch"
    #: The largest batch one call takes (None: any); the detector splits bigger ones.
    max_batch: int | None = None
    #: False when two threads must not call it at once (TF Lite's interpreter): the detector
    #: then serialises calls to it with a lock held per predictor.
    thread_safe: bool = True
    #: Seconds spent loading the model, and on its first (warm-up) call.
    load_s: float = 0.0
    warmup_s: float = 0.0

    def __call__(self, feed: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Run the model on ``feed`` (arrays keyed by the caller's input names)."""
        ...

    def describe(self) -> dict[str, Any]:
        """Facts for the run summary: ``model``, ``model_format``, ``device``..."""
        return {}


@dataclass(frozen=True)
class LoadOptions:
    """How to load a model: what every backend factory is given besides the reference."""

    use_ei: bool = False  # the write-up's "use an accelerator": device None means auto
    device: str | None = None  # auto, cpu or gpu (None: from use_ei)
    signature: str = "serving_default"  # SavedModels
    threads: int | None = None  # CPU threads, for backends that take them (TF Lite)


class ModelBackend(Predictor):
    """A backend's predictor on one model: the :class:`Predictor` plus the names the model
    has, so the :class:`~vidstream.predictor.EIPredictor` facade can map the caller's names.

    A backend sets ``model_inputs``/``model_outputs`` (the model's own names, without
    ``:0``) when it loads, and implements :meth:`bind` and :meth:`__call__`. ``inputs`` and
    ``outputs`` map each caller name to a model name once bound.
    """

    format: str = "unknown"
    device: str = "unknown"
    model_dir: str = ""
    metadata: Mapping[str, Any] = {}
    model_inputs: list[str]
    model_outputs: list[str]
    inputs: dict[str, str]
    outputs: dict[str, str]
    #: model input name -> (shape, numpy dtype); a None dimension takes any size.
    input_specs: dict[str, tuple[tuple[int | None, ...], np.dtype]]

    def bind(self, input_names: Mapping[str, str] | None,
             output_names: Mapping[str, str] | None) -> None:
        """Map the caller's names to the model's (None: the model's own names)."""
        raise NotImplementedError

    @property
    def output_keys(self) -> list[str]:
        """Every output the model has, whether bound or not."""
        return list(self.model_outputs)

    def close(self) -> None:
        """Release what the backend holds open (a remote model's connection); a no-op for
        models in this process, whose memory goes with the object."""

    def describe(self) -> dict[str, Any]:
        return {
            "model": self.metadata.get("name") or Path(self.model_dir).name,
            "model_dir": self.model_dir,
            "model_format": self.format,
            "device": self.device,
        }


def map_names(names: Mapping[str, str] | None, available: list[str], kind: str, where: str,
              aliases: Mapping[str, str] | None = None) -> dict[str, str]:
    """``{caller name: model name}``; a model name may carry ``:0`` or be an alias.

    >>> map_names({"scores": "detection_scores:0"}, ["detection_scores"], "output", "m")
    {'scores': 'detection_scores'}
    >>> map_names({"b": "boxes"}, ["detection_boxes"], "output", "m")
    Traceback (most recent call last):
    ...
    vidstream.errors.TensorNameError: m: the model has no output 'boxes'; its outputs are: ...
    """
    if names is None:
        return {k: k for k in available}
    aliases = aliases or {}
    mapped = {}
    for caller, model_name in names.items():
        key = model_name if model_name in available else model_name.split(":")[0]
        key = aliases.get(key, key)
        if key not in available:
            raise TensorNameError(
                f"{where}: the model has no {kind} {model_name!r}; its {kind}s are: "
                f"{', '.join(sorted(available))}"
            )
        mapped[caller] = key
    return mapped


def check_feed(feed: Mapping[str, Any], inputs: Mapping[str, str]) -> None:
    """A clear error for a call whose keys are not the bound input names."""
    if set(feed) != set(inputs):
        raise TensorNameError(
            f"EIPredictor called with {sorted(feed)}; expected the keys {sorted(inputs)}"
        )
