"""Predictors whose model runs on a server: what ``triton://`` and ``tfserving://`` share.

A remote model is named by a URI, ``SCHEME://HOST:PORT/MODEL``, with optional query
parameters: ``timeout`` (seconds a call may take, retries included), ``inflight`` (requests
one client keeps in flight so the server can batch them with other clients') and
``fallback`` (a local model, name or path, run while the server is down)::

    triton://127.0.0.1:8001/centernet?timeout=5&fallback=centernet

>>> e = Endpoint.parse("triton://127.0.0.1:8001/centernet?timeout=5&fallback=centernet")
>>> e.url, e.timeout, e.fallback, e.inflight
('triton://127.0.0.1:8001/centernet', 5.0, 'centernet', 4)

The client fits each frame to the model's input before sending it (letterboxed: scaled to
fit and padded, 0.79 MB per frame at 512x512 instead of 6.2 MB raw 1080p), sends the uint8
pixels as raw tensor bytes, splits a batch into up to ``inflight`` concurrent requests, and
maps the boxes back to the frame it was given. A server that does not answer is retried
with backoff until the call's ``timeout``; then the call fails with one
:class:`RemoteUnavailableError`, or, with a fallback, the local model answers (counted as
``fallback_frames``) and the server is tried again every ``probe_s``.

:meth:`RemotePredictor.describe` reports all of it under one key, ``remote``: the endpoint,
requests, frames, round trips (p50/p95), requests in flight, retries, MB sent, fallback
frames, outages, and, where the server says (Triton), its inferences, executions and batch
sizes since this client connected (see :mod:`vidstream.backends.remote_stats`).
"""

from __future__ import annotations

import logging
import math
import os
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import cv2
import numpy as np

from ..errors import ConfigError, ModelError
from ..settings import DEFAULTS
from ..sources.uri import mask_credentials
from .base import LoadOptions, ModelBackend, check_feed, map_names
from .remote_stats import RemoteStats, ServerCounts, ServerUsage

log = logging.getLogger("vidstream")

# The frozen-graph spelling of the input, so the write-up's names work here too.
ALIASES = {"image_tensor": "input_tensor"}
DEFAULT_PORTS = {"triton": 8001, "tfserving": 8500}


class RemoteError(ModelError, ConnectionError):
    """A model server refused or failed a call (wrong model name, a server-side error)."""


class RemoteUnavailableError(RemoteError, TimeoutError):
    """No model server answered within the call's timeout."""


