"""The live view of a cluster run, and its progress lines off a terminal.

Both draw a :class:`~vidstream.cluster_progress.ClusterProgress`, the driver's latest snapshot;
off a terminal a line every few seconds::

    tasks 3/8 done, 2 running, 3 queued, 0 failed  frames 1210  fps 48.3  elapsed 0:25  eta 0:41
"""

from __future__ import annotations

import dataclasses
from typing import Any

from rich.console import Group
from rich.table import Table
from rich.text import Text

from ..cluster_progress import ClusterProgress
from .dashboard import _bar, cost_line, format_duration


def tasks_text(p: ClusterProgress) -> str:
    """``3/8 done, 2 running, 3 queued, 0 failed``."""
    return (f"{p.done}/{p.tasks} done, {p.running} running, {p.queued} queued, "
            f"{p.failed} failed")


def plain_line(p: ClusterProgress) -> str:
    """The progress line printed off a terminal."""
    frames = f"{p.frames}/{p.frames_total}" if p.frames_total else str(p.frames)
    return (f"tasks {tasks_text(p)}  frames {frames}  fps {p.fps:.1f}  "
            f"elapsed {format_duration(p.elapsed_s)}  eta {format_duration(p.eta_s)}")


def cluster_price(price: Any, nodes: int) -> Any:
    """The cluster's price: a node's times the nodes (as the merged summary counts it)."""
    if price is None or nodes <= 1:
        return price
    return dataclasses.replace(price, name=f"{price.name} x {nodes}",
                               usd_per_hour=price.usd_per_hour * nodes)


class ClusterView:
    """A rich renderable drawing the latest snapshot given to :meth:`update`.

    The driver's wait loop calls :meth:`update`; rich's refresh thread renders: the snapshot
    is frozen and swapped whole, so neither waits for the other.
    """

    def __init__(self, title: str, *, price: Any = None) -> None:
        self.title = title
        self.price = price
        self.latest: ClusterProgress | None = None

    def update(self, progress: ClusterProgress) -> None:
        self.latest = progress

    def __rich__(self) -> Group:
        lines: list[Any] = [Text(self.title, style="bold")]
        p = self.latest
        if p is None:
            lines.append(Text("starting...", style="dim"))
            return Group(*lines)
        if p.frames_total:  # every video's length known: the bar follows frames
            bar = _bar(p.frames, p.frames_total, 30)
            share = f"{p.frames / p.frames_total:4.0%}"
        else:
            bar = _bar(p.finished, p.tasks, 30)
            share = f"{p.finished / p.tasks:4.0%}" if p.tasks else ""
        lines.append(Text.assemble(bar, f" {share}  tasks {tasks_text(p)}"))
        frames = f"{p.frames}/{p.frames_total}" if p.frames_total else str(p.frames)
        lines.append(Text(f"frames {frames}  fps {p.fps:.1f} across the cluster  "
                          f"elapsed {format_duration(p.elapsed_s)}  "
                          f"eta {format_duration(p.eta_s)}"))
        lines.append(node_table(p))
        if self.price is not None:
            overall = p.frames / p.elapsed_s if p.elapsed_s > 0 else 0.0
            lines.append(cost_line(cluster_price(self.price, len(p.nodes) or 1), p.elapsed_s,
                                   overall))
        return Group(*lines)


def node_table(p: ClusterProgress) -> Table:
    """A row per node: its CPUs, the tasks running there, its load and frame rate."""
    table = Table(box=None, padding=(0, 1), header_style="bold")
    for col in ("node", "CPUs", "running", "load", "fps"):
        table.add_column(col, justify="left" if col in ("node", "load") else "right")
    for n in p.nodes:
        load = Text.assemble(_bar(round(n.load * 100), 100, 10), f" {n.load:4.0%}") \
            if n.cpus else Text("-", style="dim")
        table.add_row(n.node, f"{n.cpus:g}", str(n.running), load, f"{n.fps:.1f}")
    return table
