"""Compare measured runs by cost: the write-up's table, its two charts, and a recommendation.

The EIPredictor write-up chose a deployment by running one detector on many instance and
accelerator combinations and pricing each per 100k inferences: "start with the largest
accelerator and client instance, work backwards until you find a combo that is too small".
:func:`recommend` is that method; :func:`load_runs` reads what ``vidstream bench --save``
wrote (from any number of machines) and ``vidstream detect --summary`` files alike::

    runs = load_runs(["c5.json", "g4dn.json"])
    rec = recommend(runs, target_fps=15)
    print(rec.pick.configuration, *rec.advice, sep="\\n")

Every number here is read from a :class:`~vidstream.summary.Summary` (``to_dict()``): the
report never recomputes fps, latency or cost.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from ..settings import DEFAULTS

FORMATS = ("markdown", "csv", "json")


@dataclass(frozen=True)
class Run:
    """One measured configuration: where it ran, how, how fast, and what it cost.

    ``label`` names the machine (an instance type or a name the user gave); ``latency_ms``
    holds the per-frame latency percentiles of the run (``p50``, ``p95``, ...), from
    decode to written; ``busy_shares`` each stage's busy share of the run.
    """

    label: str
    model: str
    device: str
    batch_size: int
    fps: float
    latency_ms: dict[str, float]
    frames: int = 0
    wall_s: float = 0.0
    instance: str | None = None
    usd_per_hour: float | None = None
    usd_per_100k_inferences: float | None = None
    threads: int | None = None
    queue_size: int | None = None
    device_used: str = ""
    model_load_s: float | None = None
    warmup_s: float | None = None
    startup_s: float | None = None
    peak_memory_mib: float | None = None
    gpu_peak_memory_mib: float | None = None
    busy_shares: dict[str, float] = field(default_factory=dict)
    bottleneck: str | None = None
    price_region: str = ""
    price_date: str = ""
    price_source: str = ""
    # a client of a shared server: the server's instance and this client's share of it
    accelerator: str | None = None
    accelerator_share: float | None = None
    source_file: str = ""

    @property
    def setup(self) -> str:
        """``model device batch N [T threads] [queue Q]``: how it ran, without where."""
        kind = "gpu" if self.device_used.upper().startswith("GPU") else (
            "cpu" if self.device_used else self.device)
        text = f"{self.model} {kind} batch {self.batch_size}"
        if self.threads:
            text += f" {self.threads} threads"
        if self.queue_size and self.queue_size != DEFAULTS.queue_size:  # default: say nothing
            text += f" queue {self.queue_size}"
        return text

    @property
    def configuration(self) -> str:
        """``label: setup``, the row name in every report."""
        return f"{self.label}: {self.setup}"

    @property
    def p50_ms(self) -> float:
        return float(self.latency_ms.get("p50", 0.0))

    @property
    def p95_ms(self) -> float:
        return float(self.latency_ms.get("p95", 0.0))

    @property
    def priced(self) -> bool:
        return self.usd_per_hour is not None and self.usd_per_100k_inferences is not None

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("source_file")
        return {"configuration": self.configuration, **d}

    @classmethod
    def from_summary(cls, summary: dict[str, Any], *, label: str | None = None,
                     device: str | None = None, threads: int | None = None,
                     **extra: Any) -> Run:
        """A run from a ``Summary.to_dict()`` (what ``detect --summary`` writes).

        >>> s = {"frames": 10, "wall_s": 1.0, "fps": 10.0, "model": "m", "device": "CPU",
        ...      "batch_size": 1, "latency_ms": {"p50": 90.0}, "stages": {},
        ...      "cost": {"instance": "c5.4xlarge", "usd_per_hour": 0.68,
        ...               "usd_per_100k_inferences": 1.8889}}
        >>> Run.from_summary(s).configuration
        'c5.4xlarge: m cpu batch 1'
        """
        cost = summary.get("cost") or {}
        shared = cost.get("accelerator") or {}
        stages = summary.get("stages") or {}
        detect = stages.get("detect") or {}
        cluster = summary.get("cluster")  # a cluster run's merged summary: say so
        where = cost.get("instance") or "unpriced"
        if cluster:
            where = f"{where} x {cluster.get('nodes', 1)} (Ray, {cluster.get('tasks', 0)} tasks)"
        return cls(
            label=label or where,
            instance=cost.get("instance"),
            usd_per_hour=cost.get("usd_per_hour"),
            usd_per_100k_inferences=cost.get("usd_per_100k_inferences"),
            price_region=cost.get("region") or "",
            price_date=cost.get("price_date") or "",
            price_source=cost.get("price_source") or "",
            accelerator=shared.get("name"),
            accelerator_share=shared.get("share"),
            model=str(summary.get("model") or "?"),
            device=device or "auto",
            device_used=str(summary.get("device") or ""),
            batch_size=int(summary.get("batch_size") or 1),
            threads=threads,
            queue_size=detect.get("queue_capacity") or None,
            frames=int(summary["frames"]),
            wall_s=float(summary["wall_s"]),
            fps=float(summary["fps"]),
            latency_ms=dict(summary.get("latency_ms") or {}),
            model_load_s=summary.get("model_load_s"),
            busy_shares={k: v.get("busy_share", 0.0) for k, v in stages.items()},
            bottleneck=summary.get("bottleneck"),
            **extra,
        )

    @classmethod
    def from_dict(cls, d: dict[str, Any], where: str = "run") -> Run:
        """A run as ``to_dict()`` wrote it; errors name ``where`` and the missing field."""
        if not isinstance(d, dict):
            raise ConfigError(f"{where}: expected an object, got {type(d).__name__}")
        for key in ("label", "model", "batch_size", "fps", "latency_ms"):
            if key not in d:
                raise ConfigError(f"{where}: missing {key!r}")
        known = set(cls.__dataclass_fields__) - {"source_file"}
        kwargs = {k: v for k, v in d.items() if k in known}
        kwargs.setdefault("device", "auto")
        try:
            kwargs["fps"] = float(kwargs["fps"])
            kwargs["batch_size"] = int(kwargs["batch_size"])
        except (TypeError, ValueError):
            raise ConfigError(f"{where}: fps and batch_size must be numbers") from None
        if not isinstance(kwargs["latency_ms"], dict):
            raise ConfigError(f"{where}: latency_ms must be an object of percentiles")
        return cls(**kwargs)


def load_runs(paths: Iterable[str | Path]) -> list[Run]:
    """Runs from ``bench --save`` files and ``detect --summary`` files, in the order given."""
    runs: list[Run] = []
    for p in map(Path, paths):
        try:
            data = json.loads(p.read_text())
        except FileNotFoundError:
            raise ConfigError(f"{p}: no such file") from None
        except OSError as e:
            raise ConfigError(f"{p}: cannot read: {e.strerror or e}") from None
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise ConfigError(f"{p}: not valid JSON: {e}") from None
        if isinstance(data, dict) and isinstance(data.get("runs"), list):
            found = [Run.from_dict(r, f"{p}: run #{i + 1}") for i, r in enumerate(data["runs"])]
        elif isinstance(data, dict) and {"frames", "fps", "stages"} <= set(data):
            try:
                found = [Run.from_summary(data)]
            except (KeyError, TypeError, ValueError) as e:
                raise ConfigError(f"{p}: not a complete run summary: {e}") from None
        else:
            raise ConfigError(
                f"{p}: neither a 'vidstream bench --save' file (no \"runs\" list) nor a "
                "'vidstream detect --summary' file"
            )
        runs.extend(replace(r, source_file=str(p)) for r in found)
    if not runs:
        raise ConfigError("no runs in " + ", ".join(map(str, paths)))
    return runs


# -- ranking and the recommendation ----------------------------------------------------------
def rank(runs: Iterable[Run]) -> list[Run]:
    """Cheapest per 100k inferences first; unpriced runs last, fastest first among them."""
    return sorted(runs, key=lambda r: (not r.priced, r.usd_per_100k_inferences or 0.0,
                                       -r.fps))


def cheapest(runs: Iterable[Run]) -> Run | None:
    """The priced run with the lowest cost per 100k inferences."""
    priced = [r for r in runs if r.priced]
    return min(priced, key=lambda r: (r.usd_per_100k_inferences, -r.fps)) if priced else None


def fastest(runs: Iterable[Run]) -> Run | None:
    """The run with the highest throughput."""
    runs = list(runs)
    return max(runs, key=lambda r: r.fps) if runs else None


@dataclass(frozen=True)
class Recommendation:
    """The cheapest configuration that meets a target, and how the walk down got there.

    ``pick`` is the configuration with the lowest price per hour among those that meet every
    target (a stream runs all hour whatever the machine's spare capacity); ``meets`` and
    ``too_small`` split the runs; ``advice`` says it in words.
    """

    target_fps: float | None
    max_latency_ms: float | None
    pick: Run | None
    meets: list[Run]
    too_small: list[Run]
    steps: list[str]
    advice: list[str]

    def lines(self) -> list[str]:
        """The advice, with the walk's steps indented under its first line."""
        if not self.steps:
            return list(self.advice)
        return [self.advice[0], *(f"  {i}. {s}" for i, s in enumerate(self.steps, 1)),
                *self.advice[1:]]

    def to_dict(self) -> dict[str, Any]:
        return {
            "target_fps": self.target_fps,
            "max_latency_ms": self.max_latency_ms,
            "pick": self.pick.configuration if self.pick else None,
            "meets": [r.configuration for r in self.meets],
            "too_small": [r.configuration for r in self.too_small],
            "steps": self.steps,
            "advice": self.advice,
        }


def shortfall(run: Run, target_fps: float | None, max_latency_ms: float | None) -> str | None:
    """Why ``run`` misses the targets (None when it meets them). Latency is the p95."""
    reasons = []
    if target_fps is not None and run.fps < target_fps:
        reasons.append(f"{run.fps:.1f} fps < {_num(target_fps)} fps")
    if max_latency_ms is not None and run.p95_ms > max_latency_ms:
        reasons.append(f"p95 latency {run.p95_ms:.0f} ms > {_num(max_latency_ms)} ms")
    return ", ".join(reasons) or None


def recommend(runs: Sequence[Run], target_fps: float | None = None,
              max_latency_ms: float | None = None) -> Recommendation:
    """The write-up's method: walk from the largest configuration down until one is too small.

    >>> fast = Run("big", "m", "gpu", 1, fps=40.0, latency_ms={"p95": 50.0}, usd_per_hour=1.0,
    ...            usd_per_100k_inferences=0.69)
    >>> slow = Run("small", "m", "cpu", 1, fps=12.0, latency_ms={"p95": 200.0},
    ...            usd_per_hour=0.2, usd_per_100k_inferences=0.46)
    >>> recommend([fast, slow], target_fps=10).pick.label
    'small'
    >>> recommend([fast, slow], target_fps=10, max_latency_ms=100).pick.label
    'big'
    """
    for name, value in (("target_fps", target_fps), ("max_latency_ms", max_latency_ms)):
        if value is not None and not (value > 0 and math.isfinite(value)):
            raise ConfigError(f"{name} must be a number > 0, got {value}", param=name)
    runs = list(runs)
    cheap, fast = cheapest(runs), fastest(runs)
    advice: list[str] = []
    if target_fps is None and max_latency_ms is None:
        if cheap is not None:
            advice.append(f"Cheapest per inference: {cheap.configuration}, "
                          f"{format_usd(cheap.usd_per_100k_inferences)} per 100k inferences "
                          f"at {format_rate(cheap.usd_per_hour)}/h.")
        if fast is not None:
            advice.append(f"Fastest: {fast.configuration}, {fast.fps:.1f} fps.")
        advice.append("Give --target-fps or --max-latency-ms to find the cheapest "
                      "configuration that is fast enough.")
        if cheap is None:
            advice.append(_NO_PRICE)
        advice += compare_deployments(runs)
        return Recommendation(None, None, None, [], [], [], advice)

    target = " and ".join(
        t for t in (f"{_num(target_fps)} fps" if target_fps is not None else "",
                    f"p95 latency <= {_num(max_latency_ms)} ms"
                    if max_latency_ms is not None else "") if t)
    # largest first: the dearest machine, and on one machine the fastest configuration
    order = sorted(runs, key=lambda r: (-(r.usd_per_hour or 0.0), -r.fps))
    meets = [r for r in order if shortfall(r, target_fps, max_latency_ms) is None]
    too_small = [r for r in order if r not in meets]
    priced = [r for r in meets if r.priced]
    pick = min(priced, key=lambda r: (r.usd_per_hour, r.usd_per_100k_inferences, -r.fps)
               ) if priced else None

    steps = []
    for r in order:
        why = shortfall(r, target_fps, max_latency_ms)
        price = f", {format_rate(r.usd_per_hour)}/h" if r.usd_per_hour is not None else ""
        steps.append(f"{r.configuration} ({r.fps:.1f} fps, p95 {r.p95_ms:.0f} ms{price}) "
                     + (f"is too small: {why}" if why else "meets it"))
    advice.append(f"Target: {target}. Working backwards from the largest configuration:")
    if pick is not None:
        streams = int(pick.fps // target_fps) if target_fps else 0
        room = f"; it has room for {streams} such streams" if streams > 1 else ""
        advice.append(
            f"Pick {pick.configuration}: the cheapest that meets {target}, "
            f"{format_rate(pick.usd_per_hour)}/h, "
            f"{format_usd(pick.usd_per_100k_inferences)} per 100k "
            f"inferences at {pick.fps:.1f} fps{room}.")
        per_inference = min(priced, key=lambda r: r.usd_per_100k_inferences or 0.0)
        if per_inference is not pick:
            advice.append(
                f"With enough streams to keep a machine busy, {per_inference.configuration} "
                f"costs less per inference: {format_usd(per_inference.usd_per_100k_inferences)} "
                f"per 100k at {format_rate(per_inference.usd_per_hour)}/h.")
    elif meets:
        advice.append(f"{len(meets)} configuration(s) meet {target}, but none is priced. "
                      + _NO_PRICE)
    else:
        slow = target_fps is not None and all(r.fps < target_fps for r in runs)
        if slow and fast is not None:
            best = f"the fastest, {fast.configuration}, reaches {fast.fps:.1f} fps"
            hint = "a larger instance, a GPU (--device gpu) or larger --batch-sizes"
        else:
            quick = min(runs, key=lambda r: r.p95_ms)
            best = f"the quickest, {quick.configuration}, has p95 {quick.p95_ms:.0f} ms"
            hint = ("a faster machine or a GPU, smaller batches, or a shorter --queue-size "
                    "(frames wait in the queues before the detector)")
        advice.append(f"None of the {len(runs)} configurations meets {target}; {best}. "
                      f"Measure {hint}.")
    advice += compare_deployments(runs)
    return Recommendation(target_fps, max_latency_ms, pick, meets, too_small, steps, advice)


def compare_deployments(runs: Sequence[Run]) -> list[str]:
    """The write-up's question with today's parts: one machine running the model, or small
    clients sharing an accelerator over the network? The cheapest of each, per inference
    (empty unless both kinds were measured and priced).

    >>> big = Run("c7i.4xlarge", "m", "cpu", 4, fps=20.0, latency_ms={}, usd_per_hour=0.714,
    ...           usd_per_100k_inferences=0.99)
    >>> small = Run("c7i.large + 25% of g5.xlarge", "m", "auto", 4, fps=15.0, latency_ms={},
    ...             usd_per_hour=0.34, usd_per_100k_inferences=0.63, accelerator="g5.xlarge",
    ...             accelerator_share=0.25)
    >>> print(compare_deployments([big, small])[0])  # doctest: +ELLIPSIS
    One machine or small clients sharing an accelerator: ... costs $0.63 per 100k ... 0.64x ...
    """
    one = cheapest(r for r in runs if r.accelerator is None)
    shared = cheapest(r for r in runs if r.accelerator is not None)
    if one is None or shared is None:
        return []
    assert one.usd_per_100k_inferences and shared.usd_per_100k_inferences is not None
    ratio = shared.usd_per_100k_inferences / one.usd_per_100k_inferences
    share = (f", {shared.accelerator_share:.0%} of {shared.accelerator} each"
             if shared.accelerator_share is not None else "")
    verdict = ("cheaper" if ratio < 1 else "dearer" if ratio > 1 else "the same")
    return [f"One machine or small clients sharing an accelerator: {shared.configuration} "
            f"costs {format_usd(shared.usd_per_100k_inferences)} per 100k inferences "
            f"({shared.fps:.1f} fps per client at {format_rate(shared.usd_per_hour)}/h{share}), "
            f"{one.configuration} {format_usd(one.usd_per_100k_inferences)} "
            f"({one.fps:.1f} fps at {format_rate(one.usd_per_hour)}/h): the shared "
            f"accelerator is {ratio:.2f}x the cost per inference ({verdict})."]


_NO_PRICE = ("Runs carry no price: bench with --instance NAME or --price-per-hour X to "
             "compare costs.")


# -- rendering -------------------------------------------------------------------------------
def format_usd(value: float | None) -> str:
    """Dollars as a report shows them.

    Under a cent, two significant digits, however small: a fast, cheap configuration is
    not shown as costing nothing.

    >>> format_usd(2.2), format_usd(0.0042), format_usd(0.0000417), format_usd(None)
    ('$2.20', '$0.0042', '$0.000042', '-')
    """
    if value is None:
        return "-"
    if 0 < abs(value) < 0.01:
        digits = max(4, 1 - math.floor(math.log10(abs(value))))
        return f"${value:.{digits}f}"
    return f"${value:.2f}"


def format_rate(value: float | None) -> str:
    """An hourly price as the catalog states it.

    >>> format_rate(0.085), format_rate(0.68), format_rate(0.08925), format_rate(2.24208)
    ('$0.085', '$0.68', '$0.08925', '$2.24208')
    """
    if value is None:
        return "-"
    text = f"{value:.6f}".rstrip("0")
    return "$" + (text + "0" * (2 - len(text.split(".")[1])))


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:g}"


def _marks(run: Run, cheap: Run | None, fast: Run | None, rec: Recommendation | None) -> str:
    marks = []
    if rec is not None and rec.pick is run:
        marks.append("pick")
    if cheap is run:
        marks.append("cheapest")
    if fast is run:
        marks.append("fastest")
    if rec is not None and (rec.target_fps or rec.max_latency_ms) and run in rec.too_small:
        marks.append("too small")
    return ", ".join(marks)


COLUMNS = ("configuration", "$/hour", "fps", "latency p50 ms", "latency p95 ms",
            "$ per 100k inferences", "note")
SHORT_COLUMNS = {"latency p50 ms": "p50 ms", "latency p95 ms": "p95 ms",
          "$ per 100k inferences": "$ per 100k"}


def table_rows(runs: list[Run], rec: Recommendation | None) -> list[list[str]]:
    """One row of strings per run, in the order given, under :data:`COLUMNS`."""
    cheap, fast = cheapest(runs), fastest(runs)
    return [[r.configuration, format_rate(r.usd_per_hour), f"{r.fps:.2f}", f"{r.p50_ms:.1f}",
             f"{r.p95_ms:.1f}", format_usd(r.usd_per_100k_inferences), _marks(r, cheap, fast, rec)]
            for r in runs]


def render_markdown(runs: Sequence[Run], rec: Recommendation | None = None) -> str:
    """The table (sorted by cost) and the advice, as Markdown."""
    ranked = rank(runs)
    lines = ["| " + " | ".join(COLUMNS) + " |",
             "|" + "|".join(["---"] + ["---:"] * (len(COLUMNS) - 2) + ["---"]) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in table_rows(ranked, rec)]
    if rec is not None:
        lines.append("")
        lines += [f"  {a.strip()}" if a.startswith("  ") else f"- {a}" for a in rec.lines()]
    return "\n".join(lines) + "\n"


def render_csv(runs: Sequence[Run], rec: Recommendation | None = None) -> str:
    """One row per run (sorted by cost), every measured field, and its marks."""
    ranked = rank(runs)
    cheap, fast = cheapest(ranked), fastest(ranked)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    header = ["configuration", "label", "instance", "model", "device", "batch_size", "threads",
              "usd_per_hour", "fps", "latency_p50_ms", "latency_p95_ms",
              "usd_per_100k_inferences", "model_load_s", "peak_memory_mib", "bottleneck",
              "price_region", "price_date", "price_source", "marks", "file"]
    writer.writerow(header)
    for r in ranked:
        writer.writerow([r.configuration, r.label, r.instance or "", r.model, r.device,
                         r.batch_size, r.threads or "", _blank(r.usd_per_hour), r.fps,
                         r.p50_ms, r.p95_ms, _blank(r.usd_per_100k_inferences),
                         _blank(r.model_load_s), _blank(r.peak_memory_mib), r.bottleneck or "",
                         r.price_region, r.price_date, r.price_source,
                         _marks(r, cheap, fast, rec), r.source_file])
    return out.getvalue()


def _blank(value: Any) -> Any:
    return "" if value is None else value


def render_json(runs: Sequence[Run], rec: Recommendation | None = None) -> str:
    ranked = rank(runs)
    cheap, fast = cheapest(ranked), fastest(ranked)
    data = {
        "runs": [{**r.to_dict(), "file": r.source_file, "marks": _marks(r, cheap, fast, rec)}
                 for r in ranked],
        "cheapest": cheap.configuration if cheap else None,
        "fastest": fast.configuration if fast else None,
        "recommendation": rec.to_dict() if rec else None,
    }
    return json.dumps(data, indent=2) + "\n"


def render(fmt: str, runs: Sequence[Run], rec: Recommendation | None = None) -> str:
    """``markdown``, ``csv`` or ``json`` text (the command line's ``table`` is its own)."""
    if fmt == "markdown":
        return render_markdown(runs, rec)
    if fmt == "csv":
        return render_csv(runs, rec)
    if fmt == "json":
        return render_json(runs, rec)
    raise ConfigError(f"unknown report format {fmt!r}; use one of {', '.join(FORMATS)}",
                      param="fmt")


# -- the charts ------------------------------------------------------------------------------
def plot(runs: Sequence[Run], path: str | Path, rec: Recommendation | None = None) -> Path:
    """The write-up's two charts, latency and cost per 100k per configuration, as a PNG.

    Needs matplotlib (``pip install 'vidstream[plot]'``).
    """
    try:
        import matplotlib

        matplotlib.use("Agg")  # files only: no display needed
        import matplotlib.pyplot as plt
    except ImportError:
        raise ConfigError("charts need matplotlib: pip install 'vidstream[plot]'") from None
    ranked = rank(runs)
    cheap, fast = cheapest(ranked), fastest(ranked)
    pick = rec.pick if rec is not None else None
    names = [r.configuration for r in ranked]
    colors = ["tab:green" if r is pick or (pick is None and r is cheap) else
              "tab:orange" if r is fast else "tab:blue" for r in ranked]
    height = 1.2 + 0.45 * len(ranked)
    fig, (ax_lat, ax_cost) = plt.subplots(1, 2, figsize=(13, height), sharey=True)
    try:
        y = list(range(len(ranked)))
        p50 = [r.p50_ms for r in ranked]
        p95 = [max(r.p95_ms - r.p50_ms, 0.0) for r in ranked]
        ax_lat.barh(y, p50, xerr=[[0] * len(y), p95], color=colors, capsize=3)
        ax_lat.set_title("Latency per frame, ms (p50, whisker to p95)")
        ax_lat.set_yticks(y, names)
        ax_lat.invert_yaxis()
        cost = [r.usd_per_100k_inferences or 0.0 for r in ranked]
        bars = ax_cost.barh(y, cost, color=colors)
        ax_cost.set_title("Cost per 100k inferences, USD")
        for bar, r in zip(bars, ranked, strict=True):
            label = format_usd(r.usd_per_100k_inferences) if r.priced else "no price"
            ax_cost.annotate(f" {label}", (bar.get_width(), bar.get_y() + bar.get_height() / 2),
                             va="center", fontsize=8)
        for ax in (ax_lat, ax_cost):
            ax.grid(axis="x", alpha=0.3)
            ax.margins(x=0.15)
        fig.suptitle("green: " + ("recommended" if pick else "cheapest") + ", orange: fastest",
                     fontsize=9)
        fig.tight_layout()
        out = Path(path)
        try:
            fig.savefig(out, format="png", dpi=100)
        except OSError as e:
            raise ConfigError(f"{out}: cannot write the chart: {e.strerror or e}") from None
    finally:
        plt.close(fig)
    return out
