"""The graph engine: many streams through shared stages, per-stream ends and failures, the
declared roles, unique stage ids and shutdown deadlines."""

from __future__ import annotations

import threading
import time
from fractions import Fraction

import numpy as np
import pytest
from fakemodel import RedSquares

from vidstream import (
    ArraySource,
    Cancelled,
    Detector,
    Frame,
    Pipeline,
    ShutdownTimeout,
    Sink,
    Source,
    Stage,
    StageError,
    VideoWriter,
)
from vidstream.frames import StreamInfo


def red_square_clip(n: int, at: int, size: int = 32) -> list[np.ndarray]:
    """``n`` frames with a red square whose left edge is at ``at`` px (the stream's mark)."""
    frames = []
    for i in range(n):
        img = np.zeros((size, size * 2, 3), np.uint8)
        img[8:16, at:at + 8] = (255, 0, 0)
        img[0, 0, 1] = i % 256  # frames differ
        frames.append(img)
    return frames


class Boom(RuntimeError):
    pass


class FakeSource(Source):
    """``n`` frames of a red square at ``at``; raises Boom after ``fail_after`` frames."""

    def __init__(self, n: int, at: int = 0, fail_after: int | None = None,
                 live: bool = False, delay: float = 0.0, name: str = "decode") -> None:
        self.n, self.at, self.fail_after, self.delay = n, at, fail_after, delay
        self.live = live
        self.name = name
        self.closed = 0
        self._images = red_square_clip(n, at)

    def open(self) -> StreamInfo:
        return StreamInfo(f"fake://{self.at}", 64, 32, Fraction(25), Fraction(1, 25),
                          frames=self.n, live=self.live)

    def frames(self):
        for i, img in enumerate(self._images):
            if self.fail_after is not None and i == self.fail_after:
                raise Boom(f"stream {self.at} broke")
            if self.delay:
                time.sleep(self.delay)
            yield Frame.from_array(img, i, i, Fraction(1, 25))

    def close(self) -> None:
        self.closed += 1


class Collect(Sink):
    def __init__(self) -> None:
        self.frames: list[Frame] = []
        self.opened = self.closed = 0
        self.closed_at: float | None = None

    def open(self, info=None) -> None:
        self.opened += 1
        self.info = info

    def process(self, frame: Frame) -> None:
        self.frames.append(frame)

    def close(self) -> None:
        self.closed += 1
        self.closed_at = time.monotonic()


class BatchSizes(Stage):
    name = "batcher"

    def __init__(self, batch_size: int, linger: float | None = None) -> None:
        self.batch_size, self.linger = batch_size, linger
        self.sizes: list[int] = []

    def process_batch(self, frames):
        self.sizes.append(len(frames))
        return list(frames)


def test_eight_streams_one_failing_the_others_complete_with_exact_counts(no_thread_leak):
    lengths = [5, 40, 17, 1, 33, 60, 8, 25]
    sources = [FakeSource(n, at=4 * i) for i, n in enumerate(lengths)]
    sources[5] = FakeSource(60, at=20, fail_after=30)
    sinks: dict[int, Collect] = {}

    def make_sinks(stream: int):
        sinks[stream] = Collect()
        return [sinks[stream]]

    detector = Detector(RedSquares(), batch_size=4)
    pipeline = Pipeline(sources, [detector], make_sinks)
    summary = pipeline.run()  # one stream failing does not fail the run

    for i, n in enumerate(lengths):
        got = sinks[i].frames
        if i == 5:
            assert len(got) == 30  # every frame read before the failure is written
        else:
            assert len(got) == n
        assert [f.index for f in got] == list(range(len(got)))  # in order, none lost
        assert {f.stream for f in got} == ({i} if got else set())
        # the detections are this stream's own: the red square is where its source put it
        at = sources[i].at
        for f in got:
            assert f.detections is not None and len(f.detections) == 1
            assert f.detections.boxes[0][0] == pytest.approx(at, abs=1)
        assert sinks[i].opened == sinks[i].closed == 1
        assert sources[i].closed == 1
    states = [s.state for s in summary.streams]
    assert states == ["ended"] * 5 + ["failed"] + ["ended"] * 2
    assert summary.streams[5].error == "stage 'decode-6' at frame 30: Boom: stream 20 broke"
    assert summary.error is None
    assert summary.frames == sum(lengths) - 60 + 30 == sum(r.frames for r in summary.streams)
    for r in summary.streams:
        assert r.frames_in == r.frames + r.dropped + r.decode_errors
    d = summary.to_dict()
    assert [s["frames"] for s in d["streams"]] == [len(sinks[i].frames) for i in range(8)]


