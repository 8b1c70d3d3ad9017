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
"""

from __future__ import annotations

import json
import logging
import signal
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np


def _model_io(path: Path
              ) -> tuple[Any, str, tuple[int, ...], dict[str, tuple[Any, tuple[int, ...]]]]:
    import tensorflow as tf

    loaded = tf.saved_model.load(str(path))
    sig = loaded.signatures["serving_default"]
    specs = sig.structured_input_signature[1]
    if len(specs) != 1:
        raise SystemExit(f"{path}: expected one image input, the model has {sorted(specs)}")
    name, spec = next(iter(specs.items()))
    dims = tuple(-1 if d is None else int(d) for d in spec.shape[1:])
    meta = path / "vidstream.json"
    if meta.is_file():
        size = json.loads(meta.read_text()).get("input_size")
        if size:
            dims = (int(size[1]), int(size[0]), 3)
    outputs = {}
    for key, out in sig.structured_outputs.items():
        shape = tuple(-1 if d is None else int(d) for d in out.shape[1:]) or (1,)
        outputs[key] = (out.dtype.as_numpy_dtype, shape)
    return (loaded, sig), name, dims, outputs


def main(config: dict[str, Any]) -> None:
    from pytriton.decorators import batch
    from pytriton.model_config import DynamicBatcher, ModelConfig, Tensor
    from pytriton.triton import Triton, TritonConfig, TritonSecurityConfig

    logging.basicConfig(level=logging.WARNING, format="triton: %(levelname)s: %(message)s")
    t0 = time.perf_counter()
    (keep, sig), in_name, in_dims, outputs = _model_io(Path(config["model"]))
    # One call now: TensorFlow builds its kernels here, not during the first client's request.
    sig(**{in_name: np.zeros((1, *(d if d > 0 else 64 for d in in_dims)), np.uint8)})
    print(f"triton: model loaded and warmed up in {time.perf_counter() - t0:.1f} s",
          flush=True)

    @batch
    def infer(**inputs: np.ndarray) -> dict[str, np.ndarray]:
        images = inputs[in_name]
        result = sig(**{in_name: images})
        n = len(images)
        return {k: np.asarray(result[k]).astype(dtype, copy=False).reshape(n, *shape)
                for k, (dtype, shape) in outputs.items()}

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
            infer_func=[infer] * max(1, int(config["instances"])),
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
