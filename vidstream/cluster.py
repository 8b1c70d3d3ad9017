"""Many videos across a Ray cluster: one task per video, each running the same pipeline code.

Needs Ray (``pip install 'vidstream[ray]'``). Every task reads its own input and writes its own
outputs; frames never travel between machines (a 1080p frame is 6 MB: as Ray objects they would
fill the object store and spill). So output paths must be on a filesystem every node sees (a
shared mount), or be local per node and collected afterwards; relative paths are made absolute
on the driver before they are sent::

    from vidstream.cluster import run_on_ray
    from vidstream.config import RunConfig

    configs = [RunConfig(input=f"clips/{n}.mp4", video=f"out/{n}.mp4") for n in names]
    result = run_on_ray(configs, address=None, cpus_per_task=1)   # None: a local cluster
    result.summary()["frames"], result.exit_code

Live inputs (cameras) are not tasks: they run in groups of up to ``streams_per_task``, each
group one multi-stream pipeline in a Ray actor restarted when its process is lost
(:mod:`vidstream.camera_groups`); a restart keeps what the lost attempt recorded.

A task whose worker is lost (killed, out of memory, node gone) runs again from the start of its
video, up to ``retries`` times; outputs are written under temporary names and published whole
when a run ends, so a lost attempt never leaves a half-written output behind (and the retry
removes the temporary files it left). An input that
fails (missing, damaged) is reported and the other tasks carry on. Results merge into one
summary with the same shape as a multi-stream run's (``streams`` per video).
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import socket
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .camera_groups import partition
from .cluster_progress import (
    ClusterProgress,
    ProgressTracker,
    TaskReporter,
    start_board,
    stop_board,
)
from .config import RunConfig, input_stem
from .cost import CostEstimate, Price
from .errors import ConfigError, VidstreamError
from .settings import DEFAULTS

OUTPUTS = ("video", "detections", "summary", "counts")


@dataclass
class TaskResult:
    """One video's outcome: its summary (when it ran), where it ran, and how it ended."""

    index: int
    uri: str
    state: str  # "ended" | "failed" | "cancelled"
    error: str | None = None
    summary: dict[str, Any] | None = None
    node: str | None = None
    ended_early: str | None = None
    group: int | None = None  # a live input: its camera group (one actor)
    restarts: int = 0  # times its group's actor was restarted
    parts: list[str] = field(default_factory=list)  # outputs of lost attempts, kept aside


@dataclass
class ClusterResult:
    """Every task's result and the run's wall time; ``summary()`` merges them."""

    tasks: list[TaskResult]
    wall_s: float
    nodes: dict[str, int] = field(default_factory=dict)  # node -> CPUs it offered
    price: Price | None = None
    interrupted: bool = False

    @property
    def exit_code(self) -> int:
        """0 every video completed; 3 some did; 1 none did (130: interrupted)."""
        if self.interrupted:
            return 130
        good = [t for t in self.tasks if t.state == "ended" and not t.ended_early]
        done = [t for t in self.tasks if t.state == "ended" and t.summary
                and t.summary.get("frames")]
        if len(good) == len(self.tasks):
            return 0
        return 3 if done else 1

    def summary(self) -> dict[str, Any]:
        """One summary for the whole cluster, shaped like a multi-stream run's."""
        return merge_summaries(self.tasks, self.wall_s, price=self.price,
                               nodes=len(self.nodes) or 1, interrupted=self.interrupted)


