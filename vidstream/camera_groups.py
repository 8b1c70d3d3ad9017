"""Cameras on a cluster: live inputs grouped into multi-stream processes, each a Ray actor.

A camera never ends, so "one task per video, retried from its start" does not fit it: a group
of up to ``streams_per_task`` live inputs runs as one multi-stream pipeline (one model, batches
formed across the cameras, each stream with its own reconnect policy), inside a Ray actor that
Ray restarts when its process is lost (``max_restarts``), re-running the group
(``max_task_retries``). Live outputs are written in place (fragmented MP4, the detections as
they come), so a lost process leaves them readable up to the kill; the restarted attempt moves
them aside first (``out/cam1.mp4`` -> ``out/cam1.restart1.mp4``) and writes fresh ones, so
nothing already recorded is lost::

    from vidstream.camera_groups import partition, part_path

    files, groups = partition(configs, streams_per_task=8)   # indices into configs
    part_path("out/cam1.mp4", 1)                            # 'out/cam1.restart1.mp4'

This module is what runs on the worker (and the grouping, which is plain data); the driver's
side is :func:`vidstream.cluster.run_on_ray`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import socket
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .config import RunConfig
from .errors import VidstreamError
from .sources.uri import is_live

#: RunConfig fields one multi-stream pipeline holds for all its streams (its shared stages and
#: its queues): only inputs that agree on them can share a process. Everything else (outputs,
#: the source's reconnect and stall settings, the encoder) is each stream's own.
SHARED_FIELDS = ("model", "threshold", "batch_size", "batch_wait_ms", "classes", "device",
                 "backend", "tf_threads", "queue_size", "leaky", "track", "lines", "zones",
                 "track_activation", "track_buffer_s", "track_min_iou", "track_min_frames",
                 "count_margin", "count_anchor")

#: Outputs a live run writes in place as it goes: what a lost attempt leaves behind, and what
#: a restart keeps aside. (A summary or counts file is written whole at the end, or never.)
IN_PLACE = ("video", "detections")


def partition(configs: Sequence[RunConfig], streams_per_task: int
              ) -> tuple[list[int], list[list[int]]]:
    """``(files, groups)``: the indices of the file inputs (a task each), and the live inputs
    in groups of at most ``streams_per_task`` that share their pipeline settings, in order.

    >>> cfgs = [RunConfig(u) for u in ("a.mp4", "rtsp://c/1", "rtsp://c/2", "rtsp://c/3")]
    >>> partition(cfgs, 2)
    ([0], [[1, 2], [3]])
    """
    if streams_per_task < 1:
        raise ValueError(f"streams_per_task must be >= 1, got {streams_per_task}")
    files: list[int] = []
    open_groups: dict[str, list[int]] = {}  # by shared settings: the group still filling
    groups: list[list[int]] = []
    for i, cfg in enumerate(configs):
        if not is_live(cfg.input):
            files.append(i)
            continue
        key = json.dumps([getattr(cfg, f) for f in SHARED_FIELDS], default=str)
        group = open_groups.get(key)
        if group is None or len(group) >= streams_per_task:
            group = open_groups[key] = []
            groups.append(group)
        group.append(i)
    return files, groups


def part_path(path: str, restart: int) -> str:
    """Where a restart keeps what the lost attempt wrote at ``path``.

    >>> part_path("out/cam1.mp4", 1), part_path("out/cam1.jsonl", 2)
    ('out/cam1.restart1.mp4', 'out/cam1.restart2.jsonl')
    """
    stem, ext = os.path.splitext(path)
    return f"{stem}.restart{restart}{ext}"


def keep_parts(cfg: RunConfig, restart: int) -> list[str]:
    """Move ``cfg``'s in-place outputs aside, numbered ``restart`` (or the next number whose
    names are all free: parts kept by an earlier run are never replaced); returns the parts."""
    present = [p for p in (getattr(cfg, name) for name in IN_PLACE) if p and os.path.exists(p)]
    if not present:
        return []
    n = restart
    while any(os.path.exists(part_path(p, n)) for p in present):
        n += 1
    kept = []
    for p in present:
        os.replace(p, part_path(p, n))  # a rename: the same filesystem, never a copy
        kept.append(part_path(p, n))
    return kept


def stream_results(data: dict[str, Any] | None, configs: Sequence[RunConfig], *,
                   error: str | None, node: str) -> list[dict[str, Any]]:
    """One result per stream, shaped as :func:`vidstream.cluster.run_task`'s, from the group's
    summary ``data`` (None: the group could not open; ``error`` says why).

    Each stream's ``summary`` holds its own counts; the shared stages' statistics (and the
    model's load time), which belong to the group, go with its first stream only, so a merged
    summary counts them once.
    """
    if data is None:
        return [{"error": error or "the group did not run", "summary": None, "node": node,
                 "ended_early": None} for _ in configs]
    out = []
    for k, cfg in enumerate(configs):
        st = data["streams"][k]
        summary = {key: value for key, value in st.items() if key not in ("index", "cost")}
        summary.update(
            stages=data["stages"] if k == 0 else {},
            model_load_s=data["model_load_s"] if k == 0 else 0.0,
            interrupted=data["interrupted"], model=data.get("model"),
            device=data.get("device"), batch_size=data.get("batch_size"),
            group={"streams": len(configs), "position": k, "frames": data["frames"],
                   "wall_s": data["wall_s"], "batching": data.get("batching")})
        if cfg.summary:
            tmp = Path(cfg.summary).with_name(f".{Path(cfg.summary).name}.{os.getpid()}.partial")
            tmp.write_text(json.dumps(summary, indent=2) + "\n")
            os.replace(tmp, cfg.summary)  # whole or absent
        # the run's error (a shared stage's) is every stream's that has none of its own
        out.append({"error": st["error"] or error, "summary": summary, "node": node,
                    "ended_early": st.get("ended_early")})
    return out


class CameraGroup:
    """A Ray actor's body: one multi-stream pipeline for a group of live inputs.

    ``run()`` runs it to the end of every stream and returns one result per stream (as JSON
    data); ``stop()``, called from another thread of the actor (``max_concurrency=2``), stops
    reading so every output is finalized and ``run()`` returns; ``pid()`` says which process
    runs it. After Ray restarts the actor, ``run()`` first keeps the lost attempt's outputs
    aside (:func:`keep_parts`) and reports them with the restart count.
    """

    def __init__(self, configs: list[dict[str, Any]], board: Any = None,
                 indices: Sequence[int] = ()) -> None:
        self.configs = [RunConfig(**c) for c in configs]
        # the progress board (None: nobody watches) and each stream's task index there
        self.board, self.indices = board, list(indices)
        self._lock = threading.Lock()
        self._pipeline: Any = None
        self._stopped = False

    def pid(self) -> int:
        return os.getpid()

    def stop(self) -> None:
        with self._lock:
            self._stopped = True
            pipeline = self._pipeline
        if pipeline is not None:
            pipeline.stop()

    def run(self) -> list[dict[str, Any]]:
        from .cluster_progress import TaskReporter
        from .config import build_pipeline

        restarts = _restarts()
        parts = [keep_parts(c, restarts) if restarts else [] for c in self.configs]
        node = socket.gethostname()
        # One config for the group: the shared stages follow the first stream's settings
        # (partition() grouped only streams that agree on them); each stream keeps its own
        # source (reconnect, stall timeout) and sinks.
        group = dataclasses.replace(self.configs[0],
                                    inputs=[c.input for c in self.configs], input_options=[])
        error: str | None = None
        data: dict[str, Any] | None = None
        reporters = [TaskReporter(self.board, i, stream=k) if self.board is not None else None
                     for k, i in enumerate(self.indices)]
        pipeline = build_pipeline(group, streams=self.configs)
        with self._lock:
            self._pipeline = pipeline
            stopped = self._stopped
        try:
            with pipeline, contextlib.ExitStack() as watching:
                for reporter in reporters:
                    if reporter is not None:
                        watching.enter_context(reporter.watching(pipeline))
                if stopped:
                    pipeline.stop()
                try:
                    pipeline.run()
                except VidstreamError as e:  # every stream failed, or a shared stage did
                    error = " ".join(str(e).split())
                data = pipeline.summary().to_dict()
        except VidstreamError as e:  # could not open any stream, or the model
            error = " ".join(str(e).split())
            data = _opened_summary(pipeline)
        results = stream_results(data, self.configs, error=error, node=node)
        for r, kept in zip(results, parts, strict=True):
            r.update(restarts=restarts, parts=kept, pid=os.getpid())
        return results


def _opened_summary(pipeline: Any) -> dict[str, Any] | None:
    """The summary of a pipeline that failed to open, when it can say each stream's own
    error (every camera refused, each for its reason); None when it cannot."""
    try:
        data: dict[str, Any] = pipeline.summary().to_dict()
    except Exception:
        return None
    return data if all(s.get("error") for s in data.get("streams", [])) else None


def _restarts() -> int:
    """How many times Ray has restarted this actor (0 on its first run).

    Ray's own record, kept by the cluster's control store (GCS), survives the lost process
    and its node; a count kept in the actor would die with it, and a file would need a place
    every node sees. ``was_current_actor_reconstructed`` is the public face of that record;
    the count itself is what it reads (``NumRestarts``), asked for where this Ray has it.
    """
    import ray

    ctx = ray.get_runtime_context()
    if not ctx.was_current_actor_reconstructed:
        return 0
    try:
        from ray._private.state import actors

        return max(1, int(actors(actor_id=ctx.get_actor_id())["NumRestarts"]))
    except Exception:  # another Ray's private layout: at least one restart happened
        return 1
