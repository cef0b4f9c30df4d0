"""GatedAudioOutput's playback contract and tagging, without a model or a server.

The sink is a small real ``io.AudioOutput`` that "plays" instantly at flush,
and LiveKit's own RoomIO output (run without a room) for the purge path.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
from typing import Any, cast

import numpy as np
import pytest
from livekit import rtc
from livekit.agents import AgentSession, llm
from livekit.agents.voice import io
from livekit.agents.voice.speech_handle import SpeechHandle

from gate import DropReason, PlaybackGate
from integrations.livekit import check_agents_version, install_gate
from integrations.livekit._gated_output import GatedAudioOutput, missing_private_api
from integrations.livekit._tagging import (
    GENERATION_KEY,
    current_generation,
    generation_of,
    tag_audio,
    tag_frame,
    tag_generation_event,
)
from integrations.testing.agent_rig import roomless_output

SR = 24_000


def frame(gen: str | None, n: int = 240, value: int = 100) -> rtc.AudioFrame:
    f = rtc.AudioFrame(np.full(n, value, np.int16).tobytes(), SR, 1, n)
    return tag_frame(f, gen) if gen else f


class InstantSink(io.AudioOutput):
    """Plays each segment at flush; a cleared segment reports ``interrupted``."""

    def __init__(self) -> None:
        super().__init__(
            label="instant", capabilities=io.AudioOutputCapabilities(pause=True), sample_rate=SR
        )
        self.frames: list[rtc.AudioFrame] = []
        self.calls: list[str] = []
        self._pushed = 0.0
        self._cleared = False

    async def capture_frame(self, frame: rtc.AudioFrame) -> None:
        await super().capture_frame(frame)
        self.frames.append(frame)
        self._pushed += frame.duration

    def flush(self) -> None:
        super().flush()
        self.calls.append("flush")
        if self._pushed or self._cleared:
            self.on_playback_finished(
                playback_position=0.0 if self._cleared else self._pushed,
                interrupted=self._cleared,
            )
        self._pushed, self._cleared = 0.0, False

    def clear_buffer(self) -> None:
        self.calls.append("clear")
        self._cleared = True

    def pause(self) -> None:
        self.calls.append("pause")

    def resume(self) -> None:
        self.calls.append("resume")


@pytest.fixture
def gate() -> PlaybackGate:
    return PlaybackGate()


async def test_healthy_segment_passes_through(gate: PlaybackGate) -> None:
    sink = InstantSink()
    out = GatedAudioOutput(gate, next_in_chain=sink)
    for _ in range(4):
        await out.capture_frame(frame("resp_a"))
    out.flush()
    ev = await asyncio.wait_for(out.wait_for_playout(), 1)
    assert not ev.interrupted and ev.playback_position == pytest.approx(0.04)
    assert len(sink.frames) == 4
    assert out.frames_dropped == 0


async def test_one_segment_counted_per_flush_whatever_its_length(gate: PlaybackGate) -> None:
    """The base class is told once per segment (fast path): counts match the sink's."""
    sink = InstantSink()
    out = GatedAudioOutput(gate, next_in_chain=sink)
    for n in (1, 5, 3):
        for _ in range(n):
            await out.capture_frame(frame("resp_a"))
        out.flush()
        ev = await asyncio.wait_for(out.wait_for_playout(), 1)
        assert not ev.interrupted and ev.playback_position == pytest.approx(n * 0.01)
    assert out.captured_playout_segments == 3
    assert out._pending_playback_count == 0 and len(sink.frames) == 9


async def test_interleaved_generations_in_a_segment_are_all_tracked(gate: PlaybackGate) -> None:
    """The previous-frame cache does not hide a generation that comes back, or a new one."""
    sink = InstantSink()
    out = GatedAudioOutput(gate, next_in_chain=sink)
    for gen in ("resp_a", "resp_b", "resp_a", "resp_a", "resp_c", "resp_b"):
        await out.capture_frame(frame(gen))
    assert out.playing_generations() == ["resp_a", "resp_b", "resp_c"]
    gate.flag("resp_c", DropReason.CANCELLED)  # seen once, between others
    # the sink's segment also holds live resp_a/resp_b audio: nothing is cleared
    assert out.mid_playout_purges == 1 and out.uncleared_purges == 1
    assert "clear" not in sink.calls
    await out.capture_frame(frame("resp_a"))  # live: still forwarded
    await out.capture_frame(frame("resp_c"))  # flagged: dropped by the gate
    out.flush()
    ev = await asyncio.wait_for(out.wait_for_playout(), 1)
    assert ev.interrupted  # resp_c's frame was dropped from this segment
    assert [generation_of(f) for f in sink.frames] == [
        "resp_a",
        "resp_b",
        "resp_a",
        "resp_a",
        "resp_c",
        "resp_b",
        "resp_a",
    ]
    assert out.frames_dropped == 1
    stats = gate.generation("resp_c")
    assert stats is not None and stats.dropped.frames == 1 and stats.passed.frames == 1


