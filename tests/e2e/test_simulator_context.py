"""The simulator's conversation view: item audio, truncate validation, deletes, server VAD."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator

import numpy as np
import pytest

from integrations.openai_realtime.simulator import RealtimeSimulator, ResponsePlan
from integrations.testing.realtime_client import (
    RawClient,
    connect_raw,
    is_done_for,
    server_event_adapter,
    types,
)

pytestmark = pytest.mark.timeout(30)


@pytest.fixture
async def sim() -> AsyncIterator[RealtimeSimulator]:
    async with RealtimeSimulator(default_plan=ResponsePlan(chunks=10, pace=None)) as simulator:
        yield simulator


@pytest.fixture
async def client(sim: RealtimeSimulator) -> AsyncIterator[RawClient]:
    async with connect_raw(sim.url) as raw:
        yield raw


def pcm(value: int, ms: int) -> str:
    """``ms`` of 24 kHz PCM16 at one constant value, base64."""
    return base64.b64encode(np.full(24 * ms, value, np.int16).tobytes()).decode()


def assert_schema(sim: RealtimeSimulator) -> None:
    adapter = server_event_adapter()
    for entry in sim.log(direction="send"):
        adapter.validate_python(entry.event)


async def test_truncate_is_checked_against_the_items_audio(
    sim: RealtimeSimulator, client: RawClient
) -> None:
    await client.send({"type": "response.create"})
    record = await sim.wait_for_response(1)
    await client.until(is_done_for(record.response_id))
    (item,) = sim.item_audio(record)
    assert (item.item_id, item.samples_sent, item.sent_ms, item.held_ms) == (
        record.item_id,
        record.samples_sent,
        200,
        200,
    )
    truncate = {"type": "conversation.item.truncate", "item_id": record.item_id}
    await client.send({**truncate, "event_id": "t1", "content_index": 0, "audio_end_ms": 150})
    truncated = await client.recv()
    assert (truncated["type"], truncated["audio_end_ms"]) == ("conversation.item.truncated", 150)
    assert sim.held_ms(record) == 150
    # past what the item now holds: the real service's refusal, item unchanged
    await client.send({**truncate, "event_id": "t2", "content_index": 0, "audio_end_ms": 180})
    error = (await client.recv())["error"]
    assert error == {
        "type": "invalid_request_error",
        "code": "invalid_value",
        "message": "Audio content of 150ms is already shorter than 180ms",
        "param": None,
        "event_id": None,
    }
    assert sim.held_ms(record) == 150
    await client.send({"type": "conversation.item.delete", "item_id": record.item_id})
    assert (await client.recv())["type"] == "conversation.item.deleted"
    assert sim.held_ms(record) == 0 and item.deleted
    edits = [(e.kind, e.audio_end_ms, e.held_ms, e.accepted) for e in sim.context_edits()]
    assert edits == [
        ("truncate", 150, 200, True),
        ("truncate", 180, 150, False),
        ("delete", None, 150, True),
    ]
    assert sim.context_edits("truncate", item_id=record.item_id)[1].error == error["message"]
    await client.send({**truncate, "content_index": 0, "audio_end_ms": 0})
    assert (await client.recv())["error"]["code"] == "item_truncate_invalid_item_id"
    assert sim.context_edits()[-1].accepted is False
    assert_schema(sim)


async def test_truncate_before_any_audio_and_out_of_band_replies(
    sim: RealtimeSimulator, client: RawClient
) -> None:
    sim.enqueue(ResponsePlan(chunks=5, pace=None, first_audio_delay_s=0.5))
    await client.send({"type": "response.create"})
    added = (await client.until_type("conversation.item.added"))[-1]
    await client.send(
        {
            "type": "conversation.item.truncate",
            "item_id": added["item"]["id"],
            "content_index": 0,
            "audio_end_ms": 0,
        }
    )
    error = (await client.until_type("error"))[-1]["error"]
    assert error["code"] == "unsupported_content_type"
    assert error["message"] == "Only model output audio messages can be truncated"
    await client.until_type("response.done")
    await client.send({"type": "response.create", "response": {"conversation": "none"}})
    oob = await sim.wait_for_response(2)
    await client.until(is_done_for(oob.response_id))
    assert sim.item_audio(oob) == [] and sim.held_ms(oob) == 0
    assert [i.response_id for i in sim.item_audio()] == [sim.responses[0].response_id]
    assert_schema(sim)


async def test_server_vad_from_input_audio(sim: RealtimeSimulator, client: RawClient) -> None:
    td = {"type": "server_vad", "threshold": 0.5, "silence_duration_ms": 200}
    await client.send(
        {
            "type": "session.update",
            "session": {"type": "realtime", "audio": {"input": {"turn_detection": td}}},
        }
    )
    await client.until_type("session.updated")
    sim.enqueue(ResponsePlan(chunks=200, pace=1), ResponsePlan(chunks=5, pace=None))
    await client.send({"type": "response.create"})
    playing = await sim.wait_for_response(1)
    await client.until_type("response.output_audio.delta")
    await client.send({"type": "input_audio_buffer.append", "audio": pcm(0, 500)})  # silence
    await client.send({"type": "input_audio_buffer.append", "audio": pcm(6000, 100)})  # speech
    events = await client.until(is_done_for(playing.response_id))
    started = next(e for e in events if e["type"] == "input_audio_buffer.speech_started")
    assert started["audio_start_ms"] == 500 - 300  # minus prefix_padding_ms
    done = events[-1]["response"]
    assert (done["status"], done["status_details"]["reason"]) == ("cancelled", "turn_detected")
    assert types(events).index("input_audio_buffer.speech_started") < len(events) - 1
    for _ in range(3):  # 300 ms of silence ends the turn
        await client.send({"type": "input_audio_buffer.append", "audio": pcm(0, 100)})
    events = await client.until_type("response.created")
    assert types(events)[-5:] == [
        "input_audio_buffer.speech_stopped",
        "input_audio_buffer.committed",
        "conversation.item.added",
        "conversation.item.done",
        "response.created",
    ]
    stopped = events[-5]
    assert stopped["item_id"] == started["item_id"] == events[-4]["item_id"]
    assert stopped["audio_end_ms"] == 500 + 100 + 200
    reply = await sim.wait_for_response(2)
    assert reply.server_initiated and events[-1]["response"]["metadata"] is None
    assert sim.connection.vad.turns == 1
    await client.until(is_done_for(reply.response_id))
    assert_schema(sim)


async def test_user_speaks_from_python(sim: RealtimeSimulator, client: RawClient) -> None:
    sim.enqueue(ResponsePlan(chunks=100, pace=1), ResponsePlan(chunks=5, pace=None))
    await client.send({"type": "response.create"})
    playing = await sim.wait_for_response(1)
    await client.until_type("response.output_audio.delta")
    item_id = await sim.user_speaks(0.1)
    events = await client.until_type("response.created")
    kinds = types(events)
    assert kinds[0] == "input_audio_buffer.speech_started"
    assert kinds.index("response.done") < kinds.index("input_audio_buffer.speech_stopped")
    assert playing.status == "cancelled" and playing.cancel_reason == "turn_detected"
    assert playing.cancel_requests == 0  # no client cancel
    assert events[kinds.index("input_audio_buffer.committed")]["item_id"] == item_id
    reply = await sim.wait_for_response(2)
    await client.until(is_done_for(reply.response_id))
    assert_schema(sim)


async def test_turn_detection_off(sim: RealtimeSimulator, client: RawClient) -> None:
    await client.send(
        {
            "type": "session.update",
            "session": {"type": "realtime", "audio": {"input": {"turn_detection": None}}},
        }
    )
    await client.until_type("session.updated")
    with pytest.raises(RuntimeError, match="turn detection off"):
        await sim.user_speaks(0.01)
    await client.send({"type": "input_audio_buffer.append", "audio": pcm(6000, 200)})
    await client.send({"type": "input_audio_buffer.commit"})
    assert types(await client.until_type("conversation.item.done"))[0] == (
        "input_audio_buffer.committed"
    )
    assert not sim.connection.vad.speaking and sim.responses == []
