"""``vidstream serve``'s library side: a Triton server hosting a detection model.

The modern Elastic Inference: one server holds the model (on its accelerator, or its CPUs)
and many clients send it frames; Triton's dynamic batcher runs requests from every client
together. Clients name it as a model, ``triton://HOST:PORT/NAME``
(see :mod:`vidstream.backends.triton`).

>>> from vidstream.serve import Server, ServeConfig, model_for_serving
>>> path, name = model_for_serving("centernet")                        # doctest: +SKIP
>>> with Server(ServeConfig(model=path, name=name)) as server:         # doctest: +SKIP
...     detector = Detector(server.endpoint)

The server runs in a virtual environment of its own (PyTriton needs numpy < 2), created on
first use under the vidstream cache: :func:`ensure_env`.
"""

from __future__ import annotations

from ._env import REQUIREMENTS, ServeEnv, ServeEnvError, ensure_env, env_dir, find_env
from ._server import (
    SERVE_BACKENDS,
    ServeConfig,
    ServeError,
    Server,
    describe,
    model_for_serving,
    parse_metrics,
    server_config,
)

__all__ = [
    "REQUIREMENTS",
    "SERVE_BACKENDS",
    "ServeConfig",
    "ServeEnv",
    "ServeEnvError",
    "ServeError",
    "Server",
    "describe",
    "ensure_env",
    "env_dir",
    "find_env",
    "model_for_serving",
    "parse_metrics",
    "server_config",
]
