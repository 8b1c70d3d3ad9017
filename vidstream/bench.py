"""``vidstream bench``: the real pipeline, once per configuration of a sweep, priced.

Each configuration (model x device x TensorFlow threads x batch size) runs in its own Python
process: TensorFlow's thread pools can only be set before its first op, and a fresh process
is the honest way to measure each configuration's model load time and peak memory. In it,
the pipeline ``detect`` builds (decode -> detect -> annotated video, or detections only with
``--no-video``) loads the model, is warmed up with one real batch, then runs over the first
``--frames`` frames; its :class:`~vidstream.summary.Summary` (the same code that writes
``detect --summary``) gives fps, latency, stage shares and the cost::

    vidstream bench traffic.mp4 --batch-sizes 1,2,4 --frames 120 --instance c5.4xlarge \\
        --save c5.json
    vidstream report c5.json g4dn.json --target-fps 15 --plot cost.png

>>> [c.name for c in sweep(["centernet"], ["cpu"], [None], [1, 2])]
['centernet cpu batch 1', 'centernet cpu batch 2']
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

from .cost import Price, resolve_price
from .errors import ConfigError, OutputError, VidstreamError
from .report import Run

_START = time.perf_counter()  # a bench child imports this module first: its start-up clock

_CHILD = "from vidstream.bench import _child_main; _child_main()"


@dataclass(frozen=True)
class BenchConfig:
    """One point of the sweep."""

    model: str = "centernet"
    device: str = "cpu"
    threads: int | None = None
    batch_size: int = 1

    @property
    def name(self) -> str:
        text = f"{Path(self.model).name or self.model} {self.device} batch {self.batch_size}"
        return text + (f" {self.threads} threads" if self.threads else "")


def sweep(models: Sequence[str], devices: Sequence[str], threads: Sequence[int | None],
          batch_sizes: Sequence[int]) -> list[BenchConfig]:
    """Every combination, in the order given (batch size varies fastest)."""
    return [BenchConfig(m, d, t, b) for m in models for d in devices for t in threads
            for b in batch_sizes]


@dataclass(frozen=True)
class BenchOptions:
    """What stays the same across the sweep."""

    input: str
    frames: int | None = None
    video: bool = True
    preset: str = "veryfast"
    threshold: float = 0.4
    backend: str = "auto"
    queue_size: int = 8


@dataclass(frozen=True)
class NotMeasured:
    """A configuration skipped here (e.g. no GPU) or failed, and why."""

    configuration: str
    reason: str


@dataclass
class BenchResult:
    """The runs of a sweep, the ones skipped or failed, and the machine they ran on."""

    runs: list[Run] = field(default_factory=list)
    summaries: list[dict[str, Any]] = field(default_factory=list)
    skipped: list[NotMeasured] = field(default_factory=list)
    failed: list[NotMeasured] = field(default_factory=list)
    machine: dict[str, Any] = field(default_factory=dict)
    input: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "runs": [{**r.to_dict(), "summary": s}
                     for r, s in zip(self.runs, self.summaries, strict=True)],
            "skipped": [asdict(s) for s in self.skipped],
            "failed": [asdict(s) for s in self.failed],
            "machine": self.machine,
            "input": self.input,
        }

    def save(self, path: str | Path) -> None:
        try:
            Path(path).write_text(json.dumps(self.to_dict(), indent=2) + "\n")
        except OSError as e:
            raise OutputError(f"{path}: cannot write: {e.strerror or e}") from None


# -- the parent: one child process per configuration -----------------------------------------
Event = dict[str, Any]


def run_bench(options: BenchOptions, configs: Sequence[BenchConfig], price: Price | None = None,
              label: str | None = None, instance: str | None = None,
              on_event: Callable[[BenchConfig, Event], None] | None = None,
              into: BenchResult | None = None) -> BenchResult:
    """Measure every configuration in a fresh process; ``on_event`` sees progress.

    Events: ``{"event": "start"}``, ``{"event": "progress", "frames": n}``, then one of
    ``result`` (with ``run``), ``skipped`` or ``error`` (with ``message``). Runs are added
    to ``into`` (a new result by default) as they finish.
    """
    info = _probe(options.input, options.frames)
    result = into if into is not None else BenchResult()
    result.machine = machine_info()
    result.input = {
        "uri": info.uri, "width": info.width, "height": info.height,
        "rate": str(info.rate) if info.rate else None, "frames": info.frames,
        "codec": info.codec, "frames_measured": options.frames}
    no_gpu: str | None = None
    with tempfile.TemporaryDirectory(prefix="vidstream-bench-") as tmp:
        for i, config in enumerate(configs):
            notify = (lambda e, c=config: on_event(c, e)) if on_event else (lambda e: None)
            if config.device == "gpu" and no_gpu:
                result.skipped.append(NotMeasured(config.name, no_gpu))
                notify({"event": "skipped", "reason": no_gpu})
                continue
            notify({"event": "start"})
            spec = {
                "options": asdict(options), "config": asdict(config),
                "price": price.to_dict() if price else None, "label": label,
                "instance": instance,
                "outdir": str(Path(tmp) / str(i)),
            }
            event = _run_child(spec, notify)
            if event["event"] == "result":
                result.runs.append(Run(**event["run"]))
                result.summaries.append(event["summary"])
                result.machine.setdefault("tensorflow_gpus", event.get("gpus", []))
            elif event["event"] == "skipped":
                no_gpu = event["reason"] if config.device == "gpu" else no_gpu
                result.skipped.append(NotMeasured(config.name, event["reason"]))
            else:
                result.failed.append(NotMeasured(config.name, event["message"]))
            notify(event)
    return result


def _probe(uri: str, frames: int | None = None) -> Any:
    """Open the input once (PyAV only): input errors surface before any child starts."""
    from .sources import VideoSource, is_live, mask_credentials

    if is_live(uri):
        raise ConfigError(f"{mask_credentials(uri)}: bench needs a video file, not a live "
                          "source")
    source = VideoSource(uri, max_frames=frames)
    try:
        return source.open()
    finally:
        source.close()


def _run_child(spec: dict[str, Any], notify: Callable[[Event], None]) -> Event:
    """Run one configuration in a child process; returns its final event."""
    with tempfile.TemporaryFile("w+") as err:
        proc = subprocess.Popen([sys.executable, "-c", _CHILD], stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, stderr=err, text=True)
        final: Event | None = None
        try:
            assert proc.stdin is not None and proc.stdout is not None
            proc.stdin.write(json.dumps(spec))
            proc.stdin.close()
            for line in proc.stdout:
                try:
                    event = json.loads(line)
                except json.JSONDecodeError:
                    continue
                if event.get("event") == "progress":
                    notify(event)
                else:
                    final = event
            proc.wait()
        except BaseException:  # Ctrl-C: the child gets the signal too; make sure it ends
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            proc.wait()
            raise
        if final is not None:
            return final
        err.seek(0)
        tail = [ln for ln in err.read().strip().splitlines() if ln.strip()]
        why = tail[-1] if tail else f"exit status {proc.returncode}"
        return {"event": "error", "message": f"the bench process ended without a result: {why}"}


def machine_info() -> dict[str, Any]:
    """What this machine is: CPU, cores, memory, OS and library versions (no TF import)."""
    info: dict[str, Any] = {
        "measured_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),  # noqa: UP017
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpu": _cpu_model(),
        "cpus": os.cpu_count(),
        "cpus_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
        else os.cpu_count(),
        "memory_gib": _memory_gib(),
    }
    for package in ("vidstream", "tensorflow", "av", "numpy"):
        try:
            info[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            info[package] = None
    from . import __version__

    info["vidstream"] = info["vidstream"] or __version__
    return info


def _cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def _memory_gib() -> float | None:
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 2**20, 1)
    return None


# -- the child: one configuration, measured ---------------------------------------------------
def _child_main() -> None:
    """Entry point of a bench child: a spec on stdin, JSON events on stdout."""
    # Anything a library prints goes to stderr; stdout carries only our events.
    events = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr

    def emit(event: Event) -> None:
        events.write(json.dumps(event) + "\n")

    import logging

    logging.getLogger("vidstream").addHandler(logging.StreamHandler(sys.stderr))
    try:
        spec = json.loads(sys.stdin.read())
        emit(measure(spec, emit))
    except VidstreamError as e:
        emit({"event": "error", "message": " ".join(str(e).split()) or type(e).__name__})
    except Exception as e:
        emit({"event": "error", "message": f"{type(e).__name__}: {' '.join(str(e).split())}"})
    finally:
        events.close()


def measure(spec: dict[str, Any], emit: Callable[[Event], None]) -> Event:
    """Load, warm up and run one configuration in this process; the final event."""
    from .config import RunConfig, build_pipeline, validate
    from .detector import Detector
    from .predictor import configure_threads, gpu_names, import_tensorflow
    from .sources import VideoSource

    options = BenchOptions(**spec["options"])
    config = BenchConfig(**spec["config"])
    price = Price(**spec["price"]) if spec.get("price") else None
    if config.threads:
        configure_threads(config.threads)  # before TensorFlow's first op
    gpus = gpu_names()
    if config.device == "gpu" and not gpus:
        return {"event": "skipped", "reason": "no GPU is visible to TensorFlow"}
    out = Path(spec["outdir"])
    out.mkdir(parents=True, exist_ok=True)
    cfg = RunConfig(
        input=options.input,
        video=str(out / "bench.mp4") if options.video else None,
        detections=None if options.video else str(out / "bench.jsonl"),
        model=config.model,
        threshold=options.threshold,
        batch_size=config.batch_size,
        device=config.device,
        backend=options.backend,
        tf_threads=config.threads,
        preset=options.preset,
        queue_size=options.queue_size,
        max_frames=options.frames,
        audio=False,  # cost per inference: copying audio is not part of it
        overwrite=True,
    )
    validate(cfg)
    pipeline = build_pipeline(cfg)
    with pipeline:
        pipeline.open()
        detector = next(s for s in pipeline.stages if isinstance(s, Detector))
        # One real batch first, so one-time costs (kernel selection, memory pools for this
        # input size) stay out of the measured run.
        warm = VideoSource(options.input, max_frames=config.batch_size)
        try:
            warm.open()
            frames = list(warm.frames())
        finally:
            warm.close()
        t0 = time.perf_counter()
        detector.process_batch(frames)
        warmup_s = time.perf_counter() - t0
        del frames
        startup_s = time.perf_counter() - _START
        with _progress(pipeline, emit):
            pipeline.run()
        summary = pipeline.summary().with_price(price)
    record = summary.to_dict()
    run = Run.from_summary(
        record,
        label=spec.get("label") or (price.name if price else None) or "this machine",
        device=config.device,
        threads=config.threads,
        warmup_s=round(warmup_s, 4),
        startup_s=round(startup_s, 4),
        peak_memory_mib=_peak_rss_mib(),
        gpu_peak_memory_mib=_gpu_peak_mib(import_tensorflow(), summary.details.get("device")),
    )
    # the catalog name, not the label: a --price-per-hour run may stand for no instance
    run = replace(run, instance=spec.get("instance"))
    fields = asdict(run)
    fields.pop("source_file")
    return {"event": "result", "run": fields, "summary": record, "gpus": gpus}


@contextlib.contextmanager
def _progress(pipeline: Any, emit: Callable[[Event], None], every: float = 0.25
              ) -> Iterator[None]:
    stop = threading.Event()

    def report() -> None:
        last = -1
        while not stop.wait(every):
            done = pipeline.stats()[-1].items_out
            if done != last:
                emit({"event": "progress", "frames": done})
                last = done

    thread = threading.Thread(target=report, name="bench-progress", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


def _peak_rss_mib() -> float | None:
    try:
        import resource
    except ImportError:  # Windows
        return None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return round(peak / (2**20 if sys.platform == "darwin" else 2**10), 1)  # bytes vs KiB


def _gpu_peak_mib(tf: Any, device: Any) -> float | None:
    if not str(device or "").upper().startswith("GPU"):
        return None
    try:
        return round(tf.config.experimental.get_memory_info("GPU:0")["peak"] / 2**20, 1)
    except Exception:
        return None


# -- the commands -----------------------------------------------------------------------------
def _int_list(text: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected integers like 1,2,4, got {text!r}") from None
    if not values or any(v < 1 for v in values):
        raise argparse.ArgumentTypeError(f"expected integers >= 1, got {text!r}")
    return values


def _devices(text: str) -> list[str]:
    values = [v.strip().lower() for v in text.split(",") if v.strip()]
    bad = [v for v in values if v not in ("auto", "cpu", "gpu")]
    if not values or bad:
        raise argparse.ArgumentTypeError(f"expected auto, cpu or gpu (comma-separated), "
                                         f"got {text!r}")
    return values


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {text}")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
    return value


def add_commands(sub: Any, formatter_class: type) -> None:
    """Register ``bench`` and ``report`` on the ``vidstream`` command line."""

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
        formatter_class=formatter_class,
    )
    bench.add_argument("input", help="video file to run on (a 1080p clip is typical)")
    g = bench.add_argument_group("sweep")
    g.add_argument("--batch-sizes", type=_int_list, default=[1], metavar="1,2,4",
                   help="frames per model call, one run each (default: 1)")
    g.add_argument("--threads", type=_int_list, metavar="N,M",
                   help="TensorFlow intra-op threads, one run each (default: TensorFlow's "
                   "choice)")
    g.add_argument("--device", type=_devices, default=["cpu"], metavar="cpu,gpu",
                   help="devices to run on (default: cpu); gpu is skipped with a note when "
                   "TensorFlow sees no GPU")
    g.add_argument("--model", action="append", metavar="NAME|PATH",
                   help="model to run (repeat for several; default centernet). Models are "
                   "code: load only ones you trust")
    g.add_argument("--frames", type=_positive_int, metavar="N",
                   help="measure the first N frames only (default: the whole input)")
    g = bench.add_argument_group("pipeline")
    g.add_argument("--no-video", dest="video", action="store_false",
                   help="write detections only, no annotated video (leaves encoding out)")
    g.add_argument("--preset", default="veryfast", help="x264 preset of the annotated video")
    g.add_argument("--threshold", type=float, default=0.4, help="minimum score to keep")
    g.add_argument("--backend", choices=("auto", "tf", "tflite"), default="auto",
                   help="inference backend (as in detect)")
    g.add_argument("--queue-size", type=_positive_int, default=8,
                   help="capacity of each queue between stages (latency includes the wait)")
    g = bench.add_argument_group("cost: the instance this machine stands for")
    g.add_argument("--instance", help="price the runs as this catalog instance type")
    g.add_argument("--price-per-hour", type=float, metavar="USD",
                   help="price the runs at this hourly rate")
    g.add_argument("--label", help="name of this machine in reports (default: the instance)")
    g.add_argument("--catalog", metavar="FILE.json", help="extra or overriding price rows")
    g = bench.add_argument_group("output")
    g.add_argument("--save", metavar="FILE.json",
                   help="write the runs: {\"runs\": [...], \"machine\": {...}}")
    g.add_argument("-y", "--overwrite", action="store_true", help="overwrite --save's file")
    g.add_argument("-q", "--quiet", action="store_true", help="no progress, no table")
    bench.set_defaults(func=cmd_bench)

    report = sub.add_parser(
        "report",
        help="compare saved bench runs by cost, recommend a configuration",
        description=textwrap.fill(
            "Merge the runs of 'vidstream bench --save' files (and 'vidstream detect "
            "--summary' files) from any number of machines into one table sorted by cost per "
            "100k inferences, the cheapest and the fastest marked. With --target-fps or "
            "--max-latency-ms it walks from the largest configuration down, as the "
            "EIPredictor write-up did, and names the cheapest one that still meets the target."
        ),
        epilog="example:\n  vidstream report c5.json g4dn.json --target-fps 15 --plot cost.png",
        formatter_class=formatter_class,
    )
    report.add_argument("files", nargs="+", metavar="FILE.json", help="bench or summary files")
    report.add_argument("--target-fps", type=_positive_float, metavar="X",
                        help="frames per second the configuration must sustain")
    report.add_argument("--max-latency-ms", type=_positive_float, metavar="Y",
                        help="per-frame latency (p95) the configuration must stay under")
    report.add_argument("--format", choices=FORMATS_CLI, default="table",
                        help="table: for the terminal, with bars; markdown, csv, json: for "
                        "reports")
    report.add_argument("-o", "--output", metavar="FILE", help="write the report to FILE "
                        "instead of stdout")
    report.add_argument("--plot", metavar="FILE.png",
                        help="draw latency and cost per 100k per configuration (needs "
                        "matplotlib: pip install 'vidstream[plot]')")
    report.add_argument("-y", "--overwrite", action="store_true",
                        help="overwrite --output and --plot files")
    report.set_defaults(func=cmd_report)


FORMATS_CLI = ("table", "markdown", "csv", "json")


def _check_new(path: str | None, overwrite: bool) -> None:
    if path:
        from .sinks import check_output

        check_output(path, overwrite)


def cmd_bench(args: argparse.Namespace) -> int:
    from .cli import EXIT_ERROR, EXIT_OK
    from .models import resolve

    console = _console(stderr=True)
    if args.label and args.price_per_hour is None and not args.instance:
        raise ConfigError("--label names a price: give --price-per-hour or --instance too")
    price = resolve_price(args.instance, args.price_per_hour, args.catalog, args.label)
    _check_new(args.save, args.overwrite)
    options = BenchOptions(input=args.input, frames=args.frames, video=args.video,
                           preset=args.preset, threshold=args.threshold, backend=args.backend,
                           queue_size=args.queue_size)
    models = [m.strip() for m in (args.model or ["centernet"]) if m.strip()]
    for model in models:  # a missing model fails here, once; a known one is pulled once
        resolve(model, progress=lambda m: console.print(f"[dim]{m}[/dim]"))
    configs = sweep(models, args.device, args.threads or [None], args.batch_sizes)
    if price is None and not args.quiet:
        console.print("[yellow]vidstream: note: no --instance or --price-per-hour: runs are "
                      "measured but not priced[/yellow]")
    label = args.label or (price.name if price else None)
    result = BenchResult()
    try:
        with _progress_view(console, args.quiet, options, configs) as on_event:
            run_bench(options, configs, price, label, args.instance, on_event, into=result)
    finally:  # after Ctrl-C too: what was measured is kept
        if args.save and result.runs:
            result.save(args.save)
    if not args.quiet:
        _print_bench(console, result)
        if args.save and result.runs:
            console.print(f"wrote {args.save}")
    if args.save and not result.runs:
        console.print("[yellow]vidstream: nothing measured; nothing saved[/yellow]")
    for s in result.failed:  # last, so the final line says what went wrong
        print(f"vidstream: error: {s.configuration}: {s.reason}", file=sys.stderr, flush=True)
    return EXIT_ERROR if result.failed or not result.runs else EXIT_OK


@contextlib.contextmanager
def _progress_view(console: Any, quiet: bool, options: BenchOptions,
                   configs: Sequence[BenchConfig]
                   ) -> Iterator[Callable[[BenchConfig, Event], None] | None]:
    """A progress bar over every configuration's frames (plain lines off a terminal)."""
    if quiet:
        yield None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    stated = _probe(options.input).frames
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
                console.print(f"[red][{i}/{len(configs)}] {config.name}: failed: "
                              f"{event['message']}[/red]")

    with progress:
        yield on_event


