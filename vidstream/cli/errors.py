"""Library errors as the command line says them: one line, naming a flag, not a parameter.

A :class:`~vidstream.errors.VidstreamError` names the API parameter that would help
(``param="max_pixels"``); here that becomes the flag of the command that ran:

>>> from vidstream.errors import FrameTooLargeError, OutputError
>>> error_line(FrameTooLargeError("x.mp4: frame size 9000x9000 is too large",
...                               param="max_pixels"))
'x.mp4: frame size 9000x9000 is too large (see --max-pixels)'
>>> error_line(OutputError("o.mp4: already exists", param="overwrite"))
'o.mp4: already exists (use -y to overwrite)'
"""

from __future__ import annotations

import sys
from collections.abc import Mapping

from ..errors import VidstreamError

# Some API parameters are spelled differently from the RunConfig field the flags follow
# (build_pipeline passes stall_timeout as VideoSource's open_timeout too).
_ALIASES = {"capacity": "queue_size", "open_timeout": "stall_timeout"}

# Hints worded as an action rather than "see FLAG".
_ACTIONS = {"overwrite": "(use -y to overwrite)"}

# Parameters of the API that no command exposes: the command line names no flag for them.
_API_ONLY = frozenset({"signature", "shutdown_timeout", "track_floor"})


def hint(param: str, flags: Mapping[str, str] | None = None) -> str:
    """``(see --flag)`` for an API parameter, with the command's own spelling of it.

    >>> hint("stall_timeout"), hint("classes", {"classes": "--classes"})
    ('(see --stall-timeout)', '(see --classes)')
    >>> hint("max_pixels", {"max_pixels": "input.max_pixels"})
    '(see input.max_pixels)'
    >>> hint("signature")
    ''
    """
    if param in _API_ONLY:
        return ""
    if param in _ACTIONS:
        return _ACTIONS[param]
    name = _ALIASES.get(param, param)
    flag = (flags or {}).get(name) or "--" + name.replace("_", "-")
    return f"(see {flag})"


def error_line(error: BaseException, flags: Mapping[str, str] | None = None) -> str:
    """The one line the command prints for ``error`` (without the ``vidstream: error:``).

    URLs in it are shown without their credentials, whatever the library put in the message.
    """
    from ..sources.uri import mask_text  # lazily: the sources package loads PyAV

    if isinstance(error, VidstreamError):
        text = error.message + (f" {hint(error.param, flags)}" if error.param else "")
    else:
        text = str(error)
    return mask_text(" ".join(text.split())) or type(error).__name__


def print_error(error: BaseException, flags: Mapping[str, str] | None = None) -> None:
    print(f"vidstream: error: {error_line(error, flags)}", file=sys.stderr, flush=True)
