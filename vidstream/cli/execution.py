"""Running one pipeline from the command line: build, open, watch, stop on Ctrl-C, summarize.

Shared by every command that runs a pipeline, with one input or several.
"""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Callable, Iterator
from typing import Any

from rich.console import Console

from ..backends.remote import is_remote
from ..config import RunConfig, build_pipeline
from ..cost import PriceLike, resolve_price
from ..errors import VidstreamError
from ..remote_cost import SharedPricing, price_now, run_pricing
from ..summary import Summary
from .common import EXIT_INTERRUPTED
from .dashboard import monitor


@contextlib.contextmanager
def metrics_for(pipeline: Any, cfg: RunConfig, price: Any, console: Console,
                quiet: bool) -> Iterator[Any]:
    """Serve ``pipeline``'s metrics while the block runs, when ``cfg.metrics_port`` asks."""
    if cfg.metrics_port is None:
        yield None
        return
    from ..metrics import LOOPBACK, serve_metrics

    if cfg.metrics_host not in LOOPBACK:
        console.print(f"[yellow]vidstream: warning: metrics listen on {cfg.metrics_host}, "
                      "beyond this machine, with no authentication[/yellow]", soft_wrap=True)
    server = serve_metrics(pipeline, cfg.metrics_port, cfg.metrics_host, price)
    try:
        if not quiet:
            console.print(f"metrics at {server.url}", soft_wrap=True, highlight=False)
        yield server
    finally:
        server.close()


def run_pipeline(cfg: RunConfig, console: Console, display: str, interval: float,
                 title: str) -> tuple[Any, Summary, VidstreamError | None]:
    """Build and run ``cfg``'s pipeline with the live view (or progress lines) and the stop
    handlers; returns the pipeline, its priced summary and the run's error, if any.

    Input, model and output errors surface at ``open()``, before any work, and are raised.
    """
    quiet = display == "quiet"
    pricing = run_pricing(resolve_price(cfg.instance, cfg.price_per_hour, cfg.catalog),
                          cfg.accelerator_instance, cfg.accelerator_share, cfg.catalog)
    if cfg.tf_threads:
        # lazily: TensorFlow loads only for a run that needs it
        from ..tfruntime import configure_threads

        configure_threads(cfg.tf_threads)

    def progress(message: str) -> None:
        if not quiet:
            console.print(f"[dim]{message}[/dim]")

    pipeline = build_pipeline(cfg, progress=progress)
    error: VidstreamError | None = None
    price: PriceLike
    if isinstance(pricing, SharedPricing):  # the share changes as the run goes
        price = lambda: price_now(pricing, pipeline.details())  # noqa: E731
    else:
        price = pricing
    if not isinstance(pricing, SharedPricing) and is_remote(cfg.model) and not quiet:
        console.print("[dim]vidstream: note: the model runs on a server: the cost covers this "
                      "machine only (--accelerator-instance NAME adds its share of the "
                      "server)[/dim]", soft_wrap=True)
    with pipeline, metrics_for(pipeline, cfg, price, console, quiet):
        pipeline.open()
        restore = install_stop_handlers(pipeline, console, quiet)
        try:
            mode = "off" if display in ("off", "quiet") else "auto"
            with monitor(pipeline, mode, console=console, title=title, price=price,
                         batch_size=cfg.batch_size, interval=interval):
                try:
                    pipeline.run()
                except VidstreamError as e:
                    error = e
        finally:
            restore()
        summary = pipeline.summary()
        summary = summary.with_price(price_now(pricing, summary.details))
    return pipeline, summary, error


def install_stop_handlers(pipeline: Any, console: Console, quiet: bool) -> Callable[[], None]:
    """First Ctrl-C/SIGTERM: stop reading, finish frames in flight. Second: abort. Third: exit."""
    presses = {"n": 0}

    def handler(signum: int, _frame: Any) -> None:
        presses["n"] += 1
        if presses["n"] == 1:
            pipeline.stop()
            if not quiet:
                console.print("[yellow]vidstream: stopping: finishing frames in flight "
                              "(press Ctrl-C again to abort)[/yellow]")
        elif presses["n"] == 2:
            pipeline.abort()
            if not quiet:
                console.print("[yellow]vidstream: aborting[/yellow]")
        else:
            os._exit(EXIT_INTERRUPTED)

    previous = {}
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            previous[sig] = signal.signal(sig, handler)
        except ValueError:  # not the main thread: leave signals alone
            pass

    def restore() -> None:
        for sig, old in previous.items():
            signal.signal(sig, old)

    return restore
