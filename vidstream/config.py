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
import math
import os
import string
import tomllib
from collections.abc import Mapping, Sequence
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
    # a remote model's server, priced as this client's share of it (vidstream.remote_cost)
    accelerator_instance: str | None = None
    accelerator_share: str = DEFAULTS.accelerator_share
    overwrite: bool = False
    extra: dict[str, Any] = field(default_factory=dict)
    # Several inputs, one stream each (``input`` is then the first); output paths are then
    # templates ({stem}, {index}), see stream_configs(). input_options: per input, the fields
    # its [[input]] table sets (e.g. {"reconnect": 5}).
    inputs: list[str] = field(default_factory=list)
    input_options: list[dict[str, Any]] = field(default_factory=list)
    batch_wait_ms: float = DEFAULTS.batch_wait_ms
    metrics_port: int | None = None
    metrics_host: str = DEFAULTS.metrics_host
    # tracking and counting (vidstream.tracking); lines and zones imply tracking
    track: bool = False
    lines: list[str] | None = None  # "NAME:x1,y1,x2,y2"
    zones: list[str] | None = None  # "NAME:x,y;x,y;x,y"
    track_activation: float | None = DEFAULTS.track_activation
    track_buffer_s: float = DEFAULTS.track_buffer_s
    track_min_iou: float = DEFAULTS.track_min_iou
    track_min_frames: int = DEFAULTS.track_min_frames
    count_margin: float = DEFAULTS.count_margin
    count_anchor: str = DEFAULTS.count_anchor
    # clusters (vidstream.cluster): None runs here; "ray" a local Ray cluster; else its address
    cluster: str | None = None
    cpus_per_task: float = DEFAULTS.cpus_per_task
    gpus_per_task: float = DEFAULTS.gpus_per_task
    retries: int = DEFAULTS.retries
    streams_per_task: int = DEFAULTS.streams_per_task

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
        "reconnect_delay": ("reconnect_delay", (int, float), "seconds, a finite number > 0"),
        "stall_timeout": ("stall_timeout", (int, float), "seconds, a finite number > 0"),
        "realtime": ("realtime", (bool,), "true or false"),
        "queue": ("queue_size", (int,), "an integer >= 1"),
        "leaky": ("leaky", (bool,), "true or false"),
    },
    "detector": {
        "model": ("model", (str,), "a model name or a path"),
        "threshold": ("threshold", (int, float), "a number between 0 and 1"),
        "batch_size": ("batch_size", (int,), "an integer >= 1"),
        "batch_wait_ms": ("batch_wait_ms", (int, float), "milliseconds, a number >= 0"),
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
        "accelerator_instance": ("accelerator_instance", (str,),
                                 "the shared server's instance name from the catalog"),
        "accelerator_share": ("accelerator_share", (str, int, float),
                              "auto or a number in (0, 1]"),
    },
    "track": {
        "enabled": ("track", (bool,), "true or false"),
        "activation": ("track_activation", (int, float), "a score between 0 and 1"),
        "buffer_s": ("track_buffer_s", (int, float), "seconds, a finite number >= 0"),
        "min_iou": ("track_min_iou", (int, float), "a number between 0 and 1"),
        "min_frames": ("track_min_frames", (int,), "an integer >= 1"),
        "margin": ("count_margin", (int, float), "a number >= 0 (box sizes past a line)"),
        "anchor": ("count_anchor", (str,), "center or bottom"),
    },
    "cluster": {
        "address": ("cluster", (str,), "ray (a local cluster) or a Ray address"),
        "cpus_per_task": ("cpus_per_task", (int, float), "a number > 0"),
        "gpus_per_task": ("gpus_per_task", (int, float), "a number >= 0"),
        "retries": ("retries", (int,), "an integer >= 0"),
        "streams_per_task": ("streams_per_task", (int,), "an integer >= 1"),
    },
}

# [[line]] and [[zone]] tables: counting lines and zones (see vidstream.tracking)
_COUNTING_TABLES = {"line": ("lines", "x1, y1, x2, y2"),
                    "zone": ("zones", "[[x, y], [x, y], [x, y], ...]")}


# [pipeline] holds descriptive metadata only
_PIPELINE_KEYS = {"name": "a short name", "description": "a sentence saying what it does"}

#: The file key (``section.key``) of each RunConfig field, for error messages.
FILE_KEYS = {name: f"{section}.{key}" for section, keys in _SCHEMA.items()
             for key, (name, _, _) in keys.items()}

