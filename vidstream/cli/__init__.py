"""The ``vidstream`` command: a thin shell over the library.

Argument parsing, exit codes and rich rendering live in this package and nowhere else; each
command builds the library's objects from its flags (whose defaults come from
:data:`vidstream.settings.DEFAULTS`) and turns library errors into one line naming a flag.

Exit codes: 0 done; 1 error (one line on stderr); 2 bad usage; 3 the input ended early or was
damaged (the output holds every frame decoded, and is playable); 130 interrupted (Ctrl-C or
SIGTERM; the output holds every frame processed, and is playable).

>>> build_parser().parse_args(["detect", "clip.mp4"]).threshold
0.4
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
from collections.abc import Callable, Sequence
from typing import Any

from .. import __version__
from ..errors import VidstreamError
from . import bench, detect, models, report, serve
from .common import (
    EXIT_ERROR,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_PARTIAL,
    EXIT_USAGE,
    Parser,
)
from .detect import execute
from .errors import print_error

__all__ = ["EXIT_ERROR", "EXIT_INTERRUPTED", "EXIT_OK", "EXIT_PARTIAL", "EXIT_USAGE",
           "build_parser", "execute", "main", "run"]

log = logging.getLogger("vidstream")


def build_parser() -> argparse.ArgumentParser:
    """The ``vidstream`` parser with every command registered."""
    parser = Parser(
        prog="vidstream",
        description="Streaming video object detection with measured speed and cost.",
        epilog=(
            "examples:\n"
            "  vidstream detect traffic.mp4 -o traffic-detected.mp4\n"
            "  vidstream detect rtsp://user:pass@cam/stream -o cam.mp4 --reconnect 5\n"
            "  vidstream models pull centernet\n"
            "  vidstream run pipelines/detect-file.toml --input clip.mp4\n"
            "\nexit codes: 0 done, 1 error, 2 bad usage, 3 input ended early (partial output),"
            " 130 interrupted"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"vidstream {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    detect.add_commands(sub)
    models.add_commands(sub)
    bench.add_commands(sub)
    report.add_commands(sub)
    serve.add_commands(sub)
    return parser


def _setup_logging(quiet: bool) -> None:
    class _Lower(logging.Formatter):
        def format(self, record: logging.LogRecord) -> str:
            from ..sources.uri import mask_text  # lazily: the sources package loads PyAV

            # URLs in a message (a reconnect warning, a library's) lose their credentials here
            return f"vidstream: {record.levelname.lower()}: {mask_text(record.getMessage())}"

    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_Lower())
    log.handlers[:] = [handler]
    log.setLevel(logging.ERROR if quiet else logging.INFO)
    log.propagate = False
    logging.getLogger("absl").setLevel(logging.ERROR)


def _sigterm_as_interrupt() -> Callable[[], None]:
    """Until a command installs its own stop handlers, SIGTERM is Ctrl-C.

    Without this, a SIGTERM while TensorFlow imports or the model loads (seconds, before the
    pipeline's handlers exist) killed the process silently with status 143; now it says
    ``vidstream: interrupted`` and exits 130, as the README promises. Returns the restorer.
    """

    def interrupt(signum: int, _frame: Any) -> None:
        raise KeyboardInterrupt

    try:
        previous = signal.signal(signal.SIGTERM, interrupt)
    except ValueError:  # not the main thread (main() called from a library user's thread)
        return lambda: None

    def restore() -> None:
        signal.signal(signal.SIGTERM, signal.SIG_DFL if previous is None else previous)

    return restore


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; returns its exit code (usage errors raise ``SystemExit(2)``)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    _setup_logging(getattr(args, "quiet", False))
    restore = _sigterm_as_interrupt()
    try:
        return int(args.func(args) or 0)
    except VidstreamError as e:
        print_error(e, getattr(args, "flags", None))
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("vidstream: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        return EXIT_ERROR
    finally:
        restore()


def run() -> None:
    """The console-script entry point (``vidstream = vidstream.cli:run``)."""
    code = main()
    # Every output is closed by now. TensorFlow takes seconds to tear down at interpreter
    # exit, and a source thread may still sit in a stalled network read: leave at once.
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(code)
