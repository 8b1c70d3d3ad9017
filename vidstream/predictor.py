"""EIPredictor: TensorFlow's old Predictor call shape, on a SavedModel or a frozen graph.

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

``model_dir`` may be a TF2 SavedModel directory (names are signature keys, ``name:0`` also
accepted) or a TF1 frozen graph ``.pb`` (tensor names, ``:0`` optional). Elastic Inference is
retired: ``use_ei=True`` now means "use an accelerator", a GPU visible to TensorFlow, and says
once, clearly, when there is none and the model runs on the CPU.

A model is code (a graph can read and write files): load only models you trust.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from .errors import ModelError, ModelNotFoundError, TensorNameError

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # keep TensorFlow's C++ chatter off stderr

log = logging.getLogger("vidstream")

METADATA_FILE = "vidstream.json"  # written next to models vidstream converts
_warned_no_gpu = False


@contextlib.contextmanager
def quiet_stderr() -> Iterator[None]:
    """Keep native libraries' banners (CUDA probing, TF Lite delegates) off fd 2.

    What they printed is shown after all if the body raises, so real failures stay visible.
    """
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as capture:
        os.dup2(capture.fileno(), 2)
        try:
            yield
        except BaseException:
            os.dup2(saved, 2)
            capture.seek(0)
            sys.stderr.write(capture.read().decode(errors="replace"))
            raise
        finally:
            os.dup2(saved, 2)
            os.close(saved)


def import_tensorflow() -> Any:
    """TensorFlow, imported with its start-up banner kept off stderr."""
    if "tensorflow" in sys.modules:
        return sys.modules["tensorflow"]
    with quiet_stderr():
        import tensorflow as tf
    return tf


def gpu_names() -> list[str]:
    """Names of the GPUs TensorFlow sees (empty on a CPU-only machine)."""
    tf = import_tensorflow()
    names = []
    for dev in tf.config.list_physical_devices("GPU"):
        try:
            details = tf.config.experimental.get_device_details(dev)
            names.append(details.get("device_name", dev.name))
        except Exception:
            names.append(dev.name)
    return names


def configure_threads(intra_op: int | None = None, inter_op: int | None = None) -> bool:
    """Set TensorFlow's thread pools; only possible before its first op (returns success)."""
    tf = import_tensorflow()
    try:
        if intra_op:
            tf.config.threading.set_intra_op_parallelism_threads(intra_op)
        if inter_op:
            tf.config.threading.set_inter_op_parallelism_threads(inter_op)
        return True
    except RuntimeError:
        log.warning("TensorFlow is already initialised; thread settings left unchanged")
        return False


def resolve_device(use_ei: bool, device: str | None) -> tuple[str, str]:
    """``(tf device string, words for people)`` for the requested device."""
    global _warned_no_gpu
    want = (device or ("auto" if use_ei else "cpu")).lower()
    if want not in ("auto", "cpu", "gpu"):
        raise ModelError(f"unknown device {device!r}; use auto, cpu or gpu")
    if want == "cpu":
        return "/CPU:0", "CPU"
    gpus = gpu_names()
    if gpus:
        return "/GPU:0", f"GPU ({gpus[0]})"
    if want == "gpu":
        raise ModelError("no GPU is visible to TensorFlow (device gpu was requested)")
    if not _warned_no_gpu:
        log.warning("no GPU is visible to TensorFlow: the model runs on the CPU")
        _warned_no_gpu = True
    return "/CPU:0", "CPU (no GPU found)"


def read_metadata(model_dir: str | os.PathLike) -> dict:
    """The ``vidstream.json`` vidstream writes beside models it converts (empty if none)."""
    path = Path(model_dir)
    meta = (path if path.is_dir() else path.parent) / METADATA_FILE
    if path.is_dir() and meta.is_file():
        try:
            return json.loads(meta.read_text())
        except (OSError, json.JSONDecodeError):
            return {}
    return {}


