"""The live view of a running pipeline, the plain progress lines, and the final table.

The dashboard only *reads* the pipeline's public counters (see :mod:`vidstream.stats`); it takes no
lock a stage holds, so watching never slows the work. On a terminal it is a rich ``Live``
view redrawn a few times a second; off a terminal it prints a plain line every few seconds::

    frames 120/250  fps 15.2  eta 8s  bottleneck detect
"""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Iterator
from typing import IO, Any

from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from ..bench.report import format_rate, format_usd
from ..cost import current, usd_per_100k_inferences
from ..periodic import every
from ..stats import RateWindow, StageStats, bottleneck
from ..summary import Summary


def eta_seconds(done: int, total: int | None, rate: float) -> float | None:
    """Seconds left at ``rate`` (None when the total or the rate is unknown).

    >>> eta_seconds(100, 250, 15.0)
    10.0
    """
    if not total or rate <= 0:
        return None
    return max(total - done, 0) / rate


def format_duration(seconds: float | None) -> str:
    """``75`` -> ``1:15``; ``3700`` -> ``1:01:40``; None -> ``?``."""
    if seconds is None:
        return "?"
    s = round(seconds)
    h, rem = divmod(s, 3600)
    m, s = divmod(rem, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


_HINTS = {
    "decode": "decoding limits the run: try a lower-resolution input or --threads",
    "sink": "encoding limits the run: try --preset ultrafast, or write data only (--no-video)",
    "video": "encoding limits the run: try --preset ultrafast, or write data only (--no-video)",
}


def bottleneck_hint(stats: list[StageStats], batch_size: int = 1, device: str = "") -> str:
    """The bottleneck in words, with what to try.

    >>> s = [StageStats("decode", 0, 10, 0, 0, 0.1, 0, 0.9, 1.0),
    ...      StageStats("detect", 10, 10, 0, 0, 0.95, 0.05, 0, 1.0)]
    >>> bottleneck_hint(s, batch_size=1, device="GPU (NVIDIA T4)")
    'detect is the bottleneck (busy 95%): try a larger --batch-size'
    """
    neck = bottleneck(stats)
    if neck is None:
        return "measuring..."
    head = f"{neck.name} is the bottleneck (busy {neck.busy_share:.0%})"
    if neck.name == "detect":
        if "GPU" in device:
            hint = "try a larger --batch-size" if batch_size < 8 else "try a faster model"
        else:  # measured: batching does not speed the model up on a CPU
            hint = "the model is the limit on this CPU: try a GPU (--device gpu) or more cores"
    else:
        hint = _HINTS.get(neck.name, "this stage does the most work per frame").split(": ", 1)[-1]
    return f"{head}: {hint}"


class Dashboard:
    """A rich renderable that redraws from the pipeline's counters each time it is rendered."""

    def __init__(self, pipeline: Any, *, title: str = "", price: Any = None,
                 batch_size: int = 1, window: float = 3.0) -> None:
        self.pipeline = pipeline
        self.title = title
        self.price = price
        self.batch_size = batch_size
        self.window = window
        self._rates: dict[str, RateWindow] = {}
        self._total = RateWindow(window)

    def sample(self) -> tuple[list[StageStats], dict[str, float]]:
        now = time.perf_counter()
        stats = self.pipeline.stats()
        rates = {}
        for s in stats:
            rw = self._rates.setdefault(s.name, RateWindow(self.window))
            rw.add(now, s.items_out)
            rates[s.name] = rw.rate()
        return stats, rates

    def __rich__(self) -> Group:
        stats, rates = self.sample()
        p = self.pipeline
        info = p.info
        details: dict[str, Any] = p.details()
        done = stats[-1].items_out if stats else 0
        total = info.frames if info else None
        rate = rates.get(stats[-1].name, 0.0) if stats else 0.0
        elapsed = p.elapsed_s

        table = stage_table("stage", stats, stats, rates)
        device = str(details.get("device", ""))
        lines: list[Any] = header_lines(self.title, details)
        lines.append(table)
        lines.append(Text(bottleneck_hint(stats, self.batch_size, device), style="yellow"))
        if total:
            bar = Text.assemble(_bar(done, total, 30), f" {done}/{total} frames  "
                                f"{done / total:4.0%}  elapsed {format_duration(elapsed)}  "
                                f"eta {format_duration(eta_seconds(done, total, rate))}")
        else:
            spin = "|/-\\"[int(elapsed * 4) % 4]
            bar = Text(f"{spin} {done} frames  elapsed {format_duration(elapsed)}  (live)")
        lines.append(bar)
        fps_all = done / elapsed if elapsed > 0 else 0.0
        lat = p.latency
        dropped = p.dropped
        overall = (f"fps {rate:.1f} now, {fps_all:.1f} overall  latency p50 "
                   f"{lat.percentile(50) * 1000:.0f} ms p95 {lat.percentile(95) * 1000:.0f} ms")
        if (info is not None and info.live) or dropped:
            overall += f"  dropped {dropped}"
        lines.append(Text(overall))
        counts = counts_text(p)
        if counts:
            lines.append(Text(counts, style="bold"))
        if self.price is not None:
            lines.append(cost_line(self.price, elapsed, fps_all))
        return Group(*lines)


def header_lines(title: str, details: dict[str, Any]) -> list[Any]:
    """The live views' first lines: the title, the model and its device, the remote line."""
    lines: list[Any] = [Text(title, style="bold")] if title else []
    device = str(details.get("device", ""))
    model = details.get("model")
    if model or device:
        lines.append(Text(f"model {model or '?'} on {device or '?'}", style="dim"))
    remote = remote_line(details)
    if remote:
        lines.append(Text(remote, style="dim"))
    return lines


def stage_table(first: str, rows: list[StageStats], stats: list[StageStats],
                rates: dict[str, float], batch_note: str = "") -> Table:
    """One row per stage in ``rows``: items, rate, busy/starved/blocked shares and its inbox
    (``batch_note`` after the first row's); the bottleneck of ``stats`` in red."""
    table = Table(box=None, padding=(0, 1), header_style="bold")
    for col, justify in ((first, "left"), ("items", "right"), ("fps", "right"),
                         ("busy", "right"), ("starved", "right"), ("blocked", "right"),
                         ("inbox", "left")):
        table.add_column(col, justify=justify)  # type: ignore[arg-type]
    neck = bottleneck(stats)
    for k, s in enumerate(rows):
        inbox = Text.assemble(_bar(s.queue_len, s.queue_capacity),
                              f" {s.queue_len}/{s.queue_capacity}") \
            if s.queue_capacity else Text("-", style="dim")
        if k == 0 and batch_note:
            inbox.append(batch_note)
        name = Text(s.name, style="bold red" if neck is not None and s is neck else "")
        table.add_row(name, str(s.items_out), f"{rates.get(s.name, 0.0):.1f}",
                      *(_share(v, s.wall_s) for v in (s.busy_s, s.starved_s, s.blocked_s)),
                      inbox)
    return table


def cost_line(price: Any, elapsed: float, fps: float) -> Text:
    """The live views' cost so far and per 100k inferences at ``fps``."""
    price = current(price)
    hourly = format_rate(price.usd_per_hour)
    reference = " (reference rate; --instance to change)" if price.reference else ""
    if fps <= 0:
        return Text(f"cost at {price.name} ({hourly}/h){reference}: measuring...", style="cyan")
    per_100k = usd_per_100k_inferences(price.usd_per_hour, fps)
    return Text(f"cost {format_usd(price.usd_per_hour * elapsed / 3600)} so far  "
                f"{format_usd(per_100k)} per 100k inferences at {price.name} "
                f"({hourly}/h){reference}", style="cyan")


def _ms(value: float) -> str:
    return f"{value:.1f}" if value < 10 else f"{value:.0f}"


def remote_line(details: dict[str, Any]) -> str | None:
    """The live views' line for a model on a server (the details' ``remote``), or None:

    >>> line = remote_line({"remote": {"endpoint": "triton://h:8001/m", "round_trip_ms":
    ...     {"p50": 12.3, "p95": 30.1}, "in_flight": 3, "max_in_flight": 4, "retries": 0,
    ...     "server": {"mean_batch": 3.42}, "fallback_model": "centernet",
    ...     "fallback_frames": 0, "outages": 0}})
    >>> print(*line.split("  "), sep="\\n")
    remote triton://h:8001/m
    rtt p50 12 ms p95 30 ms
    in flight 3 (max 4)
    server batch 3.4
    fallback 0 frames
    """
    r = details.get("remote")
    if not r:
        return None
    parts = [f"remote {r['endpoint']}"]
    rtt = r.get("round_trip_ms")
    parts.append(f"rtt p50 {_ms(rtt['p50'])} ms p95 {_ms(rtt['p95'])} ms" if rtt
                 else "rtt -")
    parts.append(f"in flight {r['in_flight']} (max {r['max_in_flight']})")
    if r.get("retries"):
        parts.append(f"retries {r['retries']}")
    server = r.get("server")
    if server and server.get("execution_count", 1):
        parts.append(f"server batch {server['mean_batch']:.1f}")
    if r.get("fallback_model") or r.get("fallback_frames"):
        parts.append(f"fallback {r['fallback_frames']} frames"
                     + (f" ({r['outages']} outages)" if r.get("outages") else ""))
    return "  ".join(parts)


def remote_suffix(details: dict[str, Any]) -> str | None:
    """The plain progress lines' short remote part, e.g. ``rtt p95 30 ms  in flight 3``."""
    r = details.get("remote")
    if not r:
        return None
    rtt = r.get("round_trip_ms")
    parts = [f"rtt p95 {_ms(rtt['p95'])} ms" if rtt else "rtt -",
             f"in flight {r['in_flight']}"]
    if r.get("fallback_frames"):
        parts.append(f"fallback {r['fallback_frames']}")
    return "  ".join(parts)


def remote_row(remote: dict[str, Any]) -> str:
    """The final table's ``remote`` row: what this client sent and what the server formed.

    >>> row = remote_row({"endpoint": "triton://h:8001/m", "requests": 30, "frames": 120,
    ...     "round_trip_ms": {"p50": 12.0, "p95": 30.0}, "max_in_flight": 4, "retries": 0,
    ...     "mb_sent": 94.37, "fallback_model": None, "fallback_frames": 0, "outages": 0,
    ...     "server": {"inference_count": 240, "execution_count": 70, "mean_batch": 3.43,
    ...                "batch_sizes": {"1": 10, "4": 60}}})
    >>> print(*row.split("; "), sep="\\n")
    triton://h:8001/m: 30 requests, 120 frames, rtt p50 12 ms p95 30 ms, max in flight 4, ...
    server (every client): 240 inferences in 70 runs, batch 3.4 (1: 10, 4: 60)
    """
    rtt = remote.get("round_trip_ms")
    text = (f"{remote['endpoint']}: {remote['requests']} requests, {remote['frames']} frames, "
            + (f"rtt p50 {_ms(rtt['p50'])} ms p95 {_ms(rtt['p95'])} ms, " if rtt else "")
            + f"max in flight {remote['max_in_flight']}, {remote['mb_sent']:.1f} MB sent")
    if remote.get("retries"):
        text += f", {remote['retries']} retries"
    if remote.get("fallback_model") or remote.get("fallback_frames"):
        text += (f"; fallback {remote['fallback_frames']} frames, "
                 f"{remote['outages']} outages")
    server = remote.get("server")
    if server:
        sizes = ", ".join(f"{k}: {n}" for k, n in server["batch_sizes"].items())
        text += (f"; server (every client): {server['inference_count']} inferences in "
                 f"{server['execution_count']} runs, batch {server['mean_batch']:.1f}"
                 + (f" ({sizes})" if sizes else ""))
    return text


def counts_text(pipeline: Any) -> str | None:
    """The counting lines' and zones' counts so far, e.g. ``counts: road in 12 out 3``
    (``[1] road ...`` per stream with several), or None when nothing counts."""
    reports = pipeline.streams()
    parts = []
    for r in reports:
        prefix = f"[{r.index}] " if len(reports) > 1 else ""
        for stage in pipeline.stages:
            d = stage.describe_stream(r.index)
            parts += [f"{prefix}{name} in {c['in']} out {c['out']}"
                      for name, c in (d.get("lines") or {}).items()]
            parts += [f"{prefix}{name} {z['occupancy']} in, {z['entries']} entered"
                      for name, z in (d.get("zones") or {}).items()]
    return "counts: " + "  ".join(parts) if parts else None


def _share(part: float, whole: float) -> str:
    return f"{part / whole:4.0%}" if whole > 0 else "   -"


def _bar(done: int, total: int, width: int = 12) -> str:
    filled = round(width * min(done / total, 1.0)) if total else 0
    return "█" * filled + "░" * (width - filled)


def plain_line(pipeline: Any, rate: float) -> str:
    """The progress line printed off a terminal."""
    if len(getattr(pipeline, "sources", ())) > 1:
        return streams_line(pipeline, rate)
    stats = pipeline.stats()
    done = stats[-1].items_out if stats else 0
    total = pipeline.info.frames if pipeline.info else None
    neck = bottleneck(stats)
    parts = [f"frames {done}/{total}" if total else f"frames {done}", f"fps {rate:.1f}"]
    if total:
        parts.append(f"eta {format_duration(eta_seconds(done, total, rate))}")
    if pipeline.dropped:
        parts.append(f"dropped {pipeline.dropped}")
    parts.append(f"bottleneck {neck.name if neck else '-'}")
    remote = remote_suffix(pipeline.details())
    if remote:
        parts.append(remote)
    counts = counts_text(pipeline)
    if counts:
        parts.append(counts)
    return "  ".join(parts)


class _PlainPrinter:
    def __init__(self, pipeline: Any, stream: IO[str], interval: float) -> None:
        self.pipeline, self.stream = pipeline, stream
        self.rate = RateWindow(max(interval, 3.0))

    def print(self) -> None:
        self.tick()
        print(plain_line(self.pipeline, self.rate.rate()), file=self.stream, flush=True)

    def tick(self) -> None:
        self.rate.add(time.perf_counter(), frames_done(self.pipeline))


@contextlib.contextmanager
def monitor(pipeline: Any, mode: str = "auto", *, console: Console | None = None,
            title: str = "", price: Any = None, batch_size: int = 1,
            interval: float = 5.0, stream: IO[str] | None = None) -> Iterator[None]:
    """Show progress while the body runs the pipeline.

    ``mode``: ``live`` (rich view), ``plain`` (a line every ``interval`` s on ``stream``),
    ``off``, or ``auto`` (live on a terminal, else plain).
    """
    stream = stream or sys.stderr
    console = console or Console(stderr=True)
    if mode == "auto":
        mode = "live" if console.is_terminal else "plain"
    if mode == "live":
        many = len(getattr(pipeline, "sources", ())) > 1
        view = (StreamsDashboard if many else Dashboard)(pipeline, title=title, price=price,
                                                         batch_size=batch_size)
        with Live(view, console=console, refresh_per_second=4, transient=True,
                  redirect_stdout=False, redirect_stderr=False):
            yield
    elif mode == "plain":
        printer = _PlainPrinter(pipeline, stream, interval)
        printer.tick()
        with every(interval, printer.print, name="vidstream-progress"):
            yield
    else:
        yield


def summary_table(summary: Summary, title: str = "vidstream summary") -> Group:
    """The final table: totals, each stage's share, latency and cost (as in ``--summary``)."""
    d = summary
    head = Table(box=None, show_header=False, padding=(0, 1))
    head.add_column(style="bold")
    head.add_column()
    head.add_row("frames", f"{d.frames}" + (f"  (dropped {d.dropped})" if d.dropped else "")
                 + (f"  (decode errors {d.decode_errors})" if d.decode_errors else ""))
    head.add_row("wall time", f"{d.wall_s:.2f} s  (model load {d.model_load_s:.2f} s, excluded)")
    head.add_row("throughput", f"{d.fps:.2f} fps")
    head.add_row("latency", f"p50 {d.latency.percentile(50) * 1000:.0f} ms  "
                            f"p95 {d.latency.percentile(95) * 1000:.0f} ms per frame")
    if d.details.get("model"):
        head.add_row("model", f"{d.details['model']} on {d.details.get('device', '?')}, "
                              f"batch {d.details.get('batch_size', 1)}")
    if d.details.get("remote"):
        head.add_row("remote", remote_row(d.details["remote"]))
    for name, c in (d.details.get("lines") or {}).items():
        by_class = ", ".join(f"{k} {v['in']}/{v['out']}" for k, v in c["by_class"].items())
        head.add_row(f"line {name}", f"in {c['in']}, out {c['out']}"
                     + (f"  ({by_class})" if by_class else ""))
    for name, z in (d.details.get("zones") or {}).items():
        dwell = z["dwell_s"]
        head.add_row(f"zone {name}", f"{z['entries']} entered, {z['occupancy']} in at the end"
                     + (f", dwell mean {dwell['mean']:.1f} s max {dwell['max']:.1f} s"
                        if dwell.get("visits") else ""))
    stages = Table(title=None, header_style="bold", padding=(0, 1))
    for col in ("stage", "items", "busy s", "share", "starved s", "blocked s", "fps alone"):
        stages.add_column(col, justify="left" if col == "stage" else "right")
    neck = d.bottleneck
    for s in d.stages:
        stages.add_row(Text(s.name + (" *" if neck is not None and s is neck else ""),
                            style="bold red" if neck is not None and s is neck else ""),
                       str(s.items_out), f"{s.busy_s:.2f}", f"{s.busy_share:.0%}",
                       f"{s.starved_s:.2f}", f"{s.blocked_s:.2f}", f"{s.fps:.1f}")
    parts: list[Any] = [Text(title, style="bold"), head, stages]
    if neck is not None:
        parts.append(Text(f"* bottleneck: {neck.name} (busy {neck.busy_share:.0%} of the run)",
                          style="dim"))
    cost = d.cost
    if cost is not None:
        p = cost.price
        where = ", ".join(x for x in (p.region, p.date) if x)
        per_100k = cost.usd_per_100k_inferences
        parts.append(Text(
            f"cost at {p.name} {format_rate(p.usd_per_hour)}/h{f' ({where})' if where else ''}: "
            + (f"{format_usd(per_100k)} per 100k inferences, " if per_100k != float("inf")
               else "")
            + f"{format_usd(cost.usd_total)} for this run", style="cyan"))
        if p.accelerator is not None:
            a = p.accelerator
            parts.append(Text(f"  {a.share:.1%} of {a.name} ({format_rate(a.usd_per_hour)}/h): "
                              f"{a.basis}", style="dim"))
        if p.reference:
            parts.append(Text(f"{p.note}: this machine's speed at that instance's rate",
                              style="dim"))
    return Group(*parts)


# -- many streams ------------------------------------------------------------------------------
def frames_done(pipeline: Any) -> int:
    """Frames through the whole pipeline so far, every stream together."""
    if len(getattr(pipeline, "sources", ())) > 1:
        return sum(r.frames for r in pipeline.streams())
    stats = pipeline.stats()
    return stats[-1].items_out if stats else 0


def state_counts(reports: list[Any]) -> str:
    """``"2 running, 1 live, 1 failed"``: streams by state, in the order a stream goes."""
    order = ("connecting", "running", "live", "reconnecting", "ended", "failed")
    counts = {s: sum(1 for r in reports if r.state == s) for s in order}
    return ", ".join(f"{n} {s}" for s, n in counts.items() if n)


def pick_rows(reports: list[Any], rates: dict[int, float], limit: int) -> list[Any]:
    """The streams worth a row when not all fit: failing ones first, then the busiest.

    >>> from types import SimpleNamespace as S
    >>> rs = [S(index=i, state=s) for i, s in enumerate(["running", "failed", "running"])]
    >>> [r.index for r in pick_rows(rs, {0: 1.0, 2: 9.0}, 2)]
    [1, 2]
    """
    if len(reports) <= limit:
        return list(reports)
    trouble = {"failed": 0, "reconnecting": 1, "connecting": 2}
    ranked = sorted(reports, key=lambda r: (trouble.get(r.state, 3), -rates.get(r.index, 0.0),
                                            r.index))
    return sorted(ranked[:limit], key=lambda r: r.index)


class StreamsDashboard(Dashboard):
    """The live view of a run over several streams: a row per stream (the failing and busiest
    ones when they do not all fit), the shared stages with the detector's mean batch, totals."""

    def __init__(self, pipeline: Any, *, max_rows: int = 12, **kwargs: Any) -> None:
        super().__init__(pipeline, **kwargs)
        self.max_rows = max_rows
        self._stream_rates: dict[int, RateWindow] = {}

    def __rich__(self) -> Group:
        stats, rates = self.sample()
        p = self.pipeline
        now = time.perf_counter()
        reports = p.streams()
        stream_rates = {}
        for r in reports:
            rw = self._stream_rates.setdefault(r.index, RateWindow(self.window))
            rw.add(now, r.frames)
            stream_rates[r.index] = rw.rate()
        summary = p.summary()
        done = summary.frames
        rate = sum(stream_rates.values())
        elapsed = p.elapsed_s

        table = Table(box=None, padding=(0, 1), header_style="bold")
        for col in ("stream", "input", "state", "fps", "frames", "dropped", "reconnects",
                    "p50 ms"):
            table.add_column(col, justify="left" if col in ("stream", "input", "state")
                             else "right")
        styles = {"failed": "bold red", "reconnecting": "yellow", "connecting": "dim",
                  "ended": "dim", "live": "green"}
        for r in pick_rows(reports, stream_rates, self.max_rows):
            lat = r.latency.percentile(50) * 1000 if r.latency.count else None
            table.add_row(str(r.index), _tail(r.uri), Text(r.state, style=styles.get(r.state, "")),
                          f"{stream_rates.get(r.index, 0.0):.1f}", str(r.frames),
                          str(r.dropped), str(r.reconnects),
                          "-" if lat is None else f"{lat:.0f}")
        hidden = len(reports) - min(len(reports), self.max_rows)

        shared_ids = set(getattr(p, "stage_ids", ()))
        shared = [s for s in stats if s.name in shared_ids]
        mean = summary.batching["mean"]
        stages = stage_table("shared", shared, stats, rates,
                             f"  batch {mean:.1f}/{self.batch_size}" if mean else "")
        details: dict[str, Any] = p.details()
        device = str(details.get("device", ""))
        lines: list[Any] = header_lines(self.title, details)
        lines.append(table)
        if hidden:
            rest = [r for r in reports if r not in pick_rows(reports, stream_rates,
                                                             self.max_rows)]
            lines.append(Text(f"  ... {hidden} more streams ({state_counts(rest)})",
                              style="dim"))
        lines.append(stages)
        lines.append(Text(bottleneck_hint(stats, self.batch_size, device), style="yellow"))
        fps_all = done / elapsed if elapsed > 0 else 0.0
        lat = p.latency
        lines.append(Text(
            f"{len(reports)} streams: {state_counts(reports)}  frames {done}  "
            f"fps {rate:.1f} now, {fps_all:.1f} overall  dropped {summary.dropped}  "
            f"elapsed {format_duration(elapsed)}"))
        lines.append(Text(f"latency p50 {lat.percentile(50) * 1000:.0f} ms "
                          f"p95 {lat.percentile(95) * 1000:.0f} ms"))
        counts = counts_text(p)
        if counts:
            lines.append(Text(counts, style="bold"))
        if self.price is not None:
            lines.append(cost_line(self.price, elapsed, fps_all))
        return Group(*lines)


def _tail(uri: str, width: int = 28) -> str:
    return uri if len(uri) <= width else "..." + uri[-(width - 3):]


def streams_line(pipeline: Any, rate: float) -> str:
    """The progress line off a terminal for several streams: totals and streams by state.

    ``frames 340  fps 40.1  streams 2 running, 1 failed  dropped 3  bottleneck detect``
    """
    reports = pipeline.streams()
    neck = bottleneck(pipeline.stats())
    parts = [f"frames {sum(r.frames for r in reports)}", f"fps {rate:.1f}",
             f"streams {state_counts(reports)}"]
    dropped = sum(r.dropped for r in reports)
    if dropped:
        parts.append(f"dropped {dropped}")
    parts.append(f"bottleneck {neck.name if neck else '-'}")
    remote = remote_suffix(pipeline.details())
    if remote:
        parts.append(remote)
    return "  ".join(parts)


def streams_table(summary: Summary, stems: list[str] | None = None) -> Table:
    """The final table of a run over several streams: how each ended, and why."""
    table = Table(title=None, header_style="bold", padding=(0, 1))
    for col in ("#", "stream", "state", "frames", "fps", "dropped", "errors", "reconn",
                "p95 ms"):
        table.add_column(col, justify="left" if col in ("stream", "state") else "right",
                         overflow="fold")
    for r in summary.streams:
        name = stems[r.index] if stems and r.index < len(stems) else _tail(r.uri, 20)
        state = r.state + (" (early)" if r.ended_early else "")
        table.add_row(str(r.index), name,
                      Text(state, style="bold red" if r.state == "failed" else ""),
                      str(r.frames), f"{r.fps:.1f}", str(r.dropped), str(r.decode_errors),
                      str(r.reconnects),
                      f"{r.latency.percentile(95) * 1000:.0f}" if r.latency.count else "-")
    return table
