"""A run's settings as one value, from the command line or a pipeline file, and the pipeline
they build.

Pipeline files are TOML, read with the standard library and validated here: they are data,
never evaluated or imported. Every error names the file, the key and what was expected::

    [input]
    uri = "traffic.mp4"

    [detector]
    model = "centernet"
    threshold = 0.4
    classes = ["car", "bus", "truck"]

    [output]
    video = "traffic-detected.mp4"
    detections = "traffic.jsonl"
    summary = "traffic-summary.json"
"""

from __future__ import annotations

import dataclasses
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import ConfigError
from .sources import DEFAULT_MAX_DECODE_ERRORS, DEFAULT_MAX_PIXELS


@dataclass
class RunConfig:
    """Everything ``vidstream detect`` / ``vidstream run`` needs to build and run a pipeline."""

    input: str = ""
    video: str | None = None
    detections: str | None = None
    summary: str | None = None
    counts: str | None = None
    model: str = "centernet"
    threshold: float = 0.4
    batch_size: int = 1
    classes: list[str] | None = None
    device: str = "auto"
    backend: str = "auto"
    tf_threads: int | None = None
    codec: str = "libx264"
    preset: str = "veryfast"
    crf: int | None = None
    fragmented: bool | None = None  # None: fragmented for live sources
    audio: bool = True
    annotate: bool = True
    queue_size: int = 8
    leaky: bool | None = None  # None: leaky for live sources
    max_frames: int | None = None
    max_pixels: int = DEFAULT_MAX_PIXELS
    max_decode_errors: int = DEFAULT_MAX_DECODE_ERRORS
    decoder_threads: int = 0
    reconnect: int = 0
    reconnect_delay: float = 1.0
    stall_timeout: float = 10.0
    realtime: bool = False
    instance: str | None = None
    price_per_hour: float | None = None
    catalog: str | None = None
    overwrite: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    def replace(self, **changes: Any) -> RunConfig:
        return dataclasses.replace(self, **changes)


# section -> key -> (RunConfig field, expected type(s), words for errors)
_SCHEMA: dict[str, dict[str, tuple[str, tuple[type, ...], str]]] = {
    "input": {
        "uri": ("input", (str,), "a file path, URL or /dev/videoN"),
        "max_frames": ("max_frames", (int,), "an integer >= 1"),
        "max_pixels": ("max_pixels", (int,), "an integer >= 1"),
        "max_decode_errors": ("max_decode_errors", (int,), "an integer >= 0"),
        "threads": ("decoder_threads", (int,), "an integer >= 0"),
        "reconnect": ("reconnect", (int,), "an integer >= 0"),
        "reconnect_delay": ("reconnect_delay", (int, float), "seconds, a number > 0"),
        "stall_timeout": ("stall_timeout", (int, float), "seconds, a number > 0"),
        "realtime": ("realtime", (bool,), "true or false"),
        "queue": ("queue_size", (int,), "an integer >= 1"),
        "leaky": ("leaky", (bool,), "true or false"),
    },
    "detector": {
        "model": ("model", (str,), "a model name or a path"),
        "threshold": ("threshold", (int, float), "a number between 0 and 1"),
        "batch_size": ("batch_size", (int,), "an integer >= 1"),
        "classes": ("classes", (list,), "a list of class names"),
        "device": ("device", (str,), "auto, cpu or gpu"),
        "backend": ("backend", (str,), "auto, tf or tflite"),
        "threads": ("tf_threads", (int,), "an integer >= 1"),
    },
    "output": {
        "video": ("video", (str,), "a file path"),
        "detections": ("detections", (str,), "a file path"),
        "summary": ("summary", (str,), "a file path"),
        "counts": ("counts", (str,), "a file path"),
        "codec": ("codec", (str,), "an FFmpeg encoder name"),
        "preset": ("preset", (str,), "an x264 preset, e.g. veryfast"),
        "crf": ("crf", (int,), "an integer 0-51"),
        "fragmented": ("fragmented", (bool,), "true or false"),
        "audio": ("audio", (bool,), "true or false"),
        "annotate": ("annotate", (bool,), "true or false"),
    },
    "cost": {
        "instance": ("instance", (str,), "an instance name from the catalog"),
        "price_per_hour": ("price_per_hour", (int, float), "a number >= 0"),
        "catalog": ("catalog", (str,), "a path to a catalog JSON file"),
    },
}


