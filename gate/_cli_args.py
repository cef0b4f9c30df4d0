"""Argument types for the subcommands: each refuses a bad value at parse time, naming it.

They are ``argparse`` ``type=`` callables: a bad value becomes ``argparse.ArgumentTypeError``,
which the host (:mod:`gate.cli`) prints as one line and exit status 2, before the command
does any work. That is why output paths are checked here: a run of minutes must not fail
at its end because ``--json`` names a directory that does not exist.
"""

from __future__ import annotations

import argparse
import math
import os
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

__all__ = ["integer", "number", "output_path", "port"]

_N = TypeVar("_N", int, float)


def number(low: float | None = None, high: float | None = None) -> Callable[[str], float]:
    """A finite float within ``[low, high]`` (either end open when ``None``).

    Args:
        low: The smallest value allowed.
        high: The largest value allowed.

    Returns:
        The ``type=`` callable.
    """
    return _bounded(float, "a number", low, high)


def integer(low: int | None = None, high: int | None = None) -> Callable[[str], int]:
    """An integer within ``[low, high]`` (either end open when ``None``).

    Args:
        low: The smallest value allowed.
        high: The largest value allowed.

    Returns:
        The ``type=`` callable.
    """
    return _bounded(int, "an integer", low, high)


def _bounded(
    convert: Callable[[str], _N], kind: str, low: float | None, high: float | None
) -> Callable[[str], _N]:
    def parse(text: str) -> _N:
        try:
            value = convert(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not {kind}: {text!r}") from None
        if not math.isfinite(value) or not _within(value, low, high):
            raise argparse.ArgumentTypeError(f"must be {_range(low, high)}, got {text!r}")
        return value

    return parse


port = integer(0, 65535)
"""A TCP port number (0: any free port)."""


def output_path(text: str) -> Path:
    """A file path the command can create: its folder exists and is writable; not a folder.

    Args:
        text: The path as given.

    Returns:
        The path.

    Raises:
        argparse.ArgumentTypeError: Naming the path and what is wrong with it.
    """
    if not text or "\0" in text:
        raise argparse.ArgumentTypeError(f"not a usable file path: {text!r}")
    path = Path(text)
    folder = path.parent
    try:
        if path.is_dir():
            raise argparse.ArgumentTypeError(f"{text!r} is a folder, not a file")
        if not folder.is_dir():
            raise argparse.ArgumentTypeError(
                f"cannot write {text!r}: folder {str(folder)!r} not found"
            )
        writable = os.access(folder, os.W_OK | os.X_OK)
    except (OSError, ValueError) as e:  # a name too long, unencodable characters, ...
        raise argparse.ArgumentTypeError(f"not a usable file path: {text!r} ({e})") from None
    if not writable:
        raise argparse.ArgumentTypeError(
            f"cannot write {text!r}: folder {str(folder)!r} is not writable"
        )
    return path


def _within(value: float, low: float | None, high: float | None) -> bool:
    return (low is None or value >= low) and (high is None or value <= high)


def _range(low: float | None, high: float | None) -> str:
    if low is not None and high is not None:
        return f"between {low:g} and {high:g}"
    if low is not None:
        return f">= {low:g}"
    return f"<= {high:g}" if high is not None else "a value"
