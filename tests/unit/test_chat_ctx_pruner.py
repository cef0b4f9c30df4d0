"""ChatCtxPruner: a killed reply nobody heard leaves the history of a session no tap edits.

The realtime session here is a stand-in holding a real ``llm.ChatContext`` and recording
``update_chat_ctx`` calls; the end-to-end check against the real OpenAI plugin and the
simulator is ``tests/e2e/test_livekit_agent.py``'s unsolicited-reply test.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Any

import numpy as np
import pytest
from livekit import rtc
from livekit.agents import llm
from livekit.agents.voice.speech_handle import SpeechHandle

from gate import DropReason, PcmFrame, PlaybackGate
from integrations.livekit._chat_ctx import ChatCtxPruner
from integrations.livekit._tagging import TaggedMessages, tag_generation_event

pytestmark = pytest.mark.timeout(10)


class Session:
    """A realtime session's history: a real ``ChatContext``, edits recorded."""

    def __init__(self, *ids: str, fail: BaseException | None = None) -> None:
        self._ctx = llm.ChatContext(
            [llm.ChatMessage(role="assistant", content=[f"text {i}"], id=i) for i in ids]
        )
        self.updates: list[list[str]] = []
        self.fail = fail

    @property
    def chat_ctx(self) -> llm.ChatContext:
        return self._ctx.copy()

    async def update_chat_ctx(self, chat_ctx: llm.ChatContext) -> None:
        self.updates.append([item.id for item in chat_ctx.items])
        if self.fail is not None:
            raise self.fail
        self._ctx = chat_ctx.copy()

    def ids(self) -> list[str]:
        return [item.id for item in self._ctx.items]


async def _nothing() -> AsyncIterator[Any]:
    return
    yield


def message(message_id: str) -> llm.MessageGeneration:
    modalities: asyncio.Future[list[Any]] = asyncio.get_running_loop().create_future()
    modalities.set_result(["audio", "text"])
    return llm.MessageGeneration(
        message_id=message_id,
        text_stream=_nothing(),
        audio_stream=_nothing(),
        modalities=modalities,
    )


async def stream(ids: list[str], end: asyncio.Event | None = None) -> AsyncIterator[Any]:
    for i in ids:
        yield message(i)
    if end is not None:
        await end.wait()  # the model has not ended the reply yet


def generation(
    response_id: str, ids: list[str], end: asyncio.Event | None = None
) -> llm.GenerationCreatedEvent:
    ev = llm.GenerationCreatedEvent(
        message_stream=stream(ids, end),
        function_stream=_nothing(),
        user_initiated=False,
        response_id=response_id,
    )
    assert tag_generation_event(ev)
    return ev


def make(
    session: Session, owners: dict[str, SpeechHandle] | None = None
) -> tuple[ChatCtxPruner, PlaybackGate]:
    gate = PlaybackGate()
    return ChatCtxPruner(session, gate, (owners or {}).get), gate


def played(gate: PlaybackGate, response_id: str, samples: int) -> None:
    assert gate.admit(response_id, PcmFrame(np.zeros(samples, dtype=np.int16), 24_000))


async def settle(pruner: ChatCtxPruner) -> None:
    for _ in range(20):
        await asyncio.sleep(0)
    await asyncio.gather(*pruner._tasks)


async def test_tagged_messages_read_what_the_consumer_left() -> None:
    ev = generation("resp_1", ["m1", "m2", "m3"])
    assert isinstance(ev.message_stream, TaggedMessages)
    consumer = aiter(ev.message_stream)
    first = await anext(consumer)
    assert first.message_id == "m1"
    frames: list[rtc.AudioFrame] = [f async for f in first.audio_stream]
    assert frames == []
    assert await ev.message_stream.all_message_ids() == ["m1", "m2", "m3"]
    with pytest.raises(StopAsyncIteration):  # the consumer's side is closed
        await anext(consumer)


async def test_a_killed_unheard_reply_no_speech_owns_is_removed_at_once() -> None:
    session = Session("user", "m1", "m2", "later")
    pruner, gate = make(session)
    gate.flag("resp_1", DropReason.TIMED_OUT)
    pruner.on_generation_created(generation("resp_1", ["m1", "m2"]))
    await settle(pruner)
    assert session.updates == [["user", "later"]] and session.ids() == ["user", "later"]
    pruner.settled("resp_1")  # settled again: nothing left to edit
    await settle(pruner)
    assert len(session.updates) == 1


async def test_an_owned_reply_waits_for_its_settle() -> None:
    session = Session("m1")
    pruner, gate = make(session, {"resp_1": SpeechHandle.create()})
    gate.flag("resp_1", DropReason.TIMED_OUT)
    pruner.on_generation_created(generation("resp_1", ["m1"]))
    await settle(pruner)
    assert session.updates == []  # LiveKit still has it
    pruner.settled("resp_1")
    await settle(pruner)
    assert session.updates == [[]]


@pytest.mark.parametrize("case", ["live", "partly played", "already gone"])
async def test_left_alone(case: str) -> None:
    session = Session("m0" if case == "already gone" else "m1")
    pruner, gate = make(session)
    if case == "partly played":
        played(gate, "resp_1", 240)  # 10 ms went out: LiveKit's to truncate
    if case != "live":
        gate.flag("resp_1", DropReason.CANCELLED)
    pruner.on_generation_created(generation("resp_1", ["m1"]))
    await settle(pruner)
    assert session.updates == []


async def test_an_item_is_edited_once_across_replies() -> None:
    session = Session("m1", fail=llm.RealtimeError("update_chat_ctx timed out."))
    pruner, gate = make(session)
    for response_id in ("resp_1", "resp_2"):  # both name m1 (a model reusing an item)
        gate.flag(response_id, DropReason.TIMED_OUT)
        pruner.on_generation_created(generation(response_id, ["m1"]))
        await settle(pruner)
    assert session.updates == [[]]


async def test_an_edit_error_is_logged_never_raised(caplog: pytest.LogCaptureFixture) -> None:
    session = Session("m1", fail=llm.RealtimeError("update_chat_ctx timed out."))
    pruner, gate = make(session)
    gate.flag("resp_1", DropReason.TIMED_OUT)
    with caplog.at_level(logging.WARNING, logger="playback_gate.livekit"):
        pruner.on_generation_created(generation("resp_1", ["m1"]))
        await settle(pruner)
    assert session.updates == [[]]
    assert any("could not remove resp_1" in r.getMessage() for r in caplog.records)


async def test_close_cancels_an_edit_waiting_for_the_reply_to_end() -> None:
    session = Session("m1")
    pruner, gate = make(session)
    gate.flag("resp_1", DropReason.TIMED_OUT)
    pruner.on_generation_created(generation("resp_1", ["m1"], end=asyncio.Event()))
    for _ in range(20):
        await asyncio.sleep(0)
    tasks = list(pruner._tasks)
    assert len(tasks) == 1 and not tasks[0].done()
    pruner.close()
    await asyncio.gather(*tasks, return_exceptions=True)
    assert tasks[0].cancelled() and session.updates == []
    gate.flag("resp_2", DropReason.TIMED_OUT)
    pruner.on_generation_created(generation("resp_2", ["m1"]))  # closed: ignored
    assert not pruner._tasks