class EIPredictor:
    """Load a TensorFlow model once; call it with a dict, get a dict of numpy arrays."""

    def __init__(
        self,
        model_dir: str | os.PathLike,
        input_names: Mapping[str, str] | None = None,
        output_names: Mapping[str, str] | None = None,
        use_ei: bool = False,
        *,
        signature: str = "serving_default",
        device: str | None = None,
        warmup: bool = True,
    ) -> None:
        tf = import_tensorflow()
        self.model_dir = str(model_dir)
        t0 = time.perf_counter()
        self._tf_device, self.device = resolve_device(use_ei, device)
        path = Path(model_dir)
        if not path.exists():
            raise ModelNotFoundError(
                f"{model_dir}: no such model (expected a SavedModel directory or a "
                "frozen graph .pb)"
            )
        self.metadata = read_metadata(path)
        with tf.device(self._tf_device):
            if path.is_dir():
                if not (path / "saved_model.pb").exists() and not (
                    path / "saved_model.pbtxt"
                ).exists():
                    raise ModelNotFoundError(
                        f"{model_dir}: directory holds no saved_model.pb (expected a TF2 "
                        "SavedModel directory or a frozen graph .pb file)"
                    )
                self.format = "saved_model"
                self._load_saved_model(path, signature, input_names, output_names)
            else:
                self.format = "frozen_graph"
                self._load_frozen_graph(path, input_names, output_names)
        self.load_s = time.perf_counter() - t0
        self.warmup_s = 0.0
        if warmup:
            t1 = time.perf_counter()
            self.warm_up()
            self.warmup_s = time.perf_counter() - t1

    # -- loading ---------------------------------------------------------------------------
    def _load_saved_model(
        self,
        path: Path,
        signature: str,
        input_names: Mapping[str, str] | None,
        output_names: Mapping[str, str] | None,
    ) -> None:
        tf = import_tensorflow()
        try:
            self._model = tf.saved_model.load(str(path))
        except Exception as e:
            raise ModelError(f"{path}: cannot load SavedModel: {_first_line(e)}") from e
        signatures = dict(getattr(self._model, "signatures", {}) or {})
        if signature not in signatures:
            raise TensorNameError(
                f"{path}: no signature {signature!r}; the model has: "
                f"{', '.join(signatures) or 'none'}"
            )
        self._fn = signatures[signature]
        specs = self._fn.structured_input_signature[1]
        outputs = self._fn.structured_outputs
        self.input_specs = {k: (tuple(v.shape.as_list()), v.dtype) for k, v in specs.items()}
        self.output_keys = sorted(outputs)
        self.inputs = self._map_names(input_names, list(specs), "input", path)
        self.outputs = self._map_names(output_names, list(outputs), "output", path)

    def _load_frozen_graph(
        self,
        path: Path,
        input_names: Mapping[str, str] | None,
        output_names: Mapping[str, str] | None,
    ) -> None:
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
        if input_names is None:
            input_names = {p: p + ":0" for p in placeholders}
        if output_names is None:
            output_names = {t: t + ":0" for t in terminal}

        def _import() -> None:
            tf.compat.v1.import_graph_def(graph_def, name="")

        try:
            wrapped = tf.compat.v1.wrap_function(_import, [])
        except Exception as e:
            raise ModelError(f"{path}: cannot import graph: {_first_line(e)}") from e
        graph = wrapped.graph

        def tensor(name: str, kind: str, known: list[str]) -> Any:
            full = name if ":" in name else name + ":0"
            try:
                return graph.get_tensor_by_name(full)
            except (KeyError, ValueError):
                raise TensorNameError(
                    f"{path}: the model has no {kind} tensor {name!r}; it has: "
                    f"{', '.join(n + ':0' for n in known) or 'none'}"
                ) from None

        self.inputs = {k: v for k, v in input_names.items()}
        self.outputs = {k: v for k, v in output_names.items()}
        feeds = [tensor(n, "input", placeholders) for n in self.inputs.values()]
        fetches = [tensor(n, "output", terminal) for n in self.outputs.values()]
        self.input_specs = {
            n: (tuple(t.shape.as_list()) if t.shape.rank is not None else (), t.dtype)
            for n, t in zip(self.inputs.values(), feeds, strict=True)
        }
        self.output_keys = [n + ":0" for n in terminal]
        self._fn = wrapped.prune(feeds=feeds, fetches=fetches)

    def _map_names(
        self,
        names: Mapping[str, str] | None,
        available: list[str],
        kind: str,
        path: Path,
    ) -> dict[str, str]:
        if names is None:
            return {k: k for k in available}
        mapped = {}
        for caller, model_name in names.items():
            key = model_name if model_name in available else model_name.split(":")[0]
            if key not in available:
                raise TensorNameError(
                    f"{path}: the model has no {kind} {model_name!r}; its {kind}s are: "
                    f"{', '.join(sorted(available))}"
                )
            mapped[caller] = key
        return mapped

    # -- calling ---------------------------------------------------------------------------
    @property
    def input_size(self) -> tuple[int, int] | None:
        """``(width, height)`` the model prefers its images at, when it says so."""
        size = self.metadata.get("input_size")
        if size:
            return int(size[0]), int(size[1])
        shapes = [s for s, _ in self.input_specs.values()]
        if len(shapes) == 1 and len(shapes[0]) == 4 and shapes[0][1] and shapes[0][2]:
            return int(shapes[0][2]), int(shapes[0][1])
        return None

    @property
    def resize(self) -> str:
        """How the model fits images to ``input_size``: ``letterbox`` (keep aspect, pad) or
        ``stretch``."""
        return str(self.metadata.get("resize", "stretch"))

    @property
    def max_batch(self) -> int | None:
        """The largest batch the model takes (None: any)."""
        if self.metadata.get("max_batch") is not None:
            return int(self.metadata["max_batch"])
        shapes = [s for s, _ in self.input_specs.values()]
        if len(shapes) == 1 and len(shapes[0]) == 4 and shapes[0][0]:
            return int(shapes[0][0])
        return None

    def __call__(self, feed: Mapping[str, Any]) -> dict[str, np.ndarray]:
        tf = import_tensorflow()
        missing = [k for k in self.inputs if k not in feed]
        unknown = [k for k in feed if k not in self.inputs]
        if missing or unknown:
            raise TensorNameError(
                f"EIPredictor called with {sorted(feed)}; expected the keys {sorted(self.inputs)}"
            )
        with tf.device(self._tf_device):
            if self.format == "saved_model":
                args = {
                    self.inputs[k]: tf.convert_to_tensor(
                        feed[k], dtype=self.input_specs[self.inputs[k]][1]
                    )
                    for k in self.inputs
                }
                result = self._fn(**args)
                return {k: result[name].numpy() for k, name in self.outputs.items()}
            args = [
                tf.convert_to_tensor(feed[k], dtype=self.input_specs[self.inputs[k]][1])
                for k in self.inputs
            ]
            result = self._fn(*args)
            if not isinstance(result, list | tuple):
                result = [result]
            return {k: r.numpy() for k, r in zip(self.outputs, result, strict=True)}

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
            np_dtype = dtype.as_numpy_dtype
            if np.issubdtype(np_dtype, np.integer):
                feed[caller] = rng.integers(0, 255, concrete).astype(np_dtype)
            else:
                feed[caller] = rng.random(concrete).astype(np_dtype)
        try:
            self(feed)
        except Exception as e:
            raise ModelError(f"{self.model_dir}: warm-up call failed: {_first_line(e)}") from e

    def describe(self) -> dict:
        return {
            "model": self.metadata.get("name") or Path(self.model_dir).name,
            "model_dir": self.model_dir,
            "model_format": self.format,
            "device": self.device,
        }


def _first_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return text[0] if text else type(e).__name__
