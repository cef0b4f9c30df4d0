"""``playback-gate replay``: what would the listener have heard?"""

from __future__ import annotations

import argparse
import math
import signal
import sys
import threading
from types import FrameType

from gate import DEFAULT_REQUEST_TIMEOUT
from gate.cli import Command

__all__ = ["COMMAND", "add_arguments", "run"]


class _Terminated(BaseException):
    """SIGTERM, raised on the main thread so the replay removes its temp files."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise _Terminated(signum)


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
    from integrations.openai_realtime.trace.reader import TraceError, TraceLimits
    from integrations.openai_realtime.trace.replay import replay_file

    if not (args.timeout >= 0) or args.max_line_bytes < 1 or not 0 < args.max_duration < math.inf:
        print(
            "playback-gate replay: --timeout must be >= 0, --max-line-bytes >= 1, "
            "--max-duration > 0 and finite",
            file=sys.stderr,
        )
        return 2
    gate_logger = logging.getLogger("playback_gate")
    level = gate_logger.level
    if args.verbose:
        logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    else:  # the report lists malformed events; keep stderr for errors
        gate_logger.setLevel(logging.ERROR)
    on_main = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _on_sigterm) if on_main else None
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
    except TraceError as e:
        print(f"playback-gate replay: {args.trace}: {e}", file=sys.stderr)
        return 2
    except OSError as e:
        print(f"playback-gate replay: {e}", file=sys.stderr)
        return 2
    except _Terminated as e:  # replay_file has removed its temp files
        print("playback-gate replay: terminated", file=sys.stderr)
        return 128 + e.signum
    finally:
        if on_main:
            signal.signal(signal.SIGTERM, signal.SIG_DFL if previous is None else previous)
        gate_logger.setLevel(level)
    print(
        f"{'response':<28} {'request':<28} {'state':<8} {'reason':<11} "
        f"{'received':>9} {'played':>9} {'dropped':>9}"
    )
    for r in result.responses:
        print(
            f"{r.response_id[:28]:<28} {(r.request_id or '-')[:28]:<28} {r.final_state:<8} "
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
    return 0


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
