"""Start, watch and stop a Triton server hosting a detection model.

>>> config = ServeConfig(model="/models/centernet", name="centernet")
>>> config.endpoint
'triton://127.0.0.1:8001/centernet'
"""

from __future__ import annotations

import ipaddress
import json
import logging
import os
import re
import signal
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

from ..errors import ConfigError, VidstreamError
from ..settings import DEFAULTS
from ._env import ServeEnv, ensure_env

log = logging.getLogger("vidstream")

Progress = Callable[[str], None]
_MAIN = Path(__file__).with_name("_triton_main.py")
SERVE_BACKENDS = ("auto", "tf", "tflite")
_BACKEND_LINE = re.compile(r"^triton: backend (\w+) \((.*)\)$", re.M)


class ServeError(VidstreamError, RuntimeError):
    """The server did not start, or died; the message ends with the last lines of its log."""


@dataclass(frozen=True)
class ServeConfig:
    """What ``vidstream serve`` hosts, and where. Defaults come from :data:`DEFAULTS`."""

    model: str  # a SavedModel directory (Object Detection API signature)
    name: str
    host: str = DEFAULTS.serve_host
    grpc_port: int = DEFAULTS.serve_grpc_port
    http_port: int = DEFAULTS.serve_http_port
    metrics_port: int = DEFAULTS.serve_metrics_port
    max_batch: int = DEFAULTS.serve_max_batch
    max_queue_delay_ms: float = DEFAULTS.serve_max_queue_delay_ms
    instances: int = DEFAULTS.serve_instances
    # "tflite": the TF Lite network beside the SavedModel (XNNPACK, CPU); "auto": that when
    # the model has one and the server has no GPU, as vidstream's own backend="auto" does.
    backend: str = DEFAULTS.serve_backend
    threads: int | None = None  # TF Lite threads per instance; None: the server's CPU count

    def __post_init__(self) -> None:
        if not re.fullmatch(r"[A-Za-z0-9._-]+", self.name):
            raise ConfigError(f"model name {self.name!r}: letters, digits, '.', '_', '-' only",
                              param="name")
        if self.max_batch < 1 or self.instances < 1 or self.max_queue_delay_ms < 0:
            raise ConfigError("max_batch and instances must be >= 1, max_queue_delay_ms >= 0",
                              param="max_batch")
        ports = (self.grpc_port, self.http_port, self.metrics_port)
        if len(set(ports)) != 3 or not all(0 < p < 65536 for p in ports):
            raise ConfigError(f"ports {ports}: expected three different ports 1-65535",
                              param="grpc_port")
        if self.backend not in SERVE_BACKENDS:
            raise ConfigError(f"backend {self.backend!r}: expected one of "
                              f"{', '.join(SERVE_BACKENDS)}", param="backend")
        if self.threads is not None and self.threads < 1:
            raise ConfigError("threads must be >= 1", param="threads")

    @property
    def loopback(self) -> bool:
        """Whether only this machine can reach the server."""
        if self.host == "localhost":
            return True
        try:
            return ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            return False

    @property
    def endpoint(self) -> str:
        """What clients pass as ``--model``: ``triton://HOST:PORT/NAME``."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"triton://{host}:{self.grpc_port}/{self.name}"

    def url(self, port: int, path: str) -> str:
        host = "127.0.0.1" if self.host in ("0.0.0.0", "") else self.host
        host = "[::1]" if host == "::" else f"[{host}]" if ":" in host else host
        return f"http://{host}:{port}{path}"


def server_config(config: ServeConfig) -> dict[str, Any]:
    """What the server process is started with: ``config`` and, when the model directory
    has a TF Lite network (vidstream's own test, :func:`~vidstream.backends.tflite.tflite_file`),
    its path and decoding parameters, so the server decodes as the local TF Lite backend does.
    The server, which alone knows its GPUs, settles ``auto``."""
    from ..backends.tflite import decoding, tflite_file
    from ..labels import COCO80_TO_COCO90
    from ..models.metadata import read_metadata

    path = tflite_file(config.model) if config.backend != "tf" else None
    if config.backend == "tflite" and path is None:
        raise ConfigError(f"{config.model}: has no TF Lite network (only converted default "
                          "models do); use --backend tf or auto", param="backend")
    lite = None
    if path is not None:
        lite = {"path": str(path), **decoding(read_metadata(path)),
                "classes": list(COCO80_TO_COCO90)}
    return {**asdict(config), "tflite": lite}


def parse_metrics(text: str, model: str | None = None) -> dict[str, float]:
    """Triton's Prometheus text as ``{metric: value}``, summed over the labels of ``model``
    (or of every model).

    >>> parse_metrics('nv_inference_count{model="m",version="1"} 12\\n'
    ...               'nv_inference_exec_count{model="m",version="1"} 5\\n')
    {'nv_inference_count': 12.0, 'nv_inference_exec_count': 5.0}
    """
    out: dict[str, float] = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = re.match(r"([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)", line)
        if not m:
            continue
        name, labels, value = m.groups()
        if model is not None and f'model="{model}"' not in (labels or ""):
            continue
        try:
            out[name] = out.get(name, 0.0) + float(value)
        except ValueError:
            continue
    return out


class Server:
    """A Triton server process in the serve environment, hosting one model.

    >>> with Server(ServeConfig(model=path, name="centernet")) as server:  # doctest: +SKIP
    ...     p = EIPredictor(server.endpoint)
    ...     server.metrics()["nv_inference_count"]

    ``start()`` creates the serve environment when it is missing (see
    :func:`~vidstream.serve.ensure_env`), starts the process in its own process group, and
    returns once Triton's ``/v2/health/ready`` and the model answer. ``stop()`` sends SIGTERM
    (Triton unloads the model and exits), then SIGKILL to the group after ``grace`` seconds.
    """

    def __init__(self, config: ServeConfig, *, env: ServeEnv | None = None,
                 progress: Progress | None = None, log_file: Path | None = None) -> None:
        self.config = config
        self.env = env
        self.progress = progress or (lambda _m: None)
        self.log_file = log_file
        self.proc: subprocess.Popen[bytes] | None = None
        self.start_s = 0.0

    @property
    def endpoint(self) -> str:
        return self.config.endpoint

    def start(self, timeout: float = 180.0) -> Server:
        if self.proc is not None:
            return self
        if not self.config.loopback:
            log.warning("serving on %s: anyone who can reach this address can use the server; "
                        "it has no authentication", self.config.host)
        plan = server_config(self.config)  # a wrong --backend fails here, before any work
        self.env = self.env or ensure_env(self.progress)
        if self.log_file is None:
            fd, name = tempfile.mkstemp(prefix="vidstream-serve-", suffix=".log")
            os.close(fd)
            self.log_file = Path(name)
        t0 = time.perf_counter()
        self.progress(f"serve: starting Triton for {self.config.model} (log: {self.log_file})")
        with open(self.log_file, "ab") as out:
            self.proc = subprocess.Popen(
                [str(self.env.python), str(_MAIN), json.dumps(plan)],
                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                env=self.env.environ(), start_new_session=True,
            )
        try:
            self._wait_ready(t0 + timeout)
        except BaseException:
            self.stop()
            raise
        self.start_s = time.perf_counter() - t0
        return self

    def _wait_ready(self, deadline: float) -> None:
        assert self.proc is not None
        url = self.config.url(self.config.http_port, f"/v2/models/{self.config.name}/ready")
        while time.perf_counter() < deadline:
            if self.proc.poll() is not None:
                raise ServeError(f"the Triton server exited with code {self.proc.returncode} "
                                 f"before it was ready:\n{self.log_tail()}")
            if _get(url, 1.0) is not None:
                return
            time.sleep(0.25)
        raise ServeError(f"the Triton server was not ready within the timeout:\n"
                         f"{self.log_tail()}")

    @property
    def backend(self) -> tuple[str, str] | None:
        """``(backend, details)`` the running server chose (``tflite``, ``tf``), from its log;
        None before it has said."""
        try:
            text = Path(self.log_file).read_text(errors="replace") if self.log_file else ""
        except OSError:
            return None
        found = _BACKEND_LINE.findall(text)
        return (found[-1][0], found[-1][1]) if found else None

    def ready(self) -> bool:
        """Triton's own ``/v2/health/ready``."""
        return _get(self.config.url(self.config.http_port, "/v2/health/ready"), 2.0) is not None

    def metrics(self) -> dict[str, float]:
        """Triton's metrics for the model (``nv_inference_count``, ``nv_inference_exec_count``,
        ``nv_inference_compute_infer_duration_us``...)."""
        text = _get(self.config.url(self.config.metrics_port, "/metrics"), 5.0)
        if text is None:
            raise ServeError("the Triton server's metrics do not answer")
        return parse_metrics(text, self.config.name)

    def log_tail(self, lines: int = 15) -> str:
        try:
            text = Path(self.log_file).read_text(errors="replace") if self.log_file else ""
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def wait(self, timeout: float | None = None) -> int | None:
        """Block until the server exits (or ``timeout``); its exit code, or None."""
        if self.proc is None:
            return None
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def kill(self) -> None:
        """Kill the server at once (SIGKILL to its process group): a crash, for tests."""
        self._signal(signal.SIGKILL)
        if self.proc is not None:
            self.proc.wait()

    def stop(self, grace: float = 20.0) -> None:
        """SIGTERM, then SIGKILL to the whole group (tritonserver, its stubs) after ``grace``."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self._signal(signal.SIGTERM)
            try:
                self.proc.wait(grace)
            except subprocess.TimeoutExpired:
                pass
        self._signal(signal.SIGKILL)  # children that outlived the main process
        self.proc.wait()

    def _signal(self, sig: int) -> None:
        if self.proc is None:
            return
        try:
            os.killpg(self.proc.pid, sig)  # the group this server was started in, only
        except (ProcessLookupError, PermissionError):
            pass

    def __enter__(self) -> Server:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()


def _get(url: str, timeout: float) -> str | None:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.read().decode() if r.status == 200 else None
    except (urllib.error.URLError, OSError, ValueError):
        return None


def model_for_serving(model: str, progress: Progress | None = None) -> tuple[str, str]:
    """``(SavedModel directory, name to serve it as)`` for a model argument (a known name,
    pulled when missing, or a SavedModel directory)."""
    from .. import models
    from ..backends.tensorflow import is_saved_model_dir

    path = models.resolve(model, progress=progress)
    if not is_saved_model_dir(str(path)):
        raise ConfigError(f"{model}: the server hosts SavedModel directories (Object Detection "
                          "API signature); this is not one", param="model")
    name = model if model in models.REGISTRY else Path(path).name
    name = re.sub(r"[^A-Za-z0-9._-]", "_", name) or "model"
    return str(path), name


def describe(server: Server) -> dict[str, Any]:
    """What ``vidstream serve`` prints once the server is ready."""
    c = server.config
    backend, detail = server.backend or (None, None)
    return {
        "endpoint": c.endpoint,
        "backend": backend,
        "backend_detail": detail,
        "ready": c.url(c.http_port, "/v2/health/ready"),
        "metrics": c.url(c.metrics_port, "/metrics"),
        "max_batch": c.max_batch,
        "max_queue_delay_ms": c.max_queue_delay_ms,
        "instances": c.instances,
    }
