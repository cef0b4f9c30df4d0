"""CancelArbiter: the tap's targeted cancel goes out only when LiveKit sends none."""

from __future__ import annotations

import asyncio
from typing import Any

from integrations.livekit._cancels import CANCEL_EVENT_PREFIX, CancelArbiter

CANCEL = {"type": "response.cancel", "response_id": "resp_1"}


def make(in_progress: set[str] | None = None) -> tuple[CancelArbiter, list[dict[str, Any]]]:
    sent: list[dict[str, Any]] = []
    live = in_progress if in_progress is not None else {"resp_1"}
    return CancelArbiter(sent.append, live.__contains__, settle=0.02), sent


async def test_sent_once_after_the_hold_when_livekit_sends_none() -> None:
    arbiter, sent = make()
    arbiter.hold(dict(CANCEL))
    arbiter.hold(dict(CANCEL))  # the same response again: still one
    assert sent == [] and arbiter.held == ["resp_1"]
    await asyncio.sleep(0.1)
    assert len(sent) == 1 and sent[0]["response_id"] == "resp_1"
    assert sent[0]["event_id"].startswith(CANCEL_EVENT_PREFIX)
    assert arbiter.sent == 1 and arbiter.held == []
    arbiter.on_client_event(sent[0])  # our own cancel, seen queued, changes nothing
    assert arbiter.left_to_livekit == 0


async def test_livekits_targeted_cancel_takes_its_place() -> None:
    arbiter, sent = make()
    arbiter.hold(dict(CANCEL))
    arbiter.on_client_event({"type": "response.cancel", "response_id": "resp_1"})
    await asyncio.sleep(0.1)
    assert sent == [] and arbiter.left_to_livekit == 1


async def test_livekits_bare_cancel_covers_only_a_default_response_in_progress() -> None:
    arbiter, sent = make(in_progress={"resp_1"})
    arbiter.hold(dict(CANCEL))
    arbiter.hold({"type": "response.cancel", "response_id": "resp_oob"})
    arbiter.on_client_event({"type": "response.cancel"})
    await asyncio.sleep(0.1)
    assert [e["response_id"] for e in sent] == ["resp_oob"]
    assert arbiter.left_to_livekit == 1 and arbiter.sent == 1


async def test_a_response_that_ended_needs_no_cancel() -> None:
    arbiter, sent = make()
    arbiter.hold(dict(CANCEL))
    arbiter.on_server_event({"type": "response.done", "response": {"id": "resp_1"}})
    await asyncio.sleep(0.1)
    assert sent == [] and arbiter.unneeded == 1


async def test_close_cancels_every_hold_and_refuses_new_ones() -> None:
    arbiter, sent = make()
    arbiter.hold(dict(CANCEL))
    arbiter.close()
    arbiter.hold({"type": "response.cancel", "response_id": "resp_2"})
    await asyncio.sleep(0.1)
    assert sent == [] and arbiter.held == []


async def test_other_events_pass_through_and_junk_never_raises() -> None:
    arbiter, sent = make()
    arbiter.hold({"type": "response.cancel"})  # bare: not held
    assert sent == [{"type": "response.cancel"}]
    for junk in ({}, {"type": 3}, {"type": "response.done", "response": "x"}, {"type": "error"}):
        arbiter.on_client_event(junk)
        arbiter.on_server_event(junk)
    arbiter.on_server_event(
        {"type": "error", "error": {"code": "response_cancel_not_active", "message": "m"}}
    )
    assert arbiter.cancel_not_active == 1


def test_without_a_loop_the_cancel_goes_at_once() -> None:
    arbiter, sent = make()
    arbiter.hold(dict(CANCEL))
    assert len(sent) == 1 and arbiter.held == []
