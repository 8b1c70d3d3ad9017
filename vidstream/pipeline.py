"""Stages in threads, linked by bounded channels.

The pipeline owns the threads, the channels, end-of-stream, cancellation and error
propagation; a stage only transforms items. Run to the end and get the summary:

>>> from vidstream import Detector, Pipeline, VideoSource, VideoWriter
>>> with Pipeline(VideoSource("clip.mp4"), [Detector()], [VideoWriter("out.mp4")]) as p:
...     summary = p.run()
>>> summary.frames
12

or iterate over the frames that leave the last stage, with their detections:

>>> for frame in Pipeline(VideoSource("clip.mp4"), [Detector(classes=["person"])]):
...     print(frame.index, frame.detections.labels)     # doctest: +ELLIPSIS
0 ('person',)
...

How it ends:

* input exhausted: the source closes its channel, every stage drains and closes in turn;
* :meth:`Pipeline.stop` (first Ctrl-C): the source stops reading, frames already in flight
  still reach the sinks, outputs are finalized (a source blocked in a stalled read is not
  waited for beyond ``SOURCE_GRACE_S``);
* an exception in stage *k*: every channel upstream of *k* is aborted (producers stop at
  once), the channel after *k* is closed (what already passed *k* still reaches the sinks), and
  the error is re-raised to the caller with the stage name and frame index;
* :meth:`Pipeline.abort` (second Ctrl-C): every channel is aborted, stages close at once.

Every stage's ``close()`` runs once its ``open()`` succeeded, whatever happened.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from .channel import Channel, ChannelAborted, ChannelClosed, EndOfStream
from .errors import Cancelled, StageError, VidstreamError
from .frames import Frame, StreamInfo
from .stage import Sink, Source, Stage, as_sink, as_source, as_stage
from .stats import LatencyHistogram, StageCounters, StageStats
from .summary import Summary

DEFAULT_CAPACITY = 8
# After stop() or an error, how long to wait for a source stuck in a read (a stalled network
# stream blocks until its read timeout) before returning without it. Its thread is a daemon
# and still closes the source itself when the read returns.
ABORT_GRACE_S = 0.2
SOURCE_GRACE_S = 1.0


class SinkGroup(Stage):
    """Runs one stream's sinks in one thread, in order; passes each item on unchanged."""

    name = "sink"

    def __init__(self, sinks: list[Sink]) -> None:
        self.sinks = sinks
        self._opened: list[Sink] = []

    def open(self, info: StreamInfo | None = None) -> None:
        for sink in self.sinks:
            sink.open(info)
            self._opened.append(sink)

    def process(self, item: Frame) -> Frame:
        for sink in self.sinks:
            sink.process(item)
        return item

    def close(self) -> None:
        first: BaseException | None = None
        for sink in reversed(self._opened):
            try:
                sink.close()
            except BaseException as e:  # every sink must get its close()
                first = first or e
        self._opened.clear()
        if first is not None:
            raise first


