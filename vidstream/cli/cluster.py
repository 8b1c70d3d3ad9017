"""``--cluster``: run each input as a task on Ray (``vidstream.cluster``), with its live view
(``cluster_view``) or progress lines.

Every other option means what it means locally. Outputs are written by the workers: paths must
be on a filesystem every node sees (on a local cluster, this machine's).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.live import Live

from ..cluster_progress import ClusterProgress
from ..config import RunConfig, stream_configs, validate
from ..cost import resolve_price
from .cluster_view import ClusterView, plain_line
from .common import (
    EXIT_INTERRUPTED,
    non_negative_float,
    non_negative_int,
    positive_float,
    positive_int,
)

#: RunConfig fields these options set (``run`` passes them on as overrides).
FIELDS = ("cluster", "cpus_per_task", "gpus_per_task", "retries", "streams_per_task")


@contextlib.contextmanager
def watching(mode: str, console: Console, title: str, price: Any,
             interval: float) -> Iterator[Callable[[ClusterProgress], None] | None]:
    """The progress callback for ``run_on_ray`` in display ``mode`` (live, plain or off),
    with the live view drawn while the block runs."""
    if mode == "live":
        view = ClusterView(title, price=price)
        with Live(view, console=console, refresh_per_second=4, transient=True,
                  redirect_stdout=False, redirect_stderr=False):
            yield view.update
    elif mode == "plain":
        last = [-interval]

        def line(p: ClusterProgress) -> None:
            # at the interval, and once at the end
            if p.elapsed_s - last[0] >= interval or p.finished == p.tasks:
                last[0] = p.elapsed_s
                console.print(plain_line(p), highlight=False, soft_wrap=True)

        yield line
    else:
        yield None


def add_options(p: argparse.ArgumentParser, *, overrides: bool = False) -> None:
    d = RunConfig()

    def default(value: Any) -> Any:
        return None if overrides else value

    g = p.add_argument_group("cluster")
    g.add_argument("--cluster", nargs="?", const="ray", metavar="ray|ADDRESS",
                   help="run each input as a task on Ray: 'ray' starts a local cluster, "
                   "ray://HOST:PORT (or RAY_ADDRESS) joins one; outputs must be on a "
                   "filesystem every node sees (needs vidstream[ray])")
    g.add_argument("--cpus-per-task", type=positive_float, metavar="N",
                   default=default(d.cpus_per_task), help="CPUs each task reserves")
    g.add_argument("--gpus-per-task", type=non_negative_float, metavar="N",
                   default=default(d.gpus_per_task),
                   help="GPUs each task reserves (on a GPU node the detector uses the GPU)")
    g.add_argument("--retries", type=non_negative_int, metavar="N",
                   default=default(d.retries),
                   help="times a video whose worker was lost runs again from its start, and "
                   "times a camera group's process is restarted")
    g.add_argument("--streams-per-task", type=positive_int, metavar="N",
                   default=default(d.streams_per_task),
                   help="live inputs (cameras) per task: each group runs as one multi-stream "
                   "process (a Ray actor, restarted when lost)")


def execute_on_cluster(cfg: RunConfig, console: Console, quiet: bool, interval: float,
                       flags: dict[str, str] | None, check_outputs: Any,
                       display: str = "auto") -> int:
    """Run ``cfg``'s inputs as Ray tasks; returns the exit code (0, 3, 1 or 130).

    ``check_outputs(outputs, inputs)`` is the command's own output check (``outputs`` pairs
    each output's parameter with its path), done before any task starts, as for a local run.
    ``display``: as for a local run, ``auto`` draws the live view on a terminal and progress
    lines elsewhere; ``off`` (and ``quiet``) neither.
    """
    from ..cluster import run_on_ray
    from ..sources.uri import mask_record

    validate(cfg, keys=flags)
    tasks = stream_configs(cfg)
    run_summary = cfg.summary if cfg.summary and not any(t.summary for t in tasks) else None
    named = [(name, getattr(t, name)) for t in tasks
             for name in ("video", "detections", "summary", "counts") if getattr(t, name)]
    if run_summary:
        named.append(("summary", run_summary))
    check_outputs(named, [t.input for t in tasks])
    price = resolve_price(cfg.instance, cfg.price_per_hour, cfg.catalog)
    if cfg.accelerator_instance and not quiet:
        # each task would pay a share of one server measured by every task at once: not
        # priced yet, and a wrong price is worse than none
        console.print("[yellow]vidstream: warning: on a cluster the cost covers its nodes "
                      "only; --accelerator-instance is not applied[/yellow]", soft_wrap=True)
    address = None if cfg.cluster in (None, "ray", "local") else cfg.cluster
    # "ray" joins RAY_ADDRESS's cluster when it is set (as Ray itself does), else starts one
    joined = address or os.environ.get("RAY_ADDRESS")
    title = (f"{len(tasks)} task{'s' * (len(tasks) != 1)} on "
             f"{joined or 'a local Ray cluster'}")
    # as the local live view decides (dashboard.monitor): live on a terminal, else lines
    mode = "off" if quiet or display == "off" else (
        "live" if console.is_terminal else "plain")
    if mode == "plain":
        console.print(f"[dim]{title}[/dim]")
    t0 = time.perf_counter()
    with watching(mode, console, title, price, interval) as progress:
        result = run_on_ray(tasks, address=address, cpus_per_task=cfg.cpus_per_task,
                            gpus_per_task=cfg.gpus_per_task, retries=cfg.retries,
                            price=price, progress=progress, poll_s=0.25,
                            streams_per_task=cfg.streams_per_task)
    summary = mask_record(result.summary())
    if run_summary:
        tmp = Path(run_summary).with_name(f".{Path(run_summary).name}.partial")
        tmp.write_text(json.dumps(summary, indent=2) + "\n")
        tmp.replace(run_summary)  # whole or absent
    if not quiet:
        for s in summary["streams"]:
            console.print(f"  {s['uri']}: {s['state']}, {s['frames']} frames"
                          + (f" on {s['node']}" if s["node"] else "")
                          + (f", restarted {s['restarts']}x, earlier parts kept: "
                             f"{', '.join(s['parts']) or 'none'}" if s["restarts"] else "")
                          + (f": {s['error']}" if s["error"] else ""), highlight=False,
                          soft_wrap=True)
        fps = summary["fps"]
        console.print(f"{summary['frames']} frames in {time.perf_counter() - t0:.1f} s, "
                      f"{fps:.1f} fps across the cluster"
                      + (f"; ${summary['cost']['usd_per_100k_inferences']:.2f} per 100k "
                         f"inferences at {summary['cost']['name']} x {summary['cost']['nodes']}"
                         if summary["cost"] and summary["cost"]["usd_per_100k_inferences"]
                         else ""), highlight=False, soft_wrap=True)
    for s in summary["streams"]:
        if s["state"] == "failed":
            console.print(f"[yellow]vidstream: warning: {s['uri']} failed: {s['error']}"
                          "[/yellow]", soft_wrap=True)
    if result.interrupted and not quiet:
        console.print("[yellow]vidstream: interrupted: queued and running tasks cancelled; "
                      "finished outputs kept[/yellow]")
    return EXIT_INTERRUPTED if result.interrupted else result.exit_code