def bench_table(result: BenchResult) -> Any:
    """Per configuration: fps, latency, load time, stage shares, peak memory, price, cost."""
    from rich import box
    from rich.table import Table

    from .report import _rate, _usd

    order = ["decode", "detect", "sink"]
    stages = sorted({s for r in result.runs for s in r.busy_shares},
                    key=lambda s: order.index(s) if s in order else len(order))
    labels = sorted({r.label for r in result.runs})
    title = "vidstream bench" + (f" as {labels[0]}" if len(labels) == 1 else "")
    first = result.runs[0] if result.runs else None
    if first is not None and len(labels) == 1 and first.usd_per_hour is not None:
        where = ", ".join(x for x in (first.price_region, first.price_date) if x)
        title += f" at {_rate(first.usd_per_hour)}/h" + (f" ({where})" if where else "")
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
                      _usd(r.usd_per_100k_inferences))
    return table


def _print_bench(console: Any, result: BenchResult) -> None:
    if result.runs:
        console.print(bench_table(result))
    for s in result.skipped:
        console.print(f"[yellow]skipped {s.configuration}: {s.reason}[/yellow]")


def cmd_report(args: argparse.Namespace) -> int:
    from rich.console import Console

    from .cli import EXIT_OK
    from .report import load_runs, plot, recommend, render, render_table

    _check_new(args.output, args.overwrite)
    _check_new(args.plot, args.overwrite)
    runs = load_runs(args.files)
    rec = recommend(runs, args.target_fps, args.max_latency_ms)
    if args.format == "table":
        if args.output:
            console = Console(highlight=False, width=140, record=True)
            with console.capture():
                console.print(render_table(runs, rec))
            _write(args.output, console.export_text())
        else:
            _console().print(render_table(runs, rec))
    else:
        text = render(args.format, runs, rec)
        if args.output:
            _write(args.output, text)
        else:
            sys.stdout.write(text)
    if args.plot:
        path = plot(runs, args.plot, rec)
        print(f"wrote {path}", file=sys.stderr)
    if args.output:
        print(f"wrote {args.output}", file=sys.stderr)
    return EXIT_OK


def _console(stderr: bool = False) -> Any:
    """A rich console; off a terminal (a pipe, a log) wide enough for the tables."""
    from rich.console import Console

    console = Console(stderr=stderr, highlight=False)
    return console if console.is_terminal else Console(stderr=stderr, highlight=False,
                                                       width=140)


def _write(path: str, text: str) -> None:
    try:
        Path(path).write_text(text)
    except OSError as e:
        raise OutputError(f"{path}: cannot write: {e.strerror or e}") from None


__all__ = ["BenchConfig", "BenchOptions", "BenchResult", "add_commands", "measure",
           "run_bench", "sweep"]