def test_every_stream_failing_is_the_runs_error():
    pipeline = Pipeline([FakeSource(10, fail_after=3), FakeSource(10, fail_after=5)],
                        [Detector(RedSquares())], lambda i: [Collect()])
    with pytest.raises(StageError, match="stage 'decode' at frame 3: Boom"):
        pipeline.run()
    assert [s.state for s in pipeline.streams()] == ["failed", "failed"]


def test_batches_form_across_streams():
    stage = BatchSizes(batch_size=8)
    Pipeline([FakeSource(20, at=i) for i in range(8)], [stage], lambda i: [Collect()]).run()
    assert sum(stage.sizes) == 160
    # linger None waits for a full batch; only a stream's end passes a short one on
    assert stage.sizes.count(8) >= 160 // 8 - 8
    assert np.mean(stage.sizes) >= 6


def test_merge_is_round_robin_so_a_long_stream_does_not_starve_a_short_one():
    order: list[int] = []

    def record(frame: Frame) -> Frame:
        if not order:  # hold the first frame until both inboxes are as full as they get
            deadline = time.monotonic() + 10
            while p.stats()[2].queue_len < 8 + 4 and time.monotonic() < deadline:
                time.sleep(0.01)
        order.append(frame.stream)
        return frame

    p = Pipeline([FakeSource(50, at=0), FakeSource(5, at=8)], [record],
                 lambda i: [Collect()], capacity=8)
    p.run()
    # the short stream's 5 frames alternate with the long one's first ones
    assert order.count(1) == 5
    assert max(i for i, s in enumerate(order) if s == 1) < 12


def test_a_live_stream_is_served_before_files():
    order: list[int] = []

    def record(frame: Frame) -> Frame:
        if not order:  # hold the first frame until both inboxes are as full as they get
            deadline = time.monotonic() + 10
            while p.stats()[2].queue_len < 8 + 7 and time.monotonic() < deadline:
                time.sleep(0.01)
        order.append(frame.stream)
        return frame

    gate = threading.Event()

    class Camera(FakeSource):
        def frames(self):
            yield from super().frames()
            gate.wait(10)  # a camera does not end while the file is read

    p = Pipeline([FakeSource(40, at=0), Camera(8, at=8, live=True)], [record],
                 lambda i: [Collect()], capacity=8)
    t = threading.Thread(target=p.run, daemon=True)
    t.start()
    deadline = time.monotonic() + 10
    while len(order) < 20 and time.monotonic() < deadline:
        time.sleep(0.01)
    gate.set()
    t.join(10)
    # after the first frame, the camera's queued frames all go before the file's
    assert order[1:9].count(1) >= 7 - (order[0] == 1)
    assert order.count(1) == 8 and order.count(0) == 40


def test_a_stream_ends_on_its_own_while_the_others_run():
    short_closed = threading.Event()

    class SignalOnClose(Collect):
        def close(self):
            super().close()
            short_closed.set()

    class WaitsForShort(FakeSource):
        def frames(self):
            for i, frame in enumerate(super().frames()):
                if i == 10:
                    self.saw_short_end = short_closed.wait(10)
                yield frame

    long = WaitsForShort(20, at=0)
    sinks = {0: Collect(), 1: SignalOnClose()}
    Pipeline([long, FakeSource(3, at=8)], [Detector(RedSquares())], lambda i: [sinks[i]]).run()
    assert long.saw_short_end  # the short stream's outputs were finalized mid-run
    assert len(sinks[0].frames) == 20 and len(sinks[1].frames) == 3


def test_a_failing_sink_stops_only_its_stream():
    class FailingSink(Collect):
        def process(self, frame):
            if frame.index == 4:
                raise Boom("disk on fire")
            super().process(frame)

    sinks = {0: Collect(), 1: FailingSink(), 2: Collect()}
    p = Pipeline([FakeSource(30, at=0), FakeSource(30, at=8), FakeSource(30, at=16)],
                 [Detector(RedSquares())], lambda i: [sinks[i]])
    summary = p.run()
    assert len(sinks[0].frames) == len(sinks[2].frames) == 30
    assert len(sinks[1].frames) == 4 and sinks[1].closed == 1
    assert summary.streams[1].state == "failed"
    assert summary.streams[1].error == "stage 'sink-2' at frame 4: Boom: disk on fire"


def test_a_stream_that_cannot_open_does_not_stop_the_others():
    class Unopenable(FakeSource):
        def open(self):
            raise FileNotFoundError("no such camera")

    sinks = {0: Collect(), 1: Collect()}
    p = Pipeline([Unopenable(5), FakeSource(12, at=8)], [Detector(RedSquares())],
                 lambda i: [sinks[i]])
    summary = p.run()
    assert len(sinks[1].frames) == 12
    assert sinks[0].opened == 0  # no outputs for a stream that never opened
    assert summary.streams[0].state == "failed"
    assert "no such camera" in summary.streams[0].error
    # a single-stream pipeline raises at open, before any output exists
    with pytest.raises(FileNotFoundError):
        Pipeline(Unopenable(5), [Detector(RedSquares())], [Collect()]).run()


