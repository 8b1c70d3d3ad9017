"""The live-source policy: notice a stall, reconnect with backoff, count the gap, pace a file.

A network stream or a camera never ends and may stop sending at any time. The decoder asks
these small objects what to do: :class:`StallWatchdog` turns silence into a
:class:`~vidstream.errors.StallError`; :class:`Reconnector` connects again up to ``attempts``
times, waiting :class:`Backoff` delays, and adds the time without frames to ``gap_s``;
:class:`Pacer` holds a file's frames back to their presentation time (``realtime=True``).

>>> backoff = Backoff(10, cap=30, jitter=0)
>>> [backoff.delay(attempt) for attempt in (1, 2, 3, 4)]
[10.0, 20.0, 30.0, 30.0]
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable
from typing import Any

from ..errors import SourceError, StallError
from ..settings import DEFAULTS
from .failures import describe_error

log = logging.getLogger("vidstream")


class Backoff:
    """Delays before reconnect attempts: ``base`` doubled per attempt, capped at ``cap``,
    then spread by +/- ``jitter`` (a fraction), so cameras that reboot together do not all
    call back at the same instant."""

    def __init__(self, base: float, cap: float = DEFAULTS.reconnect_delay_max,
                 jitter: float = 0.2) -> None:
        self.base, self.cap, self.jitter = base, cap, jitter

    def delay(self, attempt: int) -> float:
        """Seconds to wait before attempt number ``attempt`` (1 for the first)."""
        delay = min(self.base * (2 ** (attempt - 1)), self.cap)
        return delay * random.uniform(1 - self.jitter, 1 + self.jitter)


class StallWatchdog:
    """Raises :class:`~vidstream.errors.StallError` when no picture came for ``timeout`` s.

    Two ways a stream stalls: the sender goes quiet (FFmpeg's read timeout fires:
    :meth:`read_timed_out`), or it keeps sending bytes that decode to nothing (garbage,
    a lost keyframe: :meth:`check` after each packet that gave no picture).
    """

    def __init__(self, display: str, timeout: float) -> None:
        self.display = display
        self.timeout = timeout
        self._last = time.monotonic()

    def restart(self) -> None:
        """Start counting now (a new connection or a new read loop)."""
        self._last = time.monotonic()

    def got_picture(self, now: float) -> None:
        self._last = now

    def check(self, now: float) -> None:
        """Raise when the last picture is more than ``timeout`` seconds old (0: never)."""
        if self.timeout and now - self._last > self.timeout:
            raise StallError(
                f"{self.display}: no decodable frame for {self.timeout:g} s",
                source=self.display, param="stall_timeout",
            )

    def read_timed_out(self) -> StallError:
        """The error for FFmpeg's read timeout, which is set to ``timeout``."""
        return StallError(f"{self.display}: no frame for {self.timeout:g} s",
                          source=self.display, param="stall_timeout")


class Reconnector:
    """Connects a lost live source again, up to ``attempts`` times, with backoff.

    It also accounts for the gap: from the moment the stream was lost to the first frame
    after a reconnect, summed in ``gap_s``. ``stopped`` ends every wait at once and stops
    further attempts; ``sleep`` (default: a wait on ``stopped``) is replaceable in tests.
    """

    def __init__(
        self,
        display: str,
        *,
        attempts: int,
        delay: float,
        stall_timeout: float,
        stopped: threading.Event,
        sleep: Callable[[float], Any] | None = None,
        cap: float = DEFAULTS.reconnect_delay_max,
    ) -> None:
        self.display = display
        self.attempts = attempts
        self.backoff = Backoff(delay, cap)
        self.stall_timeout = stall_timeout
        self.stopped = stopped
        self.sleep: Callable[[float], Any] = sleep or stopped.wait
        self.reconnects = 0  # attempts made so far
        self.gap_s = 0.0  # seconds without frames because the stream was lost
        self._lost_at: float | None = None

    @property
    def lost(self) -> bool:
        """The stream was lost and no frame has come back yet."""
        return self._lost_at is not None

    @property
    def exhausted(self) -> bool:
        """No attempt left."""
        return self.reconnects >= self.attempts

    def reconnect(self, cause: BaseException, release: Callable[[], None],
                  connect: Callable[[], None]) -> bool:
        """Release the lost connection and ``connect()`` again with backoff: True once
        connected, False if stopped meanwhile; raises :class:`~vidstream.errors.SourceError`
        when the attempts run out (a ``connect()`` that fails with a SourceError is one
        failed attempt; any other error propagates)."""
        if self._lost_at is None:
            # A stall is noticed stall_timeout after the last data came in (frames the demuxer
            # held back come out only then); a drop is noticed when it happens.
            stalled = self.stall_timeout if isinstance(cause, StallError) else 0.0
            self._lost_at = time.monotonic() - stalled
        while not self.exhausted and not self.stopped.is_set():
            self.reconnects += 1
            delay = self.backoff.delay(self.reconnects)
            log.warning("%s: %s; reconnecting in %.1f s (attempt %d of %d)", self.display,
                        self.cause(cause), delay, self.reconnects, self.attempts)
            release()
            self.sleep(delay)
            if self.stopped.is_set():
                break
            try:
                connect()
                return True
            except SourceError as e:
                cause = e
        if self.stopped.is_set():
            return False
        raise SourceError(
            f"{self.display}: stream lost after {self.reconnects} reconnect attempts: "
            f"{self.cause(cause)}",
            source=self.display, param=getattr(cause, "param", None),
        ) from cause

    def got_frame(self) -> None:
        """A frame arrived: the first one after a reconnect closes the gap."""
        if self._lost_at is not None:
            gap = time.monotonic() - self._lost_at
            self.gap_s += gap
            self._lost_at = None
            log.warning("%s: reconnected; no frames for %.1f s", self.display, gap)

    def cause(self, e: BaseException) -> str:
        """``e`` in words, without the source name our own errors start with."""
        text = describe_error(e)
        prefix = f"{self.display}: "
        return text[len(prefix):] if text.startswith(prefix) else text


class Pacer:
    """Holds pictures back to their presentation time, as a live source would deliver them.

    The first picture given sets the clock; :meth:`wait` returns the seconds it waited (the
    source counts them as waiting, not work).
    """

    def __init__(self, sleep: Callable[[float], Any]) -> None:
        self._sleep = sleep
        self._t0: float | None = None
        self._time0 = 0.0

    def wait(self, t: float | None) -> float:
        """Wait until the picture at ``t`` seconds (None: unknown, no wait) is due."""
        if t is None:
            return 0.0
        if self._t0 is None:
            self._t0, self._time0 = time.monotonic(), t
        ahead = (t - self._time0) - (time.monotonic() - self._t0)
        if ahead > 0:
            self._sleep(ahead)
            return ahead
        return 0.0