async def test_the_segment_lane_sees_a_flag_between_two_frames(gate: PlaybackGate) -> None:
    """Frames of one generation in a row take the cached lane: a flag still drops the next."""
    sink = InstantSink()
    out = GatedAudioOutput(gate, next_in_chain=sink)
    tag = "resp_a"
    for _ in range(3):
        await out.capture_frame(frame(tag))
    await out.capture_frame(frame("".join(["resp_", "a"])))  # an equal tag, another str
    gate.flag(tag, DropReason.INTERRUPTED)
    await out.capture_frame(frame(tag))
    assert len(sink.frames) == 4 and out.frames_dropped == 1
    info = gate.generation(tag)
    assert info is not None and info.passed.frames == 4 and info.dropped.frames == 1


async def test_gated_segment_finishes_interrupted_never_stale(gate: PlaybackGate) -> None:
    sink = InstantSink()
    out = GatedAudioOutput(gate, next_in_chain=sink)
    await out.capture_frame(frame("resp_a"))
    out.flush()
    assert (await out.wait_for_playout()).playback_position > 0
    gate.flag("resp_b", DropReason.TIMED_OUT)
    for _ in range(5):
        await out.capture_frame(frame("resp_b"))
    out.flush()
    ev = await asyncio.wait_for(out.wait_for_playout(), 1)
    assert ev.interrupted and ev.playback_position == 0.0  # this segment's, not resp_a's
    assert len(sink.frames) == 1 and out.frames_dropped == 5


async def test_purge_mid_segment_cuts_the_sink_once(
    gate: PlaybackGate, caplog: pytest.LogCaptureFixture
) -> None:
    sink = InstantSink()
    out = GatedAudioOutput(gate, next_in_chain=sink)
    handle = SpeechHandle.create()
    out.set_owner("resp_a", handle)
    for _ in range(3):
        await out.capture_frame(frame("resp_a"))
    with caplog.at_level(logging.WARNING):
        gate.flag("resp_a", DropReason.CANCELLED)
        assert sink.calls[-2:] == ["flush", "clear"]  # ended at once, before upstream flushes
        assert handle.interrupted  # the owner is told, so chat history stays honest
        for _ in range(3):
            await out.capture_frame(frame("resp_a"))
        out.flush()
        out.clear_buffer()
        ev = await asyncio.wait_for(out.wait_for_playout(), 1)
    assert ev.interrupted
    assert len(sink.frames) == 3 and out.mid_playout_purges == 1
    assert "more times" not in caplog.text


async def test_clear_buffer_flags_what_it_cuts(gate: PlaybackGate) -> None:
    sink = InstantSink()
    out = GatedAudioOutput(gate, next_in_chain=sink)
    gate.announce("resp_a")
    await out.capture_frame(frame("resp_a"))
    out.clear_buffer()
    out.flush()
    assert gate.is_flagged("resp_a")
    info = gate.generation("resp_a")
    assert info is not None and info.reason is DropReason.INTERRUPTED
    assert (await asyncio.wait_for(out.wait_for_playout(), 1)).interrupted


async def test_clear_before_any_forwarded_frame_ends_the_segment_once(gate: PlaybackGate) -> None:
    sink = InstantSink()
    out = GatedAudioOutput(gate, next_in_chain=sink)
    gate.flag("resp_b", DropReason.TIMED_OUT)
    await out.capture_frame(frame("resp_b"))
    out.clear_buffer()
    out.flush()
    ev = await asyncio.wait_for(out.wait_for_playout(), 1)
    assert ev.interrupted and sink.frames == []