def merge_summaries(tasks: Sequence[TaskResult], wall_s: float, *, price: Price | None = None,
                    nodes: int = 1, interrupted: bool = False) -> dict[str, Any]:
    """Totals over the tasks' summaries; ``streams`` holds one entry per video.

    Cost is for the cluster: ``price`` per node times the nodes times the wall time, so the cost
    per 100k inferences stays comparable with a single machine's.
    """
    summaries = [t.summary for t in tasks if t.summary]
    frames = sum(s["frames"] for s in summaries)
    stages: dict[str, dict[str, Any]] = {}
    for s in summaries:
        for name, st in (s.get("stages") or {}).items():
            acc = stages.setdefault(name, {"items": 0, "items_in": 0, "items_out": 0,
                                           "dropped": 0, "errors": 0, "busy_s": 0.0,
                                           "starved_s": 0.0, "blocked_s": 0.0, "wall_s": 0.0})
            for k in acc:
                acc[k] += st.get(k, 0)
    for st in stages.values():
        st["busy_share"] = st["busy_s"] / st["wall_s"] if st["wall_s"] else 0.0
        st["fps"] = st["items"] / st["busy_s"] if st["busy_s"] else 0.0
    bottleneck = max(stages, key=lambda n: stages[n]["busy_share"]) if stages else None
    fps = frames / wall_s if wall_s > 0 else 0.0
    cost = None
    if price is not None:
        usd_per_hour = price.usd_per_hour * nodes
        # a single run's keys (CostEstimate's: what `vidstream report` reads) and the price's
        estimate = CostEstimate(dataclasses.replace(price, usd_per_hour=usd_per_hour), fps,
                                wall_s).to_dict()
        cost = {**price.to_dict(), **estimate, "note": price.note or None, "nodes": nodes}
    streams = []
    for t in tasks:
        s = t.summary or {}
        share = (s.get("frames", 0) / frames) if frames else 0.0
        streams.append({
            "index": t.index, "uri": t.uri, "stem": input_stem(t.uri), "state": t.state,
            "error": t.error, "node": t.node,
            "frames": s.get("frames", 0), "frames_in": s.get("frames_in", 0),
            "dropped": s.get("dropped", 0), "decode_errors": s.get("decode_errors", 0),
            "ended_early": t.ended_early, "fps": s.get("fps", 0.0),
            "reconnects": s.get("reconnects", 0), "group": t.group, "restarts": t.restarts,
            "parts": list(t.parts),
            "wall_s": s.get("wall_s", 0.0), "latency_ms": s.get("latency_ms"),
            "cost": None if cost is None else {"share": share,
                                               "usd_total": cost["usd_total"] * share},
        })
    first = summaries[0] if summaries else {}
    return {
        "frames": frames,
        "frames_in": sum(s.get("frames_in", 0) for s in summaries),
        "wall_s": wall_s,
        "fps": fps,
        "model_load_s": max((s.get("model_load_s", 0.0) for s in summaries), default=0.0),
        "latency_ms": _worst_latency(summaries),
        "stages": stages,
        "bottleneck": bottleneck,
        "decode_errors": sum(s.get("decode_errors", 0) for s in summaries),
        "dropped": sum(s.get("dropped", 0) for s in summaries),
        "interrupted": interrupted,
        "error": None if any(t.state == "ended" for t in tasks) else
        next((t.error for t in tasks if t.error), None),
        "model": first.get("model"),
        "device": first.get("device"),
        "batch_size": first.get("batch_size"),
        "cluster": {"tasks": len(tasks), "nodes": nodes,
                    "failed": sum(t.state == "failed" for t in tasks),
                    "cancelled": sum(t.state == "cancelled" for t in tasks)},
        "streams": streams,
        "cost": cost,
    }


def _worst_latency(summaries: list[dict[str, Any]]) -> dict[str, Any] | None:
    """Each percentile's worst value over the videos (percentiles do not add up)."""
    lats = [s["latency_ms"] for s in summaries if s.get("latency_ms")]
    if not lats:
        return None
    return {k: max(lat.get(k, 0.0) for lat in lats) for k in lats[0]}


