"""``vidstream detect`` and ``vidstream run``: one pipeline, run with a view and a summary.

Every option of ``detect`` is a :class:`~vidstream.config.RunConfig` field of the same name
(``--queue-size`` -> ``queue_size``), and its default is that field's default, which comes
from :data:`vidstream.settings.DEFAULTS`::

    vidstream detect traffic.mp4 -o traffic-detected.mp4 --threshold 0.5
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path
from typing import Any

from rich.console import Console

from ..config import FILE_KEYS, RunConfig, load_pipeline_file, validate
from ..errors import Cancelled, ConfigError, OutputError
from ..settings import BACKENDS, DEFAULTS, DEVICES
from .cluster import FIELDS as CLUSTER_FIELDS
from .cluster import add_options as add_cluster_options
from .cluster import execute_on_cluster
from .common import (
    EXIT_ERROR,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_PARTIAL,
    Formatter,
    add_accelerator_options,
    bounded_int,
    flag_names,
    non_negative_float,
    non_negative_int,
    pixels,
    positive_float,
    positive_int,
    show_pixels,
    unit_float,
    words,
)
from .counting import FIELDS as COUNTING_FIELDS
from .counting import add_options as add_counting_options
from .dashboard import summary_table
from .errors import print_error
from .execution import run_pipeline
from .streams import (
    add_detect_options,
    add_run_options,
    execute_streams,
    gather_inputs,
    inputs_from_file,
    with_inputs,
)

_DEFAULT = RunConfig()  # the defaults the flags show and use


def add_commands(sub: Any) -> None:
    """Register ``detect`` and ``run``."""
    detect = sub.add_parser(
        "detect",
        help="detect objects in a video and write an annotated copy",
        description=(
            "Decode INPUT, run the detector on every frame, and write the annotated video "
            "(same frame rate, timestamps and audio as the input), plus optional detections "
            "and a run summary with fps, per-stage timings and cost."
        ),
        formatter_class=Formatter,
    )
    detect.add_argument("input", nargs="?",
                        help="video file, URL (rtsp/rtmp/http/udp/tcp) or /dev/videoN; give "
                        "several (or --inputs FILE) to run them as streams of one pipeline")
    detect.add_argument("more_inputs", nargs="*", metavar="INPUT", help=argparse.SUPPRESS)
    detect.add_argument("-o", "--output", metavar="FILE.mp4",
                        help="annotated video to write (default: "
                        "INPUT-STEM-detected.mp4 in the current directory)")
    detect.add_argument("--no-video", action="store_true",
                        help="write no video; only --detections/--summary/--counts")
    detect.add_argument("-y", "--overwrite", action="store_true",
                        help="overwrite outputs that exist (refused otherwise, before any work)")
    _add_run_options(detect)
    add_detect_options(detect)
    add_counting_options(detect)
    add_cluster_options(detect)
    detect.set_defaults(func=cmd_detect, flags=flag_names(detect, video="--output"))

    run = sub.add_parser(
        "run",
        help="run a pipeline file (TOML)",
        description=(
            "Run a pipeline defined in a TOML file (see pipelines/); flags override the file.\n"
            "Relative paths in the file are relative to the current directory, and {stem} in\n"
            "an output path is the input's name without its extension."
        ),
        formatter_class=Formatter,
    )
    run.add_argument("file", help="pipeline file, e.g. pipelines/detect-file.toml")
    run.add_argument("--input", metavar="URI",
                     help="input to use instead of the file's input.uri")
    run.add_argument("--output", metavar="FILE",
                     help="video output to use instead of the file's output.video ({stem} is "
                     "the input's name without extension)")
    run.add_argument("-y", "--overwrite", action="store_true", help="overwrite outputs")
    run.add_argument("--max-frames", type=positive_int, metavar="N", help="stop after N frames")
    _add_model_option(run, None)
    _add_cost_options(run, overrides=True)
    _add_display_options(run)
    add_run_options(run)
    add_counting_options(run, overrides=True)
    add_cluster_options(run, overrides=True)
    # what run has no flag for, the file sets: name its key there
    # an error names the flag the user gave, else the file's key (cost.instance)
    own = flag_names(run, video="--output")
    run.set_defaults(func=cmd_run, flags={
        **FILE_KEYS, **{k: v for k, v in own.items() if k not in _FILE_FIRST}})


# Settings of run that a flag may override, but that a pipeline file usually sets
_FILE_FIRST = ("model", "instance", "price_per_hour", "catalog", "accelerator_instance",
               "accelerator_share")


def _add_run_options(p: argparse.ArgumentParser) -> None:
    # Each dest is the RunConfig field it sets: cmd_detect copies them by name.
    d = _DEFAULT
    g = p.add_argument_group("outputs")
    g.add_argument("--detections", metavar="FILE.jsonl",
                   help="write one JSON line per frame: index, time, detections (boxes in pixels)")
    g.add_argument("--summary", metavar="FILE.json",
                   help="write the run summary: frames, fps, latency, per-stage timings, cost")
    g.add_argument("--counts", metavar="FILE.json", help="write per-class detection counts")

    g = p.add_argument_group("model")
    _add_model_option(g, d.model)
    g.add_argument("--threshold", type=unit_float, default=d.threshold, metavar="X",
                   help="minimum score to keep, 0-1")
    g.add_argument("--classes", type=words, metavar="A,B",
                   help="keep only these classes, e.g. person,car")
    g.add_argument("--batch-size", type=positive_int, default=d.batch_size, metavar="N",
                   help="frames per model call")
    g.add_argument("--device", choices=DEVICES, default=d.device,
                   help="auto uses a GPU when TensorFlow sees one")
    g.add_argument("--backend", choices=BACKENDS, default=d.backend,
                   help="auto: TF Lite (XNNPACK) for the default model on CPU, TensorFlow "
                   "otherwise")
    # --threads, as in bench and in a pipeline file's detector.threads; --tf-threads, the
    # old spelling, still works
    g.add_argument("--tf-threads", dest="tf_threads", type=positive_int, help=argparse.SUPPRESS)
    g.add_argument("--threads", dest="tf_threads", type=positive_int, metavar="N",
                   help="TensorFlow intra-op threads (default: TensorFlow's choice)")

    g = p.add_argument_group("video output")
    g.add_argument("--codec", default=d.codec, metavar="NAME",
                   help="FFmpeg encoder (e.g. libx264, h264_nvenc)")
    g.add_argument("--preset", default=d.preset, metavar="NAME",
                   help="encoder preset: ultrafast..veryslow")
    g.add_argument("--crf", type=bounded_int(0, 51), metavar="N",
                   help="x264 quality, 0-51 (default: encoder's 23)")
    g.add_argument("--fragmented", action=argparse.BooleanOptionalAction, default=d.fragmented,
                   help="fragmented MP4, flushed as it goes: readable even after a hard kill "
                   "(default: on for live sources)")
    g.add_argument("--no-audio", dest="audio", action="store_false",
                   help="do not copy the input's audio")
    g.add_argument("--no-annotate", dest="annotate", action="store_false",
                   help="write frames without boxes")

    g = p.add_argument_group("input")
    g.add_argument("--max-frames", type=positive_int, metavar="N", help="stop after N frames")
    # a string default goes through the type, so --help shows 8192x4320, not 35389440
    g.add_argument("--max-pixels", type=pixels, default=show_pixels(d.max_pixels),
                   metavar="WxH", help="refuse inputs whose frames are larger (guards against "
                   "hostile headers); WIDTHxHEIGHT or a number of pixels")
    g.add_argument("--max-decode-errors", type=non_negative_int, default=d.max_decode_errors,
                   metavar="N", help="give up after this many undecodable packets")
    g.add_argument("--queue-size", type=bounded_int(1, DEFAULTS.max_queue_size),
                   default=d.queue_size, metavar="N",
                   help="capacity of each queue between stages (frames)")
    g.add_argument("--reconnect", type=non_negative_int, default=d.reconnect, metavar="N",
                   help="live sources: reconnect up to N times after a failure")
    g.add_argument("--reconnect-delay", type=positive_float, default=d.reconnect_delay,
                   metavar="S", help="first reconnect delay; doubles each attempt, with jitter")
    g.add_argument("--stall-timeout", type=positive_float, default=d.stall_timeout, metavar="S",
                   help="live sources: fail (or reconnect) when connecting takes longer or no "
                   "frame arrives for S seconds")
    g.add_argument("--realtime", action="store_true",
                   help="read a file at its own frame rate, as if live")

    _add_cost_options(p.add_argument_group("cost"))
    _add_display_options(p)


def _add_model_option(g: Any, default: str | None) -> None:
    g.add_argument("--model", default=default, metavar="NAME|PATH",
                   help="known model name (see 'vidstream models list'), TF2 SavedModel "
                   "directory, or TF1 frozen graph .pb. Models are code: load only ones you trust")


def _add_cost_options(g: Any, overrides: bool = False) -> None:
    g.add_argument("--instance", metavar="NAME",
                   help="price the run as this instance type (see the catalog; default: the "
                   f"reference rate of {DEFAULTS.reference_instance})")
    g.add_argument("--price-per-hour", type=non_negative_float, metavar="USD",
                   help="price the run at this hourly rate")
    g.add_argument("--catalog", metavar="FILE.json", help="extra or overriding price rows")
    add_accelerator_options(g, overrides=overrides)


def _add_display_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("display")
    g.add_argument("--no-dashboard", action="store_true",
                   help="no live view or progress lines; only the final summary")
    g.add_argument("-q", "--quiet", action="store_true", help="print errors only")
    g.add_argument("--progress-interval", type=positive_float,
                   default=DEFAULTS.progress_interval,
                   metavar="S", help="off a terminal: seconds between plain progress lines")


# -- the commands ------------------------------------------------------------------------------
_FIELDS = frozenset(f.name for f in dataclasses.fields(RunConfig))


def config_from_args(args: argparse.Namespace) -> RunConfig:
    """The RunConfig of ``vidstream detect``: every option whose dest is a field, by name.

    >>> from vidstream.cli import build_parser
    >>> cfg = config_from_args(build_parser().parse_args(["detect", "a.mp4", "--batch-size",
    ...                                                   "4", "--no-video", "--counts", "c"]))
    >>> cfg.batch_size, cfg.video, cfg.counts, cfg.threshold == RunConfig().threshold
    (4, None, 'c', True)
    """
    if args.no_video and args.output:
        raise ConfigError("--no-video and -o/--output contradict each other")
    video = None if args.no_video else (
        args.output or f"{Path(args.input).stem or 'output'}-detected.mp4")
    values = {k: v for k, v in vars(args).items() if k in _FIELDS}
    return RunConfig(**values, video=video)


def cmd_detect(args: argparse.Namespace) -> int:
    inputs = gather_inputs(args)  # several inputs: one stream each
    cfg = with_inputs(config_from_args(args), inputs,
                              default_video=not (args.output or args.no_video))
    return execute(cfg, _display_mode(args), interval=args.progress_interval,
                   flags=args.flags)


def cmd_run(args: argparse.Namespace) -> int:
    overrides = {"input": args.input, "video": args.output, "max_frames": args.max_frames,
                 **{k: getattr(args, k) for k in _FILE_FIRST}}
    flags = {**args.flags, **{k: "--" + k.replace("_", "-") for k in _FILE_FIRST
                              if getattr(args, k) is not None}}
    args.flags = flags  # main() names flags from here for an error raised out of execute()
    overrides.update(inputs=inputs_from_file(args.inputs_file)
                     if args.inputs_file else None,
                     metrics_port=args.metrics_port, metrics_host=args.metrics_host)
    overrides.update({k: getattr(args, k) for k in (*COUNTING_FIELDS, *CLUSTER_FIELDS)})
    cfg = load_pipeline_file(args.file, overrides).replace(overwrite=args.overwrite)
    return execute(cfg, _display_mode(args), interval=args.progress_interval, flags=flags)


def _display_mode(args: argparse.Namespace) -> str:
    if getattr(args, "quiet", False):
        return "quiet"
    if getattr(args, "no_dashboard", False):
        return "off"
    return "auto"


def execute(cfg: RunConfig, display: str = "auto", console: Console | None = None,
            interval: float = DEFAULTS.progress_interval,
            flags: dict[str, str] | None = None) -> int:
    """Build, run and report one pipeline; returns the exit code.

    ``flags`` maps RunConfig fields to how the command spells them, for error messages.
    """
    # PyAV and OpenCV load only for a command that runs
    from ..sinks import OutputFile, check_outputs
    from ..sources.uri import mask_record

    console = console or Console(stderr=True, highlight=False)
    quiet = display == "quiet"
    if cfg.cluster:  # every input a task on Ray: vidstream.cli.cluster
        return execute_on_cluster(cfg, console, quiet, interval, flags,
                                          lambda outs, ins: check_outputs(outs, ins,
                                                                          cfg.overwrite),
                                          display=display)
    if len(cfg.inputs) > 1:  # several streams: vidstream.cli.streams
        return execute_streams(cfg, display, console, interval, flags)
    validate(cfg, keys=flags)
    named = {name: getattr(cfg, name) for name in _OUTPUT_FIELDS if getattr(cfg, name)}
    outputs = list(named.values())
    # by identity, not by spelling: a link to the input is the input
    check_outputs(named, [cfg.input], cfg.overwrite)
    # The summary is locked for the run (without -y) and written whole at the end.
    summary_out = OutputFile(cfg.summary, overwrite=cfg.overwrite) if cfg.summary else None
    try:
        if summary_out is not None:
            summary_out.begin()
        pipeline, summary, error = run_pipeline(cfg, console, display, interval, _title(cfg))
        summary_error: OutputError | None = None
        if summary_out is not None:
            try:
                # no credentials in the file, whatever an error message says
                record = mask_record(summary.to_dict())
                summary_out.write_text(json.dumps(record, indent=2) + "\n")
            except OutputError as e:
                summary_error = e
    finally:
        if summary_out is not None:
            summary_out.release()
    files = _output_files(summary.details, cfg, summary_error)
    if not quiet:
        console.print(summary_table(summary))
        written = [o for o in outputs if files.get(o, {}).get("finalized")]
        if written:
            console.print(f"wrote {', '.join(written)}")
    # Say plainly which outputs are not whole; never claim frames that do not read back.
    unusable = [f"{path}: {_file_state(f)}" for path, f in files.items()
                if not f.get("finalized") and f.get("error")]
    source = pipeline.source
    if error is not None and not (summary.interrupted and isinstance(error, Cancelled)):
        print_error(error, flags)
        video = files.get(cfg.video or "", {})
        if video.get("finalized") and video.get("frames"):
            console.print(f"[yellow]vidstream: {video['frames']} frames processed before the "
                          f"error were written to {cfg.video}[/yellow]", soft_wrap=True)
        _warn_unusable(console, unusable)
        return EXIT_ERROR
    if summary_error is not None or unusable:
        if summary_error is not None:
            print_error(summary_error, flags)
        _warn_unusable(console, unusable)
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


_OUTPUT_FIELDS = ("video", "detections", "summary", "counts")
# what each output sink says about its file in the summary's details
_FILE_KEYS = {"video": "video_file", "detections": "detections_file", "counts": "counts_file"}


def _output_files(details: dict[str, Any], cfg: RunConfig,
                  summary_error: OutputError | None) -> dict[str, dict[str, Any]]:
    """Each output's state by path: ``finalized``, ``frames``, ``error``."""
    files: dict[str, dict[str, Any]] = {}
    for name, key in _FILE_KEYS.items():
        path = getattr(cfg, name)
        if path:
            # a sink that never opened says nothing: its file was not made
            files[path] = dict(details.get(key) or {"finalized": False, "error": None})
    if cfg.summary:
        files[cfg.summary] = {"finalized": summary_error is None,
                              "error": summary_error.message if summary_error else None}
    return files


def _file_state(f: dict[str, Any]) -> str:
    if Path(f.get("path") or "").exists() and f.get("frames"):
        return f"incomplete ({f['error']}): it holds the first {f['frames']} frames"
    return f"not written ({f['error']})"


def _warn_unusable(console: Console, lines: list[str]) -> None:
    for line in lines:
        console.print(f"[yellow]vidstream: {line}[/yellow]", soft_wrap=True)


def _title(cfg: RunConfig) -> str:
    from ..sources import mask_credentials

    out = cfg.video or cfg.detections or cfg.summary or cfg.counts
    return f"vidstream  {mask_credentials(cfg.input)} -> {out}"


