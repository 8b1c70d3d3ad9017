"""Many streams from the command line: several inputs in one run, and its metrics endpoint.

``vidstream detect A.mp4 B.mp4 rtsp://cam/1 -o 'out/{stem}-detected.mp4'`` runs one stream per
input through one shared detector (batches formed across the streams). Output paths are then
templates (``{stem}``: the input's name, ``{index}``: its position); ``--summary`` may also be
one file for the whole run. A stream that cannot open, fails, stalls or reconnects never stops
the others; the exit code says how the streams ended:

* 0: every stream completed;
* 3: some completed (or wrote frames) and others failed or ended early;
* 1: none wrote anything, or a shared stage (the detector) failed;
* 130: interrupted (every stream's outputs are finalized).

``--metrics-port PORT`` serves Prometheus metrics while any run (one stream or many) goes on.

>>> read_inputs(["# cameras", "a.mp4", "", "  rtsp://cam/1  "])
['a.mp4', 'rtsp://cam/1']
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from rich.console import Console

from ..config import RunConfig, stream_configs, stream_stems, validate
from ..errors import Cancelled, ConfigError, OutputError, VidstreamError
from ..settings import DEFAULTS
from ..summary import Summary
from .common import EXIT_ERROR, EXIT_INTERRUPTED, EXIT_OK, EXIT_PARTIAL
from .dashboard import streams_table, summary_table
from .errors import error_line, print_error
from .execution import run_pipeline


# -- options -----------------------------------------------------------------------------------
def port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a port number, got {text!r}") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"expected a port number 0-65535, got {text}")
    return value


def non_negative_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not (math.isfinite(value) and value >= 0):
        raise argparse.ArgumentTypeError(f"must be a number >= 0, got {text}")
    return value


def add_detect_options(p: argparse.ArgumentParser) -> None:
    """``detect``'s options for several inputs and for metrics."""
    g = p.add_argument_group("several inputs")
    g.add_argument("--inputs", dest="inputs_file", metavar="FILE",
                   help="read inputs from FILE, one path or URL a line (# comments); with "
                   "several inputs, output paths are templates: {stem} (the input's name), "
                   "{index} (its position), e.g. -o 'out/{stem}-detected.mp4'")
    g.add_argument("--batch-wait-ms", type=non_negative_float, default=DEFAULTS.batch_wait_ms,
                   metavar="MS", help="with --batch-size > 1: how long a batch waits for more "
                   "frames (from any stream) after its first")
    _add_metrics_options(p)


def add_run_options(p: argparse.ArgumentParser) -> None:
    """``run``'s options for several inputs and for metrics."""
    p.add_argument("--inputs", dest="inputs_file", metavar="FILE",
                   help="inputs to use instead of the file's, one path or URL a line")
    _add_metrics_options(p)


def _add_metrics_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("metrics")
    g.add_argument("--metrics-port", type=port, metavar="PORT",
                   help="serve Prometheus metrics on PORT while the run goes on (0: any free "
                   "port; needs prometheus-client)")
    g.add_argument("--metrics-host", default=DEFAULTS.metrics_host, metavar="HOST",
                   help="address the metrics listen on; the endpoint has no authentication")


# -- inputs ------------------------------------------------------------------------------------
def read_inputs(lines: Iterable[str]) -> list[str]:
    """One input a line; blank lines and ``#`` comments are skipped."""
    return [s for s in (line.strip() for line in lines) if s and not s.startswith("#")]


def inputs_from_file(path: str) -> list[str]:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such file (the list of inputs)",
                          param="inputs_file") from None
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"{path}: cannot read the list of inputs: "
                          f"{getattr(e, 'strerror', None) or e}", param="inputs_file") from None
    inputs = read_inputs(text.splitlines())
    if not inputs:
        raise ConfigError(f"{path}: no inputs in the file (one path or URL a line)",
                          param="inputs_file")
    return inputs


def gather_inputs(args: argparse.Namespace) -> list[str]:
    """``detect``'s inputs: the positional ones, then those of ``--inputs FILE``. Leaves the
    first in ``args.input``, as a single-input run has it."""
    inputs = [i for i in (args.input, *(args.more_inputs or [])) if i]
    if args.inputs_file:
        inputs += inputs_from_file(args.inputs_file)
    if not inputs:
        raise ConfigError("no input: give a file or URL (or --inputs FILE)", param="input")
    args.input = inputs[0]
    return inputs


def with_inputs(cfg: RunConfig, inputs: list[str], default_video: bool) -> RunConfig:
    """``cfg`` over ``inputs``; with several, the default video name becomes a template."""
    if len(inputs) < 2:
        return cfg
    changes: dict[str, Any] = {"inputs": inputs}
    if default_video:
        changes["video"] = "{stem}-detected.mp4"
    return cfg.replace(**changes)