# -- the task, run on a worker ---------------------------------------------------------------
def run_task(config: dict[str, Any], price: dict[str, Any] | None = None, board: Any = None,
             index: int = 0) -> dict[str, Any]:
    """Run one video's pipeline here (on a Ray worker); returns its summary as JSON data.

    Input errors come back as data (``error``), not exceptions: they are not worth a retry.
    ``board`` (a :class:`~vidstream.cluster_progress.ProgressBoard` actor) hears how far the
    task got, as task ``index``.
    """
    from .config import build_pipeline

    cfg = RunConfig(**config)
    node = socket.gethostname()
    remove_stale_temps(cfg)
    reporter = TaskReporter(board, index)
    try:
        pipeline = build_pipeline(cfg)
        with pipeline, reporter.watching(pipeline):
            try:
                pipeline.run()
                error = None
            except VidstreamError as e:
                error = " ".join(str(e).split())
            summary = pipeline.summary()
    except VidstreamError as e:  # could not open: nothing was written
        return {"error": " ".join(str(e).split()), "summary": None, "node": node,
                "ended_early": None}
    if price is not None:
        summary = summary.with_price(Price.from_dict(price))
    data = summary.to_dict()
    if cfg.summary:
        import json

        tmp = Path(cfg.summary).with_name(f".{Path(cfg.summary).name}.{os.getpid()}.partial")
        tmp.write_text(json.dumps(data, indent=2) + "\n")
        os.replace(tmp, cfg.summary)  # whole or absent
    return {"error": error, "summary": data, "node": node,
            "ended_early": pipeline.source.ended_early}


def remove_stale_temps(cfg: RunConfig) -> None:
    """Remove what killed attempts of this task left beside its outputs (their temporary
    files): the driver checked the outputs are this task's alone, so no live run writes them."""
    from .sinks.output import stale_temps

    for name in OUTPUTS:
        path = getattr(cfg, name)
        if path and "://" not in path:
            for temp in stale_temps(path):
                with contextlib.suppress(FileNotFoundError):  # another cleaner was first
                    temp.unlink()


# -- the driver --------------------------------------------------------------------------------
def absolute(cfg: RunConfig) -> RunConfig:
    """Input and output paths made absolute on the driver: workers may run elsewhere."""
    changes: dict[str, Any] = {}
    for name in (*OUTPUTS, "input"):
        value = getattr(cfg, name)
        if value and "://" not in value and not value.startswith("/dev/"):
            changes[name] = os.path.abspath(value)
    return dataclasses.replace(cfg, **changes)


def connect(address: str | None = None, *, num_cpus: int | None = None) -> Any:
    """Ray, initialised: ``address`` None or "local" starts a local cluster on loopback;
    ``ray://HOST:PORT`` or ``HOST:PORT`` joins an existing one (also ``RAY_ADDRESS``)."""
    try:
        import ray
    except ImportError:
        raise ConfigError("clusters need Ray: pip install 'vidstream[ray]'",
                          param="cluster") from None
    if ray.is_initialized():
        return ray
    address = address or os.environ.get("RAY_ADDRESS") or "local"
    kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False,
                              "configure_logging": False}
    if address == "local":
        # Only loopback: a local cluster is this machine's business.
        kwargs.update(address="local", num_cpus=num_cpus, _node_ip_address="127.0.0.1")
    else:
        kwargs.update(address=address)
    try:
        ray.init(**kwargs)
    except (ConnectionError, RuntimeError, ValueError) as e:
        text = " ".join(str(e).split())
        if address != "local" and not os.environ.get("RAY_AUTH_MODE"):
            # Ray >= 2.59 starts clusters with token authentication on; a client without the
            # token sees only a timeout or "cannot connect", never why
            text += ("; if the cluster uses token authentication (the default for 'ray "
                     "start' since Ray 2.59), set RAY_AUTH_MODE=token here too, with the "
                     "cluster's token in RAY_AUTH_TOKEN or ~/.ray/auth_token ('ray "
                     "get-auth-token' on the head prints it)")
        raise ConfigError(f"cannot join the Ray cluster at {address}: {text}",
                          param="cluster") from e
    return ray