async def test_untagged_frames_pass_and_delegation(gate: PlaybackGate) -> None:
    sink = InstantSink()
    out = GatedAudioOutput(gate, next_in_chain=sink)
    assert out.sample_rate == SR and out.can_pause
    out.pause()
    out.resume()
    assert sink.calls == ["pause", "resume"]
    await out.capture_frame(frame(None))
    assert len(sink.frames) == 1
    with pytest.raises(TypeError, match=r"io\.AudioOutput"):
        GatedAudioOutput(gate, next_in_chain=cast(Any, object()))


async def test_purge_clears_roomio_queue(gate: PlaybackGate) -> None:
    """The RoomIO sink drops its native queue when a generation is cut mid-playout."""
    room = roomless_output(SR)
    out = GatedAudioOutput(gate, next_in_chain=room.output)
    try:
        for _ in range(40):  # 400 ms
            await out.capture_frame(frame("resp_a"))
        await asyncio.sleep(0.1)
        gate.flag("resp_a", DropReason.CANCELLED)
        ev = await asyncio.wait_for(out.wait_for_playout(), 2)
        assert ev.interrupted and ev.playback_position < 0.4
        out.flush()  # upstream's flush after the cut adds no segment
        assert out._pending_playback_count == 0
    finally:
        await room.aclose()


async def test_context_tag_survives_rebuilt_frames() -> None:
    async def model_audio() -> Any:
        for _ in range(2):
            yield frame(None)

    seen: list[str | None] = []
    async for f in tag_audio(model_audio(), "resp_a"):
        assert f.userdata[GENERATION_KEY] == "resp_a"
        rebuilt = rtc.AudioFrame(bytes(f.data), SR, 1, f.samples_per_channel)  # e.g. resampled
        seen.append(generation_of(rebuilt))

    async def other_task() -> str | None:
        return current_generation()

    assert seen == ["resp_a", "resp_a"]
    assert await asyncio.create_task(other_task()) == "resp_a"  # tasks copy the context
    assert contextvars.Context().run(current_generation) is None  # a fresh context: none


async def test_tag_generation_event() -> None:
    message = llm.MessageGeneration(
        message_id="item_1",
        text_stream=_aiter([]),
        audio_stream=_aiter([frame(None)]),
        modalities=asyncio.get_running_loop().create_future(),
    )
    ev = llm.GenerationCreatedEvent(
        message_stream=_aiter([message]),
        function_stream=_aiter([]),
        user_initiated=True,
        response_id="resp_a",
    )
    assert tag_generation_event(ev) and not tag_generation_event(ev)
    async for msg in ev.message_stream:
        frames = [f async for f in msg.audio_stream]
        assert [generation_of(f) for f in frames] == ["resp_a"]
    no_id = llm.GenerationCreatedEvent(
        message_stream=_aiter([]), function_stream=_aiter([]), user_initiated=False
    )
    assert not tag_generation_event(no_id)


async def _aiter(items: list[Any]) -> Any:
    for item in items:
        yield item


async def test_install_needs_a_started_session() -> None:
    session: AgentSession[Any] = AgentSession()
    with pytest.raises(RuntimeError, match=r"after `await session\.start"):
        install_gate(session)


class QueueSink(io.AudioOutput):
    """Holds flushed segments until :meth:`play_next`; ``clear_buffer`` drops all it holds."""

    def __init__(self) -> None:
        super().__init__(
            label="queue", capabilities=io.AudioOutputCapabilities(pause=True), sample_rate=SR
        )
        self.segments: list[list[str | None]] = []  # flushed, not played; frames' generations
        self.open: list[str | None] | None = None
        self.open_cleared = False
        self.dropped: list[str | None] = []
        self.calls: list[str] = []

    async def capture_frame(self, frame: rtc.AudioFrame) -> None:
        await super().capture_frame(frame)
        if self.open is None:
            self.open = []
        self.open.append(generation_of(frame))

    def flush(self) -> None:
        super().flush()
        self.calls.append("flush")
        seg, self.open = self.open, None
        if seg is None:
            return
        if self.open_cleared:
            self.open_cleared = False
            self.on_playback_finished(playback_position=0.0, interrupted=True)
        else:
            self.segments.append(seg)

    def clear_buffer(self) -> None:
        self.calls.append("clear")
        held, self.segments = self.segments, []
        for seg in held:
            self.dropped.extend(seg)
            self.on_playback_finished(playback_position=0.0, interrupted=True)
        if self.open is not None:
            self.dropped.extend(self.open)
            self.open.clear()
            self.open_cleared = True

    def queued(self) -> list[str | None]:
        return [g for seg in self.segments for g in seg] + (self.open or [])

    def play_next(self) -> None:
        seg = self.segments.pop(0)
        self.on_playback_finished(playback_position=len(seg) * 0.01, interrupted=False)


