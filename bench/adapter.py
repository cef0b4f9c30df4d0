"""Section 2: adapter overhead, the per-frame cost a gated adapter adds to its chain.

Two chains, each against itself without the gate, in one event loop, frame by
frame: one frame through each chain back to back (order rotating), each call
timed; per round the medians and the median paired difference. A second bare
chain runs alongside as an A/A control, so the method's own noise shows.

- The gated room source (``integrations.livekit.GatedAudioSource`` over an
  ``rtc.AudioSource(queue_size_ms=0)``) against the same bare source, each with
  its own ``LocalAudioTrack``. With no native queue ``capture_frame`` never
  waits for pacing, so the figure is the call's own cost: the FFI round trip
  plus, gated, the adapter and the gate.
- The gated ``io.AudioOutput`` (``GatedAudioOutput``) on top of RoomIO's
  audio output, against RoomIO's output alone (see :mod:`bench.output_adapter`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from bench.chain_timing import AdapterPlan, interleaved_calls
from bench.output_adapter import SAMPLES, gated_output_class, measure_output
from bench.results import Section, Table, Target, fmt, fmt_spread, jsonify
from bench.timing import Spread, Tick, paired

__all__ = ["AdapterPlan", "gated_source_class", "run_adapter"]

RATE = 48_000
TARGET_ADDED = 0.03  # <= 3 % added per frame
TARGET_OWN_SHARE_NS = 150.0  # GatedAudioOutput over a do-nothing io.AudioOutput wrapper


def gated_source_class() -> Any | None:
    """Return ``GatedAudioSource`` if the LiveKit adapter is installed, else ``None``."""
    try:
        from integrations.livekit._gated_source import GatedAudioSource
    except ImportError:
        return None
    return GatedAudioSource


async def _measure_source(plan: AdapterPlan, tick: Tick | None) -> dict[str, list[float]]:
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
    try:
        out = await interleaved_calls(calls, plan, tick)
    finally:
        await gated.aclose()
        await bare.aclose()
        await control.aclose()
        del tracks
    if gate.stats().passed.frames < plan.frames * (plan.rounds + 1):
        raise RuntimeError("the gated source dropped frames of a live generation")
    return out


def _summarise(raw: dict[str, list[float]]) -> dict[str, Spread]:
    both = [(b + c) / 2 for b, c in zip(raw["bare"], raw["control"], strict=True)]
    floor: dict[str, Spread] = {}
    if "floor" in raw:
        floor = {
            "floor_ns": Spread.of(raw["floor"]),
            "floor_added_ns": Spread.of(raw["diff_floor"]),
            "floor_added_fraction": paired(raw["diff_floor"], both, lambda d, b: d / b),
            # gated vs the do-nothing wrapper, frame by frame: the gate's own share
            "gate_beyond_floor_ns": Spread.of(raw["beyond_floor"]),
            "gate_beyond_floor_fraction": paired(
                raw["beyond_floor"], raw["floor"], lambda d, f: d / f
            ),
        }
    return floor | {
        "bare_ns": Spread.of(raw["bare"]),
        "control_ns": Spread.of(raw["control"]),
        "gated_ns": Spread.of(raw["gated"]),
        "added_ns": Spread.of(raw["diff"]),
        "added_fraction": paired(raw["diff"], both, lambda d, b: d / b),
        "control_added_ns": Spread.of(raw["aa"]),
        "control_added_fraction": paired(raw["aa"], raw["bare"], lambda d, b: d / b),
    }


def _rows(s: dict[str, Spread], bare: str, gated: str) -> list[list[str]]:
    rows = [
        [f"{bare} A", fmt_spread(s["bare_ns"], 0), "", ""],
        [
            f"{bare} B (A/A: B - A)",
            fmt_spread(s["control_ns"], 0),
            fmt_spread(s["control_added_ns"], 0),
            fmt(s["control_added_fraction"].median * 100, 2),
        ],
    ]
    if "floor_ns" in s:
        rows.append(
            [
                "pass-through io.AudioOutput (floor, vs mean of A, B)",
                fmt_spread(s["floor_ns"], 0),
                fmt_spread(s["floor_added_ns"], 0),
                fmt(s["floor_added_fraction"].median * 100, 2),
            ]
        )
    rows.append(
        [
            f"{gated} (vs mean of A, B)",
            fmt_spread(s["gated_ns"], 0),
            fmt_spread(s["added_ns"], 0),
            fmt(s["added_fraction"].median * 100, 2),
        ]
    )
    if "floor_ns" in s:
        rows.append(
            [
                f"{gated} (vs the pass-through: gate's own share)",
                "",
                fmt_spread(s["gate_beyond_floor_ns"], 0),
                fmt(s["gate_beyond_floor_fraction"].median * 100, 2),
            ]
        )
    return rows


def _target(name: str, s: dict[str, Spread] | None) -> Target:
    if s is None:
        return Target(name, f"<= {TARGET_ADDED * 100:.0f} %", "not measured", None)
    added = s["added_fraction"].median
    measured = f"{added * 100:.2f} % ({s['added_ns'].median:.0f} ns)"
    if "gate_beyond_floor_ns" in s:  # the verdict stays against the bare chain
        measured += (
            f"; vs a do-nothing wrapper: {s['gate_beyond_floor_fraction'].median * 100:.2f} % "
            f"({s['gate_beyond_floor_ns'].median:.0f} ns)"
        )
    return Target(
        name, f"<= {TARGET_ADDED * 100:.0f} % of the bare chain", measured, added <= TARGET_ADDED
    )


def run_adapter(plan: AdapterPlan, tick: Tick | None = None) -> Section:
    """Measure each gated adapter against its bare chain, if the adapter imports.

    Args:
        plan: Rounds and frames.
        tick: Progress callback, called once per round of each chain (2 x rounds).

    Returns:
        The section; an adapter that does not import is reported "not measured".
    """

    section = Section(key="adapter", title="Adapter overhead: gated vs bare chain, per frame")
    source: dict[str, Spread] | None = None
    output: dict[str, Spread] | None = None
    if gated_source_class() is None:
        section.notes.append("not measured: integrations/livekit/gated_source.py does not import")
    else:
        source = _summarise(asyncio.run(_measure_source(plan, tick)))
        section.data["source"] = jsonify(source)
        section.tables.append(
            Table(
                f"await capture_frame(), 10 ms 48 kHz frames, queue_size_ms=0, "
                f"{plan.rounds} rounds x {plan.frames} frames per chain; per-round medians, "
                "median [p25-p75] over rounds",
                ["chain", "ns per frame", "added ns", "added %"],
                _rows(source, "bare rtc.AudioSource", "GatedAudioSource"),
            )
        )
    if gated_output_class() is None:
        section.notes.append("not measured: integrations/livekit/gated_output.py does not import")
    else:
        output = _summarise(asyncio.run(measure_output(plan, tick)))
        section.data["output"] = jsonify(output)
        beyond = output["gate_beyond_floor_ns"]
        section.notes.append(
            f"io.AudioOutput: a do-nothing pass-through wrapper alone adds "
            f"{output['floor_added_ns'].median:.0f} ns "
            f"({output['floor_added_fraction'].median * 100:.1f} %): LiveKit 1.8.9 puts an "
            "_AudioSinkProxy under any wrapper of a leaf output, one more link per frame; "
            "that is the floor any wrapper pays. Added vs that wrapper in the same chain "
            f"(the gate's own share, paired frame by frame): {beyond.median:.0f} ns "
            f"[{beyond.p25:.0f}-{beyond.p75:.0f}], "
            f"{output['gate_beyond_floor_fraction'].median * 100:.1f} % of the pass-through "
            "chain (tag read, the segment's lane: the gate's decision, segment bookkeeping). "
            "The 3 % target is judged "
            "against the bare chain: RoomIO's own capture_frame is only "
            f"{output['bare_ns'].median / 1000:.1f} us, so 3 % is "
            f"{output['bare_ns'].median * 0.03:.0f} ns, less than any wrapper costs."
        )
        section.tables.append(
            Table(
                f"await AudioOutput.capture_frame(), {SAMPLES / 24:.0f} ms 24 kHz tagged frames, "
                f"into RoomIO's output (no room), {plan.rounds} rounds x {plan.frames} frames "
                "per chain; per-round medians, median [p25-p75] over rounds",
                ["chain", "ns per frame", "added ns", "added %"],
                _rows(output, "RoomIO _ParticipantAudioOutput", "GatedAudioOutput -> RoomIO"),
            )
        )
    if tick is not None and source is None:
        tick(plan.rounds)
    if tick is not None and output is None:
        tick(plan.rounds)
    section.data.update({"unit": "ns per frame", "rounds": plan.rounds, "frames": plan.frames})
    section.notes.append(
        "added ns = per round, the median per-frame difference between chains called back "
        "to back; the gated chain is compared with the mean of the two bare ones, and their "
        "A/A difference is the method's own noise."
    )
    section.targets.append(_target("gated room source, added per frame", source))
    section.targets.append(_target("gated io.AudioOutput, added per frame", output))
    name = "gated io.AudioOutput, the gate's own share over a do-nothing wrapper"
    limit = f"<= {TARGET_OWN_SHARE_NS:.0f} ns per frame"
    if output is None:
        section.targets.append(Target(name, limit, "not measured", None))
    else:
        own = output["gate_beyond_floor_ns"]
        section.targets.append(
            Target(
                name,
                limit,
                f"{own.median:.0f} ns [{own.p25:.0f}-{own.p75:.0f}] (median [p25-p75] of rounds)",
                own.median <= TARGET_OWN_SHARE_NS,
            )
        )
    return section
