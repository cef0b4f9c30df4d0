"""Section 4: leak scenarios, the gate against LiveKit Agents 1.8.9 alone.

Each scenario runs twice on a fresh rig: an ``AgentSession`` with the real
livekit-plugins-openai ``RealtimeModel`` talking to the project's Realtime
simulator, whose output is LiveKit's own RoomIO audio output (run without a
room) read back through a ``LocalAudioTrack`` and ``rtc.AudioStream``; once
with ``install_gate`` on top, once without. The simulator's audio names its
response and chunk in every sample, so each sample read back is attributed.
The figure is the samples (24 kHz) of unwanted audio that left the track.
The rig is :mod:`integrations.testing.agent_rig`, shared with ``tests/test_livekit_agent.py``
(the tests assert; this counts).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from bench.results import Section, Table, Target
from bench.timing import Tick

if TYPE_CHECKING:  # the rig imports LiveKit; this module stays importable without it
    from integrations.testing.agent_rig import AgentRig

__all__ = ["SCENARIOS", "LeakPlan", "run_leaks"]

SR = 24_000  # integrations.testing.agent_rig.SR
FRAME = SR // 100  # the 10 ms frame in flight at a flag: the physical minimum


@dataclass(frozen=True, slots=True)
class LeakPlan:
    """Which scenarios.

    Attributes:
        only: Scenario keys to run; empty for all.
    """

    only: tuple[str, ...] = ()


@dataclass(slots=True)
class _Leak:
    unwanted: int  # samples of unwanted audio that left the track
    sent: int  # samples of that audio the server sent
    minimum: int = 0  # samples the physics allows (the frame in flight at a flag)


# ---- the scenarios: each returns the unwanted audio of one rig ---------------------------


async def _late_created(r: AgentRig) -> _Leak:
    """``response.created`` 1.6 s after ``response.create``; the request's budget is 1 s."""
    from integrations.openai_realtime.simulator.plans import ResponsePlan
    from integrations.testing.agent_rig import playout

    late = ResponsePlan(chunks=40, pace=None, created_delay_s=1.6, ignore_cancel=True)
    r.sim.enqueue(late)
    await playout(r.session.generate_reply())
    rec = r.sim.responses[0]
    await r.sim.wait_done(rec)
    await r.quiet()
    return _Leak(r.played(rec), rec.samples_sent)