class Pipeline:
    """Source -> stages -> sinks, each in its own thread, linked by bounded channels.

    ``stages`` and ``sinks`` take :class:`Stage` objects or plain functions
    ``f(frame) -> frame | None`` (a sink's return value is ignored). Sinks share one thread
    and see every frame in order; the frames also come out of the pipeline when iterated.
    ``leaky`` (default: on for live sources) drops the oldest waiting frame rather than
    falling behind. A pipeline runs once.
    """

    def __init__(
        self,
        source: Source,
        stages: Iterable[Stage | Callable[[Any], Any]] = (),
        sinks: Iterable[Stage | Callable[[Any], Any]] = (),
        *,
        capacity: int = DEFAULT_CAPACITY,
        leaky: bool | None = None,
    ) -> None:
        self.source = as_source(source)
        self.stages: list[Stage] = [as_stage(s) for s in stages]
        sink_stages = [as_sink(s) for s in sinks]
        if sink_stages:
            self.stages.append(SinkGroup(sink_stages))
        self.capacity = capacity
        self._leaky = leaky
        self.info: StreamInfo | None = None
        self._counters = [StageCounters(source.name)] + [
            StageCounters(s.name) for s in self.stages
        ]
        self._channels: list[Channel] = []
        self._threads: list[threading.Thread] = []
        self._opened: list[Any] = []
        self._stop = threading.Event()
        self._done = threading.Event()
        self._lock = threading.Lock()
        self._error: BaseException | None = None
        self._aborted = False
        self._interrupted = False
        self._remaining = 0
        self._grace_until: float | None = None
        self._started_at: float | None = None
        self._ended_at: float | None = None
        self._open_s: dict[str, float] = {}
        self.latency = LatencyHistogram()

    # -- lifecycle -------------------------------------------------------------------------
    def __enter__(self) -> Pipeline:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._threads and not self._done.is_set():
            self.abort()
            self._join()
        if not self._threads:
            # Once started, each thread closes its own stage: closing a source from here
            # while its thread is still in a read would pull the container from under it.
            self._close_unstarted()

    def open(self) -> StreamInfo:
        """Open every stage in order (source first); on failure close what was opened."""
        if self.info is not None:
            return self.info
        try:
            if getattr(self.source, "live", False):
                # A live source runs from the moment it connects: load models first, or the
                # stream's first seconds pile up while they load and are then dropped.
                for stage in self.stages:
                    preload = getattr(stage, "preload", None)
                    if callable(preload):
                        preload()
            t = time.perf_counter()
            info = self.source.open()
            self._opened.append(self.source)
            self._open_s[self.source.name] = time.perf_counter() - t
            for stage in self.stages:
                t = time.perf_counter()
                stage.open(info)
                self._opened.append(stage)
                self._open_s[stage.name] = time.perf_counter() - t
        except BaseException:
            self._close_unstarted()
            raise
        self.info = info
        return info

    def run(self) -> Summary:
        """Run to the end of the input; returns the summary, raises the first stage error.

        A first KeyboardInterrupt stops reading and lets in-flight frames finish (the summary
        says ``interrupted``); a second one aborts at once.
        """
        self._start(out=None)
        self._wait()
        summary = self.summary()
        self._raise_error()
        return summary

    def __iter__(self) -> Iterator[Frame]:
        """Run and yield every frame that leaves the last stage."""
        out = Channel(self.capacity, name="output")
        self._start(out=out)
        finished = False
        try:
            while True:
                try:
                    item = out.get()
                except (EndOfStream, ChannelAborted):
                    break
                yield item
            finished = True
        finally:
            if not finished:
                self.abort()
            self._join()
        self._raise_error()

    def stop(self) -> None:
        """Stop reading input; frames in flight still reach the sinks."""
        self._interrupted = True
        self._stop.set()
        stop_source = getattr(self.source, "stop", None)
        if callable(stop_source):
            stop_source()
        if self._channels:
            # End the stream here rather than when the source's read returns: a stalled
            # network read may block until its timeout.
            self._channels[0].close()

    def abort(self) -> None:
        """Stop now: wake every stage and close it; frames in flight are discarded."""
        self._interrupted = True
        self._aborted = True
        self._stop.set()
        for ch in self._channels:
            ch.abort()

    @property
    def done(self) -> bool:
        return self._done.is_set()

    @property
    def error(self) -> BaseException | None:
        return self._error

    # -- observation -----------------------------------------------------------------------
    def stats(self) -> list[StageStats]:
        """A snapshot of every stage's counters, source first (safe from any thread)."""
        out = []
        for i, c in enumerate(self._counters):
            inbox = self._channels[i - 1] if 0 < i <= len(self._channels) else None
            out.append(
                c.snapshot(len(inbox), inbox.capacity) if inbox is not None else c.snapshot()
            )
        return out

    @property
    def dropped(self) -> int:
        """Frames dropped on purpose: by a leaky queue (live sources) or a stage returning None."""
        return sum(ch.dropped for ch in self._channels) + sum(
            c.dropped for c in self._counters[1:]
        )

    @property
    def elapsed_s(self) -> float:
        if self._started_at is None:
            return 0.0
        return (self._ended_at or time.perf_counter()) - self._started_at

    def summary(self) -> Summary:
        stats = self.stats()
        frames = stats[-1].items_out
        wall = self.elapsed_s
        decode_errors = getattr(self.source, "decode_errors", 0)
        return Summary(
            frames=frames,
            frames_in=stats[0].items_out + decode_errors,
            wall_s=wall,
            fps=frames / wall if wall > 0 else 0.0,
            model_load_s=sum(
                getattr(s, "model_load_s", 0.0) or 0.0 for s in self.stages
            ),
            latency=self.latency,
            stages=stats,
            open_s=dict(self._open_s),
            decode_errors=decode_errors,
            dropped=self.dropped,
            interrupted=self._interrupted,
            error=_one_line(self._error) if self._error else None,
            info=self.info,
            details=self._details(),
        )

    def details(self) -> dict:  # temporary (wt-cli): the engine's public details() replaces it
        return self._details()

    def _details(self) -> dict:
        details: dict = {}
        for obj in [self.source, *self.stages]:
            describe = getattr(obj, "describe", None)
            if callable(describe):
                details.update(describe())
        return details

    # -- machinery -------------------------------------------------------------------------
    def _start(self, out: Channel | None) -> None:
        if self._threads:
            raise RuntimeError("a Pipeline runs once; build a new one to run again")
        info = self.open()
        leaky_first = info.live if self._leaky is None else self._leaky
        self._channels = [
            Channel(self.capacity, leaky=(i == 0 and leaky_first), name=f"to-{s.name}")
            for i, s in enumerate(self.stages)
        ]
        if out is not None:
            self._channels.append(out)
        outboxes: list[Channel | None] = list(self._channels)
        if out is None:
            outboxes.append(None)
        self._remaining = 1 + len(self.stages)
        self._started_at = time.perf_counter()
        self._threads = [
            threading.Thread(
                target=self._run_source, args=(outboxes[0],), name="vidstream-" + self.source.name,
                daemon=True,
            )
        ]
        for i, stage in enumerate(self.stages, start=1):
            self._threads.append(
                threading.Thread(
                    target=self._run_stage,
                    args=(i, stage, self._channels[i - 1], outboxes[i]),
                    name="vidstream-" + stage.name,
                    daemon=True,
                )
            )
        for t in self._threads:
            t.start()

    def _wait(self) -> None:
        # Wait in short slices so Ctrl-C reaches this (main) thread promptly.
        while True:
            try:
                while not self._done.wait(0.1):
                    if self._only_source_left():
                        break
                break
            except KeyboardInterrupt:
                if self._interrupted:
                    self.abort()
                else:
                    self.stop()
        self._join()

    def _only_source_left(self) -> bool:
        """Stopped, every stage finished, and the source still stuck in a read."""
        return self._stop.is_set() and all(not t.is_alive() for t in self._threads[1:])

    def _join(self) -> None:
        for t in self._threads[1:]:
            t.join()
        if not self._threads:
            return
        if not self._stop.is_set():
            self._threads[0].join()
            return
        # Past the grace period (a short one after abort()) a source stuck in a read is left
        # to end by its read timeout. An aborted source that is not stuck ends within
        # milliseconds: it still gets joined, so no thread outlives the pipeline.
        if self._grace_until is None:
            self._grace_until = time.monotonic() + SOURCE_GRACE_S
        deadline = self._grace_until
        if self._aborted:
            deadline = min(deadline, time.monotonic() + ABORT_GRACE_S)
        source = self._threads[0]
        while source.is_alive():
            left = deadline - time.monotonic()
            if left <= 0:
                break
            source.join(min(left, 0.1))

    def _finished_one(self) -> None:
        with self._lock:
            self._remaining -= 1
            if self._remaining == 0:
                self._ended_at = time.perf_counter()
                self._done.set()

    def _fail(self, position: int, exc: BaseException, frame: int | None) -> None:
        """Record the first error; abort every channel upstream of ``position``."""
        with self._lock:
            if self._error is None:
                self._error = _with_context(exc, self._counters[position].name, frame)
        self._stop.set()
        for ch in self._channels[:position]:
            ch.abort()

    def _raise_error(self) -> None:
        if self._error is not None:
            raise self._error
        if self._aborted:
            raise Cancelled("pipeline aborted")

    def _run_source(self, outbox: Channel | None) -> None:
        c = self._counters[0]
        c.started = time.perf_counter()
        prepare = self._prepare_hook(1)
        frames = None
        frame_index: int | None = None
        try:
            frames = self.source.frames()
            while not self._stop.is_set():
                t0 = time.perf_counter()
                waited = getattr(self.source, "wait_s", 0.0)
                try:
                    item = next(frames)
                except StopIteration:
                    break
                if prepare is not None:
                    prepare(item)
                t1 = time.perf_counter()
                # A source that waits on its sender (a live stream, paced reading) says how
                # long: that is starving, not work, or every live run's bottleneck is "decode".
                waited = getattr(self.source, "wait_s", 0.0) - waited
                c.starved_s += waited
                c.busy_s += t1 - t0 - waited
                frame_index = getattr(item, "index", None)
                if self._stop.is_set():
                    break  # read after the stop: not passed on, not counted
                if outbox is not None:
                    try:
                        outbox.put(item)
                    except ChannelClosed:
                        break  # stop() ended the stream while we waited for room
                    c.blocked_s += time.perf_counter() - t1
                    c.dropped = outbox.dropped
                c.items_out += 1
        except ChannelAborted:
            pass
        except BaseException as e:
            if not (self._stop.is_set() and self._error is None and self._interrupted):
                c.errors += 1
                self._fail(0, e, None if frame_index is None else frame_index + 1)
            # else: stopped by the user; a read cut short by the stop is no error
        finally:
            self._close_stage(0, self.source, frames)
            if outbox is not None:
                outbox.close()
            c.ended = time.perf_counter()
            self._finished_one()

    def _run_stage(
        self, position: int, stage: Stage, inbox: Channel, outbox: Channel | None
    ) -> None:
        c = self._counters[position]
        c.started = time.perf_counter()
        last = position == len(self.stages)
        batch_size = max(1, int(getattr(stage, "batch_size", 1) or 1))
        linger = getattr(stage, "linger", None)
        prepare = self._prepare_hook(position + 1)
        batch: list = []
        try:
            while True:
                t0 = time.perf_counter()
                try:
                    batch = inbox.get_batch(batch_size, linger)
                except EndOfStream:
                    break
                t1 = time.perf_counter()
                c.starved_s += t1 - t0
                c.items_in += len(batch)
                results = stage.process_batch(batch) if batch_size > 1 or len(batch) > 1 else [
                    stage.process(batch[0])
                ]
                if prepare is not None:
                    for item in results:
                        if item is not None:
                            prepare(item)
                t2 = time.perf_counter()
                c.busy_s += t2 - t1
                for item in results:
                    if item is None:
                        c.dropped += 1
                        continue
                    if outbox is not None:
                        outbox.put(item)
                    c.items_out += 1
                    if last and isinstance(item, Frame):
                        self.latency.add(time.perf_counter() - item.created)
                c.blocked_s += time.perf_counter() - t2
        except ChannelAborted:
            pass
        except BaseException as e:
            c.errors += 1
            self._fail(position, e, getattr(batch[0], "index", None) if batch else None)
        finally:
            self._close_stage(position, stage, None)
            if outbox is not None:
                outbox.close()
            c.ended = time.perf_counter()
            self._finished_one()

    def _prepare_hook(self, position: int) -> Callable[[Any], Any] | None:
        """The ``prepare`` of the stage at ``position`` (1 = first after the source)."""
        if position > len(self.stages):
            return None
        prepare = getattr(self.stages[position - 1], "prepare", None)
        return prepare if callable(prepare) else None

    def _close_stage(self, position: int, stage: Any, generator: Any) -> None:
        try:
            if generator is not None:
                generator.close()
        except BaseException as e:
            self._fail(position, e, None)
        with self._lock:
            opened = stage in self._opened
            if opened:
                self._opened.remove(stage)
        try:
            if opened:
                stage.close()
        except BaseException as e:
            self._fail(position, e, None)

    def _close_unstarted(self) -> None:
        while self._opened:
            stage = self._opened.pop()
            try:
                stage.close()
            except Exception:
                pass  # the open() error that brought us here is the one to report


def _with_context(exc: BaseException, stage: str, frame: int | None) -> BaseException:
    if isinstance(exc, VidstreamError):
        exc.stage = exc.stage or stage
        exc.frame = exc.frame if exc.frame is not None else frame
        return exc
    where = f"stage {stage!r}" + (f" at frame {frame}" if frame is not None else "")
    err = StageError(f"{where}: {type(exc).__name__}: {exc}", stage=stage, frame=frame)
    err.__cause__ = exc
    return err


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__
