"""A bench child: one configuration measured in a fresh process (the child-process protocol).

The parent (:func:`vidstream.bench.runner.run_bench`) starts ``python -m vidstream.bench.child``,
writes one JSON spec to its stdin and reads JSON events, one per line, from its stdout::

    {"options": {...BenchOptions}, "config": {...BenchConfig}, "price": {...} | null,
     "label": str | null, "instance": str | null, "outdir": "/tmp/..."}
    -> {"event": "progress", "frames": 12}                        (any number)
    -> {"event": "result", "run": {...Run}, "summary": {...}, "gpus": [...]}
     | {"event": "skipped", "reason": "no GPU is visible to TensorFlow"}
     | {"event": "error", "message": "...", "param": "max_pixels" | null}

Whatever a library prints goes to stderr: stdout carries only events.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

from ..cost import Price
from ..errors import VidstreamError
from ..periodic import every as periodic
from .report import Run
from .runner import BenchConfig, BenchOptions, Event

# The child's start-up clock: TensorFlow, the model and the pipeline all load after it.
_START = time.perf_counter()


def main() -> None:
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
    except VidstreamError as e:  # the parent names the flag for e.param, if it is a command
        emit({"event": "error", "message": " ".join(e.message.split()) or type(e).__name__,
              "param": e.param})
    except Exception as e:
        emit({"event": "error", "message": f"{type(e).__name__}: {' '.join(str(e).split())}",
              "param": None})
    finally:
        events.close()


def measure(spec: dict[str, Any], emit: Callable[[Event], None]) -> Event:
    """Load, warm up and run one configuration in this process; the final event."""
    # TensorFlow and the pipeline load here, after the clock started (moving to tfruntime)
    from ..backends.remote import is_remote
    from ..config import RunConfig, build_pipeline, validate
    from ..detector import Detector
    from ..remote_cost import SharedPricing
    from ..sources import VideoSource
    from ..tfruntime import configure_threads, gpu_names, import_tensorflow

    options = BenchOptions(**spec["options"])
    config = BenchConfig(**spec["config"])
    price = Price.from_dict(spec["price"]) if spec.get("price") else None
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
        summary = pipeline.summary()
    label = spec.get("label") or (price.name if price else None) or "this machine"
    if price is not None and spec.get("accelerator") and is_remote(config.model):
        pricing = SharedPricing(price, Price.from_dict(spec["accelerator"]),
                                spec.get("accelerator_share") or "auto")
        price = pricing.price(summary.details.get("remote"))
        assert price.accelerator is not None
        label += f" + {price.accelerator.share:.0%} of {price.accelerator.name}"
    summary = summary.with_price(price)
    record = summary.to_dict()
    run = Run.from_summary(
        record,
        label=label,
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
    last = [-1]

    def report() -> None:
        done = pipeline.stats()[-1].items_out
        if done != last[0]:
            emit({"event": "progress", "frames": done})
            last[0] = done

    with periodic(every, report, name="bench-progress"):
        yield


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


if __name__ == "__main__":
    main()
