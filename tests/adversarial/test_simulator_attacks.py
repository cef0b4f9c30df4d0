"""The Realtime simulator as a server facing a hostile client: a real websocket client, the
real simulator. Nothing a client sends may crash it, leak a key to its logs, or make its
memory grow without bound.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import psutil  # type: ignore[import-untyped]
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from integrations.openai_realtime.simulator.limits import ServerLimits
from integrations.openai_realtime.simulator.plans import ResponsePlan
from integrations.openai_realtime.simulator.server import RealtimeSimulator

REPO = Path(__file__).resolve().parents[2]
KEY = "sk-ADVERSARIALKEY0123456789"


@pytest.fixture
async def sim() -> AsyncIterator[RealtimeSimulator]:
    async with RealtimeSimulator() as s:
        yield s


async def _next_event(ws: aiohttp.ClientWebSocketResponse, timeout: float = 5.0) -> dict[str, Any]:
    msg = await ws.receive(timeout=timeout)
    assert msg.type == aiohttp.WSMsgType.TEXT, (msg.type, msg.data)
    event: dict[str, Any] = json.loads(msg.data)
    return event


async def _still_serves(ws: aiohttp.ClientWebSocketResponse) -> None:
    """The connection answers a well-formed event after whatever came before."""
    await ws.send_str(
        json.dumps(
            {"type": "session.update", "session": {"type": "realtime", "instructions": "ok"}}
        )
    )
    async with asyncio.timeout(5):
        while (await _next_event(ws))["type"] != "session.updated":
            pass


async def test_json_nested_1000_deep_is_an_error_event_and_the_connection_stays_up(
    sim: RealtimeSimulator, caplog: pytest.LogCaptureFixture
) -> None:
    async with aiohttp.ClientSession() as http, http.ws_connect(sim.url) as ws:
        await _next_event(ws)  # session.created
        for text in ("[" * 1000 + "]" * 1000, '{"a":' * 1000 + "1" + "}" * 1000, "[]," * 20_000):
            await ws.send_str(text)
            error = await _next_event(ws)
            assert error["type"] == "error" and error["error"]["code"] == "invalid_json"
        await _still_serves(ws)
    assert "Traceback" not in caplog.text and "RecursionError" not in caplog.text


async def test_an_oversized_message_is_refused_naming_the_limit() -> None:
    limits = ServerLimits(max_message_bytes=1 << 20)
    async with RealtimeSimulator(limits=limits) as sim, aiohttp.ClientSession() as http:
        async with http.ws_connect(sim.url) as ws:
            await _next_event(ws)
            big = json.dumps({"type": "input_audio_buffer.append", "audio": "A" * (2 << 20)})
            with contextlib.suppress(ConnectionError):  # the server stopped reading
                await ws.send_str(big)
            error = await _next_event(ws)
            assert error["error"]["code"] == "message_too_large"
            assert str(1 << 20) in error["error"]["message"]
            close = await ws.receive(timeout=5)
            assert close.type == aiohttp.WSMsgType.CLOSE and close.data == 1009
        async with http.ws_connect(sim.url) as ws:  # the server itself is fine
            await _next_event(ws)
            await _still_serves(ws)


@pytest.mark.parametrize(
    "protocols",
    [
        ("realtime", f"openai-insecure-api-key.{KEY}", "openai-beta.realtime-v1"),
        (f"openai-insecure-api-key.{KEY}",),
        (f"openai-insecure-api-key.{KEY}", "openai-beta.realtime-v1"),
    ],
)
async def test_a_subprotocol_key_is_never_logged(
    sim: RealtimeSimulator, caplog: pytest.LogCaptureFixture, protocols: tuple[str, ...]
) -> None:
    caplog.set_level(logging.DEBUG)
    async with aiohttp.ClientSession() as http, http.ws_connect(sim.url, protocols=protocols) as ws:
        await _next_event(ws)
        assert ws.protocol is None or KEY not in ws.protocol
        await _still_serves(ws)
    assert KEY not in caplog.text


async def test_each_log_is_bounded_in_bytes_and_large_messages_are_stubs() -> None:
    limits = ServerLimits(max_log_bytes=64 << 10, max_log_entry_bytes=8 << 10)
    async with (
        RealtimeSimulator(limits=limits) as sim,
        aiohttp.ClientSession() as http,
        http.ws_connect(sim.url) as ws,
    ):
        await _next_event(ws)
        session = {"type": "realtime", "instructions": "x" * (16 << 10)}
        for _ in range(40):  # 40 x (16 KiB sent + 16 KiB echoed) = 1.3 MB of traffic
            await ws.send_str(json.dumps({"type": "session.update", "session": session}))
            await _next_event(ws)
        conn = sim.connection
        assert conn.log.bytes <= limits.max_log_bytes
        assert all(len(json.dumps(e.event)) < 1024 for e in conn.log)  # stubs
        assert any(e.event.get("bytes", 0) > limits.max_log_entry_bytes for e in conn.log)


async def test_only_the_most_recently_closed_connections_are_kept() -> None:
    limits = ServerLimits(max_closed_logs=2)
    async with RealtimeSimulator(limits=limits) as sim, aiohttp.ClientSession() as http:
        for _ in range(6):
            async with http.ws_connect(sim.url) as ws:
                await _next_event(ws)
        await sim.wait_until(lambda: len(sim.connections) <= 2)
        assert [c.id for c in sim.connections] == [5, 6]
        async with http.ws_connect(sim.url) as ws:
            assert (await sim.wait_for_connection(7)).id == 7
            with pytest.raises(LookupError):
                await sim.wait_for_connection(1)
            await _next_event(ws)


# ---- a flood, against the simulator in its own process (its RSS, not the test's) --------

_SERVER = """
import asyncio
from integrations.openai_realtime.simulator.server import RealtimeSimulator
async def main():
    async with RealtimeSimulator() as sim:
        print(sim.port, flush=True)
        await asyncio.sleep(600)
