"""The Triton server process: runs in the serve environment, not in vidstream's.

Started by :class:`vidstream.serve.Server` as ``SERVE_ENV/bin/python _triton_main.py CONFIG``
(``CONFIG``: a JSON object). It imports only what the serve environment has (PyTriton,
TensorFlow, numpy < 2), never vidstream itself, whose own requirements need numpy >= 2.

PyTriton starts the real ``tritonserver`` binary and binds the model as a Python-backend
model with Triton's dynamic batcher: requests from any number of clients that arrive within
``max_queue_delay_ms`` of each other run as one batch, up to ``max_batch`` images. The model
is a SavedModel with the Object Detection API signature (``serving_default``: uint8 images
in, ``detection_*`` out); its ``vidstream.json``, when present, fixes the input size, so that
clients letterbox frames to it before sending and every request can join every batch.

With ``backend`` ``tflite`` (or ``auto``, a ``tflite`` network in the config and no GPU
visible to TensorFlow) the model is instead the TF Lite network beside the SavedModel, on
XNNPACK: the same input and outputs, decoded here exactly as vidstream's TF Lite backend
decodes them (``vidstream/backends/tflite.py``), with the parameters ``vidstream serve`` read
from ``vidstream.json`` and sent in the config.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

Outputs = dict[str, tuple[Any, tuple[int, ...]]]
BACKENDS = ("auto", "tf", "tflite")


def choose_backend(requested: str, has_tflite: bool, gpus: int) -> tuple[str, str]:
    """``(backend, why)``: ``auto`` takes TF Lite only where vidstream's own ``auto`` would,
    a TF Lite network beside the model and no GPU for TensorFlow to run it on.

    >>> choose_backend("auto", True, 0)
    ('tflite', 'auto: a TF Lite network and no GPU')
    >>> choose_backend("auto", True, 1)[0], choose_backend("auto", False, 0)[0]
    ('tf', 'tf')
    """
    if requested not in BACKENDS:
        raise SystemExit(f"unknown backend {requested!r}; use {', '.join(BACKENDS)}")
    if requested == "tflite" and not has_tflite:
        raise SystemExit("backend tflite: the model has no TF Lite network")
    if requested != "auto":
        return requested, "requested"
    if not has_tflite:
        return "tf", "auto: no TF Lite network"
    if gpus:
        return "tf", "auto: a GPU is visible to TensorFlow"
    return "tflite", "auto: a TF Lite network and no GPU"


def _input_dims(path: Path, dims: tuple[int, ...]) -> tuple[int, ...]:
    meta = path / "vidstream.json"
    if meta.is_file():
        size = json.loads(meta.read_text()).get("input_size")
        if size:
            return (int(size[1]), int(size[0]), 3)
    return dims


def _model_io(path: Path) -> tuple[Any, str, tuple[int, ...], Outputs]:
    import tensorflow as tf

    loaded = tf.saved_model.load(str(path))
    sig = loaded.signatures["serving_default"]
    specs = sig.structured_input_signature[1]
    if len(specs) != 1:
        raise SystemExit(f"{path}: expected one image input, the model has {sorted(specs)}")
    name, spec = next(iter(specs.items()))
    dims = _input_dims(path, tuple(-1 if d is None else int(d) for d in spec.shape[1:]))
    outputs = {}
    for key, out in sig.structured_outputs.items():
        shape = tuple(-1 if d is None else int(d) for d in out.shape[1:]) or (1,)
        outputs[key] = (out.dtype.as_numpy_dtype, shape)
    return (loaded, sig), name, dims, outputs


def _tf_model(path: Path) -> tuple[list[Callable[..., Any]], Any, str, tuple[int, ...],
                                   Outputs]:
    """One infer function on the SavedModel (TensorFlow runs concurrent calls safely)."""
    (keep, sig), in_name, in_dims, outputs = _model_io(path)
    # One call now: TensorFlow builds its kernels here, not during the first client's request.
    sig(**{in_name: np.zeros((1, *(d if d > 0 else 64 for d in in_dims)), np.uint8)})

    def infer(**inputs: np.ndarray) -> dict[str, np.ndarray]:
        images = inputs[in_name]
        result = sig(**{in_name: images})
        n = len(images)
        return {k: np.asarray(result[k]).astype(dtype, copy=False).reshape(n, *shape)
                for k, (dtype, shape) in outputs.items()}

    return [infer], keep, in_name, in_dims, outputs


def _load_decoding() -> Any:
    """vidstream's own CenterNet decoding (``vidstream/backends/centernet_decode.py``), loaded
    by its path: this process cannot import the vidstream package (its numpy is < 2), and that
    one file needs numpy alone."""
    import importlib.util

    path = Path(__file__).resolve().parent.parent / "backends" / "centernet_decode.py"
    spec = importlib.util.spec_from_file_location("_vidstream_centernet_decode", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_decoding = _load_decoding()


def decode(lite: dict[str, Any], scores: np.ndarray, idx: np.ndarray, ltrb: np.ndarray,
           size: tuple[int, int]) -> dict[str, np.ndarray]:
    """The network's peaks as Object Detection API outputs, for images that fill the input
    (clients letterbox before sending)."""
    w, h = size
    return _decoding.decode(scores, idx, ltrb, input_width=w, stride=lite["stride"],
                            num_classes=lite["num_classes"], classes=lite["classes"],
                            max_detections=lite["max_detections"],
                            min_score=lite["min_score"], nms_iou=lite["nms_iou"],
                            height=h, width=w)


def _lite_infer(lite: dict[str, Any], threads: int, size: tuple[int, int]
                ) -> Callable[..., dict[str, np.ndarray]]:
    """An infer function with its own interpreter: TF Lite interpreters hold one set of
    tensors, so each model instance needs one. Each batch runs image by image on a batch-1
    interpreter: as fast per image as resizing the input to the batch here (2 CPUs, XNNPACK),
    and never re-plans the network when batch sizes vary."""
    import tensorflow as tf

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tf.lite.Interpreter's deprecation notice
        interp = tf.lite.Interpreter(model_path=lite["path"], num_threads=threads)
    w, h = size
    index = interp.get_input_details()[0]["index"]
    interp.resize_tensor_input(index, [1, h, w, 3])
    interp.allocate_tensors()
    buf = np.zeros((1, h, w, 3), np.float32)

    def run(image: np.ndarray) -> list[np.ndarray]:
        buf[0] = image
        interp.set_tensor(index, buf)
        interp.invoke()
        return [interp.get_tensor(d["index"])[0] for d in interp.get_output_details()]

    def infer(**inputs: np.ndarray) -> dict[str, np.ndarray]:
        images = next(iter(inputs.values()))
        outs = [np.stack(o) for o in zip(*(run(img) for img in images), strict=True)]
        # Told apart as vidstream's TF Lite backend does: the converter's outputs are the
        # box sides (B, K, 4), the peak indices (B, K) int, the peak scores (B, K) float.
        ltrb = next(o for o in outs if o.ndim == 3)
        idx = next(o for o in outs if o.ndim == 2 and np.issubdtype(o.dtype, np.integer))
        scores = next(o for o in outs if o.ndim == 2 and np.issubdtype(o.dtype, np.floating))
        found = decode(lite, scores, idx, ltrb, size)
        found["num_detections"] = found["num_detections"].reshape(-1, 1)
        return found

    run(np.zeros((h, w, 3), np.uint8))  # XNNPACK plans here, not in a client's request
    return infer


def _lite_model(path: Path, lite: dict[str, Any], threads: int, instances: int
                ) -> tuple[list[Callable[..., Any]], Any, str, tuple[int, ...], Outputs]:
    """The SavedModel's input and outputs, served by the TF Lite network beside it."""
    h, w, _ = _input_dims(path, (-1, -1, 3))
    if h < 0:
        raise SystemExit(f"{path}: TF Lite needs the input size; vidstream.json has none")
    most = int(lite["max_detections"])
    outputs: Outputs = {"detection_boxes": (np.float32, (most, 4)),
                        "detection_scores": (np.float32, (most,)),
                        "detection_classes": (np.float32, (most,)),
                        "num_detections": (np.float32, (1,))}
    infers = [_lite_infer(lite, threads, (w, h)) for _ in range(instances)]
    return infers, None, "input_tensor", (h, w, 3), outputs