def test_a_shared_stage_failing_fails_the_run_and_finalizes_every_stream():
    def explode(frame):
        if frame.stream == 1 and frame.index == 7:
            raise Boom("model exploded")
        return frame

    sinks = {i: Collect() for i in range(3)}
    p = Pipeline([FakeSource(50, at=8 * i) for i in range(3)], [explode], lambda i: [sinks[i]])
    with pytest.raises(StageError, match="stage 'explode' at frame 7: Boom: model exploded"):
        p.run()
    assert all(s.closed == 1 for s in sinks.values())
    assert [s.state for s in p.streams()] == ["failed"] * 3


def test_iterating_yields_every_streams_frames_tagged():
    p = Pipeline([FakeSource(6, at=0), FakeSource(9, at=8)], [Detector(RedSquares())])
    got = [(f.stream, f.index) for f in p]
    assert sorted(got) == [(0, i) for i in range(6)] + [(1, i) for i in range(9)]
    # with sinks, frames come out after their stream's sinks saw them
    sinks = {0: Collect(), 1: Collect()}
    p = Pipeline([FakeSource(6, at=0), FakeSource(9, at=8)], [], lambda i: [sinks[i]])
    assert len(list(p)) == 15 and len(sinks[0].frames) == 6 and len(sinks[1].frames) == 9


def test_stop_finalizes_every_streams_outputs():
    sinks = {i: Collect() for i in range(3)}
    p = Pipeline([FakeSource(10_000, at=8 * i, delay=0.001) for i in range(3)],
                 [Detector(RedSquares())], lambda i: [sinks[i]])
    threading.Timer(0.3, p.stop).start()
    summary = p.run()
    assert summary.interrupted and summary.error is None
    assert all(s.closed == 1 for s in sinks.values())
    assert all(0 < len(s.frames) < 10_000 for s in sinks.values())
    for r in summary.streams:
        assert r.frames == len(sinks[r.index].frames)


def test_live_streams_drop_into_their_own_counters():
    def slow(frame):
        time.sleep(0.01)
        return frame

    live = FakeSource(200, at=0, live=True)
    file = FakeSource(30, at=8)
    summary = Pipeline([live, file], [slow], lambda i: [Collect()], capacity=2).run()
    by_index = {r.index: r for r in summary.streams}
    assert by_index[0].dropped > 0  # the live stream does not fall behind
    assert by_index[1].dropped == 0 and by_index[1].frames == 30  # a file loses nothing
    for r in summary.streams:
        assert r.frames_in == r.frames + r.dropped + r.decode_errors
    assert summary.dropped == by_index[0].dropped


def test_a_sink_given_as_a_stage_and_the_reverse_are_type_errors(tmp_path):
    with pytest.raises(TypeError, match="VideoWriter 'video' is a sink, not a stage: pass it "
                                        "in sinks"):
        Pipeline(ArraySource([np.zeros((4, 4, 3), np.uint8)]), [VideoWriter(tmp_path / "x.mp4")])
    with pytest.raises(TypeError, match="BatchSizes 'batcher' is a stage, not a sink"):
        Pipeline(ArraySource([np.zeros((4, 4, 3), np.uint8)]), [], [BatchSizes(2)])
    with pytest.raises(TypeError, match="is a source, not a stage"):
        Pipeline(ArraySource([np.zeros((4, 4, 3), np.uint8)]), [FakeSource(1)])
    with pytest.raises(TypeError, match="several sources.*factory"):
        Pipeline([FakeSource(1), FakeSource(1)], [], [Collect()])


def test_stages_with_one_name_get_their_own_rows():
    summary = Pipeline(ArraySource([np.zeros((4, 4, 3), np.uint8)] * 5),
                       [lambda f: f, lambda f: None if f.index == 2 else f],
                       [Collect()]).run()
    assert [s.name for s in summary.stages] == ["decode", "<lambda>", "<lambda>-2", "sink"]
    d = summary.to_dict()["stages"]
    assert d["<lambda>"]["items_out"] == 5 and d["<lambda>-2"]["items_out"] == 4
    assert summary.dropped == 1


class Stuck(Stage):
    name = "stuck"

    def __init__(self) -> None:
        self.release = threading.Event()
        self.entered = threading.Event()

    def process(self, frame):
        self.entered.set()
        self.release.wait(60)  # a model call that never returns
        return frame


