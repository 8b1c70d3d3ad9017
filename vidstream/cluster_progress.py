"""Live progress of a cluster run: a board the tasks report to, and the driver's snapshot.

Tasks send the board small messages, never frames: ``started`` when an attempt begins (its
node), then ``frames`` about once a second from a thread reading the pipeline's counters
(frames done and, when the container says, the input's total). The driver polls the board in
its wait loop and, with the results it already holds, makes a :class:`ClusterProgress`::

    def show(p: ClusterProgress) -> None:
        print(f"{p.done}/{p.tasks} done, {p.running} running, {p.fps:.1f} fps")

    run_on_ray(configs, progress=show)

The board is a Ray actor reserving no CPU, so it never takes a task's place. Progress is best
effort: a board that is slow or gone leaves the snapshot as it was, and never fails a task.
"""

from __future__ import annotations

import contextlib
import logging
import secrets
import socket
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from .periodic import every
from .stats import RateWindow

log = logging.getLogger(__name__)

#: How often a task tells the board its frames; a message is a few dozen bytes.
REPORT_S = 1.0
#: How often the driver asks Ray which nodes there are (a GCS call; nodes come and go slowly).
NODES_S = 10.0


@dataclass(frozen=True)
class NodeLoad:
    """One node's share of the run: its CPUs, the tasks running on it, and their frame rate."""

    node: str
    cpus: float
    running: int
    reserved_cpus: float  # the running tasks' reservations
    fps: float

    @property
    def load(self) -> float:
        """Reserved CPUs over the node's CPUs (1.0: every CPU holds a task)."""
        return self.reserved_cpus / self.cpus if self.cpus else 0.0


@dataclass(frozen=True)
class ClusterProgress:
    """Where a cluster run stands. ``done`` ended tasks, ``failed`` failed ones (with
    ``done + failed`` they are the finished ones); ``fps`` is the cluster's rate over the last
    few seconds; ``eta_s`` None when it cannot be told yet."""

    tasks: int
    queued: int
    running: int
    done: int
    failed: int
    frames: int
    frames_total: int | None  # None until every task's total is known
    fps: float
    elapsed_s: float
    eta_s: float | None
    nodes: tuple[NodeLoad, ...] = ()

    @property
    def finished(self) -> int:
        return self.done + self.failed


# -- the board (an actor) ----------------------------------------------------------------------
class ProgressBoard:
    """Each task's latest word; the driver reads what changed since its last look.

    >>> b = ProgressBoard()
    >>> b.started(0, "a1", "n1", "host1"); b.frames(0, "a1", 12, 75)
    >>> b.changes(0)[0][0]["frames"]
    12
    """

    def __init__(self) -> None:
        self._tasks: dict[int, dict[str, Any]] = {}
        self._version = 0
        self._lost = 0  # frames of attempts whose worker was lost (work done, then redone)

    def started(self, index: int, attempt: str, node_id: str, host: str) -> None:
        old = self._tasks.get(index)
        if old is not None:
            self._lost += old["frames"]
        self._version += 1
        self._tasks[index] = {"attempt": attempt, "node_id": node_id, "host": host,
                              "frames": 0, "total": None, "version": self._version}

    def frames(self, index: int, attempt: str, frames: int, total: int | None) -> None:
        t = self._tasks.get(index)
        if t is None or t["attempt"] != attempt:
            return  # a lost attempt's last word, arriving after its retry began
        self._version += 1
        t.update(frames=frames, total=total, version=self._version)

    def changes(self, since: int) -> tuple[dict[int, dict[str, Any]], int, int]:
        """Entries changed after version ``since``, the frames lost, and the version now."""
        return ({i: dict(t) for i, t in self._tasks.items() if t["version"] > since},
                self._lost, self._version)


def start_board(ray: Any) -> Any:
    """The board actor, on no CPU (so it never waits behind the tasks for a slot)."""
    return ray.remote(num_cpus=0, max_restarts=0)(ProgressBoard).remote()


def stop_board(ray: Any, board: Any) -> None:
    if board is not None:
        try:
            ray.kill(board)
        except Exception:  # already gone: nothing to stop
            log.debug("progress board already gone", exc_info=True)


# -- a task's side -----------------------------------------------------------------------------
class TaskReporter:
    """Tells the board (None: nobody) that a task started, then, while :meth:`watching` a
    pipeline, its frames every ``every_s`` seconds.

    A daemon thread reads the pipeline's public counters (``streams()``, ``info``), which any
    thread may read without a lock: the pipeline's threads never wait for it.
    """

    def __init__(self, board: Any, index: int, *, every_s: float = REPORT_S,
                 stream: int | None = None) -> None:
        # stream: the task is one stream of a multi-stream pipeline (a camera group's)
        self.board, self.index, self.every_s, self.stream = board, index, every_s, stream
        self.attempt = secrets.token_hex(4)  # a retry is a new attempt; the board tells them apart
        self._last: tuple[int, int | None] | None = None
        if board is not None:  # at once: loading the model is part of running
            import ray

            node_id = ray.get_runtime_context().get_node_id()
            board.started.remote(index, self.attempt, node_id, socket.gethostname())

    @contextlib.contextmanager
    def watching(self, pipeline: Any) -> Iterator[None]:
        if self.board is None:
            yield
            return
        try:
            with every(self.every_s, lambda: self._send(pipeline), name="vidstream-report"):
                yield
        finally:
            self._send(pipeline)  # the last count, so the board agrees with the summary

    def _send(self, pipeline: Any) -> None:
        p = pipeline
        try:
            if self.stream is not None:  # a camera: its own frames, no end known
                now: tuple[int, int | None] = (p.streams()[self.stream].frames, None)
            else:
                now = (sum(r.frames for r in p.streams()), p.info.frames if p.info else None)
            if now != self._last:
                self.board.frames.remote(self.index, self.attempt, *now)
                self._last = now
        except Exception:  # progress is best effort: never the reason a video fails
            log.debug("progress report failed", exc_info=True)


