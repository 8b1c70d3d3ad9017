"""The pipeline core: end-of-stream, errors in every stage and position, backpressure, stop."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from vidstream import (
    ArraySource,
    Cancelled,
    Frame,
    FunctionStage,
    Pipeline,
    Sink,
    Stage,
    StageError,
)
from vidstream.frames import StreamInfo


def images(n: int, size: int = 8):
    return [np.full((size, size, 3), i % 256, np.uint8) for i in range(n)]


class Collect(Sink):
    name = "sink"

    def __init__(self):
        self.items: list = []
        self.opened = self.closed = 0

    def open(self, info):
        self.opened += 1

    def process(self, item):
        self.items.append(item)

    def close(self):
        self.closed += 1


class Boom(RuntimeError):
    pass


def fail_at(index: int):
    def fn(frame: Frame) -> Frame:
        if frame.index == index:
            raise Boom(f"boom at {frame.index}")
        return frame

    return fn


class FailingSource:
    """Yields frames and raises at ``fail`` (or never)."""

    name = "decode"

    def __init__(self, n: int, fail: int | None = None):
        self.n, self.fail = n, fail
        self.closed = 0

    def open(self) -> StreamInfo:
        return StreamInfo("<test>", 8, 8, None, None, frames=self.n)

    def frames(self):
        for i in range(self.n):
            if i == self.fail:
                raise Boom(f"source broke at {i}")
            yield Frame.from_array(np.zeros((8, 8, 3), np.uint8), i)

    def close(self):
        self.closed += 1


def test_end_of_stream_delivers_every_frame_in_order(no_thread_leak):
    sink = Collect()
    summary = Pipeline(ArraySource(images(50)), [lambda f: f], [sink], capacity=2).run()
    assert [f.index for f in sink.items] == list(range(50))
    assert summary.frames == 50
    assert sink.opened == 1 and sink.closed == 1
    assert [s.name for s in summary.stages] == ["decode", "<lambda>", "sink"]


def test_stage_counters_add_up():
    summary = Pipeline(ArraySource(images(20)), [FunctionStage(lambda f: f, "noop")],
                       [Collect()]).run()
    decode, noop, sink = summary.stages
    assert decode.items_out == noop.items_in == noop.items_out == sink.items_in == 20
    for s in summary.stages:
        assert s.busy_s >= 0 and s.starved_s >= 0 and s.blocked_s >= 0
        assert s.busy_s + s.starved_s + s.blocked_s <= s.wall_s + 0.05


@pytest.mark.parametrize("position", [0, 24, 49])
@pytest.mark.parametrize("where", ["source", "stage", "sink"])
def test_error_in_any_stage_stops_promptly_and_reaches_caller(where, position, no_thread_leak):
    sink = Collect()
    source = FailingSource(50, fail=position if where == "source" else None)
    stages = [FunctionStage(fail_at(position) if where == "stage" else (lambda f: f), "work")]
    if where == "sink":
        sink.process = lambda item: (fail_at(position)(item), sink.items.append(item))
    pipeline = Pipeline(source, stages, [sink], capacity=4)
    t0 = time.monotonic()
    with pytest.raises((StageError, Boom)) as err:
        pipeline.run()
    assert time.monotonic() - t0 < 5
    assert "boom" in str(err.value) or "broke" in str(err.value)
    assert source.closed == 1 and sink.closed == 1
    if where == "stage":
        assert err.value.stage == "work" and err.value.frame == position
        assert isinstance(err.value.__cause__, Boom)
    # frames that passed the failing stage still reach the sink, in order
    assert [f.index for f in sink.items] == list(range(len(sink.items)))
    if where != "sink":
        assert len(sink.items) == position
    assert pipeline.summary().error is not None


def test_backpressure_holds_every_queue_within_capacity():
    capacity = 3
    peak = {"n": 0}
    gate = threading.Event()
    pipeline = None

    def slow(frame):
        for ch in pipeline._channels:
            peak["n"] = max(peak["n"], len(ch))
        time.sleep(0.002)
        return frame

    pipeline = Pipeline(ArraySource(images(200)), [FunctionStage(slow, "slow")], [Collect()],
                        capacity=capacity)
    gate.set()
    summary = pipeline.run()
    assert summary.frames == 200
    assert 0 < peak["n"] <= capacity
    # the fast decoder spent its time blocked on the full queue, not decoding ahead
    assert summary.stages[0].blocked_s > summary.stages[0].busy_s


def test_stop_lets_frames_in_flight_finish(no_thread_leak):
    sink = Collect()
    pipeline = None

    def slow(frame):
        if frame.index == 5:
            pipeline.stop()
        time.sleep(0.001)
        return frame

    pipeline = Pipeline(ArraySource(images(1000)), [FunctionStage(slow, "slow")], [sink],
                        capacity=4)
    summary = pipeline.run()
    assert summary.interrupted
    assert 5 < summary.frames < 1000
    assert [f.index for f in sink.items] == list(range(summary.frames))
    assert sink.closed == 1


def test_abort_discards_in_flight_and_raises_cancelled(no_thread_leak):
    sink = Collect()
    pipeline = None

    def slow(frame):
        if frame.index == 5:
            pipeline.abort()
        return frame

    pipeline = Pipeline(ArraySource(images(1000)), [FunctionStage(slow, "slow")], [sink])
    with pytest.raises(Cancelled):
        pipeline.run()
    assert sink.closed == 1
    assert len(sink.items) < 1000


def test_iterating_yields_processed_frames_and_cleans_up_on_break(no_thread_leak):
    def tag(frame):
        return frame.with_detections(None)

    seen = []
    for frame in Pipeline(ArraySource(images(100)), [tag]):
        seen.append(frame.index)
        if len(seen) == 10:
            break
    assert seen == list(range(10))


def test_iterating_reraises_stage_errors():
    with pytest.raises(StageError, match="boom at 3"):
        for _ in Pipeline(ArraySource(images(10)), [FunctionStage(fail_at(3), "f")]):
            pass


def test_open_failure_closes_what_was_opened():
    class BadOpen(Stage):
        name = "bad"

        def open(self, info):
            raise Boom("cannot open")

    sink = Collect()
    source = FailingSource(3)
    with pytest.raises(Boom):
        Pipeline(source, [BadOpen()], [sink]).run()
    assert source.closed == 1
    assert sink.opened == 0


def test_close_error_is_reported():
    class BadClose(Collect):
        def close(self):
            raise Boom("close failed")

    with pytest.raises(StageError, match="close failed"):
        Pipeline(ArraySource(images(3)), [], [BadClose()]).run()


def test_batches_reach_process_batch():
    class Batcher(Stage):
        name = "batch"
        batch_size = 4

        def __init__(self):
            self.sizes = []

        def process_batch(self, items):
            self.sizes.append(len(items))
            return items

    b = Batcher()
    summary = Pipeline(ArraySource(images(10)), [b], [Collect()]).run()
    assert summary.frames == 10
    assert b.sizes == [4, 4, 2]


def test_a_stage_returning_none_drops_the_frame():
    sink = Collect()
    summary = Pipeline(ArraySource(images(10)), [lambda f: f if f.index % 2 else None],
                       [sink]).run()
    assert [f.index for f in sink.items] == [1, 3, 5, 7, 9]
    assert summary.stages[1].dropped == 5


def test_pipeline_runs_once():
    p = Pipeline(ArraySource(images(2)), [], [Collect()])
    p.run()
    with pytest.raises(RuntimeError, match="runs once"):
        p.run()


def test_latency_is_recorded_per_frame():
    summary = Pipeline(ArraySource(images(30)), [lambda f: f], [Collect()]).run()
    assert summary.latency.count == 30
    assert 0 < summary.latency.percentile(50) <= summary.latency.percentile(95)
