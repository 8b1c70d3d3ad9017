"""The contracts between the engine and what it runs: sources, stages and sinks.

Every hook the engine calls is declared here, typed, with its default; the engine calls nothing
else. Three roles, each a small base class:

* a **source** produces the frames of one stream (``open() -> StreamInfo``, ``frames()``);
* a **stage** transforms frames shared by every stream (``process(frame) -> frame | None``);
* a **sink** consumes the frames of one stream (``process(frame) -> None``) and writes them
  somewhere; a pipeline gives each stream its own sinks.

A sink passed where a stage belongs (or the reverse) is a ``TypeError``, not a run that silently
drops every frame. Plain functions are adapted (:class:`FunctionStage`, :class:`FunctionSink`);
so are duck-typed objects that implement a role's required methods, which get the optional hooks'
defaults.

>>> class Brightness(Stage):
...     name = "brightness"
...     def process(self, frame):
...         self.last = float(frame.image.mean())
...         return frame
>>> import numpy as np
>>> from vidstream import Frame
>>> with Brightness() as stage:                     # open(None) ... close(), used alone
...     _ = stage.process(Frame.from_array(np.full((4, 4, 3), 200, np.uint8)))
>>> stage.last
200.0
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any, Protocol, runtime_checkable

from .frames import Frame, StreamInfo


class Source:
    """Produces one stream's frames. Required: ``open()`` and ``frames()``.

    ``open()`` connects and describes the stream; ``frames()`` yields it, each frame tagged
    with the index of its position in its stream (the engine sets ``Frame.stream``).
    ``close()`` always runs once ``open()`` succeeded, also after an error.
    """

    name: str = "decode"
    #: Never ends and must not fall behind: the engine gives it a leaky inbox (the oldest
    #: frame is dropped and counted when the pipeline is busy) and loads models before it
    #: connects.
    live: bool = False
    #: Seconds spent so far waiting for a sender or for real-time pacing (not work): the
    #: engine counts them as starved time rather than busy time.
    wait_s: float = 0.0
    #: Packets that could not be decoded so far; they count in ``frames_in``.
    decode_errors: int = 0
    #: Why the input ended before its stated end (a truncated file), or None.
    ended_early: str | None = None

    @property
    def reconnects(self) -> int:
        """Times a live source connected again after losing its stream."""
        return 0

    @property
    def reconnecting(self) -> bool:
        """True while a live source has lost its stream and not yet had a frame back."""
        return False

    def open(self) -> StreamInfo:
        raise NotImplementedError

    def frames(self) -> Iterator[Frame]:
        raise NotImplementedError

    def stop(self) -> None:
        """Stop reading soon; called from another thread (first Ctrl-C, ``Pipeline.stop``)."""

    def close(self) -> None:
        """Release resources; runs once ``open()`` succeeded, also after an error."""

    def describe(self) -> Mapping[str, Any]:
        """Facts for the run summary (merged into its top level), e.g. ``{"source": {...}}``."""
        return {}

    def __enter__(self) -> Any:
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _Processor:
    """What stages and sinks share: open/close, the used-alone context manager, describe."""

    name: str = "stage"

    def open(self, info: StreamInfo | None = None) -> None:
        """Acquire resources; called once before the first frame. ``info`` describes the
        stream (for a stage shared by many streams: the first stream opened); None when the
        object is used alone."""

    def close(self) -> None:
        """Release resources; runs once ``open()`` succeeded, also after an error."""

    def describe(self) -> Mapping[str, Any]:
        """Facts for the run summary (merged into its top level)."""
        return {}

    def __enter__(self) -> Any:
        self.open(None)
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Stage(_Processor):
    """A transform shared by every stream: ``process(frame)`` returns the frame to pass on,
    or None to drop it (counted). Used alone, a stage is a context manager."""

    #: Frames per ``process_batch`` call; the engine forms batches across streams.
    batch_size: int = 1
    #: After the first frame of a batch, how long to wait for the rest (None: until the batch
    #: is full or every stream ended; 0: take what is there).
    linger: float | None = None
    #: Seconds spent loading models, reported as the summary's ``model_load_s``.
    model_load_s: float = 0.0

    def process(self, item: Frame) -> Frame | None:
        raise NotImplementedError

    def process_batch(self, items: list[Frame]) -> list[Frame | None]:
        return [self.process(item) for item in items]

    def prepare(self, item: Frame) -> None:
        """Work on a frame that can be done in the thread *before* this stage (the detector
        scales the frame to the model's input there). Runs only if a subclass overrides it."""

    def preload(self) -> None:
        """Load what takes long (a model) now: called before a live source connects, so its
        first seconds are not dropped while the model loads."""

    def describe_stream(self, stream: int) -> Mapping[str, Any]:
        """Facts about one stream for its entry in the summary's ``streams`` (a tracker's
        counts per stream), when the stage keeps state per stream."""
        return {}

    @property
    def has_prepare(self) -> bool:
        return type(self).prepare is not Stage.prepare


class Sink(_Processor):
    """Consumes one stream's frames: ``process(frame)`` writes it somewhere. A pipeline opens
    one set of sinks per stream; the sinks of a stream run in one thread, in order."""

    name: str = "sink"

    def process(self, item: Frame) -> None:
        raise NotImplementedError


class FunctionStage(Stage):
    """A stage from a plain function ``f(frame) -> frame | None``.

    >>> stage = FunctionStage(lambda f: f, name="noop")
    >>> stage.name
    'noop'
    """

    def __init__(self, fn: Callable[[Frame], Frame | None], name: str | None = None) -> None:
        self.fn = fn
        self.name = name or str(getattr(fn, "__name__", "stage"))

    def process(self, item: Frame) -> Frame | None:
        return self.fn(item)


class FunctionSink(Sink):
    """A sink from a plain function ``f(frame)``; its return value is ignored."""

    def __init__(self, fn: Callable[[Frame], Any], name: str | None = None) -> None:
        self.fn = fn
        self.name = name or str(getattr(fn, "__name__", "sink"))

    def process(self, item: Frame) -> None:
        self.fn(item)


@runtime_checkable
class SourceLike(Protocol):
    """The least a duck-typed source implements (the rest gets :class:`Source`'s defaults)."""

    name: str

    def open(self) -> StreamInfo: ...

    def frames(self) -> Iterator[Frame]: ...

    def close(self) -> None: ...


@runtime_checkable
class ProcessorLike(Protocol):
    """The least a duck-typed stage or sink implements."""

    name: str

    def open(self, info: StreamInfo | None = None) -> None: ...

    def process(self, item: Frame) -> Any: ...

    def close(self) -> None: ...


class _SourceAdapter(Source):
    def __init__(self, inner: SourceLike) -> None:
        self.inner = inner
        self.name = inner.name

    def open(self) -> StreamInfo:
        return self.inner.open()

    def frames(self) -> Iterator[Frame]:
        return self.inner.frames()

    def close(self) -> None:
        self.inner.close()


class _StageAdapter(Stage):
    def __init__(self, inner: ProcessorLike) -> None:
        self.inner = inner
        self.name = inner.name

    def open(self, info: StreamInfo | None = None) -> None:
        self.inner.open(info)

    def process(self, item: Frame) -> Frame | None:
        result: Frame | None = self.inner.process(item)
        return result

    def close(self) -> None:
        self.inner.close()


class _SinkAdapter(Sink):
    def __init__(self, inner: ProcessorLike) -> None:
        self.inner = inner
        self.name = inner.name

    def open(self, info: StreamInfo | None = None) -> None:
        self.inner.open(info)

    def process(self, item: Frame) -> None:
        self.inner.process(item)

    def close(self) -> None:
        self.inner.close()


def as_source(obj: Source | SourceLike) -> Source:
    """``obj`` as a :class:`Source`; a clear TypeError for anything else."""
    if isinstance(obj, Source):
        return obj
    if isinstance(obj, Stage | Sink):
        raise TypeError(f"{_what(obj)} is a {_role(obj)}, not a source")
    if isinstance(obj, SourceLike):
        return _SourceAdapter(obj)
    raise TypeError(f"not a source: {obj!r} (expected a Source: open(), frames(), close())")


def as_stage(obj: Stage | ProcessorLike | Callable[[Frame], Frame | None]) -> Stage:
    """``obj`` as a :class:`Stage`: a Stage as is, a function wrapped; a sink is a TypeError."""
    if isinstance(obj, Stage):
        return obj
    if isinstance(obj, Sink | Source):
        raise TypeError(
            f"{_what(obj)} is a {_role(obj)}, not a stage: pass it in "
            f"{'sinks' if isinstance(obj, Sink) else 'the sources'}=[...]"
        )
    if isinstance(obj, ProcessorLike):
        return _StageAdapter(obj)
    if callable(obj):
        return FunctionStage(obj)
    raise TypeError(f"not a stage or a function: {obj!r}")


def as_sink(obj: Sink | ProcessorLike | Callable[[Frame], Any]) -> Sink:
    """``obj`` as a :class:`Sink`: a Sink as is, a function wrapped; a stage is a TypeError."""
    if isinstance(obj, Sink):
        return obj
    if isinstance(obj, Stage | Source):
        raise TypeError(
            f"{_what(obj)} is a {_role(obj)}, not a sink: pass it in "
            f"{'stages' if isinstance(obj, Stage) else 'the sources'}=[...]"
        )
    if isinstance(obj, ProcessorLike):
        return _SinkAdapter(obj)
    if callable(obj):
        return FunctionSink(obj)
    raise TypeError(f"not a sink or a function: {obj!r}")


def _role(obj: object) -> str:
    return "sink" if isinstance(obj, Sink) else "stage" if isinstance(obj, Stage) else "source"


def _what(obj: Source | Stage | Sink) -> str:
    return f"{type(obj).__name__} {obj.name!r}"


def unique_ids(names: Iterable[str], taken: Iterable[str] = ()) -> list[str]:
    """Ids for ``names``, a repeated one suffixed ``-2``, ``-3``... so every row is its own.

    >>> unique_ids(["<lambda>", "detect", "<lambda>"])
    ['<lambda>', 'detect', '<lambda>-2']
    """
    seen = set(taken)
    out = []
    for name in names:
        candidate, n = name, 1
        while candidate in seen:
            n += 1
            candidate = f"{name}-{n}"
        seen.add(candidate)
        out.append(candidate)
    return out
