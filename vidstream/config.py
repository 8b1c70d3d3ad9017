"""A run's settings as one value, from the API, a pipeline file or the command line, and the
pipeline they build.

Every default is :data:`vidstream.settings.DEFAULTS`'s: a key a file leaves out, like a flag
left off, keeps it.

Pipeline files are TOML, read with the standard library and validated here: they are data,
never evaluated or imported. Every error names the file, the key and what was expected::

    [input]
    uri = "traffic.mp4"

    [detector]
    model = "centernet"
    threshold = 0.4
    classes = ["car", "bus", "truck"]

    [output]
    video = "{stem}-detected.mp4"     # {stem}: the input's name, here "traffic"
    detections = "{stem}.jsonl"
    summary = "{stem}-summary.json"
"""

from __future__ import annotations

import dataclasses
import string
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import ConfigError
from .settings import BACKENDS, DEFAULTS, DEVICES


@dataclass
class RunConfig:
    """Everything a run needs to build its pipeline: inputs, outputs, model, limits and price.

    >>> cfg = RunConfig("clip.mp4", video="out.mp4", batch_size=4)
    >>> cfg.threshold == DEFAULTS.threshold, cfg.batch_size
    (True, 4)
    """

    input: str = ""
    video: str | None = None
    detections: str | None = None
    summary: str | None = None
    counts: str | None = None
    model: str = DEFAULTS.model
    threshold: float = DEFAULTS.threshold
    batch_size: int = DEFAULTS.batch_size
    classes: list[str] | None = None
    device: str = DEFAULTS.device
    backend: str = DEFAULTS.backend
    tf_threads: int | None = None
    codec: str = DEFAULTS.codec
    preset: str = DEFAULTS.preset
    crf: int | None = None
    fragmented: bool | None = None  # None: fragmented for live sources
    audio: bool = True
    annotate: bool = True
    queue_size: int = DEFAULTS.queue_size
    leaky: bool | None = None  # None: leaky for live sources
    max_frames: int | None = None
    max_pixels: int = DEFAULTS.max_pixels
    max_decode_errors: int = DEFAULTS.max_decode_errors
    decoder_threads: int = DEFAULTS.decoder_threads
    reconnect: int = DEFAULTS.reconnect
    reconnect_delay: float = DEFAULTS.reconnect_delay
    stall_timeout: float = DEFAULTS.stall_timeout
    realtime: bool = False
    instance: str | None = None
    price_per_hour: float | None = None
    catalog: str | None = None
    overwrite: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    def replace(self, **changes: Any) -> RunConfig:
        return dataclasses.replace(self, **changes)


def _one_of(choices: tuple[str, ...]) -> str:
    return ", ".join(choices[:-1]) + f" or {choices[-1]}"


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
        "device": ("device", (str,), _one_of(DEVICES)),
        "backend": ("backend", (str,), _one_of(BACKENDS)),
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


# [pipeline] holds descriptive metadata only
_PIPELINE_KEYS = {"name": "a short name", "description": "a sentence saying what it does"}

#: The file key (``section.key``) of each RunConfig field, for error messages.
FILE_KEYS = {name: f"{section}.{key}" for section, keys in _SCHEMA.items()
             for key, (name, _, _) in keys.items()}

_OUTPUTS = ("video", "detections", "summary", "counts")
PLACEHOLDERS = {"stem": "the input's name without directory and extension"}


def load_pipeline_file(path: str | Path, overrides: dict[str, Any] | None = None) -> RunConfig:
    """Parse and validate a pipeline TOML file; ``overrides`` (RunConfig fields) win over it.

    Relative paths in the file, like those on the command line, are relative to the current
    directory, so one file serves any input. Output paths may use ``{stem}``, the input's
    name without its extension: ``video = "{stem}-detected.mp4"``.

    >>> cfg = load_pipeline_file("pipelines/detect-file.toml", {"input": "clips/cam1.mp4"})
    >>> cfg.video, cfg.detections
    ('cam1-detected.mp4', 'cam1.jsonl')
    """
    p = Path(path)
    try:
        data = tomllib.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{p}: no such pipeline file") from None
    except IsADirectoryError:
        raise ConfigError(f"{p}: is a directory, not a pipeline file") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{p}: not a text file (expected TOML)") from None
    except OSError as e:
        raise ConfigError(f"{p}: cannot read: {e.strerror or e}") from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{p}: invalid TOML: {e}") from None
    cfg = RunConfig()
    changes: dict[str, Any] = {}
    for section, body in data.items():
        if section == "pipeline":
            if not isinstance(body, dict):
                raise ConfigError(f"{p}: [pipeline] must be a table of keys")
            for key, value in body.items():
                if key not in _PIPELINE_KEYS:
                    raise ConfigError(f"{p}: unknown key pipeline.{key}; expected one of: "
                                      f"{', '.join(_PIPELINE_KEYS)}")
                if not isinstance(value, str):
                    raise ConfigError(f"{p}: pipeline.{key} = {value!r}: expected "
                                      f"{_PIPELINE_KEYS[key]} (a string)")
            changes["extra"] = dict(body)
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
            if name in _OUTPUTS:
                _check_placeholders(value, f"{p}: {section}.{key} = {value!r}")
            changes[name] = value
    changes.update({k: v for k, v in (overrides or {}).items() if v is not None})
    cfg = cfg.replace(**changes)
    if not cfg.input:
        raise ConfigError(f"{p}: no input: expected input.uri in the file", param="input")
    validate(cfg, where=str(p), keys=FILE_KEYS)
    return expand_paths(cfg)


