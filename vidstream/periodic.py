"""Calling something every few seconds while a block runs: progress lines, progress reports.

>>> import time
>>> seen = []
>>> with every(0.01, lambda: seen.append(1), name="demo"):
...     time.sleep(0.05)
>>> len(seen) > 0
True
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator


@contextlib.contextmanager
def every(seconds: float, call: Callable[[], None], *, name: str) -> Iterator[None]:
    """Call ``call()`` every ``seconds`` in a daemon thread named ``name`` until the block
    ends; the thread is joined before the block's exit returns, so no call comes after it."""
    stop = threading.Event()

    def run() -> None:
        while not stop.wait(seconds):
            call()

    thread = threading.Thread(target=run, name=name, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()

