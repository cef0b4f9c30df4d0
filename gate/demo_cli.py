"""``playback-gate demo``: the #6222 story, told through the gate."""

from __future__ import annotations

import argparse
from typing import Any

__all__ = ["register"]


def register(subparsers: Any) -> None:
    """Add the ``demo`` subcommand.

    Args:
        subparsers: The object returned by ``ArgumentParser.add_subparsers``.
    """
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "demo",
        help="play the LiveKit #6222 story through the gate and print what played",
        description=(
            "Replays the #6222 story (a normal reply, a timed-out reply the server keeps "
            "streaming, an interrupted reply, a final reply) through the gate on a virtual "
            "clock and prints what played and what was dropped."
        ),
    )
    parser.add_argument("--timeout", type=float, default=10.0, help="request timeout, seconds")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Run the demo.

    Args:
        args: Parsed arguments.

    Returns:
        Exit code 0.
    """
    from gate.story import format_story, run_story

    print(format_story(run_story(timeout=args.timeout)))
    return 0