def _check_placeholders(value: str, where: str) -> None:
    try:
        names = {f for _, f, _, _ in string.Formatter().parse(value) if f is not None}
    except ValueError as e:
        raise ConfigError(f"{where}: expected a file path: {e} (write {{{{ and }}}} for "
                          "literal braces)") from None
    unknown = sorted(names - set(PLACEHOLDERS))
    if unknown:
        raise ConfigError(
            f"{where}: unknown placeholder {{{unknown[0]}}}; expected a file path, which may use "
            + ", ".join(f"{{{k}}} ({v})" for k, v in PLACEHOLDERS.items())
        )


def input_stem(uri: str) -> str:
    """``clips/cam1.mp4`` -> ``cam1``; ``rtsp://user:pw@host/live`` -> ``live``.

    The stem is one plain file name, never a way out of the output's directory: no leading
    dots (``...mp4`` would give ``..``), no separators or control characters.

    >>> input_stem("...mp4"), input_stem("clips/..mp4"), input_stem("a:b?.mp4")
    ('output', 'output', 'a_b')
    """
    tail = str(uri).rstrip("/").split("?", 1)[0].rsplit("/", 1)[-1]
    stem = "".join("_" if c in _UNSAFE or not c.isprintable() else c for c in Path(tail).stem)
    return stem.lstrip(".").strip() or "output"


_UNSAFE = frozenset('/\\:*?"<>|')


def expand_paths(cfg: RunConfig) -> RunConfig:
    """Fill ``{stem}`` in the output paths from the input's name."""
    stem = input_stem(cfg.input)
    changes = {}
    for name in _OUTPUTS:
        value = getattr(cfg, name)
        if value:
            _check_placeholders(value, f"{name} {value!r}")
            changes[name] = value.format(stem=stem)
    return cfg.replace(**changes)


def validate(cfg: RunConfig, where: str = "options",
             keys: Mapping[str, str] | None = None) -> None:
    """Range checks shared by the API, pipeline files and the command line.

    Errors name each field as ``keys`` spells it (``input.queue`` in a file, ``--queue-size``
    on the command line); by default as the RunConfig field (``queue_size``).

    >>> validate(RunConfig("a.mp4", video="o.mp4", queue_size=0))
    Traceback (most recent call last):
    ...
    vidstream.errors.ConfigError: options: queue_size = 0: expected an integer >= 1
    """

    def key(name: str) -> str:
        return (keys or {}).get(name, name)

    def bad(name: str, expected: str) -> ConfigError:
        return ConfigError(f"{where}: {key(name)} = {getattr(cfg, name)!r}: expected {expected}")

    if not cfg.input:
        raise ConfigError(f"{where}: no input: expected {key('input')} (a file or URL)")
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
    if cfg.decoder_threads < 0:
        raise bad("decoder_threads", "an integer >= 0")
    if cfg.tf_threads is not None and cfg.tf_threads < 1:
        raise bad("tf_threads", "an integer >= 1")
    if cfg.reconnect < 0:
        raise bad("reconnect", "an integer >= 0")
    if cfg.reconnect_delay <= 0:
        raise bad("reconnect_delay", "a number > 0")
    if cfg.stall_timeout <= 0:
        raise bad("stall_timeout", "a number > 0")
    if cfg.device not in DEVICES:
        raise bad("device", _one_of(DEVICES))
    if cfg.backend not in BACKENDS:
        raise bad("backend", _one_of(BACKENDS))
    if cfg.crf is not None and not 0 <= cfg.crf <= 51:
        raise bad("crf", "an integer 0-51")
    if cfg.price_per_hour is not None and cfg.price_per_hour < 0:
        raise bad("price_per_hour", "a number >= 0")
    if cfg.classes is not None:
        from .detector import class_ids_for

        try:
            class_ids_for(cfg.classes)
        except ConfigError as e:  # its message, not str(e): we name the key ourselves
            raise ConfigError(f"{where}: {key('classes')}: {e.message}") from None
    if not any(getattr(cfg, name) for name in _OUTPUTS):
        raise ConfigError(
            f"{where}: nothing to write: expected at least one of "
            + ", ".join(key(name) for name in _OUTPUTS)
        )


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
        open_timeout=cfg.stall_timeout,
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
            overwrite=cfg.overwrite,
        ))
    if cfg.detections:
        sinks.append(DetectionsWriter(cfg.detections, overwrite=cfg.overwrite))
    if cfg.counts:
        sinks.append(ClassCounter(cfg.counts, overwrite=cfg.overwrite))
    return Pipeline(source, [detector], sinks, capacity=cfg.queue_size, leaky=cfg.leaky)
