"""The sweep runner: the real pipeline, once per configuration, each in a fresh process, priced.

Each configuration (model x device x TensorFlow threads x batch size) runs in its own Python
process (:mod:`vidstream.bench.child`): TensorFlow's thread pools can only be set before its
first op, and a fresh process is the honest way to measure each configuration's model load
time and peak memory. In it, the pipeline ``detect`` builds (decode -> detect -> annotated
video, or detections only) loads the model, is warmed up with one real batch, then runs over
the first ``frames`` frames; its :class:`~vidstream.summary.Summary` (the same code that
writes ``detect --summary``) gives fps, latency, stage shares and the cost::

    options = BenchOptions("traffic.mp4", frames=120)
    result = run_bench(options, sweep(["centernet"], ["cpu"], [None], [1, 2, 4]),
                       price=lookup("c5.4xlarge"))
    result.save("c5.json")   # compare machines with vidstream.bench.report

>>> [c.name for c in sweep(["centernet"], ["cpu"], [None], [1, 2])]
['centernet cpu batch 1', 'centernet cpu batch 2']
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import subprocess
import sys
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

from ..cost import Price
from ..errors import ConfigError, OutputError
from ..settings import DEFAULTS
from .report import Run

# The child is started by module name, not imported: it imports this module, not the reverse.
CHILD_MODULE = "vidstream.bench.child"

#: One message of the child-process protocol (see :mod:`vidstream.bench.child`).
Event = dict[str, Any]


@dataclass(frozen=True)
class BenchConfig:
    """One point of the sweep."""

    model: str = DEFAULTS.model
    # as detect: a GPU when TensorFlow sees one (each run records the device it used)
    device: str = DEFAULTS.device
    threads: int | None = None
    batch_size: int = DEFAULTS.batch_size

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
    preset: str = DEFAULTS.preset
    threshold: float = DEFAULTS.threshold
    backend: str = DEFAULTS.backend
    queue_size: int = DEFAULTS.queue_size


@dataclass(frozen=True)
class NotMeasured:
    """A configuration skipped here (e.g. no GPU) or failed, and why.

    ``param`` is the API parameter that would help, as in :class:`~vidstream.VidstreamError`.
    """

    configuration: str
    reason: str
    param: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if k != "param" or v is not None}


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
            "skipped": [s.to_dict() for s in self.skipped],
            "failed": [s.to_dict() for s in self.failed],
            "machine": self.machine,
            "input": self.input,
        }

    def save(self, path: str | Path) -> None:
        try:
            from ..sources.uri import mask_record

            Path(path).write_text(json.dumps(mask_record(self.to_dict()), indent=2) + "\n")
        except OSError as e:
            raise OutputError(f"{path}: cannot write: {e.strerror or e}") from None


# -- the parent: one child process per configuration -----------------------------------------
def run_bench(options: BenchOptions, configs: Sequence[BenchConfig], price: Price | None = None,
              label: str | None = None, instance: str | None = None,
              on_event: Callable[[BenchConfig, Event], None] | None = None,
              into: BenchResult | None = None, accelerator: Price | None = None,
              accelerator_share: str | float = "auto") -> BenchResult:
    """Measure every configuration in a fresh process; ``on_event`` sees progress.

    A remote model's configuration (``triton://...``) is priced as this machine plus its
    share of ``accelerator``, the server's instance (``accelerator_share``: a fraction, or
    ``auto``: this client's fraction of the server's inferences during the run).

    Events: ``{"event": "start"}``, ``{"event": "progress", "frames": n}``, then one of
    ``result`` (with ``run``), ``skipped`` (with ``reason``) or ``error`` (with ``message``
    and ``param``, the API parameter that would help, or None). Runs are added to ``into``
    (a new result by default) as they finish.
    """
    info = probe(options.input, options.frames)
    result = into if into is not None else BenchResult()
    result.machine = machine_info()
    result.input = {
        "uri": info.uri, "width": info.width, "height": info.height,
        "rate": str(info.rate) if info.rate else None, "frames": info.frames,
        "codec": info.codec, "frames_measured": options.frames}
    no_gpu: str | None = None
    with tempfile.TemporaryDirectory(prefix="vidstream-bench-") as tmp:
        for i, config in enumerate(configs):
            notify = _notifier(on_event, config)
            if config.device == "gpu" and no_gpu:
                result.skipped.append(NotMeasured(config.name, no_gpu))
                notify({"event": "skipped", "reason": no_gpu})
                continue
            notify({"event": "start"})
            spec = {
                "options": asdict(options), "config": asdict(config),
                "price": price.to_dict() if price else None, "label": label,
                "instance": instance,
                "accelerator": accelerator.to_dict() if accelerator else None,
                "accelerator_share": accelerator_share,
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
                result.failed.append(NotMeasured(config.name, event["message"],
                                                 event.get("param")))
            notify(event)
    return result


def _notifier(on_event: Callable[[BenchConfig, Event], None] | None,
              config: BenchConfig) -> Callable[[Event], None]:
    def notify(event: Event) -> None:
        if on_event is not None:
            on_event(config, event)

    return notify


def probe(uri: str, frames: int | None = None) -> Any:
    """Open the input once (PyAV only): input errors surface before any child starts.

    Returns its :class:`~vidstream.frames.StreamInfo`.
    """
    from ..sources import VideoSource, is_live, mask_credentials

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
        proc = subprocess.Popen([sys.executable, "-m", CHILD_MODULE], stdin=subprocess.PIPE,
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
    from .. import __version__

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


__all__ = ["BenchConfig", "BenchOptions", "BenchResult", "Event", "NotMeasured", "machine_info",
           "probe", "run_bench", "sweep"]
