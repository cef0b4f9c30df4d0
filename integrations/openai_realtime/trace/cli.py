"""``playback-gate replay``: what would the listener have heard?"""

from __future__ import annotations

import argparse
import math
import signal
import sys
import threading
from types import FrameType
from typing import TYPE_CHECKING

from gate import DEFAULT_REQUEST_TIMEOUT
from gate.cli import Command

if TYPE_CHECKING:
    from integrations.openai_realtime.trace.result import ReplayResult

__all__ = ["COMMAND", "add_arguments", "run"]


class _Terminated(BaseException):
    """SIGTERM or SIGHUP, raised on the main thread so the replay removes its temp files."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


def _on_signal(signum: int, frame: FrameType | None) -> None:
    raise _Terminated(signum)


_CAUGHT_SIGNALS = (signal.SIGTERM, signal.SIGHUP)


def _printable(text: str) -> str:
    """``text`` with anything the terminal can't show (controls, surrogates) escaped."""
    if text.isprintable() and text.isascii():
        return text
    return "".join(c if c.isprintable() and c.isascii() else ascii(c)[1:-1] for c in text)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``replay`` options.

    Args:
        parser: The subcommand's parser.
    """
    parser.add_argument("trace", metavar="TRACE.jsonl", help="the trace to replay")
    parser.add_argument(
        "--timeout",
        type=float,
        default=DEFAULT_REQUEST_TIMEOUT,
        help=f"request timeout, seconds (default {DEFAULT_REQUEST_TIMEOUT:g})",
    )
    parser.add_argument("--out", metavar="played.wav", help="write what the listener heard")
    parser.add_argument("--report", metavar="report.json", help="write the JSON report")
    parser.add_argument(
        "--unattributed",
        choices=("play", "drop_after_timeout"),
        default="play",
        help="policy for responses no request asked for (default: play)",
    )
    parser.add_argument(
        "--max-line-bytes",
        type=int,
        default=8 << 20,
        help="longest trace line accepted (default 8 MiB)",
    )
    parser.add_argument(
        "--max-duration",
        type=float,
        default=4 * 3600.0,
        metavar="S",
        help="latest 't' and longest output accepted, seconds (default 14400: 4 hours)",
    )
    parser.add_argument(
        "--plot",
        metavar="FILE.png",
        help="draw the timeline: one lane per response, what was sent, played and dropped "
        "(needs matplotlib: the bench extra)",
    )
    parser.add_argument(
        "-v", "--verbose", action="store_true", help="log what the tap and the gate decide"
    )


def run(args: argparse.Namespace) -> int:
    """Run the replay.

    Args:
        args: Parsed arguments.

    Returns:
        0 on success, 2 if the trace or an output cannot be used.
    """
    import logging

    from integrations.openai_realtime._tap import UnattributedPolicy
    from integrations.openai_realtime.trace.outputs import OutputPathError, check_outputs
    from integrations.openai_realtime.trace.reader import MAX_LINE_BYTES, TraceError, TraceLimits
    from integrations.openai_realtime.trace.replay import replay_file

    for ok, problem in (
        (0 <= args.timeout < math.inf, f"--timeout must be finite and >= 0, got {args.timeout}"),
        (
            1 <= args.max_line_bytes <= MAX_LINE_BYTES,
            f"--max-line-bytes must be in 1..{MAX_LINE_BYTES}, got {args.max_line_bytes}",
        ),
        (
            0 < args.max_duration < math.inf,
            f"--max-duration must be finite and > 0, got {args.max_duration}",
        ),
    ):
        if not ok:
            print(f"playback-gate replay: {problem}", file=sys.stderr)
            return 2
    if args.plot is not None:
        from integrations.openai_realtime.trace import plot

        try:
            plot.require_matplotlib()
            plot.check_destination(args.plot)
        except (plot.PlotUnavailableError, OSError) as e:
            print(f"playback-gate replay: {e}", file=sys.stderr)
            return 2
    try:  # before anything is read or written; the plot too (replay_file can't know it)
        check_outputs(args.trace, {"--out": args.out, "--report": args.report, "--plot": args.plot})
    except OutputPathError as e:
        print(f"playback-gate replay: {e}", file=sys.stderr)
        return 2
    gate_logger = logging.getLogger("playback_gate")
    level = gate_logger.level
    if args.verbose:
        logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    else:  # the report lists malformed events; keep stderr for errors
        gate_logger.setLevel(logging.ERROR)
    on_main = threading.current_thread() is threading.main_thread()
    previous = {sig: signal.signal(sig, _on_signal) for sig in _CAUGHT_SIGNALS} if on_main else {}
    try:
        result = replay_file(
            args.trace,
            timeout=args.timeout,
            out_wav=args.out,
            report=args.report,
            unattributed_policy=UnattributedPolicy(args.unattributed),
            limits=TraceLimits(
                max_line_bytes=args.max_line_bytes, max_duration_s=args.max_duration
            ),
        )
        if args.plot is not None:  # the same replay again, laid out in time
            plot.write_timeline_png(
                args.trace,
                args.plot,
                timeout=args.timeout,
                unattributed_policy=UnattributedPolicy(args.unattributed),
                limits=TraceLimits(
                    max_line_bytes=args.max_line_bytes, max_duration_s=args.max_duration
                ),
            )
    except TraceError as e:
        print(f"playback-gate replay: {args.trace}: {e}", file=sys.stderr)
        return 2
    except (OutputPathError, OSError) as e:  # both name the user's path
        print(f"playback-gate replay: {e}", file=sys.stderr)
        return 2
    except _Terminated as e:  # replay_file has removed its temp files
        print(
            f"playback-gate replay: terminated by {signal.Signals(e.signum).name}", file=sys.stderr
        )
        return 128 + e.signum
    except KeyboardInterrupt:  # SIGINT: the same, without a traceback
        print("playback-gate replay: interrupted", file=sys.stderr)
        return 128 + signal.SIGINT
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, signal.SIG_DFL if handler is None else handler)
        gate_logger.setLevel(level)
    try:
        _print_table(result)
        if args.plot is not None:
            print(f"timeline -> {_printable(str(args.plot))}")
    except KeyboardInterrupt:
        return 128 + signal.SIGINT
    return 0


def _print_table(result: ReplayResult) -> None:
    """Print one row per response and the totals; ids are escaped so any terminal shows them."""
    print(
        f"{'response':<28} {'request':<28} {'state':<8} {'reason':<11} "
        f"{'received':>9} {'played':>9} {'dropped':>9}"
    )
    for r in result.responses:
        rid, req = _printable(r.response_id), _printable(r.request_id or "-")
        print(
            f"{rid[:28]:<28} {req[:28]:<28} {r.final_state:<8} "
            f"{r.reason or '-':<11} {r.samples_received:>9} {r.samples_played:>9} "
            f"{r.samples_dropped:>9}"
        )
    totals = result.totals()
    print(
        f"{totals['responses']} response(s); played {totals['samples_played']} samples, dropped "
        f"{totals['samples_dropped']} ({totals['samples_purged']} purged after queueing); "
        f"{result.duration_s:.3f} s at {result.sample_rate} Hz; "
        f"{totals['requests_timed_out']} request(s) timed out; "
        f"{totals['cancels_sent']} targeted cancel(s); "
        f"{totals['malformed_events']} malformed event(s)"
    )


COMMAND = Command(
    name="replay",
    help="replay a Realtime session trace through the gate; write what played",
    description=(
        "Replays a JSON Lines trace of OpenAI Realtime events on a virtual clock "
        "through the event tap and the gate into a simulated real-time speaker, and "
        "reports per response what arrived, played and was dropped. A bad trace is "
        "an error with its line number (exit code 2) and writes no output."
    ),
    add_arguments=add_arguments,
    run=run,
)