def test_abort_returns_within_the_deadline_naming_the_stuck_stage(no_thread_leak):
    stage = Stuck()
    sink = Collect()
    p = Pipeline(FakeSource(100), [stage], [sink], shutdown_timeout=0.5)
    threading.Thread(target=lambda: (stage.entered.wait(10), p.abort()), daemon=True).start()
    t0 = time.monotonic()
    try:
        with pytest.raises(ShutdownTimeout, match="stage 'stuck' did not stop within 0.5 s"):
            p.run()
        # bounded: the deadline, plus the sources' short grace; far below the stage's 60 s
        assert time.monotonic() - t0 < 10
        assert sink.closed == 1  # outputs are finalized without the stuck stage
        assert p.error is None
    finally:
        stage.release.set()  # let the thread end so it does not outlive the test
        time.sleep(0.2)


def run_expecting_cancel(p: Pipeline) -> None:
    try:
        p.run()
    except Cancelled:
        pass


def test_leaving_a_with_block_returns_within_the_deadline(caplog, monkeypatch):
    import logging

    # the command line's log set-up (run in-process by other tests) stops propagation
    monkeypatch.setattr(logging.getLogger("vidstream"), "propagate", True)
    caplog.set_level(logging.WARNING, logger="vidstream")
    stage = Stuck()
    sink = Collect()
    t0 = time.monotonic()
    try:
        with pytest.raises(KeyboardInterrupt):  # noqa: SIM117
            with Pipeline(FakeSource(100), [stage], [sink], shutdown_timeout=0.3) as p:
                threading.Thread(target=run_expecting_cancel, args=(p,), daemon=True).start()
                stage.entered.wait(10)
                raise KeyboardInterrupt  # the caller leaves while the model call hangs
        assert time.monotonic() - t0 < 10
        assert sink.closed == 1
        # the caller's own exception goes on; the stuck stage is named in a warning
        assert "stage 'stuck' did not stop within 0.3 s" in caplog.text
    finally:
        stage.release.set()
        time.sleep(0.2)


def test_a_stuck_stage_after_ctrl_c_is_still_an_interruption():
    assert issubclass(ShutdownTimeout, Cancelled) and issubclass(ShutdownTimeout, TimeoutError)


def test_sources_open_at_once_so_a_slow_camera_delays_no_other():
    b_opening = threading.Event()

    class WaitsForB(FakeSource):
        def open(self):
            self.saw_b = b_opening.wait(10)  # sequential opening would never see it
            return super().open()

    class B(FakeSource):
        def open(self):
            b_opening.set()
            return super().open()

    a = WaitsForB(3, at=0)
    summary = Pipeline([a, B(4, at=8)], [], lambda i: [Collect()]).run()
    assert a.saw_b
    assert [r.frames for r in summary.streams] == [3, 4]


def test_stream_states_and_batching_in_the_summary():
    class Reconnecting(FakeSource):
        """A live source that says it lost its stream after its 3rd frame, until released."""

        def __init__(self, *a, **k):
            super().__init__(*a, **k)
            self.lost = threading.Event()
            self.back = threading.Event()

        @property
        def reconnecting(self):
            return self.lost.is_set() and not self.back.is_set()

        def frames(self):
            for i, frame in enumerate(super().frames()):
                if i == 3:
                    self.lost.set()
                    self.back.wait(10)
                yield frame

    cam = Reconnecting(6, at=0, live=True)
    file = FakeSource(8, at=8)
    stage = BatchSizes(batch_size=2, linger=0)
    p = Pipeline([cam, file], [stage], lambda i: [Collect()])
    states = []
    t = threading.Thread(target=p.run, daemon=True)
    t.start()
    cam.lost.wait(10)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        states = [r.state for r in p.streams()]
        if states[1] == "ended":
            break
        time.sleep(0.01)
    assert states == ["reconnecting", "ended"]
    cam.back.set()
    t.join(10)
    summary = p.summary()
    assert [r.state for r in summary.streams] == ["ended", "ended"]
    assert summary.batching["batches"] == len(stage.sizes)
    assert sum(int(k) * v for k, v in summary.batching["histogram"].items()) == 14
    assert summary.batching["mean"] == pytest.approx(14 / len(stage.sizes))
    d = summary.to_dict()
    assert d["batching"] == summary.batching
    assert all(s["fps"] > 0 and s["wall_s"] > 0 for s in d["streams"])


def test_absurd_engine_settings_are_refused():
    from vidstream import ConfigError

    with pytest.raises(ConfigError, match="capacity must be between 1 and 256 frames"):
        Pipeline(FakeSource(1), capacity=10**9)
    with pytest.raises(ConfigError, match="shutdown_timeout must be a finite number"):
        Pipeline(FakeSource(1), shutdown_timeout=float("nan"))