def load_pipeline_file(path: str | Path) -> RunConfig:
    """Parse and validate a pipeline TOML file; relative output paths stay relative to cwd."""
    p = Path(path)
    try:
        data = tomllib.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{p}: no such pipeline file") from None
    except OSError as e:
        raise ConfigError(f"{p}: cannot read: {e.strerror or e}") from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{p}: invalid TOML: {e}") from None
    cfg = RunConfig()
    changes: dict[str, Any] = {}
    for section, body in data.items():
        if section == "pipeline":  # descriptive metadata: name, description
            if not isinstance(body, dict):
                raise ConfigError(f"{p}: [pipeline] must be a table")
            changes["extra"] = {k: v for k, v in body.items()}
            continue
        schema = _SCHEMA.get(section)
        if schema is None:
            raise ConfigError(
                f"{p}: unknown section [{section}]; expected one of "
                f"[pipeline], {', '.join(f'[{s}]' for s in _SCHEMA)}"
            )
        if not isinstance(body, dict):
            raise ConfigError(f"{p}: [{section}] must be a table of keys")
        for key, value in body.items():
            if key not in schema:
                raise ConfigError(
                    f"{p}: unknown key {section}.{key}; expected one of: {', '.join(schema)}"
                )
            name, types, words = schema[key]
            ok = isinstance(value, types) and not (isinstance(value, bool) and bool not in types)
            if ok and name == "classes":
                ok = all(isinstance(v, str) for v in value)
            if not ok:
                raise ConfigError(f"{p}: {section}.{key} = {value!r}: expected {words}")
            changes[name] = value
    cfg = cfg.replace(**changes)
    validate(cfg, where=str(p))
    return cfg


def validate(cfg: RunConfig, where: str = "options") -> None:
    """Range checks shared by the command line and pipeline files."""

    def bad(key: str, expected: str) -> ConfigError:
        return ConfigError(f"{where}: {key} = {getattr(cfg, key)!r}: expected {expected}")

    if not cfg.input:
        raise ConfigError(f"{where}: no input given (input.uri or --input)")
    if not 0 <= cfg.threshold <= 1:
        raise bad("threshold", "a number between 0 and 1")
    if cfg.batch_size < 1:
        raise bad("batch_size", "an integer >= 1")
    if cfg.queue_size < 1:
        raise bad("queue_size", "an integer >= 1")
    if cfg.max_frames is not None and cfg.max_frames < 1:
        raise bad("max_frames", "an integer >= 1")
    if cfg.max_pixels < 1:
        raise bad("max_pixels", "an integer >= 1")
    if cfg.max_decode_errors < 0:
        raise bad("max_decode_errors", "an integer >= 0")
    if cfg.reconnect < 0:
        raise bad("reconnect", "an integer >= 0")
    if cfg.reconnect_delay <= 0:
        raise bad("reconnect_delay", "a number > 0")
    if cfg.stall_timeout <= 0:
        raise bad("stall_timeout", "a number > 0")
    if cfg.device not in ("auto", "cpu", "gpu"):
        raise bad("device", "auto, cpu or gpu")
    if cfg.backend not in ("auto", "tf", "tflite"):
        raise bad("backend", "auto, tf or tflite")
    if cfg.crf is not None and not 0 <= cfg.crf <= 51:
        raise bad("crf", "an integer 0-51")
    if cfg.price_per_hour is not None and cfg.price_per_hour < 0:
        raise bad("price_per_hour", "a number >= 0")
    if not (cfg.video or cfg.detections or cfg.summary or cfg.counts):
        raise ConfigError(f"{where}: nothing to write: give a video, detections, summary or "
                          "counts output")


def build_pipeline(cfg: RunConfig, *, progress: Any = None) -> Any:
    """The :class:`~vidstream.pipeline.Pipeline` ``cfg`` describes (nothing opened yet)."""
    from .detector import Detector
    from .pipeline import Pipeline
    from .sinks import ClassCounter, DetectionsWriter, VideoWriter
    from .sources import VideoSource, is_live

    live = is_live(cfg.input)
    source = VideoSource(
        cfg.input,
        max_pixels=cfg.max_pixels,
        max_decode_errors=cfg.max_decode_errors,
        max_frames=cfg.max_frames,
        threads=cfg.decoder_threads,
        stall_timeout=cfg.stall_timeout,
        reconnect=cfg.reconnect,
        reconnect_delay=cfg.reconnect_delay,
        realtime=cfg.realtime,
    )
    detector = Detector(
        cfg.model,
        threshold=cfg.threshold,
        batch_size=cfg.batch_size,
        classes=cfg.classes,
        device=cfg.device,
        backend=cfg.backend,
        threads=cfg.tf_threads,
        progress=progress,
    )
    sinks: list[Any] = []
    if cfg.video:
        sinks.append(VideoWriter(
            cfg.video,
            codec=cfg.codec,
            preset=cfg.preset,
            crf=cfg.crf,
            fragmented=live if cfg.fragmented is None else cfg.fragmented,
            annotate=cfg.annotate,
            audio=cfg.audio,
        ))
    if cfg.detections:
        sinks.append(DetectionsWriter(cfg.detections))
    if cfg.counts:
        sinks.append(ClassCounter(cfg.counts))
    return Pipeline(source, [detector], sinks, capacity=cfg.queue_size, leaky=cfg.leaky)
