"""Section 2: adapter overhead, the per-frame cost a gated adapter adds to its chain.

The gated room source (``integrations.livekit.GatedAudioSource`` over an
``rtc.AudioSource(queue_size_ms=0)``) against the same bare source, each with
its own ``LocalAudioTrack``, in one event loop: frame by frame, one through
each chain back to back (order rotating), each call timed; per round the
medians and the median paired difference. A second bare source runs alongside
as an A/A control, so the method's own noise shows. With no native queue
``capture_frame`` never waits for pacing, so the figure is the call's own cost:
the FFI round trip plus, gated, the adapter and the gate.

The gated ``io.AudioOutput`` is still to come (TODO below).
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from bench.results import Section, Table, Target, fmt, fmt_spread, jsonify
from bench.timing import Spread, Tick, paired

__all__ = ["AdapterPlan", "gated_source_class", "run_adapter"]

RATE = 48_000
TARGET_ADDED = 0.03  # <= 3 % added per frame
TODO_OUTPUT = (
    "gated io.AudioOutput vs the bare AgentSession output chain: waits for the adapter "
    "(integrations/livekit, issue for the AgentSession output)."
)


@dataclass(frozen=True, slots=True)
class AdapterPlan:
    """How hard to measure.

    Attributes:
        rounds: Interleaved rounds.
        frames: Frames captured per chain per round.
    """

    rounds: int
    frames: int


def gated_source_class() -> Any | None:
    """Return ``GatedAudioSource`` if the LiveKit adapter is installed, else ``None``."""
    try:
        from integrations.livekit.gated_source import GatedAudioSource
    except ImportError:
        return None
    return GatedAudioSource


async def _measure(plan: AdapterPlan, tick: Tick | None) -> dict[str, list[float]]:
    from livekit import rtc

    from gate import AudioFormat, PlaybackGate

    gated_cls = gated_source_class()
    assert gated_cls is not None
    gate = PlaybackGate(audio_format=AudioFormat(RATE))
    gid = "resp_adapter0000000000000"
    gate.announce(gid)
    sources = [rtc.AudioSource(RATE, 1, queue_size_ms=0) for _ in range(3)]
    tracks = [rtc.LocalAudioTrack.create_audio_track(f"t{i}", s) for i, s in enumerate(sources)]
    bare, control = sources[0], sources[1]
    gated = gated_cls(sources[2], gate, queue_size_ms=0)
    frame = rtc.AudioFrame.create(RATE, 1, RATE // 100)
    calls: dict[str, Callable[[], Awaitable[object]]] = {
        "bare": lambda: bare.capture_frame(frame),
        "control": lambda: control.capture_frame(frame),  # a second bare source: A/A
        "gated": lambda: gated.capture_frame(frame, gid),
    }
    names = list(calls)
    clock = time.perf_counter_ns

    async def one_each(first: int) -> dict[str, int]:
        # one frame through each chain, back to back, the order rotating
        took: dict[str, int] = {}
        for name in names[first:] + names[:first]:
            t0 = clock()
            await calls[name]()
            took[name] = clock() - t0
        return took

    out: dict[str, list[float]] = {"bare": [], "control": [], "gated": [], "diff": [], "aa": []}
    try:
        for i in range(plan.frames):  # warm up every chain
            await one_each(i % 3)
        for _ in range(plan.rounds):
            runs = [await one_each(i % 3) for i in range(plan.frames)]
            for name in names:
                out[name].append(statistics.median(r[name] for r in runs))
            out["diff"].append(
                statistics.median(r["gated"] - (r["bare"] + r["control"]) / 2 for r in runs)
            )
            out["aa"].append(statistics.median(r["control"] - r["bare"] for r in runs))
            if tick is not None:
                tick(1)
    finally:
        await gated.aclose()
        await bare.aclose()
        await control.aclose()
        del tracks
    if gate.stats().passed.frames < plan.frames * (plan.rounds + 1):
        raise RuntimeError("the gated source dropped frames of a live generation")
    return out


def run_adapter(plan: AdapterPlan, tick: Tick | None = None) -> Section:
    """Measure the gated room source against the bare one, if the adapter exists.

    Args:
        plan: Rounds and frames.
        tick: Progress callback, called once per round.

    Returns:
        The section; with a TODO and no figures when the adapter is missing.
    """
    section = Section(key="adapter", title="Adapter overhead: gated vs bare chain, per frame")
    section.notes.append(f"TODO: {TODO_OUTPUT}")
    section.targets.append(
        Target("gated io.AudioOutput, added per frame", "<= 3 %", "not measured", None)
    )
    if gated_source_class() is None:
        section.todo = (
            "gated rtc.AudioSource (queue_size_ms=0) vs bare: waits for "
            "integrations/livekit/gated_source.py."
        )
        section.targets.insert(
            0, Target("gated room source, added per frame", "<= 3 %", "not measured", None)
        )
        if tick is not None:
            tick(plan.rounds)
        return section

    raw = asyncio.run(_measure(plan, tick))
    bare, control, gated = (Spread.of(raw[n]) for n in ("bare", "control", "gated"))
    both = [(b + c) / 2 for b, c in zip(raw["bare"], raw["control"], strict=True)]
    added = paired(raw["diff"], both, lambda d, b: d / b)
    aa = paired(raw["aa"], raw["bare"], lambda d, b: d / b)
    diff, aa_diff = Spread.of(raw["diff"]), Spread.of(raw["aa"])
    section.data = jsonify(
        {
            "unit": "ns per frame",
            "rounds": plan.rounds,
            "frames_per_round": plan.frames,
            "bare_ns": bare,
            "control_ns": control,
            "gated_ns": gated,
            "added_ns": diff,
            "added_fraction": added,
            "control_added_ns": aa_diff,
            "control_added_fraction": aa,
        }
    )
    section.tables.append(
        Table(
            f"await capture_frame(), 10 ms 48 kHz frames, queue_size_ms=0, "
            f"{plan.rounds} rounds x {plan.frames} frames per chain; per-round medians, "
            "median [p25-p75] over rounds",
            ["chain", "ns per frame", "added ns", "added %"],
            [
                ["bare rtc.AudioSource A", fmt_spread(bare, 0), "", ""],
                [
                    "bare rtc.AudioSource B (A/A: B - A)",
                    fmt_spread(control, 0),
                    fmt_spread(aa_diff, 0),
                    fmt(aa.median * 100, 2),
                ],
                [
                    "GatedAudioSource (vs mean of A, B)",
                    fmt_spread(gated, 0),
                    fmt_spread(diff, 0),
                    fmt(added.median * 100, 2),
                ],
            ],
        )
    )
    section.notes.append(
        "added ns = per round, the median per-frame difference between chains called back "
        "to back; the gated chain is compared with the mean of the two bare ones, and their "
        "A/A difference is the method's own noise."
    )
    section.targets.insert(
        0,
        Target(
            "gated room source, added per frame",
            f"<= {TARGET_ADDED * 100:.0f} %",
            f"{added.median * 100:.2f} % ({diff.median:.0f} ns)",
            added.median <= TARGET_ADDED,
        ),
    )
    return section
