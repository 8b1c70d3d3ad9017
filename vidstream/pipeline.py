"""The engine: sources, shared stages and per-stream sinks in threads, linked by bounded channels.

The pipeline owns the threads, the channels, end-of-stream, cancellation and error
propagation; a stage only transforms frames. Run to the end and get the summary:

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

Many streams run in one pipeline: give several sources, and the sinks as a factory called
with each stream's index. The shared stages see batches formed across the streams
(:mod:`vidstream.graph`); each stream keeps its own bounded queues, its own end and its own
failure::

    Pipeline([VideoSource("a.mp4"), VideoSource("b.mp4")], [Detector(batch_size=4)],
             lambda stream: [VideoWriter(f"out-{stream}.mp4")]).run()

How it ends:

* a stream's input is exhausted: its frames drain through the shared stages and its sinks
  close; the other streams go on. The run ends when every stream has ended;
* :meth:`Pipeline.stop` (first Ctrl-C): sources stop reading, frames already in flight still
  reach the sinks, outputs are finalized (a source blocked in a stalled read is not waited for
  beyond ``DEFAULTS.source_grace_s``);
* a source or a sink fails: that stream stops and records its error; the others go on. The
  run's error is that error once *every* stream has failed (so a single-stream run raises it);
* a shared stage fails: every channel upstream of it is aborted, the channel after it is
  closed (what already passed it still reaches the sinks), and the error is re-raised with the
  stage's id and the frame index;
* :meth:`Pipeline.abort` (second Ctrl-C): every channel is aborted, stages close at once. A
  stage stuck in a call (a model, a network read) is waited for ``shutdown_timeout`` seconds at
  most, then left behind in its daemon thread and named in a
  :class:`~vidstream.errors.ShutdownTimeout`.

Every stage's and sink's ``close()`` runs once its ``open()`` succeeded, whatever happened.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, TypeAlias

from .channel import Channel, ChannelAborted, ChannelClosed, EndOfStream
from .errors import Cancelled, ConfigError, ShutdownTimeout, StageError, VidstreamError
from .frames import Frame, StreamInfo
from .graph import Merge, Split, StreamEnd, StreamState
from .settings import DEFAULTS
from .stage import (
    ProcessorLike,
    Sink,
    Source,
    SourceLike,
    Stage,
    as_sink,
    as_source,
    as_stage,
    unique_ids,
)
from .stats import LatencyHistogram, StageCounters, StageStats
from .summary import StreamReport, Summary

log = logging.getLogger("vidstream")

# After abort(), how long to wait for a source stuck in a read: its thread is a daemon and
# still closes the source itself when the read returns.
ABORT_GRACE_S = 0.2

SinkSpec: TypeAlias = Sink | ProcessorLike | Callable[[Frame], Any]
SinksArg: TypeAlias = Iterable[SinkSpec] | Callable[[int], "SinkSpec | Iterable[SinkSpec]"]


class SinkGroup:
    """One stream's sinks, run in one thread, in order (engine-internal)."""

    def __init__(self, sinks: list[Sink]) -> None:
        self.sinks = sinks
        self._opened: list[Sink] = []

    def open(self, info: StreamInfo) -> None:
        for sink in self.sinks:
            sink.open(info)
            self._opened.append(sink)

    def process(self, item: Frame) -> None:
        for sink in self.sinks:
            sink.process(item)

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


class _Stream:
    """One stream's parts and live state (engine-internal)."""

    def __init__(self, index: int, source: Source, source_id: str, sinks: list[Sink],
                 sink_id: str) -> None:
        self.index = index
        self.source = source
        self.source_id = source_id
        self.group = SinkGroup(sinks)
        self.sink_id = sink_id
        self.info: StreamInfo | None = None
        self.state = StreamState.CONNECTING
        self.error: BaseException | None = None
        self.stopping = threading.Event()
        self.source_counters = StageCounters(source_id)
        self.sink_counters = StageCounters(sink_id)
        self.outbox: Channel | None = None  # where its source puts frames
        self.sink_inbox: Channel | None = None
        self.source_thread: threading.Thread | None = None
        self.latency = LatencyHistogram()
        self.started: float | None = None  # its source began reading
        self.ended: float | None = None  # its last frame reached the end of the pipeline

    def end(self, state: StreamState) -> None:
        """The stream is over (written by the one thread that finishes it)."""
        if self.state in (StreamState.RUNNING, StreamState.CONNECTING):
            self.state = state
        if self.ended is None:
            self.ended = time.perf_counter()

    @property
    def reported_state(self) -> str:
        """``running`` split into what a user watching a camera wants to know."""
        if self.state is StreamState.RUNNING:
            if self.source.reconnecting:
                return "reconnecting"
            return "live" if self.source.live else "running"
        return self.state.value