# -- the summary -------------------------------------------------------------------------------
def summary_dict(summary: Summary, stems: list[str], uris: list[str]) -> dict[str, Any]:
    """``summary.to_dict()`` with each stream's ``stem`` (what ``{stem}`` became) and its
    input's masked ``uri`` (also for a stream that never opened)."""
    data = summary.to_dict()
    streams = []
    for s in data["streams"]:
        i = s["index"]
        streams.append({**s, "index": i, "uri": uris[i], "stem": stems[i]})
    data["streams"] = streams
    return data


def stream_summary(data: dict[str, Any], index: int) -> dict[str, Any]:
    """One stream's own summary file: its entry, and the run it was part of under ``run``."""
    run = {k: v for k, v in data.items() if k != "streams"}
    return {**data["streams"][index], "run": run}


def _write_json(path: str, data: dict[str, Any]) -> None:
    try:
        Path(path).write_text(json.dumps(data, indent=2) + "\n")
    except OSError as e:
        raise OutputError(f"{path}: cannot write the summary: {e.strerror or e}") from e


# -- the run -----------------------------------------------------------------------------------
def execute_streams(cfg: RunConfig, display: str, console: Console | None,
                    interval: float, flags: dict[str, str] | None) -> int:
    """Build, run and report a run over several inputs; returns the exit code.

    Every stream's outputs are checked before any work, as for one input. A stream that cannot
    open is named in a warning and the others run; when none can, that is the error.
    """
    from ..sinks import check_outputs  # PyAV and OpenCV load only for a command that runs
    from ..sources import mask_credentials

    console = console or Console(stderr=True, highlight=False)
    quiet = display == "quiet"
    validate(cfg, keys=flags)
    streams = stream_configs(cfg, keys=flags)
    stems = stream_stems(cfg)
    named = [(name, getattr(s, name)) for s in streams
             for name in ("video", "detections", "summary", "counts") if getattr(s, name)]
    run_summary = cfg.summary if cfg.summary and not any(s.summary for s in streams) else None
    if run_summary:
        named.append(("summary", run_summary))
    outputs = [path for _, path in named]
    # by identity, not by spelling: a link to an input is that input
    check_outputs(named, [s.input for s in streams], cfg.overwrite)
    title = (f"vidstream  {len(streams)} streams -> "
             f"{cfg.video or cfg.detections or cfg.summary or cfg.counts}")
    # a stream that cannot open is warned about; none opening raises
    pipeline, summary, error = run_pipeline(cfg, console, display, interval, title)
    uris = [mask_credentials(s.input) for s in streams]
    data = summary_dict(summary, stems, uris)
    if run_summary:
        _write_json(run_summary, data)
    for i, s in enumerate(streams):
        if s.summary:
            _write_json(s.summary, stream_summary(data, i))
    if not quiet:
        console.print(summary_table(summary))
        console.print(streams_table(summary, stems))
        written = [o for o in outputs if Path(o).exists()]
        if written:
            console.print(f"wrote {', '.join(written)}", soft_wrap=True)
    reports = summary.streams
    shared = (isinstance(error, VidstreamError) and error.stage in pipeline.stage_ids)
    if error is not None and shared and not (summary.interrupted
                                             and isinstance(error, Cancelled)):
        print_error(error, flags)
        return EXIT_ERROR
    if summary.interrupted:
        if not quiet:
            console.print(f"[yellow]vidstream: interrupted after {summary.frames} frames; "
                          "every stream's outputs finalized[/yellow]", soft_wrap=True)
        return EXIT_INTERRUPTED
    for r in reports:
        name = f"stream {r.index} ({uris[r.index]})"
        if r.state == "failed":
            console.print(f"[yellow]vidstream: warning: {name} failed after {r.frames} frames: "
                          f"{r.error}[/yellow]", soft_wrap=True)
        elif r.ended_early:
            console.print(f"[yellow]vidstream: warning: {name}: input ended early or is "
                          f"damaged ({r.ended_early}); wrote the {r.frames} frames decoded"
                          "[/yellow]", soft_wrap=True)
    completed = [r for r in reports if r.state == "ended" and not r.ended_early]
    if len(completed) == len(reports):
        return EXIT_OK
    if completed or any(r.frames for r in reports):
        return EXIT_PARTIAL
    why = f": {error_line(error, flags)}" if error is not None else ""
    print(f"vidstream: error: no stream wrote any frame{why}", file=sys.stderr, flush=True)
    return EXIT_ERROR
