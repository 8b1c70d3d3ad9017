"""Can an output be written? Asked before any work, so a run never fails at its end.

>>> check_output("new.mp4", overwrite=False).name
'new.mp4'
>>> check_output("/", overwrite=True)
Traceback (most recent call last):
...
vidstream.errors.OutputError: /: is a directory
"""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import OutputError


def check_output(path: str | os.PathLike[str], overwrite: bool) -> Path:
    """Refuse, before any work, an output that exists (without ``overwrite``) or can't be
    written; returns the path."""
    p = Path(path)
    if p.exists() and p.is_dir():
        raise OutputError(f"{p}: is a directory")
    if p.exists() and not overwrite:
        raise OutputError(f"{p}: already exists", param="overwrite")
    parent = p.parent if str(p.parent) else Path(".")
    if not parent.is_dir():
        raise OutputError(f"{p}: directory {parent} does not exist")
    if not os.access(parent, os.W_OK) or (p.exists() and not os.access(p, os.W_OK)):
        raise OutputError(f"{p}: permission denied")
    probe_writable(p)
    return p


def probe_writable(p: Path) -> None:
    """Create (and remove) the file, or open it for appending: the only check that does not lie.

    ``os.access`` says yes to root everywhere, and to anyone on a read-only mount or in /proc.
    """
    try:
        if p.exists():
            with p.open("ab"):
                pass
        else:
            with p.open("xb"):
                pass
            p.unlink()
    except OSError as e:
        raise OutputError(f"{p}: cannot write: {e.strerror or e}") from None
