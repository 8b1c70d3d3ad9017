"""``vidstream bench``: the sweep's flags, its progress bar and its table.

The measuring is :mod:`vidstream.bench.runner`'s; this module only reads flags, shows
progress and prints what came back::

    vidstream bench traffic.mp4 --batch-sizes 1,2,4 --frames 120 --instance c5.4xlarge \\
        --save c5.json
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import textwrap
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from rich import box
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from ..backends.remote import is_remote
from ..bench.report import format_rate, format_usd
from ..bench.runner import (
    BenchConfig,
    BenchOptions,
    BenchResult,
    Event,
    NotMeasured,
    probe,
    run_bench,
    sweep,
)
from ..cost import lookup, resolve_price
from ..errors import ConfigError
from ..settings import BACKENDS, DEFAULTS, DEVICES
from .common import (
    EXIT_ERROR,
    EXIT_OK,
    Formatter,
    add_accelerator_options,
    bounded_int,
    choice_list,
    console,
    flag_names,
    int_list,
    non_negative_float,
    positive_int,
    unit_float,
)
from .errors import hint

_DEFAULT = BenchOptions(input="")  # the defaults the flags show and use
_CONFIG = BenchConfig()


def add_commands(sub: Any) -> None:
    """Register ``bench``."""
    bench = sub.add_parser(
        "bench",
        help="measure fps, latency and cost of configurations on this machine",
        description=textwrap.fill(
            "Run the real pipeline on INPUT once per configuration (every combination of "
            "--model, --device, --threads and --batch-sizes), each in a fresh process after "
            "one warm-up batch, and record fps, per-frame latency p50/p95, model load time, "
            "per-stage busy shares, peak memory and, priced as the instance this machine "
            "stands for, cost per 100k inferences. Save with --save and compare machines "
            "with 'vidstream report'."
        ),
        epilog=(
            "examples:\n"
            "  vidstream bench traffic.mp4 --batch-sizes 1,2,4 --frames 120 "
            "--instance c5.4xlarge --save c5.json\n"
            "  vidstream bench traffic.mp4 --device cpu,gpu --price-per-hour 0.25 "
            "--label my-box --save box.json"
        ),
        formatter_class=Formatter,
    )
    bench.add_argument("input", help="video file to run on (a 1080p clip is typical)")
    g = bench.add_argument_group("sweep")
    g.add_argument("--batch-sizes", type=int_list, default=[_CONFIG.batch_size],
                   metavar="1,2,4", help="frames per model call, one run each (default: "
                   f"{_CONFIG.batch_size})")
    g.add_argument("--threads", type=int_list, metavar="N,M",
                   help="TensorFlow intra-op threads, one run each (default: TensorFlow's "
                   "choice)")
    g.add_argument("--tf-threads", dest="threads", type=int_list, help=argparse.SUPPRESS)
    g.add_argument("--device", type=choice_list(DEVICES), default=[_CONFIG.device],
                   metavar="cpu,gpu", help=f"devices to run on (default: {_CONFIG.device}, as "
                   "in detect: a GPU when TensorFlow sees one); gpu is skipped with a note "
                   "when TensorFlow sees no GPU")
    g.add_argument("--model", action="append", metavar="NAME|PATH",
                   help="model to run (repeat for several; default "
                   f"{_CONFIG.model}). Models are code: load only ones you trust")
    g.add_argument("--frames", type=positive_int, metavar="N",
                   help="measure the first N frames only (default: the whole input)")
    g = bench.add_argument_group("pipeline")
    g.add_argument("--no-video", dest="video", action="store_false",
                   help="write detections only, no annotated video (leaves encoding out)")
    g.add_argument("--preset", default=_DEFAULT.preset, metavar="NAME",
                   help="x264 preset of the annotated video")
    g.add_argument("--threshold", type=unit_float, default=_DEFAULT.threshold, metavar="X",
                   help="minimum score to keep, 0-1")
    g.add_argument("--backend", choices=BACKENDS, default=_DEFAULT.backend,
                   help="inference backend (as in detect)")
    g.add_argument("--queue-size", type=bounded_int(1, DEFAULTS.max_queue_size),
                   default=_DEFAULT.queue_size, metavar="N",
                   help="capacity of each queue between stages (latency includes the wait)")
    g = bench.add_argument_group("cost: the instance this machine stands for")
    g.add_argument("--instance", metavar="NAME",
                   help="price the runs as this catalog instance type (default: the reference "
                   f"rate of {DEFAULTS.reference_instance}, labelled 'this machine')")
    g.add_argument("--price-per-hour", type=non_negative_float, metavar="USD",
                   help="price the runs at this hourly rate")
    g.add_argument("--label", metavar="NAME",
                   help="name of this machine in reports (default: the instance)")
    g.add_argument("--catalog", metavar="FILE.json", help="extra or overriding price rows")
    add_accelerator_options(g)
    g = bench.add_argument_group("output")
    g.add_argument("--save", metavar="FILE.json",
                   help="write the runs: {\"runs\": [...], \"machine\": {...}}")
    g.add_argument("-y", "--overwrite", action="store_true", help="overwrite --save's file")
    g.add_argument("-q", "--quiet", action="store_true", help="no progress, no table")
    bench.set_defaults(func=cmd_bench, flags=flag_names(bench, path="--save"))


def cmd_bench(args: argparse.Namespace) -> int:
    from .. import models
    from ..sinks import check_output

    out = console(stderr=True)
    if args.label and args.price_per_hour is None and not args.instance:
        raise ConfigError("--label names a price: give --price-per-hour or --instance too")
    price = resolve_price(args.instance, args.price_per_hour, args.catalog, args.label)
    accelerator = None
    if args.accelerator_instance:
        if not any(is_remote(m) for m in args.model or ()):
            raise ConfigError("--accelerator-instance prices a remote model's server: give "
                              "--model triton://HOST:PORT/NAME (or tfserving://)",
                              param="accelerator_instance")
        accelerator = lookup(args.accelerator_instance, args.catalog)
    if args.save:
        check_output(args.save, args.overwrite)
    options = BenchOptions(input=args.input, frames=args.frames, video=args.video,
                           preset=args.preset, threshold=args.threshold, backend=args.backend,
                           queue_size=args.queue_size)
    names = [m.strip() for m in (args.model or [_CONFIG.model]) if m.strip()]
    for model in names:  # a missing model fails here, once; a known one is pulled once
        models.resolve(model, progress=lambda m: out.print(f"[dim]{m}[/dim]"))
    configs = sweep(names, args.device, args.threads or [None], args.batch_sizes)
    if price.reference and not args.quiet:
        out.print(f"[yellow]vidstream: note: {price.note}: this machine's speed at that "
                  "instance's rate[/yellow]")
    # a run priced at the reference rate was not measured on that instance: don't name it so
    label = args.label or ("this machine" if price.reference else price.name)
    result = BenchResult()
    try:
        with _progress_view(out, args.quiet, options, configs, args.flags) as on_event:
            run_bench(options, configs, price, label, args.instance, on_event, into=result,
                      accelerator=accelerator, accelerator_share=args.accelerator_share)
    finally:  # after Ctrl-C too: what was measured is kept
        if args.save and result.runs:
            result.save(args.save)
    if not args.quiet:
        _print_bench(out, result)
        if args.save and result.runs:
            out.print(f"wrote {args.save}")
    if args.save and not result.runs:
        out.print("[yellow]vidstream: nothing measured; nothing saved[/yellow]")
    for s in result.failed:  # last, so the final line says what went wrong
        print(f"vidstream: error: {s.configuration}: {_reason(s, args.flags)}",
              file=sys.stderr, flush=True)
    return EXIT_ERROR if result.failed or not result.runs else EXIT_OK


def _reason(s: NotMeasured, flags: dict[str, str]) -> str:
    return s.reason + (f" {hint(s.param, flags)}" if s.param else "")


@contextlib.contextmanager
def _progress_view(console: Console, quiet: bool, options: BenchOptions,
                   configs: Sequence[BenchConfig], flags: dict[str, str]
                   ) -> Iterator[Callable[[BenchConfig, Event], None] | None]:
    """A progress bar over every configuration's frames (plain lines off a terminal)."""
    if quiet:
        yield None
        return
    stated = probe(options.input).frames
    per_config = min(x for x in (stated, options.frames, 10**12) if x)
    per_config = 0 if per_config == 10**12 else per_config
    progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                        TimeElapsedColumn(), console=console, transient=True,
                        disable=not console.is_terminal)
    task = progress.add_task("bench", total=per_config * len(configs) or None)
    base = {"done": 0}

    def on_event(config: BenchConfig, event: Event) -> None:
        kind = event["event"]
        i = configs.index(config) + 1
        if kind == "start":
            progress.update(task, description=f"[{i}/{len(configs)}] {config.name}: loading")
            if not console.is_terminal:
                console.print(f"[{i}/{len(configs)}] {config.name}...")
        elif kind == "progress":
            progress.update(task, description=f"[{i}/{len(configs)}] {config.name}",
                            completed=base["done"] + min(event["frames"], per_config or 10**9))
        else:
            base["done"] += per_config
            progress.update(task, completed=base["done"])
            if kind == "result":
                run = event["run"]
                console.print(f"[{i}/{len(configs)}] {config.name}: {run['fps']:.2f} fps")
            elif kind == "skipped":
                console.print(f"[yellow][{i}/{len(configs)}] {config.name}: skipped: "
                              f"{event['reason']}[/yellow]")
            else:
                failed = NotMeasured(config.name, event["message"], event.get("param"))
                console.print(f"[red][{i}/{len(configs)}] {config.name}: failed: "
                              f"{_reason(failed, flags)}[/red]")

    with progress:
        yield on_event


