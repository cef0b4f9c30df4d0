"""How the installer reads LiveKit 1.8.9's signals, checked against the real plugin.

The ``generate_reply`` timeout has no type or code of its own (see
``integrations.livekit._signals``): if LiveKit ever words it differently, the first
test fails here, loudly, instead of the unsolicited-reply drop silently turning off.
"""

from __future__ import annotations

import asyncio

import pytest
from livekit.agents import llm

from integrations.livekit._signals import TIMEOUT_TEXT, is_reply_timeout
from integrations.openai_realtime.simulator.plans import ResponsePlan
from integrations.testing.agent_rig import agent_rig as rig
from integrations.testing.agent_rig import livekit_reply_timeout, playout

pytestmark = pytest.mark.timeout(30)


async def test_livekits_real_reply_timeout_is_recognised() -> None:
    with livekit_reply_timeout(0.3):
        async with rig(False) as r:
            r.sim.enqueue(ResponsePlan(chunks=2, pace=None, created_delay_s=0.8))
            handle = await playout(r.session.generate_reply())
            error = handle.exception()
            assert isinstance(error, llm.RealtimeError), error
            assert TIMEOUT_TEXT in str(error), (
                f"LiveKit's generate_reply timeout now reads {str(error)!r}: update "
                "integrations.livekit._signals.TIMEOUT_TEXT"
            )
            assert is_reply_timeout(error)


async def test_a_reply_the_server_refused_is_not_a_timeout() -> None:
    async with rig(False) as r:
        r.sim.enqueue(ResponsePlan(chunks=200, pace=1), ResponsePlan(chunks=2, pace=None))
        first = r.rt.generate_reply()
        await r.sim.wait_for_response(1)
        with pytest.raises(llm.RealtimeError) as refused:
            await asyncio.wait_for(r.rt.generate_reply(), 5)
        assert refused.value.code == "conversation_already_has_active_response"
        assert not is_reply_timeout(refused.value)
        r.rt.interrupt()
        await asyncio.wait_for(first, 5)


def test_code_less_failures_that_are_not_timeouts() -> None:
    assert not is_reply_timeout(llm.RealtimeError("realtime session closed"))
    assert not is_reply_timeout(llm.RealtimeError("timed out", code="server_error"))
    assert not is_reply_timeout(TimeoutError("timed out"))
    assert not is_reply_timeout(None)
    assert is_reply_timeout(llm.RealtimeError("generate_reply timed out."))
