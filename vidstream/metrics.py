"""A run's counters as Prometheus metrics, served over HTTP while it runs.

The collector reads the pipeline's snapshots when Prometheus scrapes, so watching costs the
stages nothing. Needs ``prometheus-client`` (``pip install 'vidstream[metrics]'``)::

    with serve_metrics(pipeline, port=9100) as server:       # http://127.0.0.1:9100/metrics
        pipeline.run()

Metrics (names follow Prometheus conventions; ``stream`` is the stream's index, and
``vidstream_stream_info`` maps it to its masked URI):

* per stream: ``vidstream_stream_frames_total``, ``vidstream_stream_frames_in_total``,
  ``vidstream_stream_dropped_total``, ``vidstream_stream_decode_errors_total``,
  ``vidstream_stream_reconnects_total``, ``vidstream_stream_state`` (a state set);
* per stage: ``vidstream_stage_items_total``, ``vidstream_stage_busy_seconds_total``,
  ``vidstream_stage_starved_seconds_total``, ``vidstream_stage_blocked_seconds_total``,
  ``vidstream_stage_queue_depth``, ``vidstream_stage_queue_capacity``;
* counting (with ``--track`` and lines or zones): ``vidstream_line_crossings_total``
  (labels ``stream``, ``line``, ``direction``, ``label``), ``vidstream_zone_occupancy`` and
  ``vidstream_zone_entries_total`` (labels ``stream``, ``zone``, ``label``);
* the run: ``vidstream_frames_total``, ``vidstream_batch_size`` (histogram of the first shared
  stage's batches), ``vidstream_frame_latency_seconds`` (histogram), and
  ``vidstream_cost_usd_total`` (the price of the time run so far, when the run is priced);
* a model on a server (``triton://``, ``tfserving://``): ``vidstream_remote_requests_total``,
  ``vidstream_remote_in_flight``, ``vidstream_remote_round_trip_seconds`` (label
  ``quantile``: 0.5, 0.95) and ``vidstream_remote_fallback_frames_total``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .cost import current
from .errors import ConfigError

if TYPE_CHECKING:
    from .cost import PriceLike
    from .pipeline import Pipeline

# The states a stream may report (see Pipeline.streams()).
STATES = ("connecting", "running", "live", "reconnecting", "ended", "failed")
LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
LOOPBACK = ("127.0.0.1", "::1", "localhost")


class PipelineCollector:
    """A Prometheus collector over one pipeline (register it in a ``CollectorRegistry``)."""

    def __init__(self, pipeline: Pipeline, price: PriceLike | None = None) -> None:
        self.pipeline = pipeline
        self.price = price

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import (
            CounterMetricFamily,
            GaugeMetricFamily,
            HistogramMetricFamily,
            InfoMetricFamily,
            StateSetMetricFamily,
        )

        p = self.pipeline
        streams = p.streams()
        info = InfoMetricFamily("vidstream_stream", "The stream's input", labels=["stream"])
        fams = {
            "frames": CounterMetricFamily("vidstream_stream_frames", "Frames that reached the "
                                          "end of the pipeline", labels=["stream"]),
            "frames_in": CounterMetricFamily("vidstream_stream_frames_in", "Frames read "
                                             "(decoded or not)", labels=["stream"]),
            "dropped": CounterMetricFamily("vidstream_stream_dropped", "Frames dropped on "
                                           "purpose (leaky queue, a stage)", labels=["stream"]),
            "decode_errors": CounterMetricFamily("vidstream_stream_decode_errors",
                                                 "Packets that could not be decoded",
                                                 labels=["stream"]),
            "reconnects": CounterMetricFamily("vidstream_stream_reconnects", "Reconnections "
                                              "of a live stream", labels=["stream"]),
        }
        state = StateSetMetricFamily("vidstream_stream_state", "Where the stream is",
                                     labels=["stream"])
        for r in streams:
            label = [str(r.index)]
            info.add_metric(label, {"uri": r.uri})
            for key, fam in fams.items():
                fam.add_metric(label, getattr(r, key))
            state.add_metric(label, {s: s == r.state for s in STATES})
        yield info
        yield from fams.values()
        yield state

        stats = p.stats()
        items = CounterMetricFamily("vidstream_stage_items", "Items a stage finished",
                                    labels=["stage"])
        times = {k: CounterMetricFamily(f"vidstream_stage_{k}_seconds", f"Seconds {words}",
                                        labels=["stage"])
                 for k, words in (("busy", "working"), ("starved", "waiting for input"),
                                  ("blocked", "waiting for room downstream"))}
        depth = GaugeMetricFamily("vidstream_stage_queue_depth", "Items in the stage's inbox",
                                  labels=["stage"])
        capacity = GaugeMetricFamily("vidstream_stage_queue_capacity",
                                     "Capacity of the stage's inbox", labels=["stage"])
        for s in stats:
            items.add_metric([s.name], s.items_out)
            times["busy"].add_metric([s.name], s.busy_s)
            times["starved"].add_metric([s.name], s.starved_s)
            times["blocked"].add_metric([s.name], s.blocked_s)
            depth.add_metric([s.name], s.queue_len)
            capacity.add_metric([s.name], s.queue_capacity)
        yield items
        yield from times.values()
        yield depth
        yield capacity

        yield from self._counts(streams, CounterMetricFamily, GaugeMetricFamily)

        summary = p.summary()
        yield CounterMetricFamily("vidstream_frames", "Frames done, every stream",
                                  value=summary.frames)
        sizes = sorted(summary.batch_sizes.items())
        count = sum(n for _, n in sizes)
        buckets, below = [], 0
        for bound in (1, 2, 4, 8, 16, 32, 64):
            below = sum(n for size, n in sizes if size <= bound)
            buckets.append((str(bound), below))
        buckets.append(("+Inf", count))
        yield HistogramMetricFamily("vidstream_batch_size", "Frames per batch of the first "
                                    "shared stage", buckets=buckets,
                                    sum_value=sum(size * n for size, n in sizes))
        lat = p.latency
        lat_buckets = [(str(b), n) for b, n in zip(LATENCY_BUCKETS,
                                                   lat.cumulative(LATENCY_BUCKETS), strict=True)]
        lat_buckets.append(("+Inf", lat.count))
        yield HistogramMetricFamily("vidstream_frame_latency_seconds", "Seconds from a frame's "
                                    "decoding to the end of the pipeline", buckets=lat_buckets,
                                    sum_value=lat.total)
        remote = summary.details.get("remote")
        if remote:
            yield from _remote(remote, CounterMetricFamily, GaugeMetricFamily)
        if self.price is not None:
            price = current(self.price)
            yield CounterMetricFamily(
                "vidstream_cost_usd", f"Dollars of run time at {price.name}'s rate",
                value=price.usd_per_hour * p.elapsed_s / 3600)


    def _counts(self, streams: list[Any], counter: Any, gauge: Any) -> Iterator[Any]:
        """Line crossings and zone occupancy from the stages that count per stream."""
        crossings = counter("vidstream_line_crossings", "Tracks that crossed a counting line",
                            labels=["stream", "line", "direction", "label"])
        occupancy = gauge("vidstream_zone_occupancy", "Tracks in a zone now",
                          labels=["stream", "zone", "label"])
        entries = counter("vidstream_zone_entries", "Tracks that entered a zone",
                          labels=["stream", "zone", "label"])
        found = False
        for r in streams:
            for stage in self.pipeline.stages:
                counts = stage.describe_stream(r.index)
                for line, c in (counts.get("lines") or {}).items():
                    found = True
                    for label, by in (c.get("by_class") or {}).items():
                        for direction in ("in", "out"):
                            crossings.add_metric([str(r.index), line, direction, label],
                                                 by.get(direction, 0))
                for zone, z in (counts.get("zones") or {}).items():
                    found = True
                    for label, by in (z.get("by_class") or {}).items():
                        occupancy.add_metric([str(r.index), zone, label], by["occupancy"])
                        entries.add_metric([str(r.index), zone, label], by["entries"])
        if found:
            yield crossings
            yield occupancy
            yield entries


def _remote(remote: dict[str, Any], counter: Any, gauge: Any) -> Iterator[Any]:
    """A model on a server: this client's requests, round trips and requests in flight."""
    yield counter("vidstream_remote_requests", "Requests the model server answered",
                  value=remote["requests"])
    yield gauge("vidstream_remote_in_flight", "Requests sent and not yet answered",
                value=remote["in_flight"])
    rtt = gauge("vidstream_remote_round_trip_seconds", "Round trip of a request to the model "
                "server, send to answer (quantiles over the run)", labels=["quantile"])
    for q, key in (("0.5", "p50"), ("0.95", "p95")):
        if remote.get("round_trip_ms"):
            rtt.add_metric([q], remote["round_trip_ms"][key] / 1000)
    yield rtt
    yield counter("vidstream_remote_fallback_frames", "Frames the local fallback model "
                  "answered while the server was down", value=remote["fallback_frames"])


@dataclass
class MetricsServer:
    """A running metrics endpoint; ``close()`` (or leaving ``with``) stops it."""

    host: str
    port: int
    _server: Any
    _thread: Any

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/metrics"

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)

    def __enter__(self) -> MetricsServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def serve_metrics(pipeline: Pipeline, port: int, host: str = "127.0.0.1",
                  price: PriceLike | None = None) -> MetricsServer:
    """Serve ``pipeline``'s metrics on ``host:port`` (port 0: any free port; see ``.port``).

    Bound to loopback unless ``host`` says otherwise: the endpoint has no authentication.
    """
    try:
        from prometheus_client import CollectorRegistry, start_http_server
    except ImportError:
        raise ConfigError("metrics need prometheus-client: pip install 'vidstream[metrics]'",
                          param="metrics_port") from None
    registry = CollectorRegistry(auto_describe=False)
    registry.register(PipelineCollector(pipeline, price))
    try:
        server, thread = start_http_server(port, addr=host, registry=registry)
    except OSError as e:
        raise ConfigError(f"metrics: cannot listen on {host}:{port}: {e.strerror or e}",
                          param="metrics_port") from e
    return MetricsServer(host, server.server_port, server, thread)