def bench_table(result: BenchResult) -> Table:
    """Per configuration: fps, latency, load time, stage shares, peak memory, price, cost."""
    order = ["decode", "detect", "sink"]
    stages = sorted({s for r in result.runs for s in r.busy_shares},
                    key=lambda s: order.index(s) if s in order else len(order))
    labels = sorted({r.label for r in result.runs})
    title = "vidstream bench" + (f" as {labels[0]}" if len(labels) == 1 else "")
    first = result.runs[0] if result.runs else None
    if first is not None and len(labels) == 1 and first.usd_per_hour is not None:
        where = ", ".join(x for x in (first.price_region, first.price_date) if x)
        title += f" at {format_rate(first.usd_per_hour)}/h" + (f" ({where})" if where else "")
    counts = {r.frames for r in result.runs}
    if len(counts) == 1:
        title += f", {counts.pop()} frames each"
    table = Table(header_style="bold", title=title, title_justify="left", box=box.SIMPLE_HEAD,
                  caption=f"latency per frame, decode to written; busy: {'/'.join(stages)} "
                  "share of the run; load: model load; peak: the process's peak memory",
                  caption_justify="left")
    columns = ["configuration", "frames", "fps", "p50/p95 ms", "load s", "peak MiB", "busy %",
               "$/100k"]
    if "frames each" in title:
        columns.remove("frames")
    for col in columns:
        table.add_column(col, justify="left" if col == "configuration" else "right")
    for r in result.runs:
        table.add_row(r.setup if len(labels) == 1 else r.configuration,
                      *([str(r.frames)] if "frames" in columns else []), f"{r.fps:.2f}",
                      f"{r.p50_ms:.0f}/{r.p95_ms:.0f}",
                      f"{r.model_load_s or 0:.2f}",
                      f"{r.peak_memory_mib:.0f}" if r.peak_memory_mib else "-",
                      "/".join(f"{r.busy_shares.get(s, 0) * 100:.0f}" for s in stages),
                      format_usd(r.usd_per_100k_inferences))
    return table


def _print_bench(console: Console, result: BenchResult) -> None:
    if result.runs:
        console.print(bench_table(result))
    for s in result.skipped:
        console.print(f"[yellow]skipped {s.configuration}: {s.reason}[/yellow]")
