"""Counters every stage gets from the pipeline, and per-frame latency percentiles.

Counters are written by exactly one thread (the stage's own) and read by anyone without a
lock: a reader may see a value one item old, never a torn one, and the hot path never waits
for the dashboard.
"""

from __future__ import annotations

import math
import time
from collections import deque
from dataclasses import asdict, dataclass

import numpy as np


class StageCounters:
    """Live, mutable counters of one stage (written only by the stage's thread)."""

    __slots__ = (
        "blocked_s",
        "busy_s",
        "dropped",
        "ended",
        "errors",
        "items_in",
        "items_out",
        "name",
        "started",
        "starved_s",
    )

    def __init__(self, name: str) -> None:
        self.name = name
        self.items_in = 0
        self.items_out = 0
        self.dropped = 0
        self.errors = 0
        self.busy_s = 0.0
        self.starved_s = 0.0
        self.blocked_s = 0.0
        self.started: float | None = None
        self.ended: float | None = None

    def snapshot(self, queue_len: int = 0, queue_capacity: int = 0) -> StageStats:
        now = time.perf_counter()
        start = self.started if self.started is not None else now
        wall = (self.ended if self.ended is not None else now) - start
        return StageStats(
            name=self.name,
            items_in=self.items_in,
            items_out=self.items_out,
            dropped=self.dropped,
            errors=self.errors,
            busy_s=self.busy_s,
            starved_s=self.starved_s,
            blocked_s=self.blocked_s,
            wall_s=max(wall, 0.0),
            queue_len=queue_len,
            queue_capacity=queue_capacity,
        )


@dataclass(frozen=True)
class StageStats:
    """A point-in-time copy of a stage's counters.

    ``busy_s`` is time spent doing the stage's own work, ``starved_s`` waiting for input,
    ``blocked_s`` waiting for room downstream. The stage with the highest busy share is the
    bottleneck. ``queue_len``/``queue_capacity`` describe the stage's inbox.
    """

    name: str
    items_in: int
    items_out: int
    dropped: int
    errors: int
    busy_s: float
    starved_s: float
    blocked_s: float
    wall_s: float
    queue_len: int = 0
    queue_capacity: int = 0

    @property
    def items(self) -> int:
        """Items the stage finished (a sink counts the items it wrote)."""
        return self.items_out

    @property
    def busy_share(self) -> float:
        return self.busy_s / self.wall_s if self.wall_s > 0 else 0.0

    @property
    def fps(self) -> float:
        """Items per busy second: what the stage could sustain if it never waited."""
        return self.items / self.busy_s if self.busy_s > 0 else 0.0

    def to_dict(self) -> dict:
        d = asdict(self)
        d.update(
            items=self.items,
            busy_share=round(self.busy_share, 4),
            fps=round(self.fps, 2),
        )
        for k in ("busy_s", "starved_s", "blocked_s", "wall_s"):
            d[k] = round(d[k], 4)
        return d


def bottleneck(stages: list[StageStats]) -> StageStats | None:
    """The stage with the highest busy share (None before any work)."""
    busy = [s for s in stages if s.busy_s > 0]
    return max(busy, key=lambda s: s.busy_share) if busy else None


class LatencyHistogram:
    """Percentiles of per-frame latency in fixed memory (log buckets, 1% resolution).

    >>> h = LatencyHistogram()
    >>> for ms in range(1, 101): h.add(ms / 1000)
    >>> round(h.percentile(50) * 1000)
    50
    """

    _LO = 1e-5  # 10 us
    _HI = 1e4  # ~3 h
    _STEP = math.log(1.01)

    def __init__(self) -> None:
        self._n_buckets = int(math.log(self._HI / self._LO) / self._STEP) + 2
        self._counts = np.zeros(self._n_buckets, np.int64)
        self.count = 0
        self.total = 0.0
        self.max = 0.0

    def add(self, seconds: float) -> None:
        s = min(max(seconds, self._LO), self._HI)
        self._counts[int(math.log(s / self._LO) / self._STEP)] += 1
        self.count += 1
        self.total += seconds
        self.max = max(self.max, seconds)

    def percentile(self, p: float) -> float:
        """The ``p``-th percentile in seconds (0 when empty)."""
        if self.count == 0:
            return 0.0
        rank = max(1, math.ceil(self.count * p / 100))
        idx = int(np.searchsorted(np.cumsum(self._counts), rank))
        # the bucket's geometric middle is within 0.5% of every value in it
        return min(self._LO * math.exp((idx + 0.5) * self._STEP), self.max)

    def cumulative(self, bounds: tuple[float, ...]) -> list[int]:
        """How many values were at most each of ``bounds`` (seconds), to within 1%.

        >>> h = LatencyHistogram()
        >>> for ms in (5, 20, 20, 300): h.add(ms / 1000)
        >>> h.cumulative((0.01, 0.1, 1.0))
        [1, 3, 4]
        """
        edges = np.cumsum(self._counts)
        out = []
        for b in bounds:
            s = min(max(b, self._LO), self._HI)
            idx = int(math.log(s / self._LO) / self._STEP)
            out.append(int(edges[min(idx, len(edges) - 1)]))
        return out

    def to_dict(self) -> dict:
        return {
            "p50": round(self.percentile(50) * 1000, 2),
            "p95": round(self.percentile(95) * 1000, 2),
            "p99": round(self.percentile(99) * 1000, 2),
            "max": round(self.max * 1000, 2),
            "mean": round(self.total / self.count * 1000, 2) if self.count else 0.0,
        }


class RateWindow:
    """Items per second over the last ``window`` seconds, from sampled counters.

    >>> r = RateWindow(window=5)
    >>> r.add(0.0, 0); r.add(1.0, 30); r.add(2.0, 60)
    >>> r.rate()
    30.0
    """

    def __init__(self, window: float = 5.0) -> None:
        self.window = window
        self._samples: deque[tuple[float, int]] = deque()

    def add(self, t: float, count: int) -> None:
        self._samples.append((t, count))
        while len(self._samples) > 2 and t - self._samples[1][0] >= self.window:
            self._samples.popleft()

    def rate(self) -> float:
        if len(self._samples) < 2:
            return 0.0
        (t0, c0), (t1, c1) = self._samples[0], self._samples[-1]
        return (c1 - c0) / (t1 - t0) if t1 > t0 else 0.0
