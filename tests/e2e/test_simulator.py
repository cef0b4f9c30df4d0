"""Tests for the OpenAI Realtime simulator and its self-identifying audio."""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import given
from hypothesis import strategies as st

from integrations.openai_realtime.simulator import audio_marker as am
from integrations.openai_realtime.simulator.plans import ResponsePlan
from integrations.openai_realtime.simulator.server import RealtimeSimulator
from integrations.testing.realtime_client import (
    Event,
    RawClient,
    connect_raw,
    is_done_for,
    server_event_adapter,
    types,
)

FAST = ResponsePlan(chunks=5, pace=None)


# ----------------------------------------------------------------- helpers


def audio_of(events: list[Event], response_id: str | None = None) -> npt.NDArray[np.int16]:
    chunks = [
        np.frombuffer(base64.b64decode(e["delta"]), dtype=np.int16)
        for e in events
        if e["type"] == "response.output_audio.delta"
        and (response_id is None or e["response_id"] == response_id)
    ]
    return np.concatenate(chunks) if chunks else np.zeros(0, dtype=np.int16)


@pytest.fixture
async def sim() -> AsyncIterator[RealtimeSimulator]:
    async with RealtimeSimulator(default_plan=FAST) as simulator:
        yield simulator


@pytest.fixture
async def client(sim: RealtimeSimulator) -> AsyncIterator[RawClient]:
    async with connect_raw(sim.url) as raw:
        yield raw


def chunk_sequence(pairs: list[tuple[int, int]], n: int = 480) -> npt.NDArray[np.int16]:
    return np.concatenate([am.chunk_samples(r, c, n) for r, c in pairs])


# ------------------------------------------------------------ audio marker


def test_every_code_round_trips() -> None:
    seen = set()
    for r in range(am.MAX_RESPONSES):
        for c in range(am.CHUNK_MODULUS):
            value = am.encode_value(r, c)
            assert value != 0 and value % am.STEP == 0 and -32768 <= value <= 32767
            assert am.decode_value(value) == (r, c)
            seen.add(value)
    assert len(seen) == am.MAX_RESPONSES * am.CHUNK_MODULUS
    assert am.decode_value(0) is None
    assert am.decode_value(7) is None and am.decode_value(-8) is None


