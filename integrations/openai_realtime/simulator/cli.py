"""``playback-gate simulator``: serve the OpenAI Realtime simulator until Ctrl-C/SIGTERM."""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys

from gate.cli import Command, integer, port

__all__ = ["COMMAND", "add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``simulator`` options.

    Args:
        parser: The subcommand's parser.
    """
    parser.add_argument(
        "--port", type=port, default=8765, help="TCP port on 127.0.0.1 (0 = any free port)"
    )
    parser.add_argument(
        "--chunks",
        type=integer(0, 1_000_000),
        default=100,
        help="audio deltas per response (default 100)",
    )
    parser.add_argument(
        "--chunk-ms",
        type=integer(1, 1_000),
        default=20,
        help="milliseconds per audio delta, 1 to 1000 (default 20)",
    )
    parser.add_argument(
        "--audio",
        choices=("marker", "tone"),
        default="marker",
        help="marker: decodable constant-per-chunk values; tone: audible sine",
    )


async def _serve(args: argparse.Namespace) -> None:
    from integrations.openai_realtime.simulator.plans import ResponsePlan
    from integrations.openai_realtime.simulator.server import RealtimeSimulator

    plan = ResponsePlan(chunks=args.chunks, chunk_ms=args.chunk_ms, audio=args.audio)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        async with RealtimeSimulator(
            port=args.port, default_plan=plan, max_log_entries=10_000
        ) as sim:
            print(f"simulator listening: base_url={sim.base_url} url={sim.url}", flush=True)
            await stop.wait()
            print("simulator shutting down", flush=True)
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)


def run(args: argparse.Namespace) -> int:
    """Serve until Ctrl-C or SIGTERM, then shut down cleanly.

    Args:
        args: Parsed arguments (``port``, ``chunks``, ``chunk_ms``, ``audio``).

    Returns:
        0 after a clean shutdown, 1 if the simulator could not start.
    """
    # import before the loop starts, so the loop is never blocked by imports
    import integrations.openai_realtime.simulator.server  # noqa: F401

    try:
        asyncio.run(_serve(args))
    except OSError as exc:
        print(f"simulator: cannot serve on 127.0.0.1:{args.port}: {exc}", file=sys.stderr)
        return 1
    except ValueError as exc:
        print(f"simulator: {exc}", file=sys.stderr)
        return 2
    return 0


COMMAND = Command(
    name="simulator",
    help="serve a local OpenAI Realtime API simulator on 127.0.0.1",
    description=(
        "Serve a local OpenAI Realtime API (GA) simulator on 127.0.0.1 until Ctrl-C or "
        "SIGTERM. Point a client at the printed base URL (any API key works)."
    ),
    add_arguments=add_arguments,
    run=run,
)