def _gpus() -> int:
    import tensorflow as tf

    return len(tf.config.list_physical_devices("GPU"))


def main(config: dict[str, Any]) -> None:
    from pytriton.decorators import batch
    from pytriton.model_config import DynamicBatcher, ModelConfig, Tensor
    from pytriton.triton import Triton, TritonConfig, TritonSecurityConfig

    logging.basicConfig(level=logging.WARNING, format="triton: %(levelname)s: %(message)s")
    t0 = time.perf_counter()
    path, lite = Path(config["model"]), config.get("tflite")
    instances = max(1, int(config["instances"]))
    requested = config.get("backend", "auto")
    # Only auto with a TF Lite network depends on the GPUs: an explicit choice is obeyed.
    gpus = _gpus() if requested == "auto" and lite else 0
    backend, why = choose_backend(requested, bool(lite), gpus)
    if backend == "tflite" and lite:
        threads = int(config.get("threads") or os.cpu_count() or 1)
        infers, keep, in_name, in_dims, outputs = _lite_model(path, lite, threads, instances)
        detail = f"TF Lite XNNPACK on the CPU, {threads} threads per instance"
    else:
        infers, keep, in_name, in_dims, outputs = _tf_model(path)
        infers = infers * instances
        detail = f"TensorFlow on the {'GPU' if _gpus() else 'CPU'}"
    # One line that `vidstream serve` reads back from this log to say which backend runs.
    print(f"triton: backend {backend} ({detail}; {why})", flush=True)
    print(f"triton: model loaded and warmed up in {time.perf_counter() - t0:.1f} s",
          flush=True)

    host = config["host"]
    triton_config = TritonConfig(
        grpc_address=host, grpc_port=config["grpc_port"],
        http_address=host, http_port=config["http_port"],
        metrics_address=host, metrics_port=config["metrics_port"],
        allow_metrics=True, allow_sagemaker=False, allow_vertex_ai=False,
        log_verbose=0, exit_on_error=True,
    )
    # PyTriton guards statistics with a random token by default; clients read them (only
    # counts: inferences, executions, batch sizes) to report the server's batching and to
    # price their share of the accelerator. The endpoints that change or expose the server
    # (model repository, shared memory, trace, logging) stay behind the token.
    security = TritonSecurityConfig(
        restricted_endpoints=["shared-memory", "model-repository", "trace", "logging"])
    model_config = ModelConfig(
        max_batch_size=config["max_batch"],
        batcher=DynamicBatcher(
            max_queue_delay_microseconds=int(config["max_queue_delay_ms"] * 1000)),
    )

    def on_term(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt  # Triton.serve() stops the server on it

    signal.signal(signal.SIGTERM, on_term)
    with Triton(config=triton_config, security_config=security) as triton:
        triton.bind(
            model_name=config["name"],
            infer_func=[batch(f) for f in infers],
            inputs=[Tensor(name=in_name, dtype=np.uint8, shape=in_dims)],
            outputs=[Tensor(name=k, dtype=dtype, shape=shape)
                     for k, (dtype, shape) in outputs.items()],
            config=model_config,
            strict=False,
        )
        print("triton: serving", flush=True)
        triton.serve()
    del keep


if __name__ == "__main__":
    main(json.loads(sys.argv[1]))