_OUTPUTS = ("video", "detections", "summary", "counts")
PLACEHOLDERS = {"stem": "the input's name without directory and extension",
                "index": "the input's position, 0 for the first (with several inputs)"}


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
        if section == "input" and isinstance(body, list):  # [[input]] tables: several inputs
            changes.update(_input_tables(p, body))
            continue
        if section in _COUNTING_TABLES:  # [[line]] / [[zone]] tables
            name, specs = _counting_tables(p, section, body)
            changes[name] = specs
            continue
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
    changes.update(_input_overrides({k: v for k, v in (overrides or {}).items() if v is not None}))
    cfg = cfg.replace(**changes)
    if not cfg.input:
        raise ConfigError(f"{p}: no input: expected input.uri in the file", param="input")
    validate(cfg, where=str(p), keys=FILE_KEYS)
    return expand_paths(cfg)


def _counting_tables(p: Path, section: str, body: Any) -> tuple[str, list[str]]:
    """``[[line]] name = "door", points = [x1, y1, x2, y2]`` (or ``[[zone]]`` with a list of
    ``[x, y]`` points) as the command line's ``NAME:...`` specs."""
    field, points_words = _COUNTING_TABLES[section]
    if not isinstance(body, list) or not all(isinstance(t, dict) for t in body):
        raise ConfigError(f"{p}: {section} must be [[{section}]] tables of name and points")
    specs = []
    for i, table in enumerate(body):
        where = f"{p}: [[{section}]] #{i + 1}"
        unknown = sorted(set(table) - {"name", "points"})
        if unknown:
            raise ConfigError(f"{where}: unknown key {unknown[0]!r}; expected name, points")
        name, points = table.get("name"), table.get("points")
        if not isinstance(name, str) or not name:
            raise ConfigError(f"{where}: name = {name!r}: expected a name (a string)")
        if section == "line":
            ok = isinstance(points, list) and len(points) == 4 and all(map(_finite, points))
            text = ",".join(f"{v:g}" for v in points) if ok else ""
        else:
            ok = isinstance(points, list) and len(points) >= 3 and all(
                isinstance(q, list) and len(q) == 2 and all(map(_finite, q)) for q in points)
            text = ";".join(f"{x:g},{y:g}" for x, y in points) if ok else ""
        if not ok:
            raise ConfigError(f"{where}: points = {points!r}: expected {points_words} "
                              "(pixels, or fractions of the frame when all are in [0, 1])")
        specs.append(f"{name}:{text}")
    return field, specs


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
    """Fill ``{stem}`` in the output paths from the input's name (with several inputs the
    paths stay templates: :func:`stream_configs` fills them per stream)."""
    if len(cfg.inputs) > 1:
        return cfg
    stem = input_stem(cfg.input)
    changes = {}
    for name in _OUTPUTS:
        value = getattr(cfg, name)
        if value:
            _check_placeholders(value, f"{name} {value!r}")
            changes[name] = value.format(stem=stem, index=0)
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
    # "not (x >= low)" rather than "x < low": nan compares false both ways, and a nan or inf
    # timeout never fires (a silent source hung for ever)
    if not (_finite(cfg.threshold) and 0 <= cfg.threshold <= 1):
        raise bad("threshold", "a number between 0 and 1")
    if not cfg.batch_size >= 1:
        raise bad("batch_size", "an integer >= 1")
    if cfg.queue_size < 1:
        raise bad("queue_size", "an integer >= 1")
    if cfg.queue_size > DEFAULTS.max_queue_size:  # each queue holds whole frames
        raise bad("queue_size", f"at most {DEFAULTS.max_queue_size} (frames per queue; a "
                  "1080p frame is 6 MB)")
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
    if not (_finite(cfg.reconnect_delay) and cfg.reconnect_delay > 0):
        raise bad("reconnect_delay", "a finite number of seconds > 0")
    if not (_finite(cfg.stall_timeout) and cfg.stall_timeout > 0):
        raise bad("stall_timeout", "a finite number of seconds > 0")
    if cfg.device not in DEVICES:
        raise bad("device", _one_of(DEVICES))
    if cfg.backend not in BACKENDS:
        raise bad("backend", _one_of(BACKENDS))
    if cfg.crf is not None and not 0 <= cfg.crf <= 51:
        raise bad("crf", "an integer 0-51")
    if cfg.price_per_hour is not None and not (_finite(cfg.price_per_hour)
                                               and cfg.price_per_hour >= 0):
        raise bad("price_per_hour", "a finite number >= 0")
    share = str(cfg.accelerator_share).strip().lower()
    if share != "auto" and not (_finite(_float(share)) and 0 < float(share) <= 1):
        raise bad("accelerator_share", "auto or a number in (0, 1]")
    from .backends.remote import is_remote

    if cfg.accelerator_instance and not is_remote(cfg.model):
        raise ConfigError(f"{where}: {key('accelerator_instance')} prices the server of a "
                          f"remote model, but {key('model')} = {cfg.model!r} runs here; "
                          f"price this machine with {key('instance')}")
    if cfg.classes is not None:
        from .detector import class_ids_for

        try:
            class_ids_for(cfg.classes)
        except ConfigError as e:  # its message, not str(e): we name the key ourselves
            raise ConfigError(f"{where}: {key('classes')}: {e.message}") from None
    _validate_tracking(cfg, where, key, bad)
    if not (_finite(cfg.cpus_per_task) and cfg.cpus_per_task > 0):
        raise bad("cpus_per_task", "a finite number > 0")
    if not (_finite(cfg.gpus_per_task) and cfg.gpus_per_task >= 0):
        raise bad("gpus_per_task", "a finite number >= 0")
    if cfg.retries < 0:
        raise bad("retries", "an integer >= 0")
    if cfg.streams_per_task < 1:
        raise bad("streams_per_task", "an integer >= 1")
    if not any(getattr(cfg, name) for name in _OUTPUTS):
        raise ConfigError(
            f"{where}: nothing to write: expected at least one of "
            + ", ".join(key(name) for name in _OUTPUTS)
        )
    _validate_streams(cfg, bad)


