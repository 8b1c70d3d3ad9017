"""What a run did and cost, as one value: written to ``--summary`` JSON and printed at the end.

One piece of code computes these numbers for ``detect``, ``run`` and ``bench``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .cost import CostEstimate, Price
from .stats import LatencyHistogram, StageStats, bottleneck

if TYPE_CHECKING:
    from .frames import StreamInfo


@dataclass(frozen=True)
class StreamReport:
    """One stream of a run: where it ended up and what it delivered.

    ``state`` is ``connecting``, ``running``, ``ended`` or ``failed`` (then ``error`` says
    why); ``frames_in == frames + dropped + decode_errors`` once the stream has ended.
    """

    index: int
    uri: str  # credentials masked
    state: str
    error: str | None
    frames: int
    frames_in: int
    dropped: int
    decode_errors: int
    ended_early: str | None = None
    reconnects: int = 0
    wall_s: float = 0.0  # from its first read to its last frame done
    fps: float = 0.0
    latency: LatencyHistogram = field(default_factory=LatencyHistogram, repr=False)
    details: dict[str, Any] = field(default_factory=dict, repr=False)

    def to_dict(self, cost: CostEstimate | None = None, frames: int = 0) -> dict[str, Any]:
        """The stream as JSON; with the run's ``cost``, its share (by inferences, out of the
        run's ``frames``)."""
        share = self.frames / frames if frames else 0.0
        return {
            "index": self.index,
            "uri": self.uri,
            "state": self.state,
            "error": self.error,
            "frames": self.frames,
            "frames_in": self.frames_in,
            "dropped": self.dropped,
            "decode_errors": self.decode_errors,
            "reconnects": self.reconnects,
            "ended_early": self.ended_early,
            "wall_s": self.wall_s,
            "fps": self.fps,
            "latency_ms": self.latency.to_dict(),
            "cost": None if cost is None else {
                "share": share,
                "usd_total": cost.usd_total * share,
                "usd_per_100k_inferences": cost.usd_per_100k_inferences,
            },
            **self.details,
        }


@dataclass(frozen=True)
class Summary:
    """Frames, time, per-stage shares, latency and cost of one pipeline run.

    ``frames_in == frames + dropped + decode_errors`` for every run that was not aborted or
    failed: no frame goes missing without being counted.

    ``fps`` is frames per second of processing wall time (model loading excluded: it happens
    in ``open()`` before the clock starts, and is reported as ``model_load_s``).
    """

    frames: int
    wall_s: float
    fps: float
    model_load_s: float
    latency: LatencyHistogram
    stages: list[StageStats]
    open_s: dict[str, float] = field(default_factory=dict)
    frames_in: int = 0  # frames the source read (decoded + undecodable packets)
    decode_errors: int = 0
    dropped: int = 0
    interrupted: bool = False
    error: str | None = None
    info: StreamInfo | None = None
    details: dict[str, Any] = field(default_factory=dict)
    price: Price | None = None
    streams: list[StreamReport] = field(default_factory=list)
    batch_sizes: dict[int, int] = field(default_factory=dict)  # frames per batch -> batches

    @property
    def batching(self) -> dict[str, Any]:
        """How the first shared stage's batches were filled: count, mean size, histogram."""
        batches = sum(self.batch_sizes.values())
        frames = sum(size * n for size, n in self.batch_sizes.items())
        return {"batches": batches, "mean": frames / batches if batches else 0.0,
                "histogram": {str(k): v for k, v in sorted(self.batch_sizes.items())}}

    def with_price(self, price: Price | None) -> Summary:
        return dataclasses.replace(self, price=price)

    @property
    def cost(self) -> CostEstimate | None:
        if self.price is None:
            return None
        return CostEstimate(self.price, self.fps, self.wall_s)

    @property
    def bottleneck(self) -> StageStats | None:
        return bottleneck(self.stages)

    def stage(self, name: str) -> StageStats | None:
        return next((s for s in self.stages if s.name == name), None)

    def to_dict(self) -> dict[str, Any]:
        neck = self.bottleneck
        info = self.info
        return {
            "frames": self.frames,
            "wall_s": round(self.wall_s, 4),
            "fps": round(self.fps, 3),
            "model_load_s": round(self.model_load_s, 4),
            "latency_ms": self.latency.to_dict(),
            "stages": {s.name: s.to_dict() for s in self.stages},
            "bottleneck": neck.name if neck else None,
            "frames_in": self.frames_in,
            "decode_errors": self.decode_errors,
            "dropped": self.dropped,
            "interrupted": self.interrupted,
            "error": self.error,
            "input": None
            if info is None
            else {
                "uri": info.uri,
                "width": info.width,
                "height": info.height,
                "rate": str(info.rate) if info.rate else None,
                "frames": info.frames,
                "duration_s": info.duration_s,
                "codec": info.codec,
                "live": info.live,
            },
            **self.details,
            "streams": [s.to_dict(self.cost, self.frames) for s in self.streams],
            "batching": self.batching,
            "cost": self.cost.to_dict() if self.cost else None,
        }
