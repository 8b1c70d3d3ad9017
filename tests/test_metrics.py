"""Prometheus metrics: scraped from a loopback port while a multi-stream run is going on."""

from __future__ import annotations

import threading
import urllib.request

import pytest
from test_engine import Collect, FakeSource

from vidstream import ConfigError, Detector, Pipeline
from vidstream.cost import Price
from vidstream.metrics import serve_metrics

parser = pytest.importorskip("prometheus_client.parser")


def scrape(url: str) -> dict[str, list]:
    text = urllib.request.urlopen(url, timeout=10).read().decode()
    families = {f.name: f.samples for f in parser.text_string_to_metric_families(text)}
    return families


def value(samples, name: str, **labels) -> float:
    for s in samples:
        if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
            return s.value
    raise KeyError((name, labels))


def test_metrics_during_and_after_a_multi_stream_run():
    release = threading.Event()

    class Held(FakeSource):
        def frames(self):
            for i, frame in enumerate(super().frames()):
                if i == 10:
                    release.wait(20)
                yield frame

    from fakemodel import RedSquares

    sources = [Held(30, at=0), FakeSource(12, at=8, fail_after=5)]
    pipeline = Pipeline(sources, [Detector(RedSquares(), batch_size=2, )],
                        lambda i: [Collect()])
    price = Price("c5.xlarge", 0.17)
    with serve_metrics(pipeline, port=0, price=price) as server:
        assert server.url.startswith("http://127.0.0.1:")
        done = threading.Thread(target=pipeline.run, daemon=True)
        done.start()
        # mid-run: stream 0 is held at its 10th frame, stream 1 failed at its 5th
        for _ in range(200):
            m = scrape(server.url)
            if value(m["vidstream_stream_state"], "vidstream_stream_state", stream="1",
                     vidstream_stream_state="failed") == 1:
                break
            threading.Event().wait(0.05)
        assert value(m["vidstream_stream_state"], "vidstream_stream_state", stream="0",
                     vidstream_stream_state="running") == 1
        assert value(m["vidstream_stream_frames_in"], "vidstream_stream_frames_in_total",
                     stream="1") == 5
        release.set()
        done.join(20)
        m = scrape(server.url)
    summary = pipeline.summary()
    assert value(m["vidstream_frames"], "vidstream_frames_total") == summary.frames == 30 + 5
    for r in summary.streams:
        stream = str(r.index)
        assert value(m["vidstream_stream_frames"], "vidstream_stream_frames_total",
                     stream=stream) == r.frames
        assert value(m["vidstream_stream_dropped"], "vidstream_stream_dropped_total",
                     stream=stream) == r.dropped
        assert value(m["vidstream_stream_info"], "vidstream_stream_info", stream=stream,
                     uri=r.uri) == 1
    assert value(m["vidstream_stream_state"], "vidstream_stream_state", stream="0",
                 vidstream_stream_state="ended") == 1
    detect = summary.stage("detect")
    assert value(m["vidstream_stage_busy_seconds"], "vidstream_stage_busy_seconds_total",
                 stage="detect") == pytest.approx(detect.busy_s)
    assert value(m["vidstream_stage_items"], "vidstream_stage_items_total",
                 stage="detect") == detect.items_out
    batches = m["vidstream_batch_size"]
    assert value(batches, "vidstream_batch_size_count") == summary.batching["batches"]
    assert value(batches, "vidstream_batch_size_sum") == 35
    assert value(m["vidstream_frame_latency_seconds"],
                 "vidstream_frame_latency_seconds_count") == 35
    cost = value(m["vidstream_cost_usd"], "vidstream_cost_usd_total")
    assert cost == pytest.approx(0.17 * pipeline.elapsed_s / 3600)


def test_a_port_in_use_is_a_clear_error():
    pipeline = Pipeline(FakeSource(1), [], [Collect()])
    with serve_metrics(pipeline, port=0) as first, pytest.raises(
            ConfigError, match=f"cannot listen on 127.0.0.1:{first.port}"):
        serve_metrics(pipeline, port=first.port)
