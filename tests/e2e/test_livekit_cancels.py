"""One ``response.cancel`` per response, with the gate installed on a real ``AgentSession``.

LiveKit Agents 1.8.9 cancels some dead replies itself (see
``integrations.livekit._cancels``). The gate's targeted cancel must go out only when
LiveKit's does not, or the simulator, like the real server, answers the redundant one
with an ``error`` (``response_cancel_not_active``). Each test counts the cancels the
simulator received for the dead reply, and those errors, with the gate installed.
"""

from __future__ import annotations

import pytest
from livekit.agents import llm

from gate import DropReason
from integrations.livekit import install_gate
from integrations.openai_realtime.simulator.plans import ResponsePlan
from integrations.openai_realtime.simulator.server import RealtimeSimulator
from integrations.testing.agent_rig import AgentRig, livekit_reply_timeout, playout, poll
from integrations.testing.agent_rig import agent_rig as rig

pytestmark = pytest.mark.timeout(30)


def cancels_of(sim: RealtimeSimulator, response_id: str) -> list[dict[str, object]]:
    """Every ``response.cancel`` the simulator received that named ``response_id``, or none."""
    return [
        e.event
        for e in sim.log(type="response.cancel", direction="recv")
        if e.event.get("response_id") in (response_id, None)
    ]


def cancel_not_active_errors(sim: RealtimeSimulator) -> int:
    """The ``response_cancel_not_active`` errors the simulator sent."""
    return sum(
        1
        for e in sim.log(type="error", direction="send")
        if e.event.get("error", {}).get("code") == "response_cancel_not_active"
    )


async def settle(r: AgentRig) -> None:
    """Wait out the arbiter's hold, so a cancel it would send has gone out."""
    wiring = r.wiring
    assert wiring is not None
    await poll(lambda: not any(a.held for a in wiring.arbiters.values()), timeout=3)
    await r.quiet()


async def test_late_reply_past_the_gates_deadline_gets_one_cancel() -> None:
    """LiveKit surfaces it, the gate interrupts its speech, LiveKit's bare cancel is the one."""
    async with rig(True, request_timeout=0.5) as r:
        r.sim.enqueue(ResponsePlan(chunks=100, pace=1, created_delay_s=1.0))
        handle = await playout(r.session.generate_reply(), timeout=8)
        late = r.sim.responses[0]
        await r.sim.wait_done(late, timeout=8)
        await settle(r)
        assert handle.interrupted and r.played(late) == 0
        info = r.gate.generation(late.response_id)
        assert info is not None and info.reason is DropReason.TIMED_OUT
        assert late.status == "cancelled"
        assert len(cancels_of(r.sim, late.response_id)) == 1
        assert cancel_not_active_errors(r.sim) == 0
        arbiter = next(iter(r.wiring.arbiters.values())) if r.wiring else None
        assert arbiter is not None and arbiter.sent == 0 and arbiter.left_to_livekit == 1


async def test_reply_livekit_discarded_itself_gets_only_livekits_cancel() -> None:
    """LiveKit's own (shortened) timeout: it cancels by id; the gate, equally late, adds none."""
    with livekit_reply_timeout(0.4):
        async with rig(True, request_timeout=0.4) as r:
            r.sim.enqueue(ResponsePlan(chunks=100, pace=1, created_delay_s=0.9))
            handle = await playout(r.session.generate_reply())
            assert isinstance(handle.exception(), llm.RealtimeError)
            late = await r.sim.wait_for_response(1)
            await r.sim.wait_done(late, timeout=8)
            await settle(r)
            assert r.played(late) == 0 and late.status == "cancelled"
            assert cancels_of(r.sim, late.response_id) == [
                {"type": "response.cancel", "response_id": late.response_id}
            ]
            assert cancel_not_active_errors(r.sim) == 0


async def test_out_of_band_dead_reply_gets_the_gates_targeted_cancel() -> None:
    """LiveKit's bare cancel (sent as the gate interrupts the reply's speech) never applies
    to an out-of-band reply, so the held targeted cancel goes out: one that reaches it."""
    async with rig(True, request_timeout=0.5) as r:
        assert r.wiring is not None
        tap = next(iter(r.wiring.taps.values()))
        event = tap.stamp({"type": "response.create", "response": {"conversation": "none"}})
        r.sim.enqueue(ResponsePlan(chunks=100, pace=1, created_delay_s=1.0))
        r.rt.send_event(event)
        late = await r.sim.wait_for_response(1)
        await r.sim.wait_done(late, timeout=8)
        await settle(r)
        assert r.played(late) == 0 and late.status == "cancelled"
        targeted = [c for c in cancels_of(r.sim, late.response_id) if "response_id" in c]
        assert len(targeted) == 1 and sum(a.sent for a in r.wiring.arbiters.values()) == 1
        # LiveKit's own bare cancel, sent because the reply's speech was interrupted, finds
        # no default-conversation response: that error is LiveKit's, not the gate's
        assert [c for c in cancels_of(r.sim, late.response_id) if "response_id" not in c]
        assert cancel_not_active_errors(r.sim) == 1


async def test_install_gate_takes_the_settle_time() -> None:
    async with RealtimeSimulator() as sim:
        r = AgentRig(sim, gated=False)
        try:
            await r.start()
            wiring = install_gate(r.session, r.gate, cancel_settle=0.2)
            assert [a.settle for a in wiring.arbiters.values()] == [0.2]
        finally:
            await r.aclose()