#: Called after every poll of the wait loop with where the run stands.
Progress = Callable[[ClusterProgress], None]


def run_on_ray(configs: Sequence[RunConfig], *, address: str | None = None,
               cpus_per_task: float = DEFAULTS.cpus_per_task,
               gpus_per_task: float = DEFAULTS.gpus_per_task,
               retries: int = DEFAULTS.retries, price: Price | None = None,
               num_cpus: int | None = None, progress: Progress | None = None,
               poll_s: float = 0.5,
               streams_per_task: int = DEFAULTS.streams_per_task) -> ClusterResult:
    """Run one task per file config, and the live ones in camera groups of up to
    ``streams_per_task`` (one actor each); returns one result per config (Ctrl-C cancels the
    tasks still queued or running, stops the groups so their outputs are finalized, and keeps
    the finished outputs). ``progress`` gets a
    :class:`~vidstream.cluster_progress.ClusterProgress` every ``poll_s``; only then do the
    tasks report to a progress board."""
    if retries < 0:
        raise ConfigError(f"retries must be >= 0, got {retries}", param="retries")
    ray = connect(address, num_cpus=num_cpus)
    remote = ray.remote(run_task).options(num_cpus=cpus_per_task, num_gpus=gpus_per_task,
                                          max_retries=retries, retry_exceptions=False)
    from .sinks.output import check_outputs

    price_data = dataclasses.asdict(price) if price is not None else None
    t0 = time.perf_counter()
    cfgs = [absolute(c) for c in configs]
    # The outputs are checked here, once, before any task starts; a task then replaces its
    # own outputs, so a retry after a lost worker rewrites what the lost attempt left.
    check_outputs([(name, getattr(c, name)) for c in cfgs for name in OUTPUTS
                   if getattr(c, name)], [c.input for c in cfgs],
                  overwrite=all(c.overwrite for c in cfgs))
    cfgs = [dataclasses.replace(c, overwrite=True) for c in cfgs]
    files, groups = partition(cfgs, streams_per_task)
    board = start_board(ray) if progress is not None else None
    tracker = ProgressTracker(len(cfgs), cpus_per_task)
    refs = [remote.remote(dataclasses.asdict(cfgs[i]), price_data, board, i) for i in files]
    index = dict(zip(refs, files, strict=True))
    launched = _launch_groups(ray, cfgs, groups, cpus_per_task=cpus_per_task,
                              gpus_per_task=gpus_per_task, retries=retries, board=board)
    results: dict[int, TaskResult] = {}
    pending = [*refs, *launched]
    interrupted = False
    try:
        while pending:
            done, pending = ray.wait(pending, num_returns=len(pending), timeout=poll_s)
            for ref in done:
                if ref in launched:  # a camera group: a result per stream
                    results.update(_group_results(ray, ref, launched[ref], cfgs))
                    continue
                i = index[ref]
                results[i] = _result(ray, ref, i, cfgs[i])
            if progress is not None:
                progress(tracker.poll(ray, board, results, time.perf_counter() - t0))
    except KeyboardInterrupt:
        interrupted = True
        results.update(_stop_groups(ray, launched, pending, cfgs))
        pending = [ref for ref in pending if ref not in launched]
        for ref in pending:
            ray.cancel(ref, force=True)
        for ref in pending:
            i = index[ref]
            results[i] = TaskResult(i, cfgs[i].input, "cancelled", "interrupted")
    stop_board(ray, board)
    nodes = {n.get("NodeManagerAddress", "?"): int(n.get("Resources", {}).get("CPU", 0))
             for n in ray.nodes() if n.get("Alive")}
    return ClusterResult([results[i] for i in range(len(cfgs))],
                         time.perf_counter() - t0, nodes, price, interrupted)


