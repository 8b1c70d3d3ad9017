"""The pieces that make a pipeline a graph of streams: merge, split, per-stream state.

::

    source 0 --[inbox 0]--+                                    +--[outbox 0]--> sinks of stream 0
    source 1 --[inbox 1]--+--> Merge --> shared stages --> Split --[outbox 1]--> sinks of stream 1
    source 2 --[inbox 2]--+    (batches across streams)     (by Frame.stream)   ...

The :class:`Merge` takes frames round-robin from every stream's inbox, live streams first: a
live camera cannot wait (its inbox drops the oldest frame when full) while a file loses nothing
by waiting, so a fast file never starves a camera, and files share what is left fairly. It
forms batches of up to ``n`` frames within a deadline (DeepStream's ``batch-size`` and
``batched-push-timeout``). When one stream's inbox is closed and drained, the
merge emits a :class:`StreamEnd` marker for it: the marker travels through the shared stages
behind that stream's last frame, and the :class:`Split` closes that stream's outbox on it. So
each stream ends (and its outputs are finalized) on its own, and one stream ending or failing
never ends the others.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from .channel import Channel, ChannelAborted, ChannelClosed, EndOfStream


@dataclass(frozen=True)
class StreamEnd:
    """The marker of one stream's end, passed through the shared stages in frame order."""

    stream: int


class StreamState(StrEnum):
    """Where a stream is: ``connecting`` (opening), ``running``, ``ended`` (its input ended or
    it was stopped), ``failed`` (see its error)."""

    CONNECTING = "connecting"
    RUNNING = "running"
    ENDED = "ended"
    FAILED = "failed"


class Merge:
    """Batches from many channels that share one condition, taken round-robin.

    >>> cond = threading.Condition(threading.RLock())
    >>> a, b = Channel(4, cond=cond), Channel(4, cond=cond)
    >>> for i in range(3): a.put(f"a{i}")
    >>> b.put("b0"); b.close()
    >>> merge = Merge([a, b], cond)
    >>> merge.get_batch(3, linger=0)
    ['a0', 'b0', 'a1']
    >>> merge.get_batch(3, linger=0)
    [StreamEnd(stream=1), 'a2']

    Live streams are served first:

    >>> cam, file = Channel(4, cond=cond), Channel(4, cond=cond)
    >>> for i in range(3): file.put(f"f{i}"); cam.put(f"c{i}")
    >>> Merge([file, cam], cond, live=[False, True]).get_batch(4, linger=0)
    ['c0', 'c1', 'c2', 'f0']
    """

    def __init__(self, channels: list[Channel], cond: threading.Condition,
                 live: list[bool] | None = None) -> None:
        self.channels = channels
        self._cond = cond
        self._ended: set[int] = set()
        live = live or [False] * len(channels)
        # two rings, served in turn: the live streams, then the others
        self._rings = [[i for i, x in enumerate(live) if x],
                       [i for i, x in enumerate(live) if not x]]
        self._next = [0, 0]
        self._aborted = False

    def __len__(self) -> int:
        return sum(len(ch) for ch in self.channels)

    @property
    def capacity(self) -> int:
        return sum(ch.capacity for ch in self.channels)

    def abort(self) -> None:
        """Stop now: the consumer wakes with ChannelAborted."""
        with self._cond:
            self._aborted = True
            self._cond.notify_all()

    def get_batch(self, n: int, linger: float | None = None) -> list[Any]:
        """Up to ``n`` frames (at least one item), plus the :class:`StreamEnd` of every stream
        that ended meanwhile; raises EndOfStream once every stream ended.

        After the first frame it waits up to ``linger`` seconds for the batch to fill (None:
        until it is full or every stream ended; 0: take what is there). A stream's end is
        passed on at once rather than held back for a fuller batch.
        """
        out: list[Any] = []
        frames = 0
        deadline: float | None = None
        with self._cond:
            while True:
                if self._aborted:
                    raise ChannelAborted("merge")
                frames += self._take(out, n - frames)
                if frames >= n or (out and (linger == 0 or frames < len(out))):
                    break  # full, no waiting wanted, or a stream's end to pass on
                if len(self._ended) == len(self.channels):
                    if out:
                        break
                    raise EndOfStream("merge")
                if not out or linger is None:
                    self._cond.wait()
                    continue
                if deadline is None:
                    deadline = time.monotonic() + linger
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._cond.wait(left)
            self._cond.notify_all()  # room for the producers
        return out

    def _take(self, out: list[Any], wanted: int) -> int:
        """Moves up to ``wanted`` frames into ``out``, one per stream in turn, live streams
        first; returns how many."""
        taken = 0
        for r, ring in enumerate(self._rings):
            progress = True
            while taken < wanted and progress:
                progress = False
                start = self._next[r]
                for k in range(len(ring)):
                    pos = (start + k) % len(ring)
                    i = ring[pos]
                    if i in self._ended:
                        continue
                    ch = self.channels[i]
                    if len(ch) and not ch.aborted:
                        out.append(ch.take_nowait())
                        taken += 1
                        progress = True
                        self._next[r] = (pos + 1) % len(ring)
                        if taken == wanted:
                            break
                    elif ch.closed or ch.aborted:
                        self._ended.add(i)
                        out.append(StreamEnd(i))
        return taken


class Split:
    """Routes each frame to its stream's outbox by ``Frame.stream``; a :class:`StreamEnd`
    closes that outbox. A frame whose stream can no longer take it (its sinks failed) is
    dropped and counted in ``dropped[stream]``.

    Without per-stream outboxes (a pipeline with no sinks) every frame goes to ``output``, if
    given (the frames a caller iterates over), and ends are only counted.
    """

    def __init__(self, streams: int, outboxes: list[Channel] | None = None,
                 output: Channel | None = None) -> None:
        self.outboxes = outboxes
        self.output = output
        self.dropped = [0] * streams
        self.delivered = [0] * streams

    def put(self, item: Any) -> None:
        if isinstance(item, StreamEnd):
            if self.outboxes is not None:
                self.outboxes[item.stream].close()
            return
        stream = item.stream
        target = self.outboxes[stream] if self.outboxes is not None else self.output
        if target is not None:
            try:
                target.put(item)
            except (ChannelAborted, ChannelClosed):
                if self.outboxes is None:
                    raise  # the caller's own output: the pipeline is stopping
                self.dropped[stream] += 1
                return
        self.delivered[stream] += 1

    def close(self) -> None:
        for ch in self._targets():
            ch.close()

    def abort(self) -> None:
        for ch in self._targets():
            ch.abort()

    def _targets(self) -> list[Channel]:
        if self.outboxes is not None:
            return self.outboxes
        return [self.output] if self.output is not None else []