@dataclass(frozen=True)
class Endpoint:
    """A parsed remote model reference."""

    scheme: str
    host: str
    port: int
    model: str
    version: str = ""
    timeout: float = DEFAULTS.remote_timeout
    inflight: int = DEFAULTS.remote_inflight
    fallback: str | None = None
    probe_s: float = DEFAULTS.remote_probe_s
    extra: dict[str, str] = field(default_factory=dict)

    @classmethod
    def parse(cls, ref: str) -> Endpoint:
        """``SCHEME://HOST[:PORT]/MODEL[/VERSION][?timeout=S&inflight=N&fallback=MODEL]``."""
        parts = urlsplit(ref)
        scheme = parts.scheme
        if scheme not in DEFAULT_PORTS:
            raise ConfigError(f"{ref}: not a remote model URI (expected "
                              f"{' or '.join(s + '://' for s in DEFAULT_PORTS)})", param="model")
        path = [p for p in parts.path.split("/") if p]
        if not parts.hostname or not path or len(path) > 2:
            raise ConfigError(f"{ref}: expected {scheme}://HOST:PORT/MODEL", param="model")
        try:
            port = parts.port or DEFAULT_PORTS[scheme]
        except ValueError as e:
            raise ConfigError(f"{ref}: bad port: {e}", param="model") from None
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        known = {"timeout", "inflight", "fallback", "probe_s"}
        unknown = sorted(set(query) - known)
        if unknown:
            raise ConfigError(f"{ref}: unknown option(s) {', '.join(unknown)}; known: "
                              f"{', '.join(sorted(known))}", param="model")
        try:
            timeout = float(query.get("timeout", DEFAULTS.remote_timeout))
            inflight = int(query.get("inflight", DEFAULTS.remote_inflight))
            probe_s = float(query.get("probe_s", DEFAULTS.remote_probe_s))
        except ValueError as e:
            raise ConfigError(f"{ref}: {e}", param="model") from None
        if timeout <= 0 or inflight < 1 or probe_s <= 0:
            raise ConfigError(f"{ref}: timeout and probe_s must be > 0, inflight >= 1",
                              param="model")
        return cls(scheme, parts.hostname, port, path[0], path[1] if len(path) > 1 else "",
                   timeout, inflight, query.get("fallback") or None, probe_s)

    @property
    def address(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    @property
    def url(self) -> str:
        """The URI without its options: what summaries and errors show."""
        version = f"/{self.version}" if self.version else ""
        return f"{self.scheme}://{self.address}/{self.model}{version}"

    def with_fallback(self, model: str | os.PathLike[str]) -> Endpoint:
        return replace(self, fallback=os.fspath(model))


def is_remote(ref: str | os.PathLike[str]) -> bool:
    """Whether ``ref`` names a model on a server (``triton://``, ``tfserving://``).

    >>> is_remote("triton://h:8001/m"), is_remote("/models/m")
    (True, False)
    """
    return isinstance(ref, str) and ref.split("://", 1)[0] in DEFAULT_PORTS and "://" in ref


@dataclass(frozen=True)
class Letterbox:
    """Where a frame sits inside the model's input after :func:`letterbox`."""

    width: int  # the model's input
    height: int
    top: int
    left: int
    nh: int  # the fitted frame inside it
    nw: int

    def unbox(self, boxes: np.ndarray) -> np.ndarray:
        """Normalised ``[ymin, xmin, ymax, xmax]`` on the model's input -> on the frame."""
        out = np.empty_like(boxes, dtype=np.float32)
        out[..., 0] = (boxes[..., 0] * self.height - self.top) / self.nh
        out[..., 1] = (boxes[..., 1] * self.width - self.left) / self.nw
        out[..., 2] = (boxes[..., 2] * self.height - self.top) / self.nh
        out[..., 3] = (boxes[..., 3] * self.width - self.left) / self.nw
        return np.clip(out, 0.0, 1.0)


def letterbox(images: np.ndarray, size: tuple[int, int]) -> tuple[np.ndarray, Letterbox]:
    """Scale ``images`` (B, H, W, 3) to fit ``size`` (width, height), keeping the aspect
    ratio, and pad them centred with zeros: the same geometry the TF Lite backend uses.

    >>> x, box = letterbox(np.zeros((1, 1080, 1920, 3), np.uint8), (512, 512))
    >>> x.shape, (box.top, box.nh, box.nw)
    ((1, 512, 512, 3), (112, 288, 512))
    """
    batch, ih, iw = images.shape[:3]
    w, h = size
    scale = min(h / ih, w / iw)
    nh, nw = max(1, round(ih * scale)), max(1, round(iw * scale))
    top, left = (h - nh) // 2, (w - nw) // 2
    out = np.zeros((batch, h, w, 3), np.uint8)
    for i in range(batch):
        img = images[i]
        if (nh, nw) != (ih, iw):  # the detector usually hands over fitted images already
            img = cv2.resize(img, (nw, nh), interpolation=cv2.INTER_LINEAR)
        out[i, top : top + nh, left : left + nw] = img
    return out, Letterbox(w, h, top, left, nh, nw)


class Unavailable(Exception):
    """Raised by a protocol's ``_infer`` when the server cannot be reached (retry)."""


class RemotePredictor(ModelBackend):
    """Common client logic; a protocol implements :meth:`_metadata` and :meth:`_infer`.

    ``_metadata(timeout)`` returns ``(inputs, outputs, max_batch)`` with ``inputs`` as
    ``{name: (shape without batch, numpy dtype)}`` and ``outputs`` a list of names;
    ``_infer(name, batch, outputs, timeout)`` returns ``{output: array}``. Both raise
    :class:`Unavailable` when no server answers, :class:`RemoteError` for anything else.
    ``_server_counts(timeout)`` returns the server's :class:`ServerCounts` for the model, or
    None where the protocol has no statistics (the default).
    """

    #: How often :meth:`describe` may ask the server for its counts (seconds).
    server_read_s = 1.0

    thread_safe = True  # requests are independent; the fallback has its own lock
    resize = "letterbox"
    scheme = ""

    def __init__(self, ref: str, options: LoadOptions) -> None:
        t0 = time.perf_counter()
        self.endpoint = Endpoint.parse(ref)
        self.format = self.endpoint.scheme
        self.model_dir = self.endpoint.url
        self.metadata = {"name": self.endpoint.model}
        self.stats = RemoteStats()
        self._stats_lock = threading.Lock()
        self._down_until = 0.0  # with a fallback: skip the server until then
        self._closed = False
        self.fallback: ModelBackend | None = None
        self._fallback_lock = threading.Lock()
        if self.endpoint.fallback:
            self.fallback = _load_fallback(self.endpoint.fallback, options)
        self._connect()
        self._server = ServerUsage(self._server_counts)
        try:
            inputs, outputs, max_batch = self._retrying(self._metadata, "connect")
        except RemoteUnavailableError:
            if self.fallback is None:
                raise
            self._went_down("it did not answer at start")
            self._server.start(None)  # counts start when the server comes up
            fb = self.fallback
            inputs = {k: (tuple(v[0][1:]), v[1]) for k, v in fb.input_specs.items()}
            outputs, max_batch = list(fb.model_outputs), None
        else:
            self._server.start(self._read_timeout)  # the baseline: counts before this client
        if len(inputs) != 1:
            raise ModelError(f"{self.model_dir}: expected a model with one image input, the "
                             f"server's has {sorted(inputs)}")
        self._input, (shape, dtype) = next(iter(inputs.items()))
        if len(shape) != 3 or shape[2] not in (3, None, -1):
            raise ModelError(f"{self.model_dir}: expected an image input (H, W, 3), the "
                             f"server's {self._input!r} is {shape}")
        h, w = shape[0], shape[1]
        fixed = isinstance(h, int) and isinstance(w, int) and h > 0 and w > 0
        self.input_size: tuple[int, int] | None = (w, h) if fixed else None
        self.resize = "letterbox"
        self.max_batch = max_batch or None
        self._dtype = np.dtype(dtype)
        self.model_inputs = [self._input]
        self.model_outputs = list(outputs)
        self.input_specs = {self._input: ((None, None, None, 3), self._dtype)}
        self.device = f"remote ({self.endpoint.scheme} server at {self.endpoint.address})"
        self._pool = ThreadPoolExecutor(self.endpoint.inflight,
                                        thread_name_prefix=f"{self.scheme}-client")
        self.bind(None, None)
        self.load_s = time.perf_counter() - t0

    # -- what a protocol implements -----------------------------------------------------------
    def _connect(self) -> None:
        raise NotImplementedError

    def _metadata(self, timeout: float) -> tuple[dict[str, tuple[tuple[int | None, ...], Any]],
                                                 list[str], int | None]:
        raise NotImplementedError

    def _infer(self, batch: np.ndarray, outputs: list[str], timeout: float
               ) -> dict[str, np.ndarray]:
        raise NotImplementedError

    def _server_counts(self, timeout: float) -> ServerCounts | None:
        """The server's counts for this model (every client's), or None if it does not say."""
        return None

    def close(self) -> None:
        if self._closed:
            return
        self.server_usage(fresh=True)  # the run's last counts, while the channel is open
        self._closed = True
        self._pool.shutdown(wait=False, cancel_futures=True)
        if self.fallback is not None:
            self.fallback.close()

    # -- binding and calling -----------------------------------------------------------------
    def bind(self, input_names: Mapping[str, str] | None,
             output_names: Mapping[str, str] | None) -> None:
        self.inputs = map_names(input_names, self.model_inputs, "input", self.model_dir,
                                ALIASES)
        self.outputs = map_names(output_names, self.model_outputs, "output", self.model_dir)
        if self.fallback is not None:  # the caller's names are the ones it knows too
            self.fallback.bind(
                input_names if input_names is not None else {k: k for k in self.inputs},
                output_names if output_names is not None else {k: k for k in self.outputs})

    def __call__(self, feed: Mapping[str, Any]) -> dict[str, np.ndarray]:
        check_feed(feed, self.inputs)
        images = np.asarray(next(iter(feed.values())))
        if images.ndim != 4 or images.shape[3] != 3:
            raise ModelError(f"expected images (B, H, W, 3), got {images.shape}")
        wanted = list(dict.fromkeys(self.outputs.values()))
        if self.fallback is None or time.monotonic() >= self._down_until:
            try:
                found = self._remote(images, wanted)
                if self._down_until:
                    self._down_until = 0.0
                    log.warning("%s: the server answers again; back from the local fallback",
                                self.model_dir)
                return {caller: found[name] for caller, name in self.outputs.items()}
            except RemoteUnavailableError as e:
                if self.fallback is None:
                    raise
                self._went_down(str(e))
        return self._local(feed, len(images))

    def _went_down(self, why: str) -> None:
        with self._stats_lock:
            first = not self._down_until
            self._down_until = time.monotonic() + self.endpoint.probe_s
            if first:
                self.stats.outages += 1
        if first:
            log.warning("%s: server unavailable (%s); running the local model %s until it "
                        "answers again", self.model_dir, why, self.endpoint.fallback)

    def _local(self, feed: Mapping[str, Any], frames: int) -> dict[str, np.ndarray]:
        assert self.fallback is not None
        with self._fallback_lock:  # TF Lite's interpreter is not thread safe
            out = self.fallback(feed)
        self.stats.fell_back(frames)
        return out

    def _remote(self, images: np.ndarray, wanted: list[str]) -> dict[str, np.ndarray]:
        geometry = None
        if self.input_size is not None:
            images, geometry = letterbox(images, self.input_size)
        images = np.ascontiguousarray(images, dtype=self._dtype)
        # Split into up to `inflight` requests: one client can then fill the server's batches.
        n = len(images)
        step = -(-n // min(n, self.endpoint.inflight))
        if self.max_batch:
            step = min(step, self.max_batch)
        chunks = [images[i : i + step] for i in range(0, n, step)]
        deadline = time.monotonic() + self.endpoint.timeout
        if len(chunks) == 1:
            parts = [self._request(chunks[0], wanted, deadline)]
        else:
            futures = [self._pool.submit(self._request, c, wanted, deadline) for c in chunks]
            parts = [f.result() for f in futures]
        out = {k: np.concatenate([p[k] for p in parts]) if len(parts) > 1 else parts[0][k]
               for k in wanted}
        if geometry is not None and "detection_boxes" in out:
            out["detection_boxes"] = geometry.unbox(out["detection_boxes"])
        return out

    def _request(self, chunk: np.ndarray, wanted: list[str], deadline: float
                 ) -> dict[str, np.ndarray]:
        def call(timeout: float) -> dict[str, np.ndarray]:
            self.stats.sending()
            seconds = None
            t0 = time.perf_counter()
            try:
                out = self._infer(chunk, wanted, timeout)
                seconds = time.perf_counter() - t0
            finally:  # a failed request leaves the in-flight count too
                self.stats.answered(len(chunk), chunk.nbytes, seconds)
            return out

        return self._retrying(call, "infer", deadline)

    def _retrying(self, call: Callable[[float], Any], what: str,
                  deadline: float | None = None) -> Any:
        """``call(remaining seconds)``, retried with backoff while no server answers, until
        the deadline; with a fallback, one try only (the fallback answers meanwhile)."""
        deadline = deadline or time.monotonic() + self.endpoint.timeout
        delay, last = 0.05, "no answer"
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            try:
                return call(remaining)
            except Unavailable as e:
                last = str(e) or type(e).__name__
            if self.fallback is not None:
                break
            self.stats.retried()
            time.sleep(max(0.0, min(delay, deadline - time.monotonic())))
            delay = min(delay * 2, 1.0)
        raise RemoteUnavailableError(
            f"{self.model_dir}: no {self.scheme} server answered within "
            f"{self.endpoint.timeout:g} s ({what}: {last}); is the server running "
            f"(vidstream serve)?", param="model")

    @property
    def _read_timeout(self) -> float:
        # describe() runs in the dashboard's thread: a slow server must not freeze the view
        return min(1.0, self.endpoint.timeout)

    def server_usage(self, fresh: bool = False) -> ServerCounts | None:
        """The server's counts for this model since this client connected, every client's
        requests included (this client's share: ``stats.frames / inference_count``); None
        where the server does not say (TF Serving, or it never answered).

        Read at most once per ``server_read_s``, unless ``fresh`` (at the end of a run) or
        the client went quiet after requests since the last read: then a run's summary
        counts its last frames. Never raises; while the server is down the last read stands.
        """
        if self._closed or (self._down_until and time.monotonic() < self._down_until
                            and not fresh):
            return self._server.get(self._read_timeout, max_age=math.inf)
        s = self.stats
        quiet = s.in_flight == 0 and s.last_done > self._server.read_at
        max_age = 0.0 if fresh or quiet else self.server_read_s
        return self._server.get(self._read_timeout, max_age=max_age)

    def describe(self) -> dict[str, Any]:
        s = self.stats
        server = self.server_usage()
        info: dict[str, Any] = {
            "model": self.endpoint.model,
            "model_dir": self.model_dir,
            "model_format": self.format,
            "device": self.device,
            "remote": {
                "endpoint": mask_credentials(self.endpoint.url),
                "protocol": self.scheme,
                "requests": s.requests,
                "frames": s.frames,
                "in_flight": s.in_flight,
                "max_in_flight": s.max_in_flight,
                "round_trip_ms": s.round_trip_ms(),
                "retries": s.retries,
                "mb_sent": round(s.bytes_sent / 1e6, 2),
                "fallback_model": self.endpoint.fallback,
                "fallback_frames": s.fallback_frames,
                "outages": s.outages,
                "server": server.to_dict() if server is not None else None,
            },
        }
        return info


# How a fallback is loaded: the backend registry, which imports this module, sets it.
_local_loader: Callable[[str, LoadOptions], ModelBackend] | None = None


def set_local_loader(load: Callable[[str, LoadOptions], ModelBackend]) -> None:
    """Set how a remote predictor loads its local fallback (a model name or path)."""
    global _local_loader
    _local_loader = load


def _load_fallback(model: str, options: LoadOptions) -> ModelBackend:
    """The local model a remote predictor runs while its server is down."""
    if is_remote(model):
        raise ConfigError(f"fallback {model!r}: the fallback must be a local model",
                          param="model")
    if _local_loader is None:  # pragma: no cover - vidstream.backends sets it on import
        raise ModelError("no loader for a local fallback model: import vidstream.backends")
    return _local_loader(model, options)


def remote_ref(endpoint: str, model_dir: str | os.PathLike[str], fallback: bool) -> str:
    """The reference :class:`~vidstream.predictor.EIPredictor` resolves for ``endpoint=``:
    the endpoint, with ``model_dir`` as its local fallback when ``fallback`` is set.

    >>> remote_ref("triton://h:8001/m", "/models/m", True)
    'triton://h:8001/m?fallback=%2Fmodels%2Fm'
    """
    if not is_remote(endpoint):
        raise ConfigError(f"endpoint {endpoint!r}: expected triton://HOST:PORT/MODEL or "
                          "tfserving://HOST:PORT/MODEL", param="model")
    if not fallback:
        return endpoint
    sep = "&" if "?" in endpoint else "?"
    return f"{endpoint}{sep}{urlencode({'fallback': os.fspath(model_dir)})}"
