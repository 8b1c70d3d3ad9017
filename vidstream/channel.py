"""A bounded channel between two pipeline threads.

Closing is the end-of-stream, and aborting wakes every waiter, so no thread can be left waiting
forever on a queue that nobody will touch again (the failure mode of ``queue.Queue`` pipelines
when one stage dies)::

    ch = Channel(capacity=8)
    ch.put(item)          # blocks while full; raises ChannelAborted after abort()
    ch.get()              # blocks while empty; raises EndOfStream once closed and drained
    ch.close()            # producer: no more items
    ch.abort()            # pipeline: stop now, wake everyone

A *leaky* channel never blocks its producer: when full it drops the oldest item and counts it.
Live sources use it so the pipeline shows the newest frames instead of falling behind.

Channels may share one condition (``cond=``): a consumer of many channels (the engine's merge of
many streams) then waits on all of them at once.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from .settings import DEFAULTS


class EndOfStream(Exception):
    """The producer closed the channel and every item was taken."""


class ChannelAborted(Exception):
    """The pipeline aborted the channel; stop at once."""


class ChannelClosed(RuntimeError):
    """put() on a channel that was closed: the stream was ended (e.g. by Pipeline.stop)."""


class Channel:
    def __init__(self, capacity: int = DEFAULTS.queue_size, *, leaky: bool = False,
                 name: str = "", cond: threading.Condition | None = None) -> None:
        if capacity < 1:
            raise ValueError(f"channel capacity must be >= 1, got {capacity}")
        self.capacity = capacity
        self.leaky = leaky
        self.name = name
        self.dropped = 0
        self.on_drop: Callable[[Any], None] | None = None  # called with each dropped item
        self._items: deque[Any] = deque()
        # An RLock-based condition: a consumer holding it may call these methods too.
        self._cond = cond if cond is not None else threading.Condition(threading.RLock())
        self._closed = False
        self._aborted = False

    def __len__(self) -> int:
        return len(self._items)

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def aborted(self) -> bool:
        return self._aborted

    def put(self, item: Any) -> None:
        with self._cond:
            while not self.leaky and len(self._items) >= self.capacity and not self._aborted:
                self._cond.wait()
            if self._aborted:
                raise ChannelAborted(self.name)
            if self._closed:
                raise ChannelClosed(f"put() on closed channel {self.name!r}")
            if len(self._items) >= self.capacity:  # leaky and full
                old = self._items.popleft()
                self.dropped += 1
                if self.on_drop is not None:
                    self.on_drop(old)
            self._items.append(item)
            self._cond.notify_all()

    def get(self) -> Any:
        return self.get_batch(1)[0]

    def take_nowait(self) -> Any:
        """The oldest item, or raise IndexError when empty (the caller holds the condition)."""
        return self._items.popleft()

    def get_batch(self, n: int, linger: float | None = None) -> list[Any]:
        """Up to ``n`` items, at least one.

        Waits for the first item, then for up to ``linger`` seconds for the rest (``None``:
        until ``n`` are there or the stream ends; ``0``: take what is there).
        """
        with self._cond:
            while not self._items and not self._closed and not self._aborted:
                self._cond.wait()
            if self._aborted:
                raise ChannelAborted(self.name)
            if not self._items:
                raise EndOfStream(self.name)
            if n > 1 and linger != 0:
                deadline = None if linger is None else time.monotonic() + linger
                while len(self._items) < n and not self._closed and not self._aborted:
                    if deadline is None:
                        self._cond.wait()
                    else:
                        left = deadline - time.monotonic()
                        if left <= 0:
                            break
                        self._cond.wait(left)
                if self._aborted:
                    raise ChannelAborted(self.name)
            batch = [self._items.popleft() for _ in range(min(n, len(self._items)))]
            self._cond.notify_all()
            return batch

    def close(self) -> None:
        """End of stream: getters drain what is left, then get :class:`EndOfStream`."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def abort(self) -> None:
        """Stop now: every waiter wakes with :class:`ChannelAborted`; items are discarded."""
        with self._cond:
            self._aborted = True
            self.dropped += len(self._items)  # discarded frames are counted, not lost
            self._items.clear()
            self._cond.notify_all()

