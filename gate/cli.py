"""The ``playback-gate`` command line.

Each subcommand lives in its own module, which exposes ``register(subparsers)``.
``register`` adds one parser and sets ``handler=`` (a callable taking the parsed
``argparse.Namespace`` and returning an exit code) with ``set_defaults``.
Heavy imports stay inside the handlers, so ``--help`` is fast.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable, Sequence

from gate import __version__

#: Modules that each contribute one subcommand, in ``--help`` order.
COMMAND_MODULES: tuple[str, ...] = (
    "integrations.demo.demo_cli",
    "integrations.openai_realtime.simulator_cli",
    "integrations.openai_realtime.replay_cli",
    "integrations.speakers.speakers_cli",
    "bench.cli",
)

Handler = Callable[[argparse.Namespace], int]


def build_parser() -> argparse.ArgumentParser:
    """Build the top-level parser with every registered subcommand.

    Returns:
        The configured parser.
    """
    parser = argparse.ArgumentParser(
        prog="playback-gate",
        description=(
            "Drop and purge audio of timed-out or cancelled realtime-model replies "
            "at the output stage."
        ),
    )
    parser.add_argument("--version", action="version", version=f"playback-gate {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line.

    Args:
        argv: Arguments without the program name; ``sys.argv[1:]`` when omitted.

    Returns:
        The process exit code.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    handler: Handler | None = getattr(args, "handler", None)
    if handler is None:
        parser.print_help()
        return 2
    return handler(args)


if __name__ == "__main__":
    sys.exit(main())