async def test_purge_never_clears_live_audio_queued_behind(gate: PlaybackGate) -> None:
    """The reviewer's repro: resp_a is flushed at the sink, live resp_b's segment is open."""
    sink = QueueSink()
    out = GatedAudioOutput(gate, next_in_chain=sink)
    for _ in range(3):
        await out.capture_frame(frame("resp_a"))
    out.flush()
    for _ in range(3):
        await out.capture_frame(frame("resp_b"))
    gate.flag("resp_a", DropReason.CANCELLED)
    assert "clear" not in sink.calls and sink.dropped == []
    assert out.mid_playout_purges == 1 and out.uncleared_purges == 1
    # documented: resp_a's audio queued ahead of live audio plays out
    assert sink.queued() == ["resp_a"] * 3 + ["resp_b"] * 3
    await out.capture_frame(frame("resp_b"))  # resp_b goes on
    out.flush()
    sink.play_next()
    sink.play_next()
    ev = await asyncio.wait_for(out.wait_for_playout(), 1)
    assert not ev.interrupted and ev.playback_position == pytest.approx(0.04)
    assert "clear" not in sink.calls and not gate.is_flagged("resp_b")
    assert out.playing_generations() == []


async def test_purge_behind_live_audio_clears_once_it_is_all_the_sink_holds(
    gate: PlaybackGate,
) -> None:
    sink = QueueSink()
    out = GatedAudioOutput(gate, next_in_chain=sink)
    finished: list[io.PlaybackFinishedEvent] = []
    out.on("playback_finished", finished.append)
    for _ in range(3):
        await out.capture_frame(frame("resp_b"))
    out.flush()  # live resp_b, at the sink
    for _ in range(3):
        await out.capture_frame(frame("resp_a"))
    gate.flag("resp_a", DropReason.CANCELLED)  # queued behind resp_b
    assert "clear" not in sink.calls and out.uncleared_purges == 1
    await out.capture_frame(frame("resp_a"))  # after the flag: dropped
    sink.play_next()  # resp_b played in full; now only resp_a is held: cleared at once
    assert sink.calls[-2:] == ["flush", "clear"]
    assert sink.dropped == ["resp_a"] * 3 and sink.queued() == []
    assert [e.interrupted for e in finished] == [False, True]
    assert finished[0].playback_position == pytest.approx(0.03)
    out.flush()  # upstream's flush after the cut adds no segment
    assert out._pending_playback_count == 0 and out.frames_dropped == 1


async def test_live_audio_after_a_cut_starts_a_new_segment(gate: PlaybackGate) -> None:
    sink = QueueSink()
    out = GatedAudioOutput(gate, next_in_chain=sink)
    for _ in range(3):
        await out.capture_frame(frame("resp_a"))
    gate.flag("resp_a", DropReason.CANCELLED)  # all the sink holds: cut and cleared
    assert sink.calls == ["flush", "clear"] and sink.dropped == ["resp_a"] * 3
    assert (await asyncio.wait_for(out.wait_for_playout(), 1)).interrupted
    await out.capture_frame(frame("resp_a"))  # flagged: dropped
    for _ in range(2):
        await out.capture_frame(frame("resp_b"))  # live: a new segment, not dropped
    out.flush()
    assert sink.queued() == ["resp_b", "resp_b"]
    sink.play_next()
    ev = await asyncio.wait_for(out.wait_for_playout(), 1)
    assert not ev.interrupted and ev.playback_position == pytest.approx(0.02)
    assert out.captured_playout_segments == 2 and out._pending_playback_count == 0


