"""What every command shares: exit codes, the parser and formatter classes, argument types.

The command modules import this one, never the ``vidstream.cli`` package itself, so the
package can import every command module without a cycle.

>>> positive_int("3"), int_list("1,2,4"), words("person, car")
(3, [1, 2, 4], ['person', 'car'])
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Any, NoReturn

from rich.console import Console

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


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {text}")
    return value


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
    return value


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
        if action.dest in (argparse.SUPPRESS, "help"):
            continue
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
