"""The ``playback-gate`` console script: a tiny host that finds its subcommands as plugins.

The core names no subcommand. Each one is a :class:`Command` that a package declares in
the entry-point group :data:`ENTRY_POINT_GROUP` (``pyproject.toml``, table
``[project.entry-points."playback_gate.commands"]``), the mechanism pytest uses for its
plugins; that table is the composition root. A command's module keeps heavy imports inside
``run``, so ``--help`` stays fast.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import NoReturn

from gate import GateError, InvalidTypeError, __version__
from gate._cli_args import integer, number, output_path, port

__all__ = [
    "ENTRY_POINT_GROUP",
    "Command",
    "build_parser",
    "integer",
    "load_commands",
    "main",
    "number",
    "output_path",
    "port",
]

#: The entry-point group that contributes subcommands.
ENTRY_POINT_GROUP = "playback_gate.commands"


@dataclass(frozen=True)
class Command:
    """One subcommand, as a plugin declares it.

    Attributes:
        name: The subcommand's name (``playback-gate NAME``).
        help: One line for the top-level ``--help``.
        description: The subcommand's own ``--help`` text.
        add_arguments: Adds the subcommand's options to its parser (argument types
            that refuse bad values: :func:`number`, :func:`integer`, :func:`port`,
            :func:`output_path`).
        run: Runs it with the parsed arguments; returns the exit code.
        check: Checks what parsing cannot (an output device exists, ...) before
            ``run``; a :class:`~gate.GateError` it raises is a usage error.
    """

    name: str
    help: str
    description: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]
    check: Callable[[argparse.Namespace], None] | None = None


class _Parser(argparse.ArgumentParser):
    """A usage error is one line on stderr (``prog: error: ...``) and exit status 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message}\n")


def load_commands() -> list[Command]:
    """Load every installed subcommand, sorted by name.

    Returns:
        The commands.

    Raises:
        InvalidTypeError: An entry point of the group names something that is not a
            :class:`Command` (a packaging bug, so it is loud).
    """
    commands: list[Command] = []
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        command = ep.load()
        if not isinstance(command, Command):
            raise InvalidTypeError(
                f"entry point {ep.name!r} ({ep.value}) is not a gate.cli.Command"
            )
        commands.append(command)
    return sorted(commands, key=lambda c: c.name)


def build_parser(commands: Sequence[Command] | None = None) -> argparse.ArgumentParser:
    """Build the top-level parser with one subparser per command.

    Args:
        commands: The commands; the installed ones (:func:`load_commands`) when omitted.

    Returns:
        The configured parser.
    """
    parser = _Parser(
        prog="playback-gate",
        description=(
            "Drop and purge audio of timed-out or cancelled realtime-model replies "
            "at the output stage."
        ),
    )
    parser.add_argument("--version", action="version", version=f"playback-gate {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for command in load_commands() if commands is None else commands:
        sub = subparsers.add_parser(
            command.name, help=command.help, description=command.description
        )
        command.add_arguments(sub)
        sub.set_defaults(handler=command.run, command_check=command.check)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line.

    Args:
        argv: Arguments without the program name; ``sys.argv[1:]`` when omitted.

    Returns:
        The process exit code (2 for usage errors, as argparse does).

    Raises:
        SystemExit: On a usage error found while parsing (status 2, one line on stderr),
            and for ``--help`` / ``--version`` (status 0).
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    handler: Callable[[argparse.Namespace], int] | None = getattr(args, "handler", None)
    if handler is None:
        parser.print_help()
        return 2
    check: Callable[[argparse.Namespace], None] | None = getattr(args, "command_check", None)
    if check is not None:
        try:
            check(args)
        except GateError as e:
            print(f"playback-gate {args.command}: error: {e}", file=sys.stderr)
            return 2
    return handler(args)


if __name__ == "__main__":
    # Run as ``python -m gate.cli``: go through the imported module, so that plugins'
    # ``Command`` is the same class as the one checked here (not ``__main__.Command``).
    from gate.cli import main as _main

    sys.exit(_main())
