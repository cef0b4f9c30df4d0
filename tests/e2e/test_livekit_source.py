"""GatedAudioSource against the real LiveKit FFI, no server.

Every assertion is on the samples that actually left the track, read back with
``rtc.AudioStream.from_track``. Each generation's audio is a constant marker
value, so a read-back sample names its generation; silence (0) is what an idle
source emits.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import numpy as np
import pytest
from livekit import rtc

from gate import AudioFormat, DropReason, PlaybackGate
from integrations.livekit import GatedAudioSource, tag_frame

SR = 48_000
FRAME = 480  # 10 ms
A, B, C = 1000, 2000, 3000


def frame(value: int, n: int = FRAME) -> rtc.AudioFrame:
    return rtc.AudioFrame(np.full(n, value, np.int16).tobytes(), SR, 1, n)


class ReadBack:
    """A source, its track, and what left the track, with arrival times."""

    def __init__(self, queue_size_ms: int) -> None:
        self.queue_size_ms = queue_size_ms
        self.source = rtc.AudioSource(SR, 1, queue_size_ms=queue_size_ms)
        self.track = rtc.LocalAudioTrack.create_audio_track("gated", self.source)
        self.stream = rtc.AudioStream.from_track(track=self.track, sample_rate=SR, num_channels=1)
        self.chunks: list[tuple[float, np.ndarray]] = []
        self._task = asyncio.create_task(self._read())

    async def _read(self) -> None:
        async for ev in self.stream:
            data = np.frombuffer(ev.frame.data, np.int16).copy()
            self.chunks.append((time.monotonic(), data))

    def count(self, value: int, after: float = 0.0) -> int:
        return int(sum((d == value).sum() for t, d in self.chunks if t >= after))

    def first_at(self, value: int) -> float | None:
        return next((t for t, d in self.chunks if (d == value).any()), None)

    async def until(self, value: int, samples: int, timeout: float = 5.0) -> int:
        end = time.monotonic() + timeout
        while self.count(value) < samples and time.monotonic() < end:
            await asyncio.sleep(0.01)
        return self.count(value)

    async def settle(self, seconds: float = 0.15) -> None:
        await asyncio.sleep(seconds)

    async def close(self) -> None:
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)
        await self.stream.aclose()
        await self.source.aclose()


@pytest.fixture
async def readback(request: pytest.FixtureRequest) -> AsyncIterator[ReadBack]:
    rb = ReadBack(getattr(request, "param", 1000))
    try:
        yield rb
    finally:
        await rb.close()


def make_gate() -> PlaybackGate:
    return PlaybackGate(audio_format=AudioFormat(SR))


@pytest.mark.parametrize("readback", [1000, 200, 0], indirect=True)
async def test_healthy_generation_plays_sample_exact(readback: ReadBack) -> None:
    gate = make_gate()
    gated = GatedAudioSource(readback.source, gate, queue_size_ms=readback.queue_size_ms)
    for _ in range(20):
        assert await gated.capture_frame(frame(A), "resp_a")
    assert await readback.until(A, 20 * FRAME) == 20 * FRAME
    await readback.settle(0.05)
    assert readback.count(A) == 20 * FRAME
    assert gate.stats().passed.samples == 20 * FRAME
    assert gated.purges == 0


async def test_flagged_generation_never_reaches_the_track(readback: ReadBack) -> None:
    gate = make_gate()
    gated = GatedAudioSource(readback.source, gate)
    gate.flag("resp_b", DropReason.TIMED_OUT)
    results = [await gated.capture_frame(frame(B), "resp_b") for _ in range(10)]
    assert results == [False] * 10
    for _ in range(5):
        await gated.capture_frame(frame(A), "resp_a")
    await readback.until(A, 5 * FRAME)
    await readback.settle()
    assert readback.count(B) == 0
    assert readback.count(A) == 5 * FRAME
    info = gate.generation("resp_b")
    assert info is not None and info.dropped.samples == 10 * FRAME


async def test_purge_clears_queued_audio_of_the_flagged_generation(readback: ReadBack) -> None:
    gate = make_gate()
    gated = GatedAudioSource(readback.source, gate)
    started = time.monotonic()
    for _ in range(50):  # 500 ms, queued at once (1 s queue)
        await gated.capture_frame(frame(A), "resp_a")
    queued = gated.queued_duration
    await asyncio.sleep(0.05)
    flagged_at = time.monotonic()
    gate.flag("resp_a", DropReason.INTERRUPTED)
    await readback.settle(0.3)
    played = readback.count(A)
    # playback cannot outrun real time: what left the track is bounded by the time
    # between the first capture and the flag, plus the one 10 ms frame in flight
    assert played <= (flagged_at - started) * SR + FRAME
    assert played < 50 * FRAME
    assert gated.purges == 1
    assert gated.purged_seconds == pytest.approx(queued - (flagged_at - started), abs=0.05)
    assert gate.stats().passed.samples == 50 * FRAME  # the gate admitted them; the purge cut them


async def test_live_generation_waiting_behind_a_purged_one_plays_in_full(
    readback: ReadBack,
) -> None:
    gate = make_gate()
    gated = GatedAudioSource(readback.source, gate)
    for _ in range(40):
        await gated.capture_frame(frame(A), "resp_a")

    async def produce_b() -> list[bool]:
        return [await gated.capture_frame(frame(B), "resp_b") for _ in range(15)]

    producer = asyncio.create_task(produce_b())
    await asyncio.sleep(0.05)
    assert not producer.done()  # refuses to mix: B waits for A's queued audio
    assert gated.queued_generation == "resp_a"
    gate.flag("resp_a", DropReason.CANCELLED)
    assert await producer == [True] * 15
    assert await readback.until(B, 15 * FRAME) == 15 * FRAME
    await readback.settle()
    assert readback.count(B) == 15 * FRAME
    assert readback.count(A) < 40 * FRAME
    assert gated.switch_waits == 1


async def test_switch_keeps_both_generations_whole(readback: ReadBack) -> None:
    gate = make_gate()
    gated = GatedAudioSource(readback.source, gate)
    for value, gen in ((A, "resp_a"), (B, "resp_b"), (C, "resp_c")):
        for _ in range(8):
            assert await gated.capture_frame(frame(value), gen)
    assert await readback.until(C, 8 * FRAME) == 8 * FRAME
    await readback.settle(0.05)
    assert [readback.count(v) for v in (A, B, C)] == [8 * FRAME] * 3
    order = [readback.first_at(v) for v in (A, B, C)]
    assert order == sorted(order)  # type: ignore[type-var]


async def test_purge_of_a_generation_not_in_the_queue_leaves_the_queue_alone(
    readback: ReadBack,
) -> None:
    gate = make_gate()
    gated = GatedAudioSource(readback.source, gate)
    for _ in range(20):
        await gated.capture_frame(frame(A), "resp_a")
    gate.flag("resp_z", DropReason.CANCELLED)
    assert await readback.until(A, 20 * FRAME) == 20 * FRAME
    assert gated.purges == 0


@pytest.mark.parametrize("readback", [200], indirect=True)
async def test_flag_during_backpressure_drops_the_rest_and_clears_the_queue(
    readback: ReadBack,
) -> None:
    gate = make_gate()
    gated = GatedAudioSource(readback.source, gate, queue_size_ms=200)
    results: list[bool] = []
    started = time.monotonic()

    async def produce() -> None:
        for _ in range(100):  # 1 s into a 200 ms queue: the source paces the producer
            results.append(await gated.capture_frame(frame(A), "resp_a"))

    producer = asyncio.create_task(produce())
    await asyncio.sleep(0.3)
    flagged_at = time.monotonic()
    gate.flag("resp_a", DropReason.INTERRUPTED)
    await producer
    for _ in range(10):
        await gated.capture_frame(frame(B), "resp_b")
    assert await readback.until(B, 10 * FRAME) == 10 * FRAME
    await readback.settle()
    assert readback.count(A) <= (flagged_at - started) * SR + FRAME
    assert False in results and results[: results.index(False)] == [True] * results.index(False)
    assert results.count(True) < 100
    assert readback.count(B) == 10 * FRAME


@pytest.mark.parametrize("readback", [0], indirect=True)
async def test_without_a_native_queue_nothing_waits_and_nothing_is_cleared(
    readback: ReadBack,
) -> None:
    gate = make_gate()
    gated = GatedAudioSource(readback.source, gate, queue_size_ms=0)
    for i in range(30):
        await gated.capture_frame(frame(A if i % 2 else B), "resp_a" if i % 2 else "resp_b")
    gate.flag("resp_a", DropReason.INTERRUPTED)
    assert await gated.capture_frame(frame(A), "resp_a") is False
    assert await readback.until(B, 15 * FRAME) == 15 * FRAME
    await readback.until(A, 15 * FRAME)
    assert readback.count(A) == 15 * FRAME  # already left the track before the flag
    assert gated.switch_waits == 0 and gated.purges == 0


async def test_tagged_and_untagged_frames(readback: ReadBack) -> None:
    gate = make_gate()
    gated = GatedAudioSource(readback.source, gate)
    gate.flag("resp_b", DropReason.CANCELLED)
    assert await gated.capture_frame(tag_frame(frame(B), "resp_b")) is False
    assert await gated.capture_frame(tag_frame(frame(A), "resp_a")) is True
    assert await gated.capture_frame(frame(C)) is True  # untagged: not gated
    assert await readback.until(C, FRAME) == FRAME
    await readback.settle(0.05)
    assert (readback.count(A), readback.count(B)) == (FRAME, 0)


async def test_retired_generation_still_plays_what_it_buffered(readback: ReadBack) -> None:
    gate = make_gate()
    gated = GatedAudioSource(readback.source, gate)
    gate.announce("resp_a")
    gate.retire("resp_a")  # response.done arrived while these frames waited upstream
    for _ in range(5):
        assert await gated.capture_frame(frame(A), "resp_a")
    assert await readback.until(A, 5 * FRAME) == 5 * FRAME


async def test_bad_arguments_and_lifecycle(readback: ReadBack) -> None:
    gate = make_gate()
    with pytest.raises(TypeError, match=r"rtc\.AudioSource"):
        GatedAudioSource(object(), gate)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="queue_size_ms"):
        GatedAudioSource(readback.source, gate, queue_size_ms=-1)
    gated = GatedAudioSource(readback.source, gate)
    assert gated in gate.sinks
    await gated.aclose(close_source=False)
    assert gated not in gate.sinks
    with pytest.raises(RuntimeError, match="closed"):
        await gated.capture_frame(frame(A), "resp_a")