def _validate_tracking(cfg: RunConfig, where: str, key: Any, bad: Any) -> None:
    if cfg.track_activation is not None and not (_finite(cfg.track_activation)
                                                 and 0 <= cfg.track_activation <= 1):
        raise bad("track_activation", "a score between 0 and 1")
    if not (_finite(cfg.track_buffer_s) and cfg.track_buffer_s >= 0):
        raise bad("track_buffer_s", "a finite number of seconds >= 0")
    if not (_finite(cfg.track_min_iou) and 0 <= cfg.track_min_iou <= 1):
        raise bad("track_min_iou", "a number between 0 and 1")
    if not cfg.track_min_frames >= 1:
        raise bad("track_min_frames", "an integer >= 1")
    if not (_finite(cfg.count_margin) and cfg.count_margin >= 0):
        raise bad("count_margin", "a finite number >= 0")
    if cfg.count_anchor not in ("center", "bottom"):
        raise bad("count_anchor", "center or bottom")
    if cfg.lines or cfg.zones:
        from .tracking import parse_line, parse_zone
        from .tracking.counting import check_names

        try:  # a spec that cannot be parsed fails now, before any work
            check_names([parse_line(x) for x in cfg.lines or []],
                        [parse_zone(z) for z in cfg.zones or []])
        except ConfigError as e:
            name = "lines" if e.param == "lines" else "zones"
            raise ConfigError(f"{where}: {key(name)}: {e.message}") from None


