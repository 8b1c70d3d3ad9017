"""``vidstream report``: its flags and the terminal table with bars.

The ranking, the recommendation and the markdown/csv/json/PNG renderings are
:mod:`vidstream.bench.report`'s; the rich table is drawn here::

    vidstream report c5.json g4dn.json --target-fps 15 --plot cost.png
"""

from __future__ import annotations

import argparse
import sys
import textwrap
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rich import box
from rich.console import Console, Group
from rich.table import Table
from rich.text import Text

from ..bench.report import (
    COLUMNS,
    FORMATS,
    SHORT_COLUMNS,
    Recommendation,
    Run,
    format_usd,
    load_runs,
    plot,
    rank,
    recommend,
    render,
    table_rows,
)
from ..errors import OutputError
from .common import EXIT_OK, Formatter, console, flag_names, positive_float

FORMATS_CLI = ("table", *FORMATS)


def add_commands(sub: Any) -> None:
    """Register ``report``."""
    report = sub.add_parser(
        "report",
        help="compare saved bench runs by cost, recommend a configuration",
        description=textwrap.fill(
            "Merge the runs of 'vidstream bench --save' files (and 'vidstream detect "
            "--summary' files) from any number of machines into one table sorted by cost per "
            "100k inferences, the cheapest and the fastest marked. With --target-fps or "
            "--max-latency-ms it walks from the largest configuration down, as the "
            "EIPredictor write-up did, and names the cheapest one that still meets the target."
        ),
        epilog="example:\n  vidstream report c5.json g4dn.json --target-fps 15 --plot cost.png",
        formatter_class=Formatter,
    )
    report.add_argument("files", nargs="+", metavar="FILE.json", help="bench or summary files")
    report.add_argument("--target-fps", type=positive_float, metavar="X",
                        help="frames per second the configuration must sustain")
    report.add_argument("--max-latency-ms", type=positive_float, metavar="Y",
                        help="per-frame latency (p95) the configuration must stay under")
    report.add_argument("--format", choices=FORMATS_CLI, default="table",
                        help="table: for the terminal, with bars; markdown, csv, json: for "
                        "reports")
    report.add_argument("-o", "--output", metavar="FILE", help="write the report to FILE "
                        "instead of stdout")
    report.add_argument("--plot", metavar="FILE.png",
                        help="draw latency and cost per 100k per configuration (needs "
                        "matplotlib: pip install 'vidstream[plot]')")
    report.add_argument("-y", "--overwrite", action="store_true",
                        help="overwrite --output and --plot files")
    report.set_defaults(func=cmd_report, flags=flag_names(report, fmt="--format"))


def cmd_report(args: argparse.Namespace) -> int:
    from ..sinks import check_output

    for path in (args.output, args.plot):
        if path:
            check_output(path, args.overwrite)
    runs = load_runs(args.files)
    rec = recommend(runs, args.target_fps, args.max_latency_ms)
    if args.format == "table":
        if args.output:
            recorder = Console(highlight=False, width=140, record=True)
            with recorder.capture():
                recorder.print(render_table(runs, rec))
            _write(args.output, recorder.export_text())
        else:
            console().print(render_table(runs, rec))
    else:
        text = render(args.format, runs, rec)
        if args.output:
            _write(args.output, text)
        else:
            sys.stdout.write(text)
    if args.plot:
        path = plot(runs, args.plot, rec)
        print(f"wrote {path}", file=sys.stderr)
    if args.output:
        print(f"wrote {args.output}", file=sys.stderr)
    return EXIT_OK


def render_table(runs: Sequence[Run], rec: Recommendation | None = None) -> Group:
    """A rich renderable: the table sorted by cost, the two charts as bars, the advice."""
    ranked = rank(runs)
    table = Table(header_style="bold", title="cost per configuration, cheapest first",
                  title_justify="left", box=box.SIMPLE_HEAD)
    for col in COLUMNS:
        table.add_column(SHORT_COLUMNS.get(col, col),
                         justify="left" if col in ("configuration", "note") else "right")
    for row in table_rows(ranked, rec):
        style = "bold green" if "pick" in row[-1] else ("green" if "cheapest" in row[-1]
                                                        else "")
        table.add_row(*row, style=style)
    parts: list[Any] = [table]
    width = max((len(r.configuration) for r in ranked), default=10)
    charts: tuple[tuple[str, Any, Any], ...] = (
        ("latency p50 per frame (ms)", lambda r: r.p50_ms, lambda v: f"{v:.0f} ms"),
        ("cost per 100k inferences", lambda r: r.usd_per_100k_inferences, format_usd),
    )
    for title, value, fmt in charts:
        values = [value(r) for r in ranked]
        top = max((v for v in values if v is not None), default=0.0)
        parts.append(Text(f"\n{title}", style="bold"))
        for r, v in zip(ranked, values, strict=True):
            bar = "█" * max(1, round(30 * v / top)) if v and top else ""
            parts.append(Text(f"{r.configuration:<{width}}  {bar} {fmt(v)}"))
    if rec is not None:
        parts.append(Text(""))
        parts += [Text(a, style="bold cyan" if a.startswith("Pick") else "")
                  for a in rec.lines()]
    return Group(*parts)


def _write(path: str, text: str) -> None:
    try:
        Path(path).write_text(text)
    except OSError as e:
        raise OutputError(f"{path}: cannot write: {e.strerror or e}") from None
