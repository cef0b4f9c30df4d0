"""``playback-gate demo``: the LiveKit #6222 story on a real AgentSession, through the gate."""

from __future__ import annotations

import argparse

from gate.cli import Command, number, output_path

__all__ = ["COMMAND", "add_arguments", "check", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``demo`` options.

    Args:
        parser: The subcommand's parser.
    """
    parser.add_argument(
        "--wav", metavar="FILE", type=output_path, help="write the gated audio to FILE instead"
    )
    parser.add_argument("--device", help="speaker device index or name (default: the default)")
    parser.add_argument(
        "--fast",
        action="store_true",
        help="a short story (about 6 s) whose gate deadline (1.5 s) is stricter than LiveKit's "
        "fixed 10 s generate_reply timeout",
    )
    parser.add_argument(
        "--deadline",
        type=number(0.01, 3600.0),
        metavar="S",
        help="the gate's request timeout in seconds (default: 10, LiveKit's own; 1.5 with --fast)",
    )
    parser.add_argument(
        "--audio",
        choices=("tone", "marker"),
        default="tone",
        help="simulator audio: an audible tone per reply, or self-identifying markers",
    )
    parser.add_argument("--no-baseline", action="store_true", help="skip the run without the gate")
    parser.add_argument(
        "--openai",
        action="store_true",
        help="talk to the real OpenAI Realtime service (needs OPENAI_API_KEY)",
    )
    parser.add_argument(
        "--only",
        metavar="KIND[,KIND]",
        help="play only these replies: normal, late, interrupt, cancel, reconnect",
    )
    parser.add_argument(
        "--trace", metavar="FILE", help="record the gated session's wire traffic (JSON Lines)"
    )
    parser.add_argument(
        "--plot",
        metavar="FILE.png",
        help="draw the gated session's timeline, as 'playback-gate replay --plot' does "
        "(needs matplotlib: the bench extra)",
    )


def check(args: argparse.Namespace) -> None:
    """Refuse a speaker device that was named but does not exist (no silent WAV fallback).

    Args:
        args: Parsed arguments.

    Raises:
        ConfigurationError: Naming the device and listing those that exist.
    """
    if not (args.wav):
        from integrations.speakers._devices import check_named_device

        check_named_device(args.device)


def run(args: argparse.Namespace) -> int:
    """Run the demo and print its table.

    Args:
        args: Parsed arguments.

    Returns:
        0 on success, 2 on a usage problem.
    """
    import asyncio
    import dataclasses
    import logging
    import sys
    import tempfile
    from pathlib import Path

    from gate import GateError
    from integrations.demo.report import format_report, gate_summary
    from integrations.demo.runner import DemoOptions, run_demo
    from integrations.demo.script import KINDS, StoryTiming
    from integrations.openai_realtime.trace import plot

    timing = StoryTiming.fast() if args.fast else StoryTiming()
    only = tuple(k.strip() for k in (args.only or "").split(",") if k.strip())
    try:
        if args.deadline is not None:
            timing = dataclasses.replace(timing, deadline=args.deadline)
        unknown = [k for k in only if k not in KINDS]
        if unknown:
            raise ValueError(
                f"--only: unknown kind {unknown[0]!r} (choose from {', '.join(KINDS)})"
            )
        if args.plot is not None:
            plot.require_matplotlib()
            plot.check_destination(args.plot)
    except (ValueError, OSError, plot.PlotUnavailableError) as e:
        print(f"playback-gate demo: {e}", file=sys.stderr)
        return 2
    scratch = None
    trace = args.trace
    if args.plot is not None and trace is None:  # the picture is drawn from a recorded trace
        scratch = Path(tempfile.mkdtemp(prefix="playback-gate-demo-"))
        trace = str(scratch / "demo.jsonl")
    options = DemoOptions(
        timing=timing,
        wav=None if args.wav is None else str(args.wav),
        device=args.device,
        audio=args.audio,
        baseline=not args.no_baseline,
        openai=args.openai,
        only=only,
        trace=trace,
    )
    # LiveKit logs the misbehaviour the story provokes; the table says it better
    logging.getLogger("livekit").setLevel(logging.CRITICAL)
    logging.getLogger("livekit.agents").setLevel(logging.CRITICAL)
    print(
        "playback-gate demo: six replies on a real AgentSession, with and without the gate "
        + ("(real OpenAI Realtime)" if args.openai else "(local Realtime simulator)"),
        flush=True,
    )
    try:
        result = asyncio.run(
            run_demo(
                options,
                progress=sys.stderr,
                on_ready=lambda where: print(f"gated audio -> {where}", flush=True),
            )
        )
        print()
        print(format_report(result.gated, result.ungated, notes=result.notes))
        print()
        print(gate_summary(result.gated))
        print(f"gated audio -> {result.output}; run time {result.elapsed:.1f} s")
        if args.trace is not None:
            print(f"wire traffic -> {args.trace}")
        if args.plot is not None and trace is not None:
            plot.write_timeline_png(
                trace,
                args.plot,
                timeout=timing.deadline,
                title="playback-gate demo (with the gate)",
            )
            print(f"timeline -> {args.plot}")
    except (GateError, RuntimeError, OSError) as e:
        print(f"playback-gate demo: {e}", file=sys.stderr)
        return 2
    finally:
        if scratch is not None:
            for f in scratch.iterdir():
                f.unlink()
            scratch.rmdir()
    return 0


COMMAND = Command(
    name="demo",
    help="play six replies, #6222 and the leaks LiveKit 1.8.9 alone has, with and without the gate",
    description=(
        "Starts the project's OpenAI Realtime simulator and a LiveKit AgentSession with the "
        "real livekit-plugins-openai client, and plays six replies through the gate: a "
        "normal one; the #6222 reply (its generate_reply times out, the server answers late "
        "and keeps streaming); one interrupted mid-word; one the app cancels while seconds "
        "of it are queued; one the server answers after a websocket reconnect; and a final "
        "one. The same story runs at the same time without the gate. Audio goes to the "
        "speakers, or to demo.wav when there are none. Ends with a table of what the server "
        "sent, what played and what leaked, with and without the gate."
    ),
    add_arguments=add_arguments,
    run=run,
    check=check,
)
