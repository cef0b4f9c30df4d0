"""Lifecycle: nothing of the gate's outlives the ``AgentSession`` it was installed on.

A real ``AgentSession`` with the real livekit-plugins-openai model against the project's
simulator (``integrations.testing.agent_rig``) goes through handoffs to an STT-LLM-TTS
agent and back to a realtime one, and is closed. Then no task, listener, timer or purge
sink of the installation may be left: not in ``asyncio.all_tasks()``, not in the
session's or any realtime session's listener lists, not on the output's sink, not in
the gate. LiveKit Agents' own suite fails a test on a leaked task the same way.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from livekit import rtc
from livekit.agents import Agent, AgentSession
from livekit.plugins import openai as lk_openai

import gate as gate_pkg
import integrations.livekit as lk_pkg
import integrations.openai_realtime as oai_pkg
from gate import PlaybackGate
from integrations.livekit import GateInstallation
from integrations.openai_realtime.simulator.plans import ResponsePlan
from integrations.openai_realtime.simulator.server import RealtimeSimulator
from integrations.testing.agent_rig import AgentRig, agent_rig, playout, poll

pytestmark = pytest.mark.timeout(60)

# the library code whose tasks must end with the session (the simulator's are its own)
_LIBRARY_DIRS = tuple(str(Path(str(p.__file__)).parent) for p in (gate_pkg, lk_pkg)) + tuple(
    str(p) for p in Path(str(oai_pkg.__file__)).parent.glob("_*.py")
)


def our_tasks() -> list[asyncio.Task[Any]]:
    """Pending tasks whose coroutine is the gate's library code."""
    found = []
    for task in asyncio.all_tasks():
        code = getattr(task.get_coro(), "cr_code", None)
        if not task.done() and code is not None and code.co_filename.startswith(_LIBRARY_DIRS):
            found.append(task)
    return found


def listeners_of(emitter: rtc.EventEmitter[Any], owners: list[object]) -> list[tuple[str, Any]]:
    """``(event, callback)`` pairs on ``emitter`` that belong to one of ``owners``."""
    events: dict[Any, dict[Any, None]] = emitter._events  # the emitter's registry, read only
    return [
        (event, cb)
        for event, callbacks in events.items()
        for cb in callbacks
        if any(getattr(cb, "__self__", None) is owner for owner in owners)
    ]


def owners_of(wiring: GateInstallation) -> list[object]:
    """Every object of the installation whose bound methods it registers."""
    return [wiring, wiring.output, *wiring.taps.values(), *wiring.arbiters.values()]


async def handoff(session: AgentSession[Any], agent: Agent) -> None:
    """Hand the session to ``agent`` and wait until its activity runs."""
    session.update_agent(agent)

    def running() -> bool:
        try:
            return session.current_agent is agent and agent.session is session
        except RuntimeError:
            return False

    await poll(running)
    await asyncio.sleep(0.2)  # its start and on_enter run


def realtime_agent(r: AgentRig) -> Agent:
    """An agent with its own OpenAI realtime model (so a handoff makes a new realtime session)."""
    model = lk_openai.realtime.RealtimeModel(
        base_url=r.sim.base_url, api_key="x", modalities=["audio"]
    )
    r.closers.append(model.aclose)
    return Agent(instructions="realtime", llm=model)


def pipeline_agent(sim: RealtimeSimulator) -> Agent:
    """An STT-LLM-TTS agent (a chat-completions LLM: no realtime session)."""
    return Agent(instructions="pipeline", llm=lk_openai.LLM(base_url=sim.base_url, api_key="x"))


@pytest.mark.parametrize(
    "path",
    ["realtime>pipeline", "realtime>pipeline>realtime", "realtime>realtime"],
)
async def test_nothing_of_ours_outlives_the_session(path: str) -> None:
    async with agent_rig(True) as r:
        wiring = r.wiring
        assert wiring is not None
        rts = [r.rt]
        for step in path.split(">")[1:]:
            if step == "pipeline":
                await handoff(r.session, pipeline_agent(r.sim))
            else:
                await handoff(r.session, realtime_agent(r))
                rts.append(r.rt)
                assert r.rt in wiring.taps  # the new realtime session is gated
                r.sim.enqueue(ResponsePlan(chunks=5, pace=None))
                reply = await playout(r.session.generate_reply())
                assert not reply.interrupted
        owners = owners_of(wiring)
        arbiters = list(wiring.arbiters.values())
        assert listeners_of(r.session, owners) and all(listeners_of(rt, owners) for rt in rts)

        await r.session.aclose()

        assert wiring.detached
        assert our_tasks() == []
        assert wiring.listeners == []
        assert listeners_of(r.session, owners) == []
        for rt in rts:
            assert listeners_of(rt, owners) == []
        assert wiring.output not in r.gate.sinks
        assert all(not a.held for a in arbiters)
        assert wiring._handoff is None


async def test_detach_on_a_running_session_takes_everything_out() -> None:
    async with agent_rig(True) as r:
        wiring = r.wiring
        assert wiring is not None
        owners = owners_of(wiring)
        sink, rt = wiring.output.sink, r.rt
        assert listeners_of(sink, owners)
        wiring.detach()
        assert r.session.output.audio is sink
        for emitter in (r.session, rt, sink):
            assert listeners_of(emitter, owners) == []
        assert wiring.output not in r.gate.sinks and our_tasks() == []
        r.sim.enqueue(ResponsePlan(chunks=5, pace=None))  # the session plays on, ungated
        reply = await playout(r.session.generate_reply())
        assert not reply.interrupted and wiring.output.frames_dropped == 0


async def test_a_gate_reused_across_sessions_keeps_no_dead_outputs() -> None:
    shared = PlaybackGate()
    async with RealtimeSimulator() as sim:
        for _ in range(3):
            r = AgentRig(sim, gated=True)
            r.gate = shared
            try:
                await r.start()
                assert r.wiring is not None and r.wiring.gate is shared
                assert r.wiring.output in shared.sinks
                await r.session.aclose()
                assert shared.sinks == ()
            finally:
                await r.aclose()


async def test_closing_mid_handoff_leaves_no_poll() -> None:
    """The session closes while the installer still waits for a new realtime session."""
    async with agent_rig(True) as r:
        wiring = r.wiring
        assert wiring is not None
        r.session.update_agent(realtime_agent(r))
        await r.session.aclose()
        assert wiring.detached and wiring._handoff is None
        assert our_tasks() == []
        assert listeners_of(r.session, owners_of(wiring)) == []