class Pipeline:
    """Sources -> shared stages -> per-stream sinks, each in its own thread, linked by bounded
    channels.

    ``sources`` is one source or a list of them (one stream each). ``stages`` take
    :class:`~vidstream.stage.Stage` objects or plain functions ``f(frame) -> frame | None``.
    ``sinks`` take :class:`~vidstream.stage.Sink` objects or functions ``f(frame)``; with
    several sources, a factory ``f(stream_index) -> sinks`` gives each stream its own. A
    stream's sinks share one thread and see its frames in order; the frames also come out of
    the pipeline when iterated. ``leaky`` (default: on for live sources) drops a stream's
    oldest waiting frame rather than falling behind. A pipeline runs once.
    """

    def __init__(
        self,
        sources: Source | SourceLike | Sequence[Source | SourceLike],
        stages: Iterable[Stage | ProcessorLike | Callable[[Frame], Frame | None]] = (),
        sinks: SinksArg = (),
        *,
        capacity: int = DEFAULTS.queue_size,
        leaky: bool | None = None,
        shutdown_timeout: float = DEFAULTS.shutdown_timeout,
    ) -> None:
        if not 1 <= capacity <= DEFAULTS.max_queue_size:
            raise ConfigError(f"capacity must be between 1 and {DEFAULTS.max_queue_size} "
                              f"frames, got {capacity}", param="capacity")
        if not math.isfinite(shutdown_timeout) or shutdown_timeout < 0:
            raise ConfigError(f"shutdown_timeout must be a finite number >= 0, got "
                              f"{shutdown_timeout}", param="shutdown_timeout")
        listed: list[Source | SourceLike] = (
            list(sources) if isinstance(sources, list | tuple) else [sources])  # type: ignore[list-item]
        if not listed:
            raise ValueError("a Pipeline needs at least one source")
        self.sources: list[Source] = [as_source(s) for s in listed]
        self.stages: list[Stage] = [as_stage(s) for s in stages]
        per_stream = _sinks_per_stream(sinks, len(self.sources))
        self.capacity = capacity
        self.shutdown_timeout = shutdown_timeout
        self._leaky = leaky
        self._has_sinks = any(per_stream)

        source_ids = unique_ids([s.name for s in self.sources])
        self.stage_ids = unique_ids([s.name for s in self.stages], taken=source_ids)
        sink_ids = unique_ids(["sink"] * len(self.sources), taken=source_ids + self.stage_ids)
        self._streams = [
            _Stream(i, src, source_ids[i], per_stream[i], sink_ids[i])
            for i, src in enumerate(self.sources)
        ]
        self._stage_counters = [StageCounters(i) for i in self.stage_ids]
        # per stage, per stream: frames the stage dropped (process returned None)
        self._stage_drops = [[0] * len(self._streams) for _ in self.stages]
        self._batch_sizes: dict[int, int] = {}  # frames per batch of the first shared stage
        self.latency = LatencyHistogram()

        self._cond = threading.Condition(threading.RLock())
        self._merge: Merge | None = None
        self._links: list[Channel] = []  # between shared stages
        self._split: Split | None = None
        self._output: Channel | None = None
        self._output_producers = 0
        self._threads: list[tuple[str, threading.Thread]] = []  # (stage id, thread)
        self._opened: list[Source | Stage | SinkGroup] = []
        self._stop = threading.Event()
        self._done = threading.Event()
        self._lock = threading.Lock()
        self._error: BaseException | None = None
        self._aborted_at: float | None = None
        self._interrupted = False
        self._remaining = 0
        self._grace_until: float | None = None
        self._started_at: float | None = None
        self._ended_at: float | None = None
        self._open_s: dict[str, float] = {}
        self._stuck: list[str] = []
        self.info: StreamInfo | None = None  # the first stream's

    # -- lifecycle -------------------------------------------------------------------------
    @property
    def source(self) -> Source:
        """The first (for a single-stream pipeline: the) source."""
        return self.sources[0]

    @property
    def infos(self) -> list[StreamInfo | None]:
        """Each stream's description once opened (None for a stream that could not open)."""
        return [s.info for s in self._streams]

    def __enter__(self) -> Pipeline:
        return self

    def __exit__(self, exc_type: object, *exc: object) -> None:
        if self._threads and not self._done.is_set():
            self.abort()
            self._join()
            if self._stuck:
                if exc_type is None:
                    raise self._stuck_error()
                log.warning("%s", self._stuck_error())  # the caller's own error goes on
        if not self._threads:
            # Once started, each thread closes its own stage: closing a source from here
            # while its thread is still in a read would pull the container from under it.
            self._close_unstarted()

    def open(self) -> StreamInfo:
        """Open every source, then the shared stages, then each stream's sinks.

        A stream whose source or sinks cannot open is marked failed and the others go on;
        when none can, the first error is raised (after closing what was opened).
        """
        if self.info is not None:
            return self.info
        try:
            if any(s.live for s in self.sources):
                # A live source runs from the moment it connects: load models first, or the
                # stream's first seconds pile up while they load and are then dropped.
                for stage in self.stages:
                    stage.preload()
            self._open_sources()
            first = self._first_opened()
            for stage, stage_id in zip(self.stages, self.stage_ids, strict=True):
                t = time.perf_counter()
                stage.open(first.info)
                self._opened.append(stage)
                self._open_s[stage_id] = time.perf_counter() - t
            for s in self._streams:
                if s.state is StreamState.CONNECTING:
                    self._open_part(s, s.group, s.sink_id)
            self._first_opened()
        except BaseException:
            self._close_unstarted()
            raise
        self.info = first.info
        return first.info  # type: ignore[return-value]

    def _open_sources(self) -> None:
        """Open every source; many at once, so one slow or dead camera delays no other."""
        if len(self._streams) == 1:
            s = self._streams[0]
            self._open_part(s, s.source, s.source_id)
            return
        threads = [threading.Thread(target=self._open_part, args=(s, s.source, s.source_id),
                                    name=f"vidstream-open-{s.source_id}", daemon=True)
                   for s in self._streams]
        for t in threads:
            t.start()
        try:
            for t in threads:
                while t.is_alive():
                    t.join(0.1)  # in slices, so Ctrl-C reaches this thread
        except BaseException:
            for s in self._streams:
                s.source.stop()
            for t in threads:
                t.join(DEFAULTS.source_grace_s)
            raise

    def _open_part(self, s: _Stream, part: Source | SinkGroup, part_id: str) -> None:
        t = time.perf_counter()
        try:
            if isinstance(part, Source):
                s.info = part.open()
            else:
                assert s.info is not None
                part.open(s.info)
        except Exception as e:
            if len(self._streams) == 1:
                raise
            s.error, s.state = _with_context(e, part_id, None), StreamState.FAILED
            # the error names the input (masked) or the output; the engine's ids would not
            log.warning("stream %d: %s; the other streams go on", s.index, _one_line(e))
            if isinstance(part, SinkGroup):
                self._close_part(s.source)
            return
        with self._lock:
            self._opened.append(part)
            self._open_s[part_id] = time.perf_counter() - t

    def _first_opened(self) -> _Stream:
        live = [s for s in self._streams if s.state is not StreamState.FAILED]
        if not live:
            raise next(s.error for s in self._streams if s.error is not None)
        return live[0]

    def run(self) -> Summary:
        """Run to the end of every input; returns the summary, raises the run's error.

        A first KeyboardInterrupt stops reading and lets in-flight frames finish (the summary
        says ``interrupted``); a second one aborts at once.
        """
        self._start(out=None)
        self._wait()
        summary = self.summary()
        self._raise_error()
        return summary

    def __iter__(self) -> Iterator[Frame]:
        """Run and yield every frame that leaves the last stage (or its stream's sinks)."""
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
        for s in self._streams:
            self._stop_stream(s)

    def abort(self) -> None:
        """Stop now: wake every stage and close it; frames in flight are discarded."""
        self._interrupted = True
        if self._aborted_at is None:
            self._aborted_at = time.monotonic()
        self._stop.set()
        for s in self._streams:
            s.stopping.set()
            s.source.stop()
        for ch in self._channels:
            ch.abort()
        if self._merge is not None:
            self._merge.abort()

    @property
    def done(self) -> bool:
        return self._done.is_set()

    @property
    def error(self) -> BaseException | None:
        """The run's error: a shared stage's, or a stream's once every stream has failed."""
        if self._error is not None:
            return self._error
        errors = [s.error for s in self._streams]
        if all(e is not None for e in errors):
            return errors[0]
        return None

    # -- observation -----------------------------------------------------------------------
    def stats(self) -> list[StageStats]:
        """A snapshot of every stage's counters (safe from any thread): each stream's source,
        the shared stages, then each stream's sinks (when there are any)."""
        out = [s.source_counters.snapshot() for s in self._streams]
        for k, c in enumerate(self._stage_counters):
            inbox: Merge | Channel | None = self._merge if k == 0 else (
                self._links[k - 1] if k - 1 < len(self._links) else None)
            out.append(c.snapshot(len(inbox), inbox.capacity) if inbox is not None
                       else c.snapshot())
        if self._has_sinks:
            for s in self._streams:
                ch = s.sink_inbox
                out.append(s.sink_counters.snapshot(len(ch), ch.capacity) if ch is not None
                           else s.sink_counters.snapshot())
        return out

    def streams(self) -> list[StreamReport]:
        """A snapshot of every stream: state, error, frame counts (safe from any thread)."""
        return [self._stream_report(s) for s in self._streams]

    @property
    def dropped(self) -> int:
        """Frames dropped on purpose: by a leaky queue (live sources), a stage returning None,
        or a stream whose sinks failed."""
        return sum(self._stream_dropped(s) for s in self._streams)

    @property
    def elapsed_s(self) -> float:
        if self._started_at is None:
            return 0.0
        return (self._ended_at or time.perf_counter()) - self._started_at

    def details(self) -> dict[str, Any]:
        """What the sources, stages and sinks say of themselves (their ``describe()``), merged:
        the shared stages', and for a single stream its source's and sinks'."""
        parts: list[Source | Stage | Sink] = list(self.stages)
        if len(self._streams) == 1:
            s = self._streams[0]
            parts = [s.source, *self.stages, *s.group.sinks]
        details: dict[str, Any] = {}
        for part in parts:
            details.update(part.describe())
        return details

    def summary(self) -> Summary:
        stats = self.stats()
        streams = self.streams()
        frames = sum(r.frames for r in streams)
        wall = self.elapsed_s
        return Summary(
            frames=frames,
            frames_in=sum(r.frames_in for r in streams),
            wall_s=wall,
            fps=frames / wall if wall > 0 else 0.0,
            model_load_s=sum(s.model_load_s or 0.0 for s in self.stages),
            latency=self.latency,
            stages=stats,
            open_s=dict(self._open_s),
            decode_errors=sum(r.decode_errors for r in streams),
            dropped=self.dropped,
            interrupted=self._interrupted,
            error=_one_line(self.error) if self.error is not None else None,
            info=self.info,
            details=self.details(),
            streams=streams,
            batch_sizes=dict(self._batch_sizes),
        )

    def _stream_report(self, s: _Stream) -> StreamReport:
        decode_errors = s.source.decode_errors
        frames = self._stream_frames(s)
        wall = 0.0
        if s.started is not None:
            wall = (s.ended or self._ended_at or time.perf_counter()) - s.started
        return StreamReport(
            index=s.index,
            uri=s.info.uri if s.info is not None else s.source_id,
            state=s.reported_state,
            wall_s=wall,
            fps=frames / wall if wall > 0 else 0.0,
            reconnects=s.source.reconnects,
            error=_one_line(s.error) if s.error is not None else None,
            frames=frames,
            frames_in=s.source_counters.items_out + decode_errors,
            dropped=self._stream_dropped(s),
            decode_errors=decode_errors,
            ended_early=s.source.ended_early,
            latency=s.latency,
            details=self._stream_details(s) if len(self._streams) > 1 else {},
        )

    def _stream_details(self, s: _Stream) -> dict[str, Any]:
        """What stream ``s``'s source, the shared stages (of it) and its sinks say."""
        details: dict[str, Any] = dict(s.source.describe())
        for stage in self.stages:
            details.update(stage.describe_stream(s.index))
        for sink in s.group.sinks:
            details.update(sink.describe())
        return details

    def _stream_frames(self, s: _Stream) -> int:
        """Frames of stream ``s`` that reached the end of the pipeline."""
        if self._has_sinks:
            return s.sink_counters.items_out
        if self.stages:
            return self._split.delivered[s.index] if self._split is not None else 0
        return s.source_counters.items_out

    def _stream_dropped(self, s: _Stream) -> int:
        dropped = s.outbox.dropped if s.outbox is not None and s.outbox is not self._output else 0
        dropped += sum(drops[s.index] for drops in self._stage_drops)
        if self._split is not None:
            dropped += self._split.dropped[s.index]
        if s.sink_inbox is not None and s.sink_inbox is not s.outbox:
            dropped += s.sink_inbox.dropped  # queued for sinks that failed
        return dropped + s.sink_counters.dropped

    # -- machinery -------------------------------------------------------------------------
    def _start(self, out: Channel | None) -> None:
        if self._threads:
            raise RuntimeError("a Pipeline runs once; build a new one to run again")
        self.open()
        self._output = out
        n = len(self._streams)
        first_id = self.stage_ids[0] if self.stages else None
        for s in self._streams:
            if self._has_sinks:
                s.sink_inbox = Channel(self.capacity, name=f"to-{s.sink_id}")
            if self.stages:
                leaky = s.source.live if self._leaky is None else self._leaky
                s.outbox = Channel(self.capacity, leaky=leaky, name=f"to-{first_id}",
                                   cond=self._cond)
            elif s.sink_inbox is not None:
                s.outbox = s.sink_inbox
                s.outbox.leaky = s.source.live if self._leaky is None else self._leaky
            else:
                s.outbox = out
        if self.stages:
            self._merge = Merge([s.outbox for s in self._streams if s.outbox is not None],
                                self._cond, [s.source.live for s in self._streams])
            self._links = [Channel(self.capacity, name=f"to-{i}") for i in self.stage_ids[1:]]
            outboxes = [s.sink_inbox for s in self._streams] if self._has_sinks else None
            self._split = Split(n, outboxes, None if self._has_sinks else out)  # type: ignore[arg-type]
        # who closes the caller's output: the last of its producers
        if self._has_sinks:
            self._output_producers = n
        else:
            self._output_producers = 1 if self.stages else n
        self._started_at = time.perf_counter()
        threads: list[tuple[str, threading.Thread]] = []
        for s in self._streams:
            if s.state is StreamState.FAILED:  # could not open: it ends before it starts
                self._release(s.outbox)
                if self._has_sinks:
                    self._release(out)
                continue
            s.state = StreamState.RUNNING
            t = threading.Thread(target=self._run_source, args=(s,), daemon=True,
                                 name=f"vidstream-{s.source_id}")
            s.source_thread = t
            threads.append((s.source_id, t))
        for k, stage_id in enumerate(self.stage_ids):
            threads.append((stage_id, threading.Thread(
                target=self._run_stage, args=(k,), daemon=True, name=f"vidstream-{stage_id}")))
        if self._has_sinks:
            for s in self._streams:
                if s.state is StreamState.FAILED:
                    continue
                threads.append((s.sink_id, threading.Thread(
                    target=self._run_sink, args=(s,), daemon=True,
                    name=f"vidstream-{s.sink_id}")))
        self._remaining = len(threads)
        self._threads = threads
        if not threads:
            self._ended_at = time.perf_counter()
            self._done.set()
        for _, t in threads:
            t.start()

    @property
    def _channels(self) -> list[Channel]:
        """Every channel of the run (tests check their bounds)."""
        chans = [s.outbox for s in self._streams if s.outbox is not None]
        chans += self._links
        chans += [s.sink_inbox for s in self._streams if s.sink_inbox is not None]
        if self._output is not None:
            chans.append(self._output)
        return chans

    def _release(self, outbox: Channel | None) -> None:
        """A producer is done with ``outbox``: close it (the caller's output: once the last of
        its producers is done)."""
        if outbox is None:
            return
        if outbox is self._output:
            with self._lock:
                self._output_producers -= 1
                if self._output_producers > 0:
                    return
        outbox.close()

    def _wait(self) -> None:
        # Wait in short slices so Ctrl-C reaches this (main) thread promptly.
        while True:
            try:
                while not self._done.wait(0.1):
                    if self._only_sources_left() or self._past_shutdown_deadline():
                        break
                break
            except KeyboardInterrupt:
                if self._interrupted:
                    self.abort()
                else:
                    self.stop()
        self._join()

    def _only_sources_left(self) -> bool:
        """Stopped, every other thread finished, and a source still stuck in a read."""
        return self._stop.is_set() and all(
            not t.is_alive() for sid, t in self._threads if not self._is_source(sid))

    def _past_shutdown_deadline(self) -> bool:
        return (self._aborted_at is not None
                and time.monotonic() - self._aborted_at > self.shutdown_timeout)

    def _is_source(self, stage_id: str) -> bool:
        return any(s.source_id == stage_id for s in self._streams)

    def _join(self) -> None:
        others = [(sid, t) for sid, t in self._threads if not self._is_source(sid)]
        for _, t in others:
            if self._aborted_at is None:
                t.join()
            else:
                # A stage stuck in a call (a model, a network request) cannot be interrupted:
                # past the deadline it is left in its daemon thread and named.
                t.join(max(0.0, self._aborted_at + self.shutdown_timeout - time.monotonic()))
        self._stuck = [sid for sid, t in others if t.is_alive()]
        sources = [s.source_thread for s in self._streams if s.source_thread is not None]
        if not self._stop.is_set():
            for t in sources:
                t.join()
            return
        # Past the grace period (a short one after abort()) a source stuck in a read is left
        # to end by its read timeout. An aborted source that is not stuck ends within
        # milliseconds: it still gets joined, so no thread outlives the pipeline.
        if self._grace_until is None:
            self._grace_until = time.monotonic() + DEFAULTS.source_grace_s
        deadline = self._grace_until
        if self._aborted_at is not None:
            deadline = min(deadline, time.monotonic() + ABORT_GRACE_S)
        for t in sources:
            while t.is_alive():
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                t.join(min(left, 0.1))

    def _stuck_error(self) -> ShutdownTimeout:
        names = ", ".join(repr(s) for s in self._stuck)
        return ShutdownTimeout(
            f"stage {names} did not stop within {self.shutdown_timeout:g} s of the abort (stuck "
            "in a call); its thread was left running in the background",
            stage=self._stuck[0], param="shutdown_timeout")

    def _finished_one(self) -> None:
        with self._lock:
            self._remaining -= 1
            if self._remaining == 0:
                self._ended_at = time.perf_counter()
                self._done.set()

    def _raise_error(self) -> None:
        if self.error is not None:
            raise self.error
        if self._stuck:
            raise self._stuck_error()
        if self._aborted_at is not None:
            raise Cancelled("pipeline aborted")

    def _stop_stream(self, s: _Stream) -> None:
        """Stream ``s`` reads no more; what it already read goes on to its sinks."""
        s.stopping.set()
        s.source.stop()
        if s.outbox is not None and s.outbox is not self._output:
            # End the stream here rather than when the source's read returns: a stalled
            # network read may block until its timeout.
            s.outbox.close()

    def _stream_failed(self, s: _Stream, exc: BaseException, where: str,
                       frame: int | None, *, in_sink: bool) -> None:
        with self._lock:
            if s.error is None:
                s.error = _with_context(exc, where, frame)
            s.state = StreamState.FAILED
            if in_sink:
                s.end(StreamState.FAILED)
        s.stopping.set()
        s.source.stop()
        if in_sink:  # nothing more can be written: drop what is queued for this stream
            if s.outbox is not None and s.outbox is not self._output:
                s.outbox.abort()
            if s.sink_inbox is not None:
                s.sink_inbox.abort()
        if self.error is not None:
            self._stop.set()

    def _shared_failed(self, position: int, exc: BaseException, frame: int | None) -> None:
        """Record a shared stage's error; abort every channel upstream of it."""
        with self._lock:
            if self._error is None:
                self._error = _with_context(exc, self.stage_ids[position], frame)
        self._stop.set()
        for s in self._streams:
            s.stopping.set()
            s.source.stop()
            if s.outbox is not None and s.outbox is not self._output:
                s.outbox.abort()
        if self._merge is not None:
            self._merge.abort()
        for ch in self._links[:position]:
            ch.abort()

    def _run_source(self, s: _Stream) -> None:
        c = s.source_counters
        c.started = s.started = time.perf_counter()
        outbox = s.outbox
        first = self.stages[0] if self.stages else None
        prepare = first.prepare if first is not None and first.has_prepare else None
        final = not self.stages and not self._has_sinks
        frames: Iterator[Frame] | None = None
        frame_index: int | None = None
        try:
            frames = s.source.frames()
            while not s.stopping.is_set():
                t0 = time.perf_counter()
                waited = s.source.wait_s
                try:
                    item = next(frames)
                except StopIteration:
                    break
                item = item.in_stream(s.index)
                if prepare is not None:
                    prepare(item)
                t1 = time.perf_counter()
                # A source that waits on its sender (a live stream, paced reading) says how
                # long: that is starving, not work, or every live run's bottleneck is "decode".
                waited = s.source.wait_s - waited
                c.starved_s += waited
                c.busy_s += t1 - t0 - waited
                frame_index = item.index
                if s.stopping.is_set():
                    break  # read after the stop: not passed on, not counted
                if outbox is not None:
                    try:
                        outbox.put(item)
                    except ChannelClosed:
                        break  # stop() ended the stream while we waited for room
                    c.blocked_s += time.perf_counter() - t1
                    c.dropped = outbox.dropped if outbox is not self._output else 0
                c.items_out += 1
                if final:
                    self._frame_done(s, item)
        except ChannelAborted:
            pass
        except BaseException as e:
            if not (s.stopping.is_set() and s.error is None and self._interrupted):
                c.errors += 1
                self._stream_failed(s, e, s.source_id,
                                    None if frame_index is None else frame_index + 1,
                                    in_sink=False)
            # else: stopped by the user; a read cut short by the stop is no error
        finally:
            if frames is not None:
                try:
                    frames.close()  # type: ignore[attr-defined]
                except BaseException as e:
                    self._stream_failed(s, e, s.source_id, None, in_sink=False)
            self._close_part(s.source, on_error=lambda e: self._stream_failed(
                s, e, s.source_id, None, in_sink=False))
            self._release(outbox)
            if not self.stages and not self._has_sinks:
                s.end(StreamState.ENDED)
            c.ended = time.perf_counter()
            self._finished_one()

    def _run_stage(self, k: int) -> None:
        stage = self.stages[k]
        c = self._stage_counters[k]
        c.started = time.perf_counter()
        inbox: Merge | Channel = self._merge if k == 0 else self._links[k - 1]  # type: ignore[assignment]
        last = k == len(self.stages) - 1
        outbox: Channel | Split = self._split if last else self._links[k]  # type: ignore[assignment]
        final = last and not self._has_sinks
        drops = self._stage_drops[k]
        batch_size = max(1, int(stage.batch_size or 1))
        linger = stage.linger
        nxt = self.stages[k + 1] if not last else None
        prepare = nxt.prepare if nxt is not None and nxt.has_prepare else None
        frames: list[Frame] = []
        try:
            while True:
                t0 = time.perf_counter()
                try:
                    batch = inbox.get_batch(batch_size, linger)
                except EndOfStream:
                    break
                t1 = time.perf_counter()
                c.starved_s += t1 - t0
                frames = [x for x in batch if not isinstance(x, StreamEnd)]
                c.items_in += len(frames)
                if k == 0 and frames:
                    self._batch_sizes[len(frames)] = self._batch_sizes.get(len(frames), 0) + 1
                results: list[Frame | None] = []
                if len(frames) > 1 or (frames and batch_size > 1):
                    results = stage.process_batch(frames)
                elif frames:
                    results = [stage.process(frames[0])]
                if prepare is not None:
                    for item in results:
                        if item is not None:
                            prepare(item)
                t2 = time.perf_counter()
                c.busy_s += t2 - t1
                for i, item in enumerate(results):
                    if item is None:
                        c.dropped += 1
                        drops[frames[i].stream if i < len(frames) else 0] += 1
                        continue
                    outbox.put(item)
                    c.items_out += 1
                    if final:
                        self._frame_done(self._streams[item.stream], item)
                for end in batch:
                    if isinstance(end, StreamEnd):
                        outbox.put(end)
                        self._stream_passed(end.stream, k)
                c.blocked_s += time.perf_counter() - t2
        except ChannelAborted:
            pass
        except BaseException as e:
            c.errors += 1
            self._shared_failed(k, e, frames[0].index if frames else None)
        finally:
            self._close_part(stage, on_error=lambda e: self._shared_failed(k, e, None))
            if isinstance(outbox, Split):
                if self._has_sinks:
                    outbox.close()
                else:
                    self._release(self._output)
                    self._streams_end()
            else:
                outbox.close()
            c.ended = time.perf_counter()
            self._finished_one()

    def _stream_passed(self, stream: int, k: int) -> None:
        """Stream ``stream`` ended and its last frame left shared stage ``k``."""
        if k == len(self.stages) - 1 and not self._has_sinks:
            self._streams[stream].end(StreamState.ENDED)

    def _streams_end(self) -> None:
        for s in self._streams:
            if s.state is StreamState.RUNNING and self._error is not None and s.error is None:
                s.error = self._error
            s.end(StreamState.FAILED if self._error is not None else StreamState.ENDED)

    def _run_sink(self, s: _Stream) -> None:
        c = s.sink_counters
        c.started = time.perf_counter()
        inbox = s.sink_inbox
        assert inbox is not None
        item: Frame | None = None
        try:
            while True:
                t0 = time.perf_counter()
                try:
                    item = inbox.get()
                except EndOfStream:
                    break
                t1 = time.perf_counter()
                c.starved_s += t1 - t0
                c.items_in += 1
                s.group.process(item)
                t2 = time.perf_counter()
                c.busy_s += t2 - t1
                if self._output is not None:
                    self._output.put(item)
                c.items_out += 1
                self._frame_done(s, item)
                c.blocked_s += time.perf_counter() - t2
        except ChannelAborted:
            pass
        except BaseException as e:
            c.errors += 1
            if item is not None:
                c.dropped += 1  # the frame the sink failed on was not delivered
            self._stream_failed(s, e, s.sink_id, item.index if item is not None else None,
                                in_sink=True)
        finally:
            self._close_part(s.group, on_error=lambda e: self._stream_failed(
                s, e, s.sink_id, None, in_sink=True))
            self._release(self._output)
            with self._lock:
                if s.state is StreamState.RUNNING and self._error is not None:
                    s.error = s.error or self._error
                s.end(StreamState.FAILED if self._error is not None else StreamState.ENDED)
            c.ended = time.perf_counter()
            self._finished_one()

    def _frame_done(self, s: _Stream, item: Frame) -> None:
        latency = time.perf_counter() - item.created
        self.latency.add(latency)
        s.latency.add(latency)

    def _close_part(self, part: Source | Stage | SinkGroup,
                    on_error: Callable[[BaseException], None] | None = None) -> None:
        with self._lock:
            opened = part in self._opened
            if opened:
                self._opened.remove(part)
        if not opened:
            return
        try:
            part.close()
        except BaseException as e:
            if on_error is None:
                raise
            on_error(e)

    def _close_unstarted(self) -> None:
        while self._opened:
            part = self._opened.pop()
            try:
                part.close()
            except Exception:
                pass  # the open() error that brought us here is the one to report


def _sinks_per_stream(sinks: SinksArg, streams: int) -> list[list[Sink]]:
    if callable(sinks) and not isinstance(sinks, Iterable):
        out = []
        for i in range(streams):
            made = sinks(i)
            group = list(made) if isinstance(made, Iterable) else [made]
            out.append([as_sink(x) for x in group])
        return out
    listed = [as_sink(x) for x in sinks]
    if listed and streams > 1:
        raise TypeError(
            "with several sources, give the sinks as a factory called with each stream's "
            "index, e.g. lambda stream: [VideoWriter(f'out-{stream}.mp4')]: a sink writes "
            "one stream")
    return [listed] + [[] for _ in range(streams - 1)]


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

