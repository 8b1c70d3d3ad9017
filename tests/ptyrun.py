"""Run the vidstream CLI on a pseudo-terminal and collect what it drew (tests, benchmarks)."""

from __future__ import annotations

import os
import pty
import select
import sys
import time


def run_in_pty(args: list, columns: int = 110, timeout: float = 300) -> tuple[bytes, int]:
    """``(everything written to the terminal, exit code)`` of ``vidstream ARGS``."""
    pid, fd = pty.fork()
    if pid == 0:  # child: the CLI on a terminal
        os.environ.update(COLUMNS=str(columns), LINES="40", TERM="xterm-256color")
        os.execv(sys.executable, [sys.executable, "-m", "vidstream", *map(str, args)])
    out = b""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 1.0)
        if not ready:
            continue
        try:
            data = os.read(fd, 65536)
        except OSError:  # the child closed the terminal
            break
        if not data:
            break
        out += data
    _, status = os.waitpid(pid, 0)
    return out, os.waitstatus_to_exitcode(status)