# -- the driver's side -------------------------------------------------------------------------
class Finished(Protocol):
    """What the tracker reads of a finished task (``vidstream.cluster.TaskResult``)."""

    state: str
    summary: dict[str, Any] | None


class ProgressTracker:
    """Turns the board's word and the finished tasks into a :class:`ClusterProgress`."""

    def __init__(self, tasks: int, cpus_per_task: float, *, window: float = 5.0) -> None:
        self.tasks = tasks
        self.cpus_per_task = cpus_per_task
        self.window = window
        self._entries: dict[int, dict[str, Any]] = {}
        self._version = 0
        self._lost = 0
        self._nodes: dict[str, tuple[str, float]] = {}  # node id -> (name, CPUs)
        self._nodes_at = -NODES_S
        self._rate = RateWindow(window)
        self._node_rates: dict[str, RateWindow] = {}

    def poll(self, ray: Any, board: Any, results: Mapping[int, Finished],
             elapsed: float) -> ClusterProgress:
        """Ask the board what changed (waiting at most a second), then :meth:`snapshot`."""
        if board is not None:
            try:
                changed, lost, version = ray.get(board.changes.remote(self._version),
                                                 timeout=1.0)
                self.update(changed, lost, version)
            except Exception:  # slow or gone: keep what we know, try again next time
                log.debug("progress board did not answer", exc_info=True)
        # a task on a node not seen yet (one that joined): look again, at most once a second
        unknown = any(e["node_id"] not in self._nodes for e in self._entries.values())
        since = elapsed - self._nodes_at
        if (unknown and since >= 1.0) or since >= NODES_S:
            self._nodes_at = elapsed
            self.set_nodes(ray.nodes())
        return self.snapshot(results, elapsed)

    def update(self, changed: Mapping[int, dict[str, Any]], lost: int, version: int) -> None:
        self._entries.update(changed)
        self._lost, self._version = lost, version

    def set_nodes(self, nodes: list[dict[str, Any]]) -> None:
        """Name each alive node (its host name; with its id's start where hosts repeat)."""
        alive = [n for n in nodes if n.get("Alive")]
        hosts = [n.get("NodeManagerHostname") or n.get("NodeManagerAddress", "?") for n in alive]
        self._nodes = {
            n["NodeID"]: (host if hosts.count(host) == 1 else f"{host}:{n['NodeID'][:6]}",
                          float(n.get("Resources", {}).get("CPU", 0)))
            for n, host in zip(alive, hosts, strict=True)}

    def snapshot(self, results: Mapping[int, Finished], elapsed: float,
                 now: float | None = None) -> ClusterProgress:
        now = time.perf_counter() if now is None else now
        frames = 0
        running = 0
        node_frames: dict[str, int] = {}
        node_running: dict[str, int] = {}
        remaining: int | None = 0  # frames left in running tasks (None: some total unknown)
        totals: list[int] = []  # what a video holds, from those that say
        for i in range(self.tasks):
            entry = self._entries.get(i)
            result = results.get(i)
            if result is not None:
                n = (result.summary or {}).get("frames", 0)
                if result.state == "ended":
                    totals.append(n)
            elif entry is not None:
                running += 1
                n = entry["frames"]
                node_running[entry["node_id"]] = node_running.get(entry["node_id"], 0) + 1
                if entry["total"] is None:
                    remaining = None
                else:
                    totals.append(entry["total"])
                    if remaining is not None:
                        remaining += max(entry["total"] - n, 0)
            else:
                continue
            frames += n
            if entry is not None:
                node_frames[entry["node_id"]] = node_frames.get(entry["node_id"], 0) + n
        done = sum(r.state == "ended" for r in results.values())
        failed = len(results) - done
        queued = self.tasks - len(results) - running
        self._rate.add(now, frames + self._lost)
        fps = self._rate.rate()
        eta: float | None = None
        frames_total = None
        if remaining is not None and queued == 0:
            frames_total = frames + remaining
        if remaining is not None and totals and fps > 0:
            # queued videos are guessed at the mean of those that told
            eta = (remaining + queued * sum(totals) / len(totals)) / fps
        elif len(results) == self.tasks:
            eta = 0.0
        elif results:
            eta = elapsed / len(results) * (self.tasks - len(results))
        nodes = []
        for node_id in sorted(set(self._nodes) | set(node_running),
                              key=lambda k: self._nodes.get(k, (k, 0.0))[0]):
            name, cpus = self._nodes.get(node_id, (node_id[:8], 0.0))
            rw = self._node_rates.setdefault(node_id, RateWindow(self.window))
            rw.add(now, node_frames.get(node_id, 0))
            r = node_running.get(node_id, 0)
            nodes.append(NodeLoad(name, cpus, r, r * self.cpus_per_task, max(rw.rate(), 0.0)))
        return ClusterProgress(self.tasks, queued, running, done, failed, frames, frames_total,
                               fps, elapsed, eta, tuple(nodes))
