"""Section 3c: the cut end to end, from the server event that kills a reply to the listener.

An ``AgentSession`` with the real livekit-plugins-openai ``RealtimeModel``
talks to the project's Realtime simulator; its audio goes through LiveKit's
own RoomIO output (run without a room) into an ``rtc.AudioSource`` and a
``LocalAudioTrack``, read back through ``rtc.AudioStream``
(:mod:`integrations.testing.agent_rig`). ``install_gate`` is on top, or not
(LiveKit Agents 1.8.9 alone, side by side). Three events kill a reply:

- **cancelled done**: the server cancels, on its own, a reply that is
  streaming faster than real time (so its audio waits in the output's
  queues) and ends it with ``response.done``, status ``cancelled``; the
  client sent no cancel, so that event is the first it hears of it;
- **deadline**: ``response.created`` arrives after the gate's request budget
  (0.3 s; LiveKit's own is 10 s): the reply is dead on arrival;
- **barge-in**: the simulator's server VAD hears the user while the reply
  plays: ``input_audio_buffer.speech_started``, and the server cancels the
  reply itself (``interrupt_response``); LiveKit interrupts the speech.

The figure per trial is the time from the simulator sending that event (its
log, ``time.monotonic``) to the arrival of the last read-back frame holding
that reply's audio (0 if none arrived after the event), and the reply's audio
read back after the event. With the gate, a purge sink on the gate also
stamps the flag, splitting the time into event -> flag (the client and the
gate) and flag -> last sample (the output's queues and the track). The
simulator's audio names its response in every sample
(:mod:`integrations.openai_realtime.simulator.audio_marker`).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from bench.results import Section, Table, Target, fmt
from bench.timing import Tick, percentile

if TYPE_CHECKING:  # the rig imports LiveKit; this module stays importable without it
    from integrations.openai_realtime.simulator.records import ResponseRecord
    from integrations.testing.agent_rig import AgentRig

__all__ = ["KINDS", "E2EPlan", "run_e2e"]

SR = 24_000  # the rig's rate
TARGET_MS = 10.0  # one 10 ms frame
DEADLINE_S = 0.3  # the gate's request budget in the deadline trials


@dataclass(frozen=True, slots=True)
class E2EPlan:
    """How many replies are killed.

    Attributes:
        trials: Replies killed per kind, gated and ungated each.
        baseline: Also run LiveKit Agents alone (no gate), side by side.
    """

    trials: int
    baseline: bool = True


@dataclass(slots=True)
class _Trial:
    latency_ms: float  # event -> last frame of the reply read back (0: none after the event)
    leaked_ms: float  # the reply's audio read back after the event
    flag_ms: float | None = None  # event -> the gate's flag of the reply (gated rigs)


class _FlagTimes:
    """A purge sink that stamps when each generation was flagged (``time.monotonic``)."""

    def __init__(self) -> None:
        self.at: dict[str, float] = {}

    def purge(self, generation_id: str, reason: Any) -> None:
        self.at.setdefault(generation_id, time.monotonic())


def _after(r: AgentRig, rec: ResponseRecord, t_event: float) -> _Trial:
    """Time the reply's last read-back frame (and its flag) after ``t_event``; count its audio."""
    from integrations.openai_realtime.simulator import audio_marker as am

    last, samples = None, 0
    for t, pcm in list(r.chunks):
        if t < t_event:
            continue
        n = sum(run.length for run in am.identify(pcm) if run.response == rec.marker_response)
        if n:
            last, samples = t, samples + n
    flags = next((s for s in r.gate.sinks if isinstance(s, _FlagTimes)), None)
    flagged = None if flags is None else flags.at.get(rec.response_id)
    return _Trial(
        0.0 if last is None else (last - t_event) * 1e3,
        samples / SR * 1e3,
        None if flagged is None else (flagged - t_event) * 1e3,
    )


