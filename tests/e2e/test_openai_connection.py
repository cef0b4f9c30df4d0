"""The raw ``openai`` SDK path: a real SDK client over websocket, the simulator, a real device.

``GatedConnection`` wraps ``AsyncOpenAI(...).realtime.connect()`` pointed at the simulator
(``websocket_base_url``); audio plays through a ``SpeakerSink`` on the project's PulseAudio
test device, whose tee file records every sample the callback wrote. Truth for "what the
listener heard" is that tee: the simulator's audio names its reply in every sample. Each
test asserts the simulator's final conversation: for every assistant item, the audio it
holds equals what played within one device block (10 ms), and no edit was refused.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest

from gate import PlaybackGate
from integrations.openai_realtime import GatedConnection
from integrations.openai_realtime.simulator import RealtimeSimulator, ResponsePlan, ResponseRecord
from integrations.openai_realtime.simulator import audio_marker as am
from integrations.speakers import SpeakerSink
from integrations.testing.audio_device import BLOCKSIZE, AudioTestDevice

pytestmark = pytest.mark.timeout(40)


@dataclass
class Rig:
    sim: RealtimeSimulator
    rt: GatedConnection
    sink: SpeakerSink
    device: AudioTestDevice
    events: list[Any]

    def heard_ms(self, record: ResponseRecord) -> float:
        """Milliseconds of a reply in the tee (what the callback handed the device)."""
        runs = am.identify(self.device.read())
        samples = sum(r.length for r in runs if r.response == record.marker_response)
        return samples * 1000 / self.device.samplerate

    def block_ms(self) -> float:
        return BLOCKSIZE * 1000 / self.device.samplerate

    async def until(self, predicate: Any, timeout: float = 10.0) -> None:
        async with asyncio.timeout(timeout):
            while not predicate():
                await asyncio.sleep(0.01)

    async def settled(self, *records: ResponseRecord) -> list[float]:
        """Wait for the history edits, then return held minus heard (ms) per reply."""
        with contextlib.suppress(TimeoutError):
            await self.until(
                lambda: all(
                    abs(self.sim.held_ms(r) - self.heard_ms(r)) <= self.block_ms() for r in records
                ),
                timeout=3.0,
            )
        return [self.sim.held_ms(r) - self.heard_ms(r) for r in records]

    def assert_honest(self, *records: ResponseRecord) -> None:
        for r in records:
            held, heard = self.sim.held_ms(r), self.heard_ms(r)
            assert abs(held - heard) <= self.block_ms(), (r.number, held, heard)
            assert held <= r.samples_sent * 1000 // am.SAMPLE_RATE
        edits = self.sim.context_edits()
        assert [e for e in edits if not e.accepted] == []
        assert len({e.item_id for e in edits}) == len(edits)


@contextlib.asynccontextmanager
async def rig(audio_device: AudioTestDevice, request_timeout: float = 10.0) -> AsyncIterator[Rig]:
    from openai import AsyncOpenAI

    async with RealtimeSimulator() as sim:
        client = AsyncOpenAI(
            api_key="sk-test",
            base_url=sim.base_url,
            websocket_base_url=f"ws://127.0.0.1:{sim.port}/v1",
        )
        gate = PlaybackGate(request_timeout=request_timeout)
        sink = SpeakerSink(
            gate,
            device=audio_device.device,
            samplerate=audio_device.samplerate,
            blocksize=BLOCKSIZE,
            latency="low",
        )
        async with client.realtime.connect(model="gpt-realtime") as conn:
            rt = GatedConnection(conn, sink)
            events: list[Any] = []

            async def pump() -> None:
                async for event in rt:
                    events.append(event)

            reader = asyncio.create_task(pump())
            sink.start()
            try:
                yield Rig(sim, rt, sink, audio_device, events)
            finally:
                reader.cancel()
                await asyncio.gather(reader, return_exceptions=True)
                await rt.aclose()
                sink.close()
        await client.close()


async def test_barge_in_truncates_at_what_the_listener_heard(
    audio_device: AudioTestDevice,
) -> None:
    async with rig(audio_device) as r:
        r.sim.enqueue(ResponsePlan(chunks=100, pace=1), ResponsePlan(chunks=15, pace=None))
        await r.rt.send({"type": "response.create"})
        cut = await r.sim.wait_for_response(1)
        await r.until(lambda: r.heard_ms(cut) > 600)
        await r.sim.user_speaks(0.2)  # server VAD: speech_started, then a reply of its own
        reply = await r.sim.wait_for_response(2)
        await r.sim.wait_done(reply)
        await r.until(lambda: r.heard_ms(reply) >= reply.samples_sent * 1000 / am.SAMPLE_RATE - 5)
        errors = await r.settled(cut, reply)
        assert r.rt.interrupted == [cut.response_id]
        assert cut.status == "cancelled" and cut.cancel_reason == "turn_detected"
        (truncate,) = r.sim.context_edits("truncate")
        assert truncate.item_id == cut.item_id and truncate.audio_end_ms is not None
        assert 600 < truncate.audio_end_ms < 1500
        r.assert_honest(cut, reply)
        print(f"\nraw SDK barge-in: context error {errors} ms (held - heard)")


async def test_dead_on_arrival_reply_is_deleted(audio_device: AudioTestDevice) -> None:
    async with rig(audio_device, request_timeout=0.5) as r:
        late = ResponsePlan(chunks=30, pace=None, created_delay_s=0.8, ignore_cancel=True)
        r.sim.enqueue(late, ResponsePlan(chunks=10, pace=None))
        await r.rt.send({"type": "response.create"})
        dead = await r.sim.wait_for_response(1)
        await r.sim.wait_done(dead)
        await r.rt.send({"type": "response.create"})
        normal = await r.sim.wait_for_response(2)
        await r.sim.wait_done(normal)
        await r.until(lambda: r.heard_ms(normal) >= 195)
        await r.settled(dead, normal)
        assert r.heard_ms(dead) == 0
        assert [e.kind for e in r.sim.context_edits(item_id=dead.item_id)] == ["delete"]
        r.assert_honest(dead, normal)


async def test_client_cancel_mid_playout_is_truncated(audio_device: AudioTestDevice) -> None:
    async with rig(audio_device) as r:
        r.sim.enqueue(ResponsePlan(chunks=60, pace=4))  # streams 4x faster than it plays
        await r.rt.send({"type": "response.create"})
        rec = await r.sim.wait_for_response(1)
        await r.until(lambda: r.heard_ms(rec) > 300)
        await r.rt.send({"type": "response.cancel", "response_id": rec.response_id})
        await r.sim.wait_done(rec)
        errors = await r.settled(rec)
        assert 300 < r.heard_ms(rec) < rec.samples_sent * 1000 / am.SAMPLE_RATE
        assert [e.kind for e in r.sim.context_edits(item_id=rec.item_id)] == ["truncate"]
        r.assert_honest(rec)
        print(f"\nraw SDK client cancel: context error {errors} ms (held - heard)")


async def test_barge_in_leaves_an_out_of_band_reply_alone(audio_device: AudioTestDevice) -> None:
    async with rig(audio_device) as r:
        r.sim.enqueue(
            ResponsePlan(chunks=60, pace=1),  # the default reply, cut by the user
            ResponsePlan(chunks=20, pace=1),  # out of band, alongside: no conversation item
            ResponsePlan(chunks=5, pace=None),  # the server's answer to the user
        )
        await r.rt.send({"type": "response.create"})
        cut = await r.sim.wait_for_response(1)
        await r.rt.send({"type": "response.create", "response": {"conversation": "none"}})
        oob = await r.sim.wait_for_response(2)
        await r.until(lambda: r.heard_ms(cut) > 200)
        await r.sim.user_speaks(0.1)
        await r.sim.wait_done(oob)
        await r.until(lambda: r.heard_ms(oob) >= 395)
        await r.settled(cut)
        assert r.rt.interrupted == [cut.response_id]
        assert oob.status == "completed" and r.sim.item_audio(oob) == []
        assert [e.item_id for e in r.sim.context_edits()] == [cut.item_id]
        r.assert_honest(cut)


# ---- playback-gate voice: the same code against the simulator ------------------------------


async def test_voice_command_against_the_simulator(audio_device: AudioTestDevice) -> None:
    from integrations.speakers.voice import run_voice

    report = await run_voice(simulator=True, device=audio_device.device, mic=False)
    greeting, answer = report.replies
    assert greeting.cut == "interrupted" and greeting.edit.startswith("truncate at ")
    assert greeting.held_ms is not None and abs(greeting.held_ms - greeting.played_ms) <= 10
    assert greeting.played_ms < greeting.sent_ms
    assert answer.cut == "" and answer.edit == "" and answer.held_ms == round(answer.sent_ms)
    assert report.errors == []
    assert len(report.lines()) == 3


def test_voice_command_needs_a_key_or_the_simulator(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import argparse

    from integrations.speakers.voice import add_arguments, run

    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    assert run(parser.parse_args([])) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "OPENAI_API_KEY is not set" in err and "--simulator" in err
    assert run(parser.parse_args(["--simulator", "--seconds", "nan"])) == 2
    assert "--seconds must be > 0" in capsys.readouterr().err
