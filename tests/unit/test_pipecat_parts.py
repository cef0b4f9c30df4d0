"""The Pipecat adapter's parts without a pipeline: playout accounting, version and hook checks."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import numpy as np
import pytest
from pipecat.services.openai.realtime.llm import OpenAIRealtimeLLMService

from gate import InvalidTypeError, StateError, UnsupportedVersionError
from integrations.pipecat import (
    PRIVATE_API,
    PlayoutLedger,
    SocketTap,
    check_pipecat_version,
    install_gate,
    missing_private_api,
)

RATE = 24_000


def pcm(value: int, ms: int) -> bytes:
    """``ms`` of one constant PCM16 value at 24 kHz."""
    return np.full(RATE * ms // 1000, value, np.int16).tobytes()


def test_played_audio_is_attributed_in_order_across_items() -> None:
    ledger = PlayoutLedger()
    ledger.forwarded("r1", "i1", pcm(100, 30), RATE)
    ledger.forwarded("r2", "i2", pcm(200, 30), RATE)
    ledger.played(pcm(100, 30) + pcm(200, 10), RATE)  # one 40 ms chunk across both
    assert ledger.played_ms("i1", RATE) == 30
    assert ledger.played_ms("i2", RATE) == 10
    assert ledger.holds() == {"r2"}
    assert ledger.held_bytes("r2") == RATE * 2 * 20 // 1000


def test_flush_padding_is_not_counted_as_the_next_item() -> None:
    ledger = PlayoutLedger()
    ledger.forwarded("r1", "i1", pcm(100, 30), RATE)
    ledger.forwarded("r2", "i2", pcm(200, 40), RATE)
    ledger.played(pcm(100, 30) + pcm(0, 10), RATE)  # the transport padded r1's tail
    assert ledger.played_ms("i1", RATE) == 30
    assert ledger.played_ms("i2", RATE) == 0
    ledger.played(pcm(200, 40), RATE)
    assert ledger.played_ms("i2", RATE) == 40


def test_after_an_interruption_the_chunk_in_flight_is_matched_by_content() -> None:
    ledger = PlayoutLedger()
    ledger.forwarded("r1", "i1", pcm(100, 40) + pcm(101, 200), RATE)
    ledger.played(pcm(100, 40), RATE)
    ledger.barrier()
    ledger.forwarded("r2", "i2", pcm(300, 40), RATE)
    assert ledger.holds() == {"r2"}, "audio before the barrier is on its way out"
    ledger.interrupted()
    assert ledger.unsettled
    ledger.played(pcm(101, 40), RATE)  # the chunk being written when it was cleared
    assert ledger.played_ms("i1", RATE) == 80
    assert not ledger.unsettled, "the rest was dropped"
    ledger.played(pcm(300, 40), RATE)
    assert ledger.played_ms("i1", RATE) == 80
    assert ledger.played_ms("i2", RATE) == 40


def test_a_new_chunk_after_an_interruption_gives_up_the_dropped_audio() -> None:
    ledger = PlayoutLedger()
    ledger.forwarded("r1", "i1", pcm(100, 200), RATE)
    ledger.interrupted()  # nothing was being written
    ledger.forwarded("r2", "i2", pcm(300, 40), RATE)
    ledger.played(pcm(300, 40), RATE)
    assert not ledger.unsettled
    assert ledger.played_ms("i1", RATE) == 0
    assert ledger.played_ms("i2", RATE) == 40


def test_at_another_rate_an_ambiguous_chunk_is_attributed_to_no_one() -> None:
    ledger = PlayoutLedger()
    ledger.forwarded("r1", "i1", pcm(100, 100), RATE)
    ledger.interrupted()
    ledger.forwarded("r2", "i2", pcm(200, 100), RATE)
    ledger.played(bytes(16_000 * 2 * 40 // 1000), 16_000)
    assert ledger.played_ms("i1", RATE) == 0
    assert ledger.played_ms("i2", RATE) == 0
    assert ledger.unattributed_bytes > 0
    ledger.played(bytes(16_000 * 2 * 40 // 1000), 16_000)
    assert ledger.played_ms("i2", RATE) == 40


def test_audio_that_is_not_ours_is_not_attributed() -> None:
    ledger = PlayoutLedger()
    ledger.forwarded("r1", "i1", pcm(100, 40), RATE)
    ledger.played(pcm(555, 40), RATE)
    assert ledger.played_ms("i1", RATE) == 0
    assert ledger.unattributed_bytes == RATE * 2 * 40 // 1000


def test_only_pipecat_1_14_is_accepted_and_the_error_names_the_version() -> None:
    assert check_pipecat_version("1.14.3") == "1.14.3"
    assert check_pipecat_version().startswith("1.14.")
    for version in ("1.15.0", "1.13.2", "0.0.98"):
        with pytest.raises(UnsupportedVersionError, match=version.replace(".", r"\.")):
            check_pipecat_version(version)


def test_the_private_hooks_are_checked() -> None:
    llm = OpenAIRealtimeLLMService(api_key="x", base_url="ws://127.0.0.1:9/v1/realtime")
    assert missing_private_api(llm) == []
    assert missing_private_api(object()) == list(PRIVATE_API)


def test_install_refuses_what_it_cannot_gate() -> None:
    with pytest.raises(InvalidTypeError, match="OpenAIRealtimeLLMService"):
        install_gate(object())  # type: ignore[arg-type]
    llm = OpenAIRealtimeLLMService(api_key="x", base_url="ws://127.0.0.1:9/v1/realtime")
    vars(llm)["_websocket"] = object()  # as if the pipeline had started
    with pytest.raises(StateError, match="before the pipeline starts"):
        install_gate(llm)


class _FakeSocket:
    def __init__(self, messages: list[str]) -> None:
        self.messages = messages
        self.sent: list[str] = []

    async def _iterate(self) -> AsyncIterator[str]:
        for message in self.messages:
            yield message

    def __aiter__(self) -> AsyncIterator[str]:
        return self._iterate()

    async def send(self, message: str) -> None:
        self.sent.append(message)


def test_a_failing_hook_never_reaches_pipecat() -> None:
    def broken(_event: dict[str, Any]) -> Any:
        raise RuntimeError("a gate bug")

    ws = _FakeSocket(['{"type": "session.created"}', "not json", '{"type": "response.done"}'])
    tap = SocketTap(ws, broken, broken)

    async def run() -> list[str | bytes]:
        received = [m async for m in tap]
        await tap.send(json.dumps({"type": "response.cancel"}))
        return received

    assert asyncio.run(run()) == ws.messages
    assert [json.loads(m) for m in ws.sent] == [{"type": "response.cancel"}]