def _float(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def _finite(value: Any) -> bool:
    """A real, finite number (bools are not numbers here)."""
    return (isinstance(value, int | float) and not isinstance(value, bool)
            and math.isfinite(value))


def build_pipeline(cfg: RunConfig, *, progress: Any = None,
                   streams: Sequence[RunConfig] | None = None) -> Any:
    """The :class:`~vidstream.pipeline.Pipeline` ``cfg`` describes (nothing opened yet): a
    stream (source and sinks) per input, and the shared stages (the detector, and the tracker
    with ``track``), fed batches formed across the streams.

    ``streams``: each stream's own single-input config, when they are given already filled in
    rather than as ``cfg``'s inputs and templates (a camera group on a cluster, whose outputs
    were named on the driver); the shared stages still follow ``cfg``.
    """
    from .pipeline import Pipeline

    if streams is None:
        streams = stream_configs(cfg) if len(cfg.inputs) > 1 else [cfg]
    return Pipeline([_stream_source(s) for s in streams], _shared_stages(cfg, progress),
                    lambda i: _stream_sinks(streams[i]), capacity=cfg.queue_size,
                    leaky=cfg.leaky)


def tracking(cfg: RunConfig) -> bool:
    """Whether the run tracks objects (asked for, or implied by counting lines and zones)."""
    return cfg.track or bool(cfg.lines) or bool(cfg.zones)


def _shared_stages(cfg: RunConfig, progress: Any) -> list[Any]:
    from .detector import Detector

    detector = Detector(
        cfg.model,
        threshold=cfg.threshold,
        batch_size=cfg.batch_size,
        classes=cfg.classes,
        device=cfg.device,
        backend=cfg.backend,
        threads=cfg.tf_threads,
        progress=progress,
        linger=batch_linger(cfg),
        track_floor=DEFAULTS.track_floor if tracking(cfg) else None,
    )
    if not tracking(cfg):
        return [detector]
    from .tracking import Tracker, TrackerSettings

    settings = TrackerSettings(activation_threshold=cfg.track_activation,
                               lost_buffer_s=cfg.track_buffer_s, min_iou=cfg.track_min_iou,
                               min_frames=cfg.track_min_frames)
    return [detector, Tracker(settings, lines=cfg.lines or [], zones=cfg.zones or [],
                              margin=cfg.count_margin, anchor=cfg.count_anchor)]


# -- several inputs ----------------------------------------------------------------------------
# [[input]] keys that hold for the whole run (one queue size, one drop policy per pipeline)
_SHARED_INPUT_KEYS = ("queue", "leaky")


def _input_tables(p: Path, tables: list[Any]) -> dict[str, Any]:
    """The RunConfig changes of a file's ``[[input]]`` tables: one stream each.

    A table takes the keys of ``[input]``; each applies to its own stream only, except
    ``queue`` and ``leaky``, which hold for the whole run (so every table that sets one must
    agree).
    """
    schema = _SCHEMA["input"]
    if not tables or not all(isinstance(t, dict) for t in tables):
        raise ConfigError(f"{p}: input must be one [input] table or [[input]] tables, one per "
                          "input, each with a uri")
    uris: list[str] = []
    options: list[dict[str, Any]] = []
    shared: dict[str, Any] = {}
    for n, table in enumerate(tables, 1):
        opts: dict[str, Any] = {}
        for key, value in table.items():
            if key not in schema:
                raise ConfigError(f"{p}: unknown key input.{key} (in [[input]] number {n}); "
                                  f"expected one of: {', '.join(schema)}")
            name, types, words = schema[key]
            if not isinstance(value, types) or (isinstance(value, bool) and bool not in types):
                raise ConfigError(f"{p}: input.{key} = {value!r} (in [[input]] number {n}): "
                                  f"expected {words}")
            if key in _SHARED_INPUT_KEYS:
                if shared.get(name, value) != value:
                    raise ConfigError(f"{p}: input.{key} differs between [[input]] tables: it "
                                      "holds for the whole run; set it once (or equal)")
                shared[name] = value
            elif name != "input":
                opts[name] = value
        if "uri" not in table:
            raise ConfigError(f"{p}: [[input]] number {n} has no uri", param="input")
        # range checks, as for [input], naming the file's keys
        validate(RunConfig(table["uri"], video="-", **opts, **shared), where=str(p),
                 keys=FILE_KEYS)
        uris.append(table["uri"])
        options.append(opts)
    if len(uris) == 1:
        return {"input": uris[0], **options[0], **shared}
    return {"input": uris[0], "inputs": uris, "input_options": options, **shared}


def _input_overrides(overrides: dict[str, Any]) -> dict[str, Any]:
    """Overrides of a file's inputs: one ``input`` replaces every ``[[input]]``; ``inputs``
    (a list) replaces them with its own, without the tables' per-input keys."""
    out = dict(overrides)
    if "inputs" in out:
        uris = list(out["inputs"])
        if not uris:
            raise ConfigError("no inputs: the list of inputs is empty")
        out.update(input=uris[0], inputs=uris if len(uris) > 1 else [], input_options=[])
    elif "input" in out:
        out.update(inputs=[], input_options=[])
    return out


def _validate_streams(cfg: RunConfig, bad: Any) -> None:
    """validate()'s checks of the settings for several streams, batching and metrics."""
    if not (math.isfinite(cfg.batch_wait_ms) and cfg.batch_wait_ms >= 0):
        raise bad("batch_wait_ms", "milliseconds, a number >= 0")
    if cfg.metrics_port is not None and not 0 <= cfg.metrics_port <= 65535:
        raise bad("metrics_port", "a port number 0-65535 (0: any free port)")
    if cfg.input_options and len(cfg.input_options) != len(cfg.inputs):
        raise ConfigError(f"input_options has {len(cfg.input_options)} entries for "
                          f"{len(cfg.inputs)} inputs: expected one per input")


def batch_linger(cfg: RunConfig) -> float | None:
    """The detector's ``linger`` (seconds): ``batch_wait_ms`` once batches hold several frames.

    >>> batch_linger(RunConfig("a.mp4", batch_size=4, batch_wait_ms=10)), batch_linger(RunConfig())
    (0.01, None)
    """
    return cfg.batch_wait_ms / 1000 if cfg.batch_size > 1 else None


def _is_template(value: str) -> bool:
    return any(f for _, f, _, _ in string.Formatter().parse(value))


def stream_configs(cfg: RunConfig, keys: Mapping[str, str] | None = None) -> list[RunConfig]:
    """One single-input RunConfig per stream, output templates filled in.

    With several inputs each output path (but ``summary``) must be a template, filled with
    each input's ``{stem}`` and ``{index}``; two inputs with the same name are an error that
    suggests ``{index}``. A ``summary`` without a placeholder is one file for the whole run
    (it is then left out of the streams' configs); with one, each stream writes its own too.

    >>> cfgs = stream_configs(RunConfig("a.mp4", inputs=["a.mp4", "cams/b.ts"],
    ...                                 video="out/{stem}.mp4", summary="run.json"))
    >>> [(c.input, c.video, c.summary) for c in cfgs]
    [('a.mp4', 'out/a.mp4', None), ('cams/b.ts', 'out/b.mp4', None)]
    """
    from .sources import mask_credentials

    uris = cfg.inputs or [cfg.input]
    if len(uris) == 1:
        return [expand_paths(cfg.replace(input=uris[0], inputs=[], input_options=[]))]

    def key(name: str) -> str:
        return (keys or {}).get(name, name)

    templates: dict[str, str] = {}
    for name in _OUTPUTS:
        value = getattr(cfg, name)
        if not value:
            continue
        _check_placeholders(value, f"{key(name)} {value!r}")
        if _is_template(value):
            templates[name] = value
        elif name != "summary":
            stem, ext = os.path.splitext(value)
            raise ConfigError(
                f"{key(name)} {value!r}: with several inputs, each writes its own file: "
                f"use {{stem}} (the input's name) or {{index}} in the path, e.g. "
                f"'{stem}-{{stem}}{ext}'")
    stems = [input_stem(u) for u in uris]
    seen: dict[str, int] = {}
    out = []
    for i, uri in enumerate(uris):
        paths = {name: value.format(stem=stems[i], index=i) for name, value in templates.items()}
        for name, path in paths.items():
            other = seen.setdefault(os.path.abspath(path), i)
            if other != i:
                suggestion = templates[name].replace("{stem}", "{stem}-{index}") \
                    if "{stem}" in templates[name] else templates[name]
                raise ConfigError(
                    f"{key(name)} {templates[name]!r}: inputs {mask_credentials(uris[other])} "
                    f"and {mask_credentials(uri)} would both write {path} (their names clash): "
                    f"add {{index}} to the path, e.g. {suggestion!r}")
        options = cfg.input_options[i] if cfg.input_options else {}
        out.append(cfg.replace(input=uri, inputs=[], input_options=[], **options,
                               **{name: paths.get(name) for name in _OUTPUTS}))
    return out


def stream_stems(cfg: RunConfig) -> list[str]:
    """Each input's ``{stem}``, in order."""
    return [input_stem(u) for u in (cfg.inputs or [cfg.input])]


def _stream_source(cfg: RunConfig) -> Any:
    from .sources import VideoSource

    return VideoSource(
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


def _stream_sinks(cfg: RunConfig) -> list[Any]:
    from .sinks import ClassCounter, DetectionsWriter, VideoWriter
    from .sources import is_live

    sinks: list[Any] = []
    if cfg.video:
        annotator = None
        if cfg.lines or cfg.zones:  # the video shows the lines and zones, with their counts
            from .annotate import Annotator
            from .tracking import parse_line, parse_zone

            annotator = Annotator(lines=[parse_line(x) for x in cfg.lines or []],
                                  zones=[parse_zone(z) for z in cfg.zones or []])
        sinks.append(VideoWriter(
            cfg.video,
            codec=cfg.codec,
            preset=cfg.preset,
            crf=cfg.crf,
            fragmented=is_live(cfg.input) if cfg.fragmented is None else cfg.fragmented,
            annotate=cfg.annotate,
            audio=cfg.audio,
            annotator=annotator,
            overwrite=cfg.overwrite,
        ))
    if cfg.detections:
        sinks.append(DetectionsWriter(cfg.detections, overwrite=cfg.overwrite))
    if cfg.counts:
        sinks.append(ClassCounter(cfg.counts, overwrite=cfg.overwrite))
    return sinks
