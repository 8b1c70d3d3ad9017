"""TensorFlow backends: a TF2 SavedModel directory, or a TF1 frozen graph ``.pb``.

SavedModel names are signature keys (``input_tensor``, ``detection_boxes``); frozen-graph
names are tensor names (``image_tensor:0``; ``:0`` optional). TensorFlow functions may be
called from several threads at once, so both are ``thread_safe``.

>>> p = SavedModelPredictor("red_square", LoadOptions())          # doctest: +SKIP
>>> p.bind({"inputs": "input_tensor"}, None)                      # doctest: +SKIP
>>> p({"inputs": frames})["detection_boxes"].shape                # doctest: +SKIP
(1, 1, 4)
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ModelError, ModelNotFoundError, TensorNameError
from ..models.metadata import read_metadata
from ..tfruntime import import_tensorflow, resolve_device
from .base import LoadOptions, ModelBackend, check_feed, map_names


def is_saved_model_dir(ref: str) -> bool:
    """A directory (an empty one gets the SavedModel loader's precise error)."""
    return Path(ref).is_dir()


def is_frozen_graph(ref: str) -> bool:
    return Path(ref).suffix == ".pb" and Path(ref).is_file()


class _TFBackend(ModelBackend):
    thread_safe = True

    def __init__(self, ref: str | os.PathLike[str], options: LoadOptions) -> None:
        t0 = time.perf_counter()
        self.model_dir = str(ref)
        self._tf_device, self.device = resolve_device(options.use_ei, options.device)
        self.metadata = read_metadata(ref) if Path(ref).is_dir() else {}
        tf = import_tensorflow()
        with tf.device(self._tf_device):
            self._load(Path(ref), options)
        self.bind(None, None)
        self.load_s = time.perf_counter() - t0

    def _load(self, path: Path, options: LoadOptions) -> None:
        raise NotImplementedError

    @property
    def input_size(self) -> tuple[int, int] | None:  # type: ignore[override]
        """``(width, height)`` from the metadata, else from a fixed input shape."""
        size = self.metadata.get("input_size")
        if size:
            return int(size[0]), int(size[1])
        shapes = [s for s, _ in self.input_specs.values()]
        if len(shapes) == 1 and len(shapes[0]) == 4 and shapes[0][1] and shapes[0][2]:
            return int(shapes[0][2]), int(shapes[0][1])
        return None

    @property
    def resize(self) -> str:  # type: ignore[override]
        return str(self.metadata.get("resize", "stretch"))

    @property
    def max_batch(self) -> int | None:  # type: ignore[override]
        if self.metadata.get("max_batch") is not None:
            return int(self.metadata["max_batch"])
        shapes = [s for s, _ in self.input_specs.values()]
        if len(shapes) == 1 and len(shapes[0]) == 4 and shapes[0][0]:
            return int(shapes[0][0])
        return None


class SavedModelPredictor(_TFBackend):
    """A TF2 SavedModel's signature (``serving_default`` unless told)."""

    format = "saved_model"

    def _load(self, path: Path, options: LoadOptions) -> None:
        if not (path / "saved_model.pb").exists() and not (path / "saved_model.pbtxt").exists():
            raise ModelNotFoundError(
                f"{path}: directory holds no saved_model.pb (expected a TF2 "
                "SavedModel directory or a frozen graph .pb file)"
            )
        tf = import_tensorflow()
        try:
            self._model = tf.saved_model.load(str(path))
        except Exception as e:
            raise ModelError(f"{path}: cannot load SavedModel: {first_line(e)}") from e
        signatures = dict(getattr(self._model, "signatures", {}) or {})
        if options.signature not in signatures:
            raise TensorNameError(
                f"{path}: no signature {options.signature!r}; the model has: "
                f"{', '.join(signatures) or 'none'}",
                param="signature",
            )
        self._fn = signatures[options.signature]
        specs = self._fn.structured_input_signature[1]
        self._dtypes = {k: v.dtype for k, v in specs.items()}
        self.input_specs = {k: (tuple(v.shape.as_list()), np.dtype(v.dtype.as_numpy_dtype))
                            for k, v in specs.items()}
        self.model_inputs = list(specs)
        self.model_outputs = sorted(self._fn.structured_outputs)

    def bind(self, input_names: Mapping[str, str] | None,
             output_names: Mapping[str, str] | None) -> None:
        self.inputs = map_names(input_names, self.model_inputs, "input", self.model_dir)
        self.outputs = map_names(output_names, self.model_outputs, "output", self.model_dir)

    def __call__(self, feed: Mapping[str, Any]) -> dict[str, np.ndarray]:
        check_feed(feed, self.inputs)
        tf = import_tensorflow()
        with tf.device(self._tf_device):
            args = {name: tf.convert_to_tensor(feed[k], dtype=self._dtypes[name])
                    for k, name in self.inputs.items()}
            result = self._fn(**args)
            return {k: result[name].numpy() for k, name in self.outputs.items()}


class FrozenGraphPredictor(_TFBackend):
    """A TF1 frozen graph (GraphDef protobuf), pruned to the bound inputs and outputs."""

    format = "frozen_graph"

    def _load(self, path: Path, options: LoadOptions) -> None:
        tf = import_tensorflow()
        graph_def = tf.compat.v1.GraphDef()
        try:
            graph_def.ParseFromString(path.read_bytes())
        except Exception as e:
            raise ModelError(f"{path}: not a frozen graph (GraphDef protobuf): {e}") from e
        if not graph_def.node:
            raise ModelError(f"{path}: not a frozen graph (no nodes)")
        placeholders = [n.name for n in graph_def.node if n.op == "Placeholder"]
        consumed = {i.split(":")[0].lstrip("^") for n in graph_def.node for i in n.input}
        terminal = [n.name for n in graph_def.node if n.name not in consumed and n.op != "Const"]

        def _import() -> None:
            tf.compat.v1.import_graph_def(graph_def, name="")

        try:
            self._wrapped = tf.compat.v1.wrap_function(_import, [])
        except Exception as e:
            raise ModelError(f"{path}: cannot import graph: {first_line(e)}") from e
        self.model_inputs = placeholders
        self.model_outputs = terminal

    @property
    def output_keys(self) -> list[str]:
        return [n + ":0" for n in self.model_outputs]

    def bind(self, input_names: Mapping[str, str] | None,
             output_names: Mapping[str, str] | None) -> None:
        tf = import_tensorflow()
        graph = self._wrapped.graph
        if input_names is None:
            input_names = {p: p + ":0" for p in self.model_inputs}
        if output_names is None:
            output_names = {t: t + ":0" for t in self.model_outputs}

        def tensor(name: str, kind: str, known: list[str]) -> Any:
            full = name if ":" in name else name + ":0"
            try:
                return graph.get_tensor_by_name(full)
            except (KeyError, ValueError):
                raise TensorNameError(
                    f"{self.model_dir}: the model has no {kind} tensor {name!r}; it has: "
                    f"{', '.join(n + ':0' for n in known) or 'none'}"
                ) from None

        feeds = [tensor(n, "input", self.model_inputs) for n in input_names.values()]
        fetches = [tensor(n, "output", self.model_outputs) for n in output_names.values()]
        self.inputs = dict(input_names)
        self.outputs = dict(output_names)
        self._dtypes = {n: t.dtype for n, t in zip(self.inputs.values(), feeds, strict=True)}
        self.input_specs = {
            n: (tuple(t.shape.as_list()) if t.shape.rank is not None else (),
                np.dtype(t.dtype.as_numpy_dtype))
            for n, t in zip(self.inputs.values(), feeds, strict=True)
        }
        with tf.device(self._tf_device):
            self._fn = self._wrapped.prune(feeds=feeds, fetches=fetches)

    def __call__(self, feed: Mapping[str, Any]) -> dict[str, np.ndarray]:
        check_feed(feed, self.inputs)
        tf = import_tensorflow()
        with tf.device(self._tf_device):
            args = [tf.convert_to_tensor(feed[k], dtype=self._dtypes[name])
                    for k, name in self.inputs.items()]
            result = self._fn(*args)
            if not isinstance(result, list | tuple):
                result = [result]
            return {k: r.numpy() for k, r in zip(self.outputs, result, strict=True)}


def first_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return text[0] if text else type(e).__name__