def _result(ray: Any, ref: Any, i: int, cfg: RunConfig) -> TaskResult:
    try:
        data = ray.get(ref)
    except Exception as e:  # the worker was lost every time it was tried
        text = " ".join(str(e).split())
        return TaskResult(i, cfg.input, "failed", f"task lost: {text[:300]}")
    return _task_result(i, cfg, data)


def _task_result(i: int, cfg: RunConfig, data: dict[str, Any]) -> TaskResult:
    if data["error"] and not data["summary"]:
        return TaskResult(i, cfg.input, "failed", data["error"], None, data["node"])
    state = "failed" if data["error"] else "ended"
    return TaskResult(i, cfg.input, state, data["error"], data["summary"], data["node"],
                      ended_early=data["ended_early"])


# -- camera groups (vidstream.camera_groups), from the driver ----------------------------------
@dataclass(frozen=True)
class _Group:
    """A camera group as launched: its actor and the configs' indices of its streams."""

    number: int
    actor: Any
    members: list[int]


def _launch_groups(ray: Any, cfgs: Sequence[RunConfig], groups: list[list[int]], *,
                   cpus_per_task: float, gpus_per_task: float, retries: int,
                   board: Any = None) -> dict[Any, _Group]:
    """One actor per group, its ``run()`` called: ``{run's ObjectRef: group}``.

    ``max_restarts`` brings a lost process back and ``max_task_retries`` re-runs the group in
    it, both ``retries`` times, as for a file's task; ``max_concurrency=2`` lets ``stop()``
    reach an actor busy in ``run()``.
    """
    if not groups:
        return {}
    from .camera_groups import CameraGroup

    actor_class = ray.remote(CameraGroup).options(
        num_cpus=cpus_per_task, num_gpus=gpus_per_task, max_restarts=retries,
        max_task_retries=retries, max_concurrency=2)
    launched = {}
    for n, members in enumerate(groups):
        actor = actor_class.remote([dataclasses.asdict(cfgs[i]) for i in members], board,
                                   members)
        launched[actor.run.remote()] = _Group(n, actor, members)
    return launched


def _group_results(ray: Any, ref: Any, group: _Group, cfgs: Sequence[RunConfig]
                   ) -> dict[int, TaskResult]:
    """One result per stream of a finished group (its actor then goes: it holds resources)."""
    try:
        data = ray.get(ref)
    except Exception as e:  # its process was lost more times than it may be restarted
        text = " ".join(str(e).split())
        what = "lost" if isinstance(e, ray.exceptions.RayActorError) else "failed"
        return {i: TaskResult(i, cfgs[i].input, "failed", f"camera group {what}: {text[:300]}",
                              group=group.number) for i in group.members}
    finally:
        ray.kill(group.actor)
    results = {}
    for i, d in zip(group.members, data, strict=True):
        r = _task_result(i, cfgs[i], d)
        results[i] = dataclasses.replace(r, group=group.number, restarts=d.get("restarts", 0),
                                         parts=list(d.get("parts", [])))
    return results


def _stop_groups(ray: Any, launched: dict[Any, _Group], pending: Sequence[Any],
                 cfgs: Sequence[RunConfig]) -> dict[int, TaskResult]:
    """Ctrl-C: ask every running group to stop (its outputs are finalized), wait for them a
    while, then kill those that did not return; their streams are ``cancelled``."""
    running = [ref for ref in pending if ref in launched]
    for ref in running:
        launched[ref].actor.stop.remote()
    done: list[Any] = []
    if running:
        done, _ = ray.wait(running, num_returns=len(running), timeout=DEFAULTS.group_stop_s)
    results: dict[int, TaskResult] = {}
    for ref in running:
        group = launched[ref]
        if ref in done:
            results.update(_group_results(ray, ref, group, cfgs))
            continue
        ray.kill(group.actor)
        results.update({i: TaskResult(i, cfgs[i].input, "cancelled", "interrupted",
                                      group=group.number) for i in group.members})
    return results