async def test_private_hook_is_what_livekit_calls(
    gate: PlaybackGate, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Fails loudly if livekit-agents stops routing the sink's playback_finished through
    ``io.AudioOutput._dispatch_playback_finished`` (the one private API this output uses)."""
    assert missing_private_api() == []
    assert callable(vars(io.AudioOutput).get("_dispatch_playback_finished"))
    assert check_agents_version()
    calls: list[io.PlaybackFinishedEvent] = []
    real = GatedAudioOutput._dispatch_playback_finished

    def spy(self: GatedAudioOutput, ev: io.PlaybackFinishedEvent) -> None:
        calls.append(ev)
        real(self, ev)

    monkeypatch.setattr(GatedAudioOutput, "_dispatch_playback_finished", spy)
    sink = QueueSink()
    out = GatedAudioOutput(gate, next_in_chain=sink)
    await out.capture_frame(frame("resp_a"))
    out.flush()
    sink.play_next()  # the sink's public on_playback_finished
    assert len(calls) == 1 and calls[0].playback_position == pytest.approx(0.01)
    assert not (await asyncio.wait_for(out.wait_for_playout(), 1)).interrupted


async def test_gated_segment_reported_interrupted_through_the_hook(gate: PlaybackGate) -> None:
    """The sink says "not interrupted"; only the override can report the cut segment as cut."""
    sink = QueueSink()
    out = GatedAudioOutput(gate, next_in_chain=sink)
    await out.capture_frame(frame("resp_a"))
    gate.flag("resp_b", DropReason.TIMED_OUT)
    await out.capture_frame(frame("resp_b"))  # dropped: the segment is gated
    out.flush()
    sink.play_next()
    ev = await asyncio.wait_for(out.wait_for_playout(), 1)
    assert ev.interrupted and ev.playback_position == pytest.approx(0.01)


class CancellingSink(QueueSink):
    """Like LiveKit's DataStreamAudioOutput: a capture cancelled before the sink took any
    audio is finished with a ``_CaptureCancelledEvent`` through the private dispatcher."""

    def __init__(self) -> None:
        super().__init__()
        self.block: asyncio.Future[None] | None = None

    async def capture_frame(self, frame: rtc.AudioFrame) -> None:
        if self.block is not None:
            await self.block  # cancelled here, before super().capture_frame
        await super().capture_frame(frame)

    def cancel_event(self) -> None:
        ev = io._CaptureCancelledEvent(playback_position=0, interrupted=True)
        self._dispatch_playback_finished(ev)


async def test_capture_cancelled_keeps_segments_in_step(
    gate: PlaybackGate, caplog: pytest.LogCaptureFixture
) -> None:
    sink = CancellingSink()
    out = GatedAudioOutput(gate, next_in_chain=sink)
    sink.block = asyncio.get_running_loop().create_future()
    task = asyncio.create_task(out.capture_frame(frame("resp_a")))
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    sink.block = None
    with caplog.at_level(logging.WARNING):
        out.flush()  # the agent's finally: flush, then clear_buffer
        out.clear_buffer()
        sink.cancel_event()
        ev = await asyncio.wait_for(out.wait_for_playout(), 1)
        assert ev.interrupted and ev.playback_position == 0
        assert out.playing_generations() == []  # not left waiting for the sink
        for _ in range(2):
            await out.capture_frame(frame("resp_b"))
        out.flush()
        sink.play_next()
        ev = await asyncio.wait_for(out.wait_for_playout(), 1)
    assert not ev.interrupted and ev.playback_position == pytest.approx(0.02)
    assert out._pending_playback_count == 0 and out.playing_generations() == []
    assert "more times" not in caplog.text


async def test_missing_private_api_is_reported(
    gate: PlaybackGate, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from integrations.livekit import _gated_output as gated_output

    monkeypatch.setattr(gated_output, "_CAPTURE_CANCELLED", None)
    assert missing_private_api() == ["io._CaptureCancelledEvent"]
    with caplog.at_level(logging.WARNING):
        assert not check_agents_version("1.8.9")
    assert "_CaptureCancelledEvent" in caplog.text
    monkeypatch.delattr(io.AudioOutput, "_dispatch_playback_finished")
    assert "io.AudioOutput._dispatch_playback_finished" in missing_private_api()
    with pytest.raises(RuntimeError, match="_dispatch_playback_finished"):
        GatedAudioOutput(gate, next_in_chain=QueueSink())