asyncio.run(main())
"""


async def test_a_flood_of_huge_messages_and_connections_leaves_rss_flat() -> None:
    """8 x 50 MB messages took the simulator from 51 to 463 MB and none of it came back."""
    proc = subprocess.Popen(
        [sys.executable, "-c", _SERVER], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        assert proc.stdout is not None
        port = int(proc.stdout.readline())
        url = f"ws://127.0.0.1:{port}/v1/realtime"
        server = psutil.Process(proc.pid)
        big = json.dumps({"type": "input_audio_buffer.append", "audio": "A" * (50 << 20)})
        async with aiohttp.ClientSession() as http:
            async with http.ws_connect(url) as ws:  # warm up: imports, first allocations
                await _next_event(ws)
            before = server.memory_info().rss
            for _ in range(8):
                async with http.ws_connect(url) as ws:
                    await _next_event(ws)
                    with contextlib.suppress(ConnectionError):
                        await ws.send_str(big)

            async def churn() -> None:
                async with http.ws_connect(url) as ws:
                    await _next_event(ws)
                    update = {
                        "type": "session.update",
                        "session": {"type": "realtime", "instructions": "x" * 20_000},
                    }
                    await ws.send_str(json.dumps(update))
                    await _next_event(ws)

            for _ in range(2):
                await asyncio.gather(*(churn() for _ in range(100)))
            grown = server.memory_info().rss - before
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=10)
    # Bounded: 16 closed logs of ~40 kB, nothing of the refused 50 MB messages.
    assert grown < 40 << 20, f"simulator RSS grew by {grown / 1e6:.0f} MB"
    assert b"Traceback" not in err


# ---- fuzzing: random frames on a real connection ------------------------------------------

_TYPES = st.sampled_from(
    [
        "session.update",
        "input_audio_buffer.append",
        "input_audio_buffer.commit",
        "input_audio_buffer.clear",
        "conversation.item.create",
        "conversation.item.delete",
        "conversation.item.truncate",
        "response.create",
        "response.cancel",
        "nope",
    ]
)
_VALUES: Any = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=8)),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=10,
)
_FRAMES = st.one_of(
    st.builds(
        lambda t, extra: json.dumps({"type": t, **extra}),
        _TYPES,
        st.dictionaries(
            st.sampled_from(
                [
                    "event_id",
                    "session",
                    "audio",
                    "item",
                    "item_id",
                    "response",
                    "response_id",
                    "content_index",
                    "audio_end_ms",
                    "previous_item_id",
                ]
            ),
            _VALUES,
            max_size=4,
        ),
    ),
    st.text(max_size=40),
    st.sampled_from(["[" * 300, "{" * 5000, '"\\ud800"', "null", "1e999", "[]" * 6000]),
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_FRAMES, min_size=1, max_size=8))
def test_no_sequence_of_frames_breaks_a_connection(frames: list[str]) -> None:
    async def run() -> list[str]:
        failures: list[str] = []
        handler = _Collect(failures)
        logger = logging.getLogger("integrations.openai_realtime.simulator")
        logger.addHandler(handler)
        try:
            async with (
                RealtimeSimulator() as sim,
                aiohttp.ClientSession() as http,
                http.ws_connect(sim.url) as ws,
            ):
                await _next_event(ws)
                for frame in frames:
                    await ws.send_str(frame)
                await _still_serves(ws)
        finally:
            logger.removeHandler(handler)
        return failures

    assert asyncio.run(run()) == []


class _Collect(logging.Handler):
    """Keeps every record logged with a traceback (a simulator bug, not bad input)."""

    def __init__(self, into: list[str]) -> None:
        super().__init__(logging.DEBUG)
        self.into = into

    def emit(self, record: logging.LogRecord) -> None:
        if record.exc_info:
            self.into.append(self.format(record))


def test_psutil_sees_this_process() -> None:
    """The flood test reads RSS through psutil; make sure it works here."""
    assert psutil.Process(os.getpid()).memory_info().rss > 0


async def test_what_a_client_makes_the_server_hold_is_bounded() -> None:
    """Items, a growing session and a truncate flood: each refused past its bound, named."""
    limits = ServerLimits(
        max_conversation_items=3, max_conversation_bytes=64 << 10, max_session_bytes=32 << 10
    )
    async with (
        RealtimeSimulator(limits=limits) as sim,
        aiohttp.ClientSession() as http,
        http.ws_connect(sim.url) as ws,
    ):
        await _next_event(ws)

        async def reply_to(event: dict[str, Any]) -> dict[str, Any]:
            await ws.send_str(json.dumps(event))
            reply = await _next_event(ws)
            if reply["type"] == "conversation.item.added":
                await _next_event(ws)  # conversation.item.done
            return reply

        def item(text: str) -> dict[str, Any]:
            content = [{"type": "input_text", "text": text}]
            return {
                "type": "conversation.item.create",
                "item": {"type": "message", "role": "user", "content": content},
            }

        big = await reply_to(item("x" * (70 << 10)))
        assert (
            big["error"]["code"] == "conversation_too_large"
            and str(64 << 10) in big["error"]["message"]
        )
        for _ in range(3):
            assert (await reply_to(item("ok")))["type"] == "conversation.item.added"
        fourth = await reply_to(item("ok"))
        assert (
            fourth["error"]["code"] == "conversation_too_large"
            and "3 items" in fourth["error"]["message"]
        )
        session = {"type": "realtime", "instructions": "y" * (40 << 10)}
        grown = await reply_to({"type": "session.update", "session": session})
        assert grown["error"]["code"] == "session_too_large"
        long_id = "z" * 100_000
        truncate = {"type": "conversation.item.truncate", "content_index": 0, "audio_end_ms": 1}
        for i in range(3):
            await reply_to({**truncate, "item_id": f"{i}{long_id}", "event_id": long_id})
        edits = sim.context_edits()
        assert len(edits) == 3
        assert all(len(e.item_id) <= 256 and len(e.error or "") <= 512 for e in edits)
        await _still_serves(ws)


async def test_a_flood_of_out_of_band_responses_is_capped() -> None:
    limits = ServerLimits(max_active_responses=4)
    slow = ResponsePlan(chunks=50)  # paced: each stays in progress for a while
    async with (
        RealtimeSimulator(limits=limits, default_plan=slow) as sim,
        aiohttp.ClientSession() as http,
        http.ws_connect(sim.url) as ws,
    ):
        await _next_event(ws)
        create = {"type": "response.create", "response": {"conversation": "none"}}
        for _ in range(10):
            await ws.send_str(json.dumps(create))
        refused = 0
        async with asyncio.timeout(10):
            while refused < 6:
                event = await _next_event(ws)
                if event["type"] == "error":
                    assert event["error"]["code"] == "too_many_active_responses"
                    refused += 1
        assert len(sim.responses) == 4