def _sent_at(r: AgentRig, event_type: str, rec: ResponseRecord | None = None) -> float:
    """The simulator's send time of the last ``event_type`` (of ``rec``, if given)."""
    for entry in reversed(r.sim.log(type=event_type, direction="send")):
        event = entry.event
        rid = event.get("response_id") or (event.get("response") or {}).get("id")
        if rec is None or rid == rec.response_id:
            return entry.t
    raise LookupError(f"the simulator sent no {event_type}")


async def _cancelled_done(r: AgentRig, k: int) -> _Trial:
    from integrations.openai_realtime.simulator.plans import ResponsePlan
    from integrations.testing.agent_rig import playout

    r.sim.enqueue(ResponsePlan(chunks=40, pace=4))
    handle = r.session.generate_reply()
    rec = await r.sim.wait_for_response(k + 1)
    await r.until_played(rec, 150 * SR // 1000)
    # the server cancels on its own (reason turn_detected): the client hears of it first
    # from response.done
    if not r.sim.connection.interrupt_default_response():
        raise RuntimeError("the reply was no longer in progress to cancel")
    await r.sim.wait_done(rec)
    await playout(handle)
    await r.quiet(0.15)
    return _after(r, rec, _sent_at(r, "response.done", rec))


async def _deadline(r: AgentRig, k: int) -> _Trial:
    from integrations.openai_realtime.simulator.plans import ResponsePlan
    from integrations.testing.agent_rig import playout

    late = ResponsePlan(chunks=15, pace=None, created_delay_s=DEADLINE_S + 0.2, ignore_cancel=True)
    r.sim.enqueue(late)
    handle = r.session.generate_reply()
    rec = await r.sim.wait_for_response(k + 1, timeout=5)
    await r.sim.wait_done(rec)
    await playout(handle)
    await r.quiet(0.15)
    return _after(r, rec, _sent_at(r, "response.created", rec))


async def _barge_in(r: AgentRig, k: int) -> _Trial:
    from integrations.openai_realtime.simulator.plans import ResponsePlan
    from integrations.testing.agent_rig import playout

    r.sim.enqueue(ResponsePlan(chunks=40, pace=4))
    handle = r.session.generate_reply()
    rec = await r.sim.wait_for_response(k + 1)
    await r.until_played(rec, 150 * SR // 1000)
    # server VAD hears the user: speech_started, and (interrupt_response) the server
    # cancels the reply itself
    await r.sim.start_user_speech()
    t_event = _sent_at(r, "input_audio_buffer.speech_started")
    await playout(handle)
    await r.sim.wait_done(rec)
    r.sim.connection.vad.reset()  # the speech ends unheard: no user turn, no server reply
    await r.quiet(0.15)
    return _after(r, rec, t_event)


Kind = Callable[["AgentRig", int], Awaitable[_Trial]]

#: key -> (label, trial, the gate's request budget in s)
KINDS: dict[str, tuple[str, Kind, float]] = {
    "cancelled_done": ("cancelled response.done", _cancelled_done, 10.0),
    "deadline": (
        f"deadline ({DEADLINE_S:g} s budget, late response.created)",
        _deadline,
        DEADLINE_S,
    ),
    "barge_in": ("barge-in (server speech_started)", _barge_in, 10.0),
}


async def _kind(key: str, gated: bool, trials: int, tick: Tick | None) -> dict[str, Any]:
    from integrations.testing.agent_rig import agent_rig

    _, trial, budget = KINDS[key]
    out: list[_Trial] = []
    try:
        async with agent_rig(gated, request_timeout=budget, instructions="bench") as r:
            if gated:
                r.gate.add_sink(_FlagTimes())
            for k in range(trials):
                out.append(await asyncio.wait_for(trial(r, k), 20))
                if tick is not None:
                    tick(1)
    except Exception as exc:  # a kind that breaks is reported, never fakes a figure
        return {"error": f"{type(exc).__name__}: {exc}", "trials": len(out)}
    lat = [t.latency_ms for t in out]
    leak = [t.leaked_ms for t in out]
    flag = [t.flag_ms for t in out if t.flag_ms is not None]
    return {
        "trials": len(out),
        "flag_ms": {"p50": percentile(flag, 50), "p95": percentile(flag, 95)} if flag else None,
        "latency_ms": {"p50": percentile(lat, 50), "p95": percentile(lat, 95), "max": max(lat)},
        "leaked_ms": {"p50": percentile(leak, 50), "p95": percentile(leak, 95), "max": max(leak)},
        "raw": [
            {"latency_ms": t.latency_ms, "leaked_ms": t.leaked_ms, "flag_ms": t.flag_ms}
            for t in out
        ],
    }


def steps(plan: E2EPlan) -> int:
    """Progress steps: one per trial."""
    return len(KINDS) * plan.trials * (2 if plan.baseline else 1)


def run_e2e(plan: E2EPlan, tick: Tick | None = None) -> Section:
    """Kill replies three ways and time the last sample at the listener.

    Args:
        plan: Trials per kind.
        tick: Progress callback, once per trial.

    Returns:
        The section.
    """
    whos = ("gate", "livekit_alone") if plan.baseline else ("gate",)

    async def main() -> dict[str, dict[str, Any]]:
        results: dict[str, dict[str, Any]] = {}
        for key in KINDS:
            results[key] = {}
            for who in whos:
                results[key][who] = await _kind(key, who == "gate", plan.trials, tick)
        return results

    t0 = time.perf_counter()
    results = asyncio.run(main())
    section = Section(
        key="e2e",
        title="Cut end to end: server event -> last sample at the listener (AgentSession, "
        "real plugin, simulator, RoomIO output, track read-back)",
        data={"kinds": results, "seconds": time.perf_counter() - t0},
    )
    headers = [
        "event that kills the reply",
        "with the gate p50/p95/max ms",
        "event -> flag p50/p95 ms",
        "leaked ms p95",
    ]
    if plan.baseline:
        headers += ["LiveKit alone p50/p95/max ms", "leaked ms p95"]
    table = Table(
        f"event -> last frame of the reply read back, ms ({plan.trials} per kind)", headers
    )
    for key, by_who in results.items():
        row = [KINDS[key][0]]
        for who in whos:
            r = by_who[who]
            if "error" in r:
                row += [r["error"][:40], *(["-"] * (2 if who == "gate" else 1))]
                continue
            lat = r["latency_ms"]
            row.append(f"{lat['p50']:.2f}/{lat['p95']:.2f}/{lat['max']:.2f}")
            if who == "gate":
                f = r["flag_ms"]
                row.append("never flagged" if f is None else f"{f['p50']:.2f}/{f['p95']:.2f}")
            row.append(fmt(r["leaked_ms"]["p95"], 1))
        table.rows.append(row)
        g = by_who["gate"]
        name = f"cut end to end, {KINDS[key][0]}, with the gate, p95"
        limit = f"<= {TARGET_MS:.0f} ms (one frame)"
        if "error" in g:
            section.targets.append(Target(name, limit, f"error: {g['error']}", False))
        else:
            p95 = g["latency_ms"]["p95"]
            measured = f"{p95:.2f} ms"
            if g["flag_ms"] is not None:
                measured += f", of which event -> flag {g['flag_ms']['p95']:.2f} ms"
            alone = by_who.get("livekit_alone", {})
            if "latency_ms" in alone:
                measured += f" (LiveKit alone {alone['latency_ms']['p95']:.1f} ms)"
            section.targets.append(Target(name, limit, measured, p95 <= TARGET_MS))
    section.tables.append(table)
    section.notes.append(
        "latency = arrival of the last read-back frame holding the reply's audio - the "
        "simulator's send time of the event (0 if none arrived after it); leaked = the reply's "
        "audio read back after the event; event -> flag = when the gate flagged the reply "
        "(a purge sink's stamp), the rest is the output's queues and the track."
    )
    return section