async def _cancel_ignored(r: AgentRig) -> _Leak:
    """The app cancels a reply mid-stream; the server ignores the cancel and keeps sending."""
    from integrations.openai_realtime.simulator.plans import ResponsePlan
    from integrations.testing.agent_rig import playout

    r.sim.enqueue(ResponsePlan(chunks=60, pace=4, ignore_cancel=True))
    handle = r.session.generate_reply()
    rec = await r.sim.wait_for_response(1)
    await r.until_played(rec, 300 * SR // 1000)
    t_cancel = time.monotonic()
    r.rt.send_event({"type": "response.cancel", "response_id": rec.response_id})
    await r.sim.wait_done(rec, timeout=8)
    await playout(handle)
    await r.quiet()
    return _Leak(r.played(rec, after=t_cancel), rec.samples_sent, FRAME)


async def _after_done(r: AgentRig) -> _Leak:
    """20 audio deltas of a reply arrive after its ``response.done``."""
    from integrations.openai_realtime.simulator.plans import ResponsePlan
    from integrations.testing.agent_rig import playout

    plan = ResponsePlan(chunks=10, pace=None, deltas_after_done=20)
    r.sim.enqueue(plan)
    await playout(r.session.generate_reply())
    rec = r.sim.responses[0]
    await r.sim.wait_done(rec)
    await asyncio.sleep(0.3)
    await r.quiet()
    straggled = rec.chunks_after_done * plan.samples_per_chunk
    return _Leak(r.played(rec, min_chunk=plan.chunks), straggled)


async def _unattributed_after_timeout(r: AgentRig) -> _Leak:
    """A model without request ids: LiveKit's generate_reply times out (shortened to 0.4 s),
    then a reply with no request id arrives (the late answer, unattributable)."""
    from integrations.openai_realtime.simulator.plans import ResponsePlan
    from integrations.testing.agent_rig import livekit_reply_timeout, playout

    with livekit_reply_timeout(0.4):
        r.sim.enqueue(ResponsePlan(chunks=5, pace=None, created_delay_s=0.6))
        await playout(r.session.generate_reply())
        await r.sim.wait_done(await r.sim.wait_for_response(1))
        orphan = await r.sim.start_server_response(
            ResponsePlan(chunks=40, pace=None, ignore_cancel=True)
        )
        await r.sim.wait_done(orphan)
        await asyncio.sleep(0.3)
        await r.quiet()
    return _Leak(r.played(orphan), orphan.samples_sent)


async def _out_of_band_late(r: AgentRig) -> _Leak:
    """An out-of-band ``response.create`` (``conversation: none``) answered after its 1 s
    budget: the app gave up on it, the answer streams anyway."""
    from integrations.openai_realtime.simulator.plans import ResponsePlan
    from integrations.testing.agent_rig import poll

    conn = await r.sim.wait_for_connection()
    with contextlib.suppress(TimeoutError):  # go on without it, as before
        await poll(lambda: any(e.type == "session.update" for e in conn.log))
    r.sim.enqueue(ResponsePlan(chunks=40, pace=None, created_delay_s=1.6, ignore_cancel=True))
    r.rt.send_event({"type": "response.create", "response": {"conversation": "none"}})
    oob = await r.sim.wait_for_response(1, timeout=5)
    await r.sim.wait_done(oob)
    await asyncio.sleep(0.3)
    await r.quiet()
    return _Leak(r.played(oob), oob.samples_sent)


async def _flag_mid_playout(r: AgentRig) -> _Leak:
    """A reply is cancelled (the server honours it) while seconds of it sit in the queues."""
    from integrations.openai_realtime.simulator.plans import ResponsePlan
    from integrations.testing.agent_rig import playout

    r.sim.enqueue(ResponsePlan(chunks=100, pace=4))
    handle = r.session.generate_reply()
    rec = await r.sim.wait_for_response(1)
    await r.until_played(rec, 300 * SR // 1000)
    t_cancel = time.monotonic()
    r.rt.send_event({"type": "response.cancel", "response_id": rec.response_id})
    await playout(handle)
    await r.sim.wait_done(rec)
    await r.quiet()
    return _Leak(r.played(rec, after=t_cancel), rec.samples_sent, FRAME)


Scenario = Callable[["AgentRig"], Awaitable[_Leak]]  # a runtime alias: the rig is imported lazily

#: key -> (label, scenario, gate request timeout, OpenAI tap on, in --quick)
SCENARIOS: dict[str, tuple[str, Scenario, float, bool, bool]] = {
    "late_created": ("late response.created (1.6 s, budget 1 s)", _late_created, 1.0, True, False),
    "cancel_ignored": ("cancel ignored by the server", _cancel_ignored, 10.0, True, False),
    "after_done": ("20 deltas after response.done", _after_done, 10.0, True, False),
    "unattributed": (
        "unattributed reply after a generate_reply timeout (no tap)",
        _unattributed_after_timeout,
        10.0,
        False,
        False,
    ),
    "out_of_band": ("out-of-band reply after its budget", _out_of_band_late, 1.0, True, False),
    "mid_playout": ("flag mid-playout, queue full (cancel)", _flag_mid_playout, 10.0, True, True),
}


async def _one(key: str, gated: bool) -> dict[str, Any]:
    _, scenario, timeout, tap, _ = SCENARIOS[key]
    from integrations.testing.agent_rig import agent_rig

    t0 = time.perf_counter()
    try:
        async with agent_rig(
            gated, request_timeout=timeout, openai_tap=tap, instructions="bench"
        ) as r:
            leak = await asyncio.wait_for(scenario(r), 25)
            dropped = r.gate.stats().dropped.samples if gated else 0
    except Exception as exc:  # a scenario that breaks is reported, never fakes a figure
        return {"error": f"{type(exc).__name__}: {exc}", "seconds": time.perf_counter() - t0}
    return {
        "unwanted_samples": leak.unwanted,
        "sent_samples": leak.sent,
        "minimum_samples": leak.minimum,
        "gate_dropped_samples": dropped,
        "seconds": time.perf_counter() - t0,
    }


def _cell(result: dict[str, Any]) -> str:
    if "error" in result:
        return "error"
    return f"{result['unwanted_samples']:,} / {result['sent_samples']:,}"


def run_leaks(plan: LeakPlan, quick: bool, tick: Tick | None = None) -> Section:
    """Run each scenario with the gate and with LiveKit Agents alone.

    Args:
        plan: Which scenarios (all by default).
        quick: Run only the scenarios marked for ``--quick``.
        tick: Progress callback, once per rig run.

    Returns:
        The section.
    """
    keys = [k for k in SCENARIOS if (not plan.only or k in plan.only)]
    skipped = [k for k in keys if quick and not SCENARIOS[k][4]]
    keys = [k for k in keys if k not in skipped]

    async def main() -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        for i, key in enumerate(keys):
            order = (True, False) if i % 2 == 0 else (False, True)
            out[key] = {}
            for gated in order:
                out[key]["gate" if gated else "livekit_alone"] = await _one(key, gated)
                if tick is not None:
                    tick(1)
        return out

    import logging

    # LiveKit logs every misbehaviour it sees (tracebacks included); keep the progress bar clean
    loggers = [logging.getLogger(n) for n in ("livekit", "livekit.agents", "playback_gate")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.CRITICAL)
    try:
        results = asyncio.run(main())
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.setLevel(level)
    section = Section(
        key="leaks",
        title="Leak scenarios: unwanted audio that left the track, gate vs LiveKit Agents 1.8.9",
        data={"unit": "samples at 24 kHz", "scenarios": results},
    )
    table = Table(
        "samples of unwanted audio read back from the track / samples of it the server sent "
        "(24 kHz; AgentSession + livekit-plugins-openai + simulator, RoomIO output)",
        ["scenario", "with the gate", "LiveKit alone", "physical minimum"],
    )
    worst_excess: int | None = 0
    for key, r in results.items():
        gate, alone = r["gate"], r["livekit_alone"]
        minimum = gate.get("minimum_samples", 0)
        table.rows.append([SCENARIOS[key][0], _cell(gate), _cell(alone), f"{minimum:,}"])
        if "error" in gate:
            worst_excess = None
        elif worst_excess is not None:
            worst_excess = max(worst_excess, gate["unwanted_samples"] - minimum)
    section.tables.append(table)
    for key, r in results.items():
        for who, res in r.items():
            if "error" in res:
                section.notes.append(f"{key}, {who}: not measured: {res['error']}")
    if skipped:
        section.notes.append(
            f"--quick runs {len(keys)} of {len(keys) + len(skipped)} scenarios "
            f"(skipped: {', '.join(skipped)}); the full run has them all."
        )
    section.notes.append(
        "physical minimum: after a flag, the 10 ms frame already leaving the track (240 "
        "samples); for a reply that must never play it is 0."
    )
    limit = "0 beyond the frame in flight"
    if worst_excess is None or not results:
        section.targets.append(
            Target("leaks with the gate, every scenario", limit, "not measured", None)
        )
    else:
        section.targets.append(
            Target(
                "leaks with the gate, every scenario",
                limit,
                f"{worst_excess:,} samples beyond it, worst case ({len(results)} scenarios)",
                worst_excess <= 0,
            )
        )
    return section
