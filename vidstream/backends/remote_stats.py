"""What a remote predictor counts: its own requests, and the server's counts where known.

:class:`RemoteStats` is this client's side: requests, frames, round trips (p50/p95 in fixed
memory), requests in flight now and the most seen, retries, bytes sent, fallback frames and
outages. :class:`ServerCounts` is the server's side of one model (Triton's statistics API):
inferences, executions and executions per batch size, counted for *every* client. What this
client reports is the delta since it connected (:class:`ServerUsage`), which is what prices
its share of a shared accelerator: ``frames / inference_count`` over the same period.

>>> before = ServerCounts(10, 5, {1: 2, 4: 2})
>>> now = ServerCounts(30, 10, {1: 2, 4: 7})
>>> (now - before).to_dict()
{'inference_count': 20, 'execution_count': 5, 'mean_batch': 4.0, 'batch_sizes': {'4': 5}}
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..stats import LatencyHistogram


@dataclass(frozen=True)
class ServerCounts:
    """Server-wide counts of one model: inferences (images), executions (model runs) and
    executions per batch size. Their ratio is the mean batch the server formed."""

    inference_count: int = 0
    execution_count: int = 0
    batch_sizes: Mapping[int, int] = field(default_factory=dict)  # batch size -> executions

    def __sub__(self, other: ServerCounts) -> ServerCounts:
        sizes = {k: v - other.batch_sizes.get(k, 0) for k, v in self.batch_sizes.items()}
        return ServerCounts(self.inference_count - other.inference_count,
                            self.execution_count - other.execution_count,
                            {k: v for k, v in sorted(sizes.items()) if v > 0})

    def __add__(self, other: ServerCounts) -> ServerCounts:
        sizes = dict(self.batch_sizes)
        for k, v in other.batch_sizes.items():
            sizes[k] = sizes.get(k, 0) + v
        return ServerCounts(self.inference_count + other.inference_count,
                            self.execution_count + other.execution_count,
                            dict(sorted(sizes.items())))

    def restarted_since(self, earlier: ServerCounts) -> bool:
        """Whether a count went down: the server restarted (its counts start at zero)."""
        return (self.inference_count < earlier.inference_count
                or self.execution_count < earlier.execution_count)

    @property
    def mean_batch(self) -> float:
        return self.inference_count / self.execution_count if self.execution_count else 0.0

    def to_dict(self) -> dict[str, Any]:
        """The summary's ``remote.server``: batch sizes keyed by strings, as JSON has them."""
        return {"inference_count": self.inference_count,
                "execution_count": self.execution_count,
                "mean_batch": round(self.mean_batch, 2),
                "batch_sizes": {str(k): v for k, v in sorted(self.batch_sizes.items())}}


class ServerUsage:
    """The server's counts since this client connected, read through ``read(timeout)``
    (which returns None when the server does not say) at most every ``max_age`` seconds.

    A failed read never fails the caller: the last answer stands. A server that restarted
    starts its counts at zero; what it had counted for this client before is carried over.

    >>> reads = iter([ServerCounts(100, 50), ServerCounts(140, 60), ServerCounts(8, 2)])
    >>> u = ServerUsage(lambda timeout: next(reads))
    >>> u.start(1.0); u.get(1.0, max_age=0).inference_count
    40
    >>> u.get(1.0, max_age=0).inference_count   # restarted: 40 before, 8 since
    48
    """

    def __init__(self, read: Callable[[float], ServerCounts | None]) -> None:
        self._read = read
        self._baseline: ServerCounts | None = None
        self._carried = ServerCounts()  # counted before the server restarted
        self._last: ServerCounts | None = None  # the server's own counts, last read
        self._usage: ServerCounts | None = None
        self.read_at = -math.inf  # time.monotonic() of the last read tried
        self._lock = threading.Lock()

    def start(self, timeout: float | None) -> None:
        """Read the baseline (None: the server is down, do not try). Without one, zero: a
        server that was not up when this client connected counts from when it comes up."""
        counts = self._try(timeout) if timeout is not None else None
        self._baseline = counts if counts is not None else ServerCounts()
        self._last = counts
        if counts is not None:
            self._usage = ServerCounts()  # nothing since connecting, yet

    def get(self, timeout: float, max_age: float = 1.0) -> ServerCounts | None:
        """Counts since :meth:`start`; read again if the last read is older than ``max_age``
        seconds. Another thread already reading: its last answer, without waiting."""
        if time.monotonic() - self.read_at < max_age or not self._lock.acquire(blocking=False):
            return self._usage
        try:
            counts = self._try(timeout)
            if counts is None or self._baseline is None:
                return self._usage
            if self._last is not None and counts.restarted_since(self._last):
                self._carried = self._carried + (self._last - self._baseline)
                self._baseline = ServerCounts()
            self._last = counts
            self._usage = self._carried + (counts - self._baseline)
            return self._usage
        finally:
            self._lock.release()

    def _try(self, timeout: float) -> ServerCounts | None:
        self.read_at = time.monotonic()
        try:
            return self._read(timeout)
        except Exception:  # statistics are a report: never worth failing a run over
            return None


class RemoteStats:
    """This client's counters; methods are safe to call from any thread.

    ``requests`` and ``frames`` count what the server answered; ``round_trip`` holds each
    answered request's time from send to answer (retries of it not included).
    """

    def __init__(self) -> None:
        self.requests = 0
        self.frames = 0
        self.fallback_frames = 0  # answered by the local model while the server was down
        self.retries = 0
        self.bytes_sent = 0
        self.outages = 0  # times the server went down (with a fallback)
        self.in_flight = 0
        self.max_in_flight = 0
        self.round_trip = LatencyHistogram()
        self.last_request_s = 0.0  # the latest round trip, for benchmarks
        self.last_done = -math.inf  # time.monotonic() when the latest answer came
        self._lock = threading.Lock()

    def sending(self) -> None:
        with self._lock:
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)

    def answered(self, frames: int, nbytes: int, seconds: float | None) -> None:
        """A request ended: answered (``seconds`` its round trip) or failed (None)."""
        with self._lock:
            self.in_flight -= 1
            if seconds is None:
                return
            self.requests += 1
            self.frames += frames
            self.bytes_sent += nbytes
            self.round_trip.add(seconds)
            self.last_request_s = seconds
            self.last_done = time.monotonic()

    def retried(self) -> None:
        with self._lock:
            self.retries += 1

    def fell_back(self, frames: int) -> None:
        with self._lock:
            self.fallback_frames += frames

    def round_trip_ms(self) -> dict[str, float] | None:
        with self._lock:
            h = self.round_trip
            if not h.count:
                return None
            return {"p50": round(h.percentile(50) * 1000, 2),
                    "p95": round(h.percentile(95) * 1000, 2)}
