"""What every command shares: exit codes, the parser and formatter classes, argument types.

The command modules import this one, never the ``vidstream.cli`` package itself, so the
package can import every command module without a cycle.

>>> positive_int("3"), int_list("1,2,4"), words("person, car")
(3, [1, 2, 4], ['person', 'car'])
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Sequence
from typing import Any, NoReturn

from rich.console import Console

from ..settings import DEFAULTS

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_PARTIAL = 3
EXIT_INTERRUPTED = 130


class Formatter(argparse.RawDescriptionHelpFormatter, argparse.ArgumentDefaultsHelpFormatter):
    """Shows defaults, but not the ones that say nothing ("default: None", flags, lists)."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        if action.default is None or isinstance(action.default, bool | list):
            return action.help
        return super()._get_help_string(action)


class Parser(argparse.ArgumentParser):
    """An argument parser whose usage errors are one line and exit 2, like every error."""

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"vidstream: error: {message}\n")


def _int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None


def _float(text: str) -> float:
    """A finite number: ``nan`` and ``inf`` parse as floats but mean nothing as a setting
    (a ``nan`` timeout never fires)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text}")
    return value


def positive_int(text: str) -> int:
    value = _int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {text}")
    return value


def non_negative_int(text: str) -> int:
    value = _int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {text}")
    return value


def bounded_int(low: int, high: int) -> Any:
    """An argument type for an integer from ``low`` to ``high``."""

    def parse(text: str) -> int:
        value = _int(text)
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"must be from {low} to {high}, got {text}")
        return value

    return parse


def positive_float(text: str) -> float:
    value = _float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
    return value


def non_negative_float(text: str) -> float:
    value = _float(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {text}")
    return value


def unit_float(text: str) -> float:
    """A number from 0 to 1 (a score threshold)."""
    value = _float(text)
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1, got {text}")
    return value


def pixels(text: str) -> int:
    """A frame size limit: ``8192x4320`` or a number of pixels.

    >>> pixels("8192x4320"), pixels("921600")
    (35389440, 921600)
    """
    w, sep, h = text.lower().partition("x")
    try:
        value = int(w) * int(h) if sep else int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected WIDTHxHEIGHT like 8192x4320 or a number of pixels, got {text!r}"
        ) from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1 pixel, got {text}")
    return value


def show_pixels(value: int) -> str:
    """How a pixel limit is shown: ``8192x4320`` when it is a known frame size.

    >>> show_pixels(8192 * 4320), show_pixels(1000)
    ('8192x4320', '1000')
    """
    for w, h in ((8192, 4320), (7680, 4320), (4096, 2160), (3840, 2160), (1920, 1080)):
        if w * h == value:
            return f"{w}x{h}"
    return str(value)


def words(text: str) -> list[str]:
    """``"a, b,"`` -> ``["a", "b"]``: a comma-separated list."""
    return [c.strip() for c in text.split(",") if c.strip()]


def int_list(text: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected integers like 1,2,4, got {text!r}") from None
    if not values or any(v < 1 for v in values):
        raise argparse.ArgumentTypeError(f"expected integers >= 1, got {text!r}")
    return values


def choice_list(choices: Sequence[str]) -> Any:
    """An argument type for a comma-separated list of ``choices``."""

    def parse(text: str) -> list[str]:
        values = [v.lower() for v in words(text)]
        if not values or any(v not in choices for v in values):
            listed = ", ".join(choices[:-1]) + f" or {choices[-1]}"
            raise argparse.ArgumentTypeError(f"expected {listed} (comma-separated), "
                                             f"got {text!r}")
        return values

    return parse


def flag_names(parser: argparse.ArgumentParser, **extra: str) -> dict[str, str]:
    """Each argument's destination -> how the user spells it (its long flag, or METAVAR).

    The error line of a command uses it to name the flag for an API parameter.

    >>> p = argparse.ArgumentParser()
    >>> _ = p.add_argument("-y", "--overwrite", action="store_true")
    >>> _ = p.add_argument("input")
    >>> flag_names(p, video="--output")
    {'overwrite': '--overwrite', 'input': 'INPUT', 'video': '--output'}
    """
    names: dict[str, str] = {}
    for action in parser._actions:  # argparse has no public list of a parser's arguments
        if action.dest in (argparse.SUPPRESS, "help") or action.help == argparse.SUPPRESS:
            continue  # a hidden alias: errors name the visible spelling
        if action.option_strings:
            names[action.dest] = max(action.option_strings, key=len)
        else:
            names[action.dest] = str(action.metavar or action.dest.upper())
    names.update(extra)
    return names


def console(stderr: bool = False) -> Console:
    """A rich console; off a terminal (a pipe, a log) wide enough for the tables."""
    c = Console(stderr=stderr, highlight=False)
    return c if c.is_terminal else Console(stderr=stderr, highlight=False, width=140)


def accelerator_share_arg(text: str) -> str:
    """``--accelerator-share``: auto, or a fraction in (0, 1]."""
    if text.strip().lower() == "auto":
        return "auto"
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not 0 < value <= 1:  # nan fails too
        raise argparse.ArgumentTypeError(f"expected auto or a number in (0, 1], got {text!r}")
    return text.strip()


def add_accelerator_options(g: Any, overrides: bool = False) -> None:
    """The cost of a remote model's server: ``--accelerator-instance``/``--accelerator-share``
    (detect, run, bench)."""
    g.add_argument("--accelerator-instance", metavar="NAME",
                   help="with a remote model (triton://, tfserving://): the server's instance "
                   "type, e.g. g5.xlarge; the run is priced as this machine plus its share of "
                   "that instance")
    g.add_argument("--accelerator-share", type=accelerator_share_arg, metavar="auto|X",
                   default=None if overrides else DEFAULTS.accelerator_share,
                   help="this client's share of the accelerator instance: auto (its fraction "
                   "of the server's inferences during the run) or a number in (0, 1]")