@given(
    st.integers(0, 10_000),
    st.integers(0, 10_000),
    st.integers(-(am.STEP // 2) + 1, am.STEP // 2 - 1),
)
def test_decode_tolerates_small_errors(response: int, chunk: int, error: int) -> None:
    value = am.encode_value(response, chunk) + error
    assert am.decode_value(value) == (response % am.MAX_RESPONSES, chunk % am.CHUNK_MODULUS)


def test_identify_accepts_bytes_floats_and_channels() -> None:
    pcm = chunk_sequence([(3, 0), (3, 1)])
    expected = [(3, 0), (3, 1)]
    for form in (pcm, pcm.tobytes(), pcm.astype(np.float32) / 32768.0, np.stack([pcm, pcm], 1)):
        assert [(r.response, r.chunk) for r in am.identify(form)] == expected
    silent = np.concatenate([np.zeros(100, np.int16), pcm, np.zeros(100, np.int16)])
    runs = am.identify(silent)
    assert (runs[0].start, runs[-1].stop) == (100, 1060)


def test_identify_unwraps_chunks_and_tone_is_not_a_marker() -> None:
    pairs = [(5, c) for c in range(70)] + [(6, c) for c in range(3)]
    runs = am.identify(chunk_sequence(pairs, n=240))
    assert [(r.response, r.chunk) for r in runs] == pairs
    assert runs[64].raw_chunk == 0 and runs[64].chunk == 64
    assert am.responses_in(chunk_sequence(pairs, n=240)) == [5, 6]
    tone = np.concatenate([am.chunk_samples(1, c, 480, mode="tone") for c in range(10)])
    assert np.abs(tone).max() > 5000
    assert am.identify(tone) == []


def test_identify_survives_livekit_resampler() -> None:
    from livekit import rtc

    pairs = [(1, c) for c in range(8)] + [(2, c) for c in range(8)] + [(1, 8), (1, 9)]
    pcm = chunk_sequence(pairs)
    for quality in rtc.AudioResamplerQuality:
        resampler = rtc.AudioResampler(24000, 48000, num_channels=1, quality=quality)
        out: list[npt.NDArray[np.int16]] = []
        for i in range(0, pcm.size, 240):
            frame = rtc.AudioFrame(pcm[i : i + 240].tobytes(), 24000, 1, 240)
            out += [np.frombuffer(f.data, dtype=np.int16) for f in resampler.push(frame)]
        out += [np.frombuffer(f.data, dtype=np.int16) for f in resampler.flush()]
        runs = am.identify(np.concatenate(out))
        assert [(r.response, r.chunk) for r in runs] == pairs, quality
        assert all(900 <= r.length <= 962 for r in runs[1:-1]), quality
        counts = am.samples_per_response(np.concatenate(out))
        assert set(counts) == {1, 2}


async def test_identify_survives_audio_source_stream_round_trip() -> None:
    from livekit import rtc

    pairs = [(4, c) for c in range(6)] + [(9, c) for c in range(6)]
    pcm = chunk_sequence(pairs)
    source = rtc.AudioSource(24000, 1, queue_size_ms=0)
    track = rtc.LocalAudioTrack.create_audio_track("sim", source)
    stream = rtc.AudioStream.from_track(track=track, sample_rate=48000, num_channels=1)
    received: list[npt.NDArray[np.int16]] = []

    async def read() -> None:
        async for ev in stream:
            received.append(np.frombuffer(ev.frame.data, dtype=np.int16).copy())

    reader = asyncio.create_task(read())
    try:
        silence = np.zeros(240, np.int16)
        for block in [*np.split(pcm, pcm.size // 240), *([silence] * 10)]:
            await source.capture_frame(rtc.AudioFrame(block.tobytes(), 24000, 1, 240))
        await asyncio.sleep(0.2)
    finally:
        reader.cancel()
        await asyncio.gather(reader, return_exceptions=True)
        await stream.aclose()
        await source.aclose()
    runs = am.identify(np.concatenate(received))
    assert [(r.response, r.chunk) for r in runs] == pairs


def test_plan_validation_and_duration() -> None:
    plan = ResponsePlan.for_duration(1.0, chunk_ms=40, pace=None)
    assert (plan.chunks, plan.samples_per_chunk, plan.chunk_interval_s) == (25, 960, 0.0)
    assert ResponsePlan(chunk_ms=20, pace=2).chunk_interval_s == pytest.approx(0.01)
    for bad in ({"chunks": -1}, {"chunk_ms": 0}, {"pace": 0}, {"created_delay_s": -1}):
        with pytest.raises(ValueError):
            ResponsePlan(**bad)  # type: ignore[arg-type]


# ------------------------------------------------------------ protocol


async def test_session_and_full_response_follow_ga_schema(
    sim: RealtimeSimulator, client: RawClient
) -> None:
    await client.send(
        {"type": "session.update", "session": {"type": "realtime", "instructions": "hi"}}
    )
    updated = (await client.until_type("session.updated"))[-1]
    assert updated["session"]["instructions"] == "hi"
    assert updated["session"]["audio"]["output"]["format"] == {"type": "audio/pcm", "rate": 24000}

    meta = {"client_event_id": "response_create_abc"}
    await client.send(
        {"type": "response.create", "event_id": "ev1", "response": {"metadata": meta}}
    )
    events = await client.until_type("response.done")
    assert types(events)[:4] == [
        "response.created",
        "response.output_item.added",
        "conversation.item.added",
        "response.content_part.added",
    ]
    assert types(events)[-6:] == [
        "response.output_audio.done",
        "response.output_audio_transcript.done",
        "response.content_part.done",
        "response.output_item.done",
        "conversation.item.done",
        "response.done",
    ]
    assert events[0]["response"]["metadata"] == meta
    assert events[-1]["response"]["metadata"] == meta
    assert events[-1]["response"]["status"] == "completed"
    assert types(events).count("response.output_audio.delta") == FAST.chunks
    record = sim.responses[0]
    assert (record.metadata, record.client_event_id, record.status) == (meta, "ev1", "completed")
    assert record.samples_sent == FAST.chunks * 480
    runs = am.identify(audio_of(events))
    assert [(r.response, r.chunk) for r in runs] == [(1, c) for c in range(FAST.chunks)]
    transcript = "".join(
        e["delta"] for e in events if e["type"] == "response.output_audio_transcript.delta"
    )
    assert transcript == record.transcript == "response 1"

    adapter = server_event_adapter()
    for entry in sim.log(direction="send"):
        adapter.validate_python(entry.event)
    stamps = [e.t for e in sim.log()]
    assert stamps == sorted(stamps)
    assert {e.direction for e in sim.log()} == {"send", "recv"}


async def test_session_update_without_type_is_an_error(client: RawClient) -> None:
    await client.send({"type": "session.update", "event_id": "s1", "session": {"voice": "x"}})
    error = (await client.until_type("error"))[-1]["error"]
    assert error["param"] == "session.type" and error["event_id"] == "s1"


async def test_malformed_input_gets_errors_and_connection_survives(
    sim: RealtimeSimulator, client: RawClient
) -> None:
    bad: list[str | Event] = [
        "{not json",
        "[1, 2]",
        {"type": "no.such.event", "event_id": "u1"},
        {"no_type": True},
        {"type": "input_audio_buffer.append", "audio": "!!!not base64"},
        {"type": "conversation.item.create", "item": "nope"},
        {"type": "response.create", "response": {"conversation": "maybe"}},
        {"type": "response.create", "response": {"metadata": {"k": 1}}},
        {"type": "conversation.item.delete", "item_id": "missing"},
    ]
    for event in bad:
        await client.ws.send_str(event if isinstance(event, str) else json.dumps(event))
        assert (await client.recv())["type"] == "error"
    await client.ws.send_bytes(b"\x00\x01")
    assert (await client.recv())["type"] == "error"
    assert client.events[3]["error"]["event_id"] == "u1"
    assert sim.log(type="<invalid>")
    await client.send({"type": "response.create"})
    assert (await client.until_type("response.done"))[-1]["response"]["status"] == "completed"


async def test_items_and_input_audio(client: RawClient) -> None:
    item = {
        "id": "msg_1",
        "type": "message",
        "role": "user",
        "content": [{"type": "input_text", "text": "hello"}],
    }
    await client.send(
        {"type": "conversation.item.create", "previous_item_id": "root", "item": item}
    )
    added, done = await client.recv(), await client.recv()
    assert (added["type"], done["type"]) == ("conversation.item.added", "conversation.item.done")
    assert added["item"]["id"] == "msg_1" and added["previous_item_id"] is None
    await client.send({"type": "conversation.item.create", "event_id": "dup", "item": item})
    error = (await client.recv())["error"]
    assert (error["code"], error["event_id"]) == ("item_create_duplicate_item_id", "dup")
    await client.send({"type": "conversation.item.truncate", "item_id": "msg_1", "audio_end_ms": 5})
    assert (await client.recv())["error"]["code"] == "unsupported_content_type"  # a user item
    await client.send({"type": "conversation.item.delete", "item_id": "msg_1"})
    assert (await client.recv()) | {"event_id": ""} == {
        "type": "conversation.item.deleted",
        "item_id": "msg_1",
        "event_id": "",
    }

    await client.send({"type": "input_audio_buffer.commit"})
    assert (await client.recv())["error"]["code"] == "input_audio_buffer_commit_empty"
    audio = base64.b64encode(bytes(4800)).decode()
    await client.send({"type": "input_audio_buffer.append", "audio": audio})
    await client.send({"type": "input_audio_buffer.commit"})
    events = await client.until_type("conversation.item.done")
    assert types(events) == [
        "input_audio_buffer.committed",
        "conversation.item.added",
        "conversation.item.done",
    ]
    await client.send({"type": "input_audio_buffer.clear"})
    assert (await client.recv())["type"] == "input_audio_buffer.cleared"


async def test_cancel_without_id_stops_the_default_response(
    sim: RealtimeSimulator, client: RawClient
) -> None:
    sim.enqueue(ResponsePlan(chunks=100, chunk_ms=20, pace=2.0))
    await client.send({"type": "response.create"})
    await client.until(lambda e: e["type"] == "response.output_audio.delta")
    await client.send({"type": "response.cancel"})
    events = await client.until_type("response.done")
    done = events[-1]["response"]
    assert done["status"] == "cancelled"
    assert done["status_details"] == {"type": "cancelled", "reason": "client_cancelled"}
    assert done["output"][0]["status"] == "incomplete"
    record = sim.responses[0]
    assert record.status == "cancelled" and record.status_reason == "client_cancelled"
    assert record.chunks_after_cancel == 0 and 1 <= record.chunks_before_cancel < 60
    assert record.chunks_sent == record.chunks_before_cancel
    assert record.samples_sent == audio_of(client.events).size


async def test_cancel_with_nothing_to_cancel_is_an_error(client: RawClient) -> None:
    await client.send({"type": "response.cancel", "event_id": "c1"})
    error = (await client.recv())["error"]
    assert error["message"].startswith("Cancellation failed")
    assert error["event_id"] == "c1"
    await client.send({"type": "response.cancel", "response_id": "resp_unknown"})
    assert (await client.recv())["error"]["message"].startswith("Cancellation failed")
    await client.send({"type": "response.create"})
    done = (await client.until_type("response.done"))[-1]
    await client.send({"type": "response.cancel", "response_id": done["response"]["id"]})
    assert (await client.recv())["type"] == "error"


async def test_ignore_cancel_keeps_streaming(sim: RealtimeSimulator, client: RawClient) -> None:
    sim.enqueue(ResponsePlan(chunks=30, pace=4.0, ignore_cancel=True))
    await client.send({"type": "response.create"})
    await client.until(lambda e: e["type"] == "response.output_audio.delta")
    await client.send({"type": "response.cancel"})
    events = await client.until_type("response.done")
    assert events[-1]["response"]["status"] == "completed"
    record = sim.responses[0]
    assert record.chunks_sent == 30 and record.cancel_requests == 1
    assert record.chunks_after_cancel >= 5
    assert record.chunks_before_cancel + record.chunks_after_cancel == 30


async def test_deltas_after_done(sim: RealtimeSimulator, client: RawClient) -> None:
    sim.enqueue(ResponsePlan(chunks=3, pace=None, deltas_after_done=4))
    await client.send({"type": "response.create"})
    await client.until_type("response.done")
    late = [await client.recv() for _ in range(4)]
    assert types(late) == ["response.output_audio.delta"] * 4
    record = await sim.wait_done(sim.responses[0])
    await sim.wait_until(lambda: record.chunks_sent == 7)
    assert (record.chunks_after_done, record.status) == (4, "completed")
    assert {e["response_id"] for e in late} == {record.response_id}
    runs = am.identify(audio_of(client.events))
    assert [r.chunk for r in runs] == list(range(7))


async def test_pacing_real_time_and_faster(sim: RealtimeSimulator, client: RawClient) -> None:
    sim.enqueue(ResponsePlan(chunks=10, chunk_ms=20), ResponsePlan(chunks=10, chunk_ms=20, pace=4))
    spans = []
    for number in (1, 2):
        await client.send({"type": "response.create"})
        await client.until_type("response.done")
        record = sim.responses[number - 1]
        deltas = [
            e.t
            for e in sim.log(type="response.output_audio.delta")
            if _rid(e.event) == record.response_id
        ]
        spans.append(deltas[-1] - deltas[0])
    assert 0.17 <= spans[0] < 0.4  # 9 intervals of 20 ms
    assert spans[1] < 0.1  # 9 intervals of 5 ms


def _rid(event: Event) -> str | None:
    rid = event.get("response_id") or (event.get("response") or {}).get("id")
    return rid if isinstance(rid, str) else None


async def test_delayed_response_created(sim: RealtimeSimulator, client: RawClient) -> None:
    sim.enqueue(ResponsePlan(chunks=2, pace=None, created_delay_s=0.3))
    await client.send({"type": "response.create"})
    record = await sim.wait_for_response(1)
    assert record.status == "pending"
    # not created yet: nothing to cancel, like a response the server has not started
    await client.send({"type": "response.cancel"})
    assert (await client.recv())["type"] == "error"
    # ...but a second default-conversation response is refused meanwhile
    await client.send({"type": "response.create", "event_id": "second"})
    error = (await client.recv())["error"]
    assert (error["code"], error["event_id"]) == (
        "conversation_already_has_active_response",
        "second",
    )
    await client.until_type("response.created")
    assert record.created_at is not None and record.requested_at is not None
    assert record.created_at - record.requested_at >= 0.3


async def test_server_initiated_response(sim: RealtimeSimulator, client: RawClient) -> None:
    record = await sim.start_server_response(ResponsePlan(chunks=20, pace=4))
    created = (await client.until_type("response.created"))[-1]
    assert created["response"]["metadata"] is None
    assert created["response"]["conversation_id"] is not None
    with pytest.raises(RuntimeError):
        await sim.start_server_response()
    await client.until(is_done_for(record.response_id))
    assert record.server_initiated and record.client_event_id is None
    assert record.requested_at is None and record.status == "completed"


async def test_out_of_band_runs_concurrently_and_survives_default_cancel(
    sim: RealtimeSimulator, client: RawClient
) -> None:
    sim.enqueue(ResponsePlan(chunks=30, pace=2), ResponsePlan(chunks=20, pace=2))
    await client.send({"type": "response.create", "response": {"metadata": {"k": "default"}}})
    await client.send({"type": "response.create", "response": {"conversation": "none"}})
    default, oob = await sim.wait_for_response(1), await sim.wait_for_response(2)
    assert (default.conversation, oob.conversation) == ("auto", "none")
    # interleaved deltas
    events = await client.until(
        lambda e: e["type"] == "response.output_audio.delta" and e["response_id"] == oob.response_id
    )
    await client.until(
        lambda e: (
            e["type"] == "response.output_audio.delta" and e["response_id"] == default.response_id
        )
    )
    await client.send({"type": "response.cancel"})  # no id: the default response only
    await client.until(is_done_for(default.response_id))
    events = await client.until(is_done_for(oob.response_id))
    assert default.status == "cancelled" and oob.status == "completed"
    assert oob.chunks_sent == 20 and oob.cancel_requests == 0
    assert events[-1]["response"]["conversation_id"] is None
    added = [e for e in client.events if e["type"] == "conversation.item.added"]
    assert [e["item"]["id"] for e in added] == [default.item_id]
    order = [e["response_id"] for e in client.events if e["type"] == "response.output_audio.delta"]
    switches = sum(a != b for a, b in itertools.pairwise(order))
    assert switches >= 2
    # an out-of-band response can be cancelled by id
    sim.enqueue(ResponsePlan(chunks=50, pace=2))
    await client.send({"type": "response.create", "response": {"conversation": "none"}})
    third = await sim.wait_for_response(3)
    await third.created.wait()
    await client.send({"type": "response.cancel"})
    assert (await client.until_type("error"))[-1]["error"]["message"].startswith("Cancellation")
    await client.send({"type": "response.cancel", "response_id": third.response_id})
    await client.until(is_done_for(third.response_id))
    assert third.status == "cancelled"


@pytest.mark.parametrize(("mode", "after"), [("abort", 3), ("close", 3), ("abort", 0)])
async def test_drop_connection_mid_response(sim: RealtimeSimulator, mode: str, after: int) -> None:
    plan = ResponsePlan(chunks=50, pace=4, drop_after_chunks=after, drop_mode=mode)  # type: ignore[arg-type]
    sim.enqueue(plan)
    async with aiohttp.ClientSession() as session, session.ws_connect(sim.url) as ws:
        client = RawClient(ws)
        await client.recv()
        await client.send({"type": "response.create"})
        while True:
            msg = await ws.receive(timeout=3)
            if msg.type != aiohttp.WSMsgType.TEXT:
                break
            client.events.append(json.loads(msg.data))
        closed = (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR)
        assert msg.type in closed
    record = await sim.wait_done(sim.responses[0])
    assert record.status == "dropped" and record.chunks_sent == after
    assert "response.created" in types(client.events)
    assert types(client.events).count("response.output_audio.delta") == after
    assert "response.done" not in types(client.events)
    await sim.wait_until(lambda: sim.connections[0].closed)
    assert sim.connections[0].dropped


async def test_manual_drop(sim: RealtimeSimulator, client: RawClient) -> None:
    await sim.drop_connection()
    msg = await client.ws.receive(timeout=3)
    assert msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR)


async def test_shutdown_closes_clients_mid_response() -> None:
    sim = RealtimeSimulator()
    await sim.start()
    async with aiohttp.ClientSession() as session, session.ws_connect(sim.url) as ws:
        client = RawClient(ws)
        await client.recv()
        await client.send({"type": "response.create"})
        await client.until(lambda e: e["type"] == "response.output_audio.delta")
        t0 = time.monotonic()
        closer = asyncio.create_task(sim.aclose())
        while (await ws.receive(timeout=3)).type == aiohttp.WSMsgType.TEXT:
            pass
        await closer
        assert time.monotonic() - t0 < 2.0
    assert sim.responses[0].status == "dropped"
    await sim.aclose()  # idempotent


# ------------------------------------------------------- livekit client


async def _consume(gen: Any) -> tuple[npt.NDArray[np.int16], str]:
    pcm: list[npt.NDArray[np.int16]] = []
    text: list[str] = []

    async def audio(stream: Any) -> None:
        async for frame in stream:
            assert (frame.sample_rate, frame.num_channels) == (24000, 1)
            pcm.append(np.frombuffer(frame.data, dtype=np.int16).copy())

    async def transcript(stream: Any) -> None:
        async for delta in stream:
            text.append(delta)

    async for message in gen.message_stream:
        await asyncio.gather(audio(message.audio_stream), transcript(message.text_stream))
    return (np.concatenate(pcm) if pcm else np.zeros(0, np.int16)), "".join(text)


@pytest.fixture
async def lk_session(sim: RealtimeSimulator) -> AsyncIterator[Any]:
    from livekit.plugins.openai.realtime import RealtimeModel

    model = RealtimeModel(base_url=sim.base_url, api_key="x", modalities=["audio"])
    session = model.session()
    try:
        yield session
    finally:
        await session.aclose()
        await model.aclose()


async def test_livekit_session_gets_a_full_reply(sim: RealtimeSimulator, lk_session: Any) -> None:
    sim.enqueue(ResponsePlan(chunks=8, pace=4, transcript="hello from the simulator"))
    gen = await asyncio.wait_for(lk_session.generate_reply(), 3)
    record = sim.responses[0]
    assert gen.user_initiated and gen.response_id == record.response_id
    pcm, text = await asyncio.wait_for(_consume(gen), 3)
    assert text == "hello from the simulator"
    runs = am.identify(pcm)
    assert [(r.response, r.chunk) for r in runs] == [(1, c) for c in range(8)]
    assert pcm.size == record.samples_sent == 8 * 480
    create = sim.log(type="response.create")[0].event
    assert record.metadata == create["response"]["metadata"]
    assert record.metadata is not None and "client_event_id" in record.metadata
    conn = sim.connection
    assert conn.authorization == "Bearer x" and conn.model == "gpt-realtime"
    assert sim.log(type="session.update", direction="recv")


async def test_livekit_sees_delayed_response_created(
    sim: RealtimeSimulator, lk_session: Any
) -> None:
    sim.enqueue(ResponsePlan(chunks=2, pace=None, created_delay_s=0.6))
    t0 = time.monotonic()
    gen = await asyncio.wait_for(lk_session.generate_reply(), 3)
    waited = time.monotonic() - t0
    assert waited >= 0.6
    await _consume(gen)
    record = sim.responses[0]
    assert record.created_at is not None and record.requested_at is not None
    assert record.created_at - record.requested_at >= 0.6


async def test_livekit_timeout_discards_late_response(
    sim: RealtimeSimulator, lk_session: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The client's hard-coded 10 s generate_reply timeout, shortened to 0.3 s."""
    from livekit.agents import llm

    loop = asyncio.get_running_loop()
    real_call_later = loop.call_later

    def short_call_later(delay: float, callback: Any, *args: Any, **kw: Any) -> Any:
        return real_call_later(0.3 if delay == 10.0 else delay, callback, *args, **kw)

    monkeypatch.setattr(loop, "call_later", short_call_later)
    sim.enqueue(ResponsePlan(chunks=100, pace=2, created_delay_s=0.8))
    created: list[Any] = []
    lk_session.on("generation_created", created.append)
    with pytest.raises(llm.RealtimeError, match="timed out"):
        await lk_session.generate_reply()
    record = await sim.wait_for_response(1)
    await sim.wait_done(record, timeout=3)
    # the late response.created made the client cancel it by id, and never surface it
    assert record.status == "cancelled" and record.chunks_sent < 20
    cancels = [e.event for e in sim.log(type="response.cancel")]
    assert cancels and cancels[-1]["response_id"] == record.response_id
    assert created == []


async def test_livekit_reconnects_after_drop(sim: RealtimeSimulator, lk_session: Any) -> None:
    sim.enqueue(
        ResponsePlan(chunks=50, pace=4, drop_after_chunks=3), ResponsePlan(chunks=4, pace=None)
    )
    events: list[str] = []
    lk_session.on("session_reconnected", lambda _e: events.append("reconnected"))
    lk_session.on("error", lambda e: events.append(f"error recoverable={e.recoverable}"))
    gen = await asyncio.wait_for(lk_session.generate_reply(), 3)
    pcm, _ = await asyncio.wait_for(_consume(gen), 3)  # the stream is closed by the client
    assert [r.chunk for r in am.identify(pcm)] == [0, 1, 2]
    second = await sim.wait_for_connection(2)
    await sim.wait_until(lambda: any(e.type == "session.update" for e in second.log))
    gen = await asyncio.wait_for(lk_session.generate_reply(), 3)
    pcm, _ = await asyncio.wait_for(_consume(gen), 3)
    assert am.responses_in(pcm) == [2]
    assert sim.responses[0].status == "dropped" and sim.responses[1].connection == 2
    assert events[:2] == ["error recoverable=True", "reconnected"]


# ------------------------------------------------------------------- CLI


def test_cli_serves_until_sigterm(tmp_path: Any) -> None:
    script = (
        "import sys\n"
        "from gate.cli import main\n"
        "sys.exit(main(['simulator', '--port', '0', '--chunks', '500']))\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-X", "dev", "-c", script],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=str(Path(__file__).resolve().parents[2]),
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert "url=ws://127.0.0.1:" in line
        url = line.split(" url=")[1].strip()

        async def talk() -> None:
            async with aiohttp.ClientSession() as session, session.ws_connect(url) as ws:
                client = RawClient(ws)
                await client.recv()
                await client.send({"type": "response.create"})
                await client.until(lambda e: e["type"] == "response.output_audio.delta")
                proc.send_signal(signal.SIGTERM)
                while (await ws.receive(timeout=5)).type == aiohttp.WSMsgType.TEXT:
                    pass

        asyncio.run(talk())
        out, err = proc.communicate(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err
    assert "shutting down" in out
    for bad in ("Unclosed", "was destroyed but it is pending", "Traceback", "Warning"):
        assert bad not in err, err
