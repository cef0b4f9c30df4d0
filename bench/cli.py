"""``playback-gate bench``: the latency benchmark."""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from gate.cli import Command, output_path

if TYPE_CHECKING:
    from bench.adapter import AdapterPlan
    from bench.e2e_cut import E2EPlan
    from bench.leaks import LeakPlan
    from bench.memory import MemoryPlan
    from bench.overhead import OverheadPlan
    from bench.sessions import SessionsPlan
    from bench.speaker import SpeakerPlan
    from bench.track import TrackPlan

__all__ = ["COMMAND", "SECTIONS", "Plan", "add_arguments", "run"]

SECTIONS = ("overhead", "adapter", "track", "e2e", "speaker", "sessions", "leaks", "memory")


@dataclass(frozen=True, slots=True)
class Plan:
    """Sizes of every section, for one mode (quick or full)."""

    overhead: OverheadPlan
    adapter: AdapterPlan
    track: TrackPlan
    e2e: E2EPlan
    speaker: SpeakerPlan
    sessions: SessionsPlan
    leaks: LeakPlan
    memory: MemoryPlan


def plans(quick: bool) -> Plan:
    """Return the sizes for ``--quick`` (under 60 s) or a full run (under 10 min).

    Args:
        quick: The quick sizes.

    Returns:
        The plan.
    """
    from bench.adapter import AdapterPlan
    from bench.e2e_cut import E2EPlan
    from bench.leaks import LeakPlan
    from bench.memory import MemoryPlan
    from bench.overhead import OverheadPlan
    from bench.sessions import SessionsPlan
    from bench.speaker import SpeakerPlan
    from bench.track import TrackPlan

    if quick:
        return Plan(
            overhead=OverheadPlan(rounds=7, number=800),
            adapter=AdapterPlan(rounds=5, frames=150),
            track=TrackPlan(trials=4, batch=4),
            e2e=E2EPlan(trials=1, baseline=False),
            speaker=SpeakerPlan(
                trials=3,
                block=3,
                settings=("low_latency",),
                floor_settings=((240, 2), (120, 3), (64, 2)),
                floor_seconds=0.3,
                steady_seconds=1.0,
            ),
            sessions=SessionsPlan(counts=(1,), reply_seconds=0.5),
            leaks=LeakPlan(),
            memory=MemoryPlan(
                tombstones=10_000, generations=50_000, checkpoints=10, repeats=5, number=300
            ),
        )
    return Plan(
        overhead=OverheadPlan(rounds=61, number=4_000),
        adapter=AdapterPlan(rounds=40, frames=1_000),
        track=TrackPlan(trials=120, max_trials=300, batch=30),
        e2e=E2EPlan(trials=20),
        speaker=SpeakerPlan(trials=60, block=10),
        sessions=SessionsPlan(counts=(1, 2, 4, 6, 8, 10, 12, 14, 16, 20, 24), reply_seconds=3.0),
        leaks=LeakPlan(),
        memory=MemoryPlan(
            tombstones=100_000, generations=1_000_000, checkpoints=25, repeats=9, number=1_000
        ),
    )


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``bench`` options.

    Args:
        parser: The subcommand's parser.
    """
    parser.add_argument("--quick", action="store_true", help="small sizes, under a minute")
    # output paths are checked at parse time: a bad one fails before minutes of measuring
    parser.add_argument(
        "--json", type=output_path, metavar="FILE", help="write the results as JSON"
    )
    parser.add_argument(
        "--plot", type=output_path, metavar="FILE", help="draw the results as a PNG"
    )
    parser.add_argument(
        "--only",
        metavar="SECTION[,SECTION]",
        type=_sections,
        help=f"run only these sections ({', '.join(SECTIONS)})",
    )
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")


def _sections(only: str) -> list[str]:
    chosen = [s.strip() for s in only.split(",") if s.strip()]
    unknown = sorted(set(chosen) - set(SECTIONS))
    if unknown or not chosen:
        raise argparse.ArgumentTypeError(
            f"unknown section(s) {unknown or [only]}; choose from {list(SECTIONS)}"
        )
    return [s for s in SECTIONS if s in chosen]


def _command(args: argparse.Namespace) -> str:
    words = ["playback-gate", "bench"]
    if args.quick:
        words.append("--quick")
    if args.only:
        words += ["--only", ",".join(args.only)]
    if args.json is not None:
        words += ["--json", str(args.json)]
    if args.plot is not None:
        words += ["--plot", str(args.plot)]
    return " ".join(words)


def run(args: argparse.Namespace) -> int:
    """Run the benchmark.

    Args:
        args: Parsed arguments.

    Returns:
        Exit code 0; timing never fails the run.
    """
    from tqdm import tqdm  # type: ignore[import-untyped]

    from bench.adapter import run_adapter
    from bench.e2e_cut import run_e2e
    from bench.e2e_cut import steps as e2e_steps
    from bench.leaks import SCENARIOS, run_leaks
    from bench.memory import run_memory
    from bench.overhead import run_overhead
    from bench.report import format_text, plot, write_json
    from bench.results import Section
    from bench.sessions import run_sessions
    from bench.sessions import steps as sessions_steps
    from bench.speaker import run_speaker
    from bench.speaker import steps as speaker_steps
    from bench.track import run_track

    names: list[str] = args.only or list(SECTIONS)
    plan = plans(args.quick)
    steps = {
        "overhead": plan.overhead.rounds,
        "adapter": 2 * plan.adapter.rounds,
        "track": plan.track.trials,
        "e2e": e2e_steps(plan.e2e),
        "speaker": speaker_steps(plan.speaker),
        "sessions": sessions_steps(plan.sessions),
        "leaks": 2 * sum(1 for s in SCENARIOS.values() if s[4] or not args.quick),
        "memory": 101,
    }
    runners = {
        "overhead": lambda tick: run_overhead(plan.overhead, tick),
        "adapter": lambda tick: run_adapter(plan.adapter, tick),
        "track": lambda tick: run_track(plan.track, tick),
        "e2e": lambda tick: run_e2e(plan.e2e, tick),
        "speaker": lambda tick: run_speaker(plan.speaker, tick),
        "sessions": lambda tick: run_sessions(plan.sessions, tick),
        "leaks": lambda tick: run_leaks(plan.leaks, args.quick, tick),
        "memory": lambda tick: run_memory(plan.memory, tick),
    }
    started = time.perf_counter()
    sections: list[Section] = []
    with tqdm(
        total=sum(steps[n] for n in names),
        desc="bench",
        unit="step",
        file=sys.stderr,
        disable=args.no_progress,
        dynamic_ncols=True,
    ) as bar:
        for name in names:
            bar.set_description(f"bench: {name}")
            done = bar.n
            sections.append(runners[name](bar.update))
            bar.update(max(0, done + steps[name] - bar.n))  # a section may tick fewer times
    elapsed = time.perf_counter() - started

    mode = "quick" if args.quick else "full"
    meta = {
        "command": _command(args),
        "mode": mode,
        "sections": names,
        "seconds": round(elapsed, 1),
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
        "started": time.strftime("%Y-%m-%d %H:%M:%S"),
    }
    print(format_text(sections))
    print(f"\n{mode} run, {elapsed:.1f} s, CPython {meta['python']}, {meta['cpus']} CPUs")
    if args.json is not None:
        write_json(args.json, sections, meta)
        print(f"wrote {args.json}")
    if args.plot is not None:
        subtitle = (
            f"{mode} run, {elapsed:.0f} s, CPython {meta['python']} on {meta['machine']}, "
            f"{meta['cpus']} CPUs (shared), {meta['started']}"
        )
        plot(args.plot, sections, subtitle)
        print(f"wrote {args.plot}")
    return 0


COMMAND = Command(
    name="bench",
    help="measure the gate's per-frame cost, cancel-to-silence and memory against baselines",
    description=(
        "Measures admit() against a do-nothing call and a bare dict lookup, the gated "
        "LiveKit source and output against the bare chains, cancel-to-silence at a LiveKit "
        "track (vs clear_queue() and clear_buffer()) and at a real PortAudio device (vs an "
        "ungated output), leaks of misbehaving-server scenarios (vs LiveKit Agents alone), "
        "and memory over a long session; all side by side in one run, median and spread "
        "over interleaved rounds. Prints a table; optionally writes JSON and a PNG plot."
    ),
    add_arguments=add_arguments,
    run=run,
)
