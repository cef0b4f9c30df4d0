"""The speaker sink's pure logic, no device: chunk buffer, purge, fade, underruns, formats."""

from __future__ import annotations

import asyncio
import math
import threading
import tracemalloc
import wave
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gate import DropReason, FrameFormatError, PcmFrame, PlaybackGate
from integrations.speakers import (
    BaseSink,
    BufferFullError,
    ChunkBuffer,
    Fade,
    FormatConverter,
    SinkInactiveError,
    WavSink,
)
from integrations.speakers._convert import frame_samples, mix_channels, to_dtype
from integrations.speakers._fade import gains
from integrations.speakers._pull_signal import PullSignal

BLOCK = 480


def const(value: int, n: int, channels: int = 1) -> np.ndarray:
    return np.full((n, channels), value, np.int16)


def pull_all(buf: ChunkBuffer, blocks: int, drop=None) -> np.ndarray:  # type: ignore[no-untyped-def]
    out = np.zeros((BLOCK, buf.channels), buf.dtype)
    got = []
    for _ in range(blocks):
        buf.pull(out, drop)
        got.append(out.copy())
    return np.concatenate(got)


# ---- FIFO -------------------------------------------------------------------------------


def test_fifo_is_bit_exact_across_the_ring_wrap() -> None:
    buf = ChunkBuffer(1000, 2)
    rng = np.random.default_rng(1)
    sent = []
    out = np.zeros((BLOCK, 2), np.int16)
    got = []
    for i in range(20):  # 20 x 300 frames through a 1000-frame ring: wraps many times
        chunk = rng.integers(-32768, 32767, (300, 2), dtype=np.int16)
        buf.push(f"g{i % 3}", chunk)
        sent.append(chunk)
        while buf.frames_queued >= BLOCK:
            assert buf.pull(out) == BLOCK
            got.append(out.copy())
    got.append(pull_all(buf, 2)[: buf.frames_queued or 2 * BLOCK])
    played = np.concatenate(got)
    expected = np.concatenate(sent)
    np.testing.assert_array_equal(played[: len(expected)], expected)
    stats = buf.stats()
    assert stats.frames_played == len(expected)
    assert sum(stats.played.values()) == len(expected)
    assert stats.played["g0"] == 7 * 300


def test_push_rejects_wrong_shape_and_reports_full() -> None:
    buf = ChunkBuffer(1000, 1)
    with pytest.raises(ValueError, match=r"\(frames, 1\) int16"):
        buf.push("a", np.zeros((10, 2), np.int16))
    with pytest.raises(ValueError, match="float32"):
        buf.push("a", np.zeros((10, 1), np.float32))
    buf.push("a", const(1, 900))
    with pytest.raises(BufferFullError, match="900 of 1000 frames queued, cannot add 200"):
        buf.push("b", const(2, 200))
    assert buf.queued("a") == 900 and buf.queued("b") == 0


def test_segment_fifo_limit_is_reported_and_same_generation_chunks_merge() -> None:
    buf = ChunkBuffer(10_000, 1, max_segments=4)
    for _ in range(50):  # one generation, contiguous: one segment
        buf.push("a", const(1, 10))
    buf.push("b", const(2, 10))
    buf.push("a", const(1, 10))
    buf.push("b", const(2, 10))
    assert buf.free_segments == 0 and buf.free_frames > 10
    assert not buf.fits(10)  # frames are free, chunk slots are not
    with pytest.raises(BufferFullError, match="4 of 4 chunk slots used"):
        buf.push("a", const(1, 10))
    buf.pull(np.zeros((10, 1), np.int16))  # the first segment ("a" x 50) is still partly queued
    assert not buf.fits(10)
    buf.pull(np.zeros((490, 1), np.int16))  # the rest of it
    assert buf.free_segments == 1 and buf.fits(10)


def test_fits_counts_the_two_slots_of_a_chunk_that_wraps_the_ring() -> None:
    buf = ChunkBuffer(100, 1, max_segments=3)
    buf.push("a", const(1, 60))
    buf.push("b", const(2, 30))
    buf.pull(np.zeros((60, 1), np.int16))  # ring frames 0-59 free, write index at 90
    assert buf.free_frames == 70 and buf.free_segments == 2
    assert buf.fits(10)  # 90-99: one slot
    assert buf.fits(20)  # wraps: two slots, two free
    buf.push("c", const(3, 5))
    assert not buf.fits(20) and buf.fits(5)  # wrapping needs two slots, one is left
    with pytest.raises(BufferFullError, match="chunk slots"):
        buf.push("a", const(1, 20))


# ---- purge ------------------------------------------------------------------------------


def test_purging_a_queued_generation_removes_it_before_the_next_pull() -> None:
    buf = ChunkBuffer(48_000, 1, fade=Fade(240))
    buf.push("a", const(100, 1000))
    buf.push("b", const(200, 1000))
    buf.push("c", const(300, 1000))
    cut = buf.purge("b")
    assert cut.dropped_frames == 1000 and cut.silent_frame == 0  # never sounded
    played = pull_all(buf, 5)[:, 0]
    assert not np.any(played == 200)
    np.testing.assert_array_equal(played[:2000], np.r_[np.full(1000, 100), np.full(1000, 300)])
    assert not np.any(played[2000:])
    assert buf.stats().frames_purged == 1000 and buf.played("b") == 0


def test_purging_the_sounding_generation_fades_it_out_then_plays_the_next() -> None:
    fade = Fade(240)
    buf = ChunkBuffer(48_000, 1, fade=fade)
    buf.push("a", const(10_000, 4000))
    buf.push("b", const(-3000, 1000))
    first = pull_all(buf, 2)[:, 0]  # 960 frames of a, sounding at the block edge
    cut = buf.purge("a")
    assert cut.silent_frame is None  # pending: the fade plays at the next pull
    after = pull_all(buf, 4)[:, 0]
    assert cut.flagged_frame == 960 and cut.faded_frames == 240
    assert cut.silent_frame == 960 + 240 and cut.dropped_frames == 4000 - 960
    assert [c.generation_id for c in buf.resolved] == []  # resolved by the earlier pull
    faded = after[:240]
    assert np.all(first == 10_000)
    assert np.all(np.diff(faded.astype(int)) <= 0), "the fade must be monotone"
    assert 0 <= faded[-1] < 50 and faded[0] > 9_900
    # Continuity: no step larger than the fade curve's own slope allows.
    steps = np.abs(np.diff(np.r_[first[-1:], faded].astype(int)))
    assert steps.max() <= 10_000 * math.pi / (2 * (240 + 1)) + 1
    np.testing.assert_array_equal(after[240:1240], np.full(1000, -3000))  # b, bit-exact
    assert not np.any(after[1240:])
    stats = buf.stats()
    assert stats.frames_faded == 240 and stats.frames_purged == 4000 - 960 - 240
    assert buf.played("a") == 960 and buf.played("b") == 1000


def test_hard_cut_with_no_fade() -> None:
    buf = ChunkBuffer(48_000, 1, fade=Fade(0))
    buf.push("a", const(10_000, 4000))
    buf.push("b", const(-3000, 100))
    pull_all(buf, 1)
    cut = buf.purge("a")
    assert cut.silent_frame == BLOCK and cut.faded_frames == 0
    after = pull_all(buf, 1)[:, 0]
    np.testing.assert_array_equal(after[:100], np.full(100, -3000))
    assert not np.any(after[100:])


def test_fade_is_squeezed_when_less_audio_is_queued_than_the_fade() -> None:
    buf = ChunkBuffer(48_000, 1, fade=Fade(240))
    buf.push("a", const(8000, BLOCK + 60))
    pull_all(buf, 1)
    cut = buf.purge("a")
    after = pull_all(buf, 1)[:, 0]
    assert cut.faded_frames == 60
    faded = after[:60]
    assert np.all(np.diff(faded.astype(int)) < 0) and faded[0] > 7800 and faded[-1] < 20
    assert not np.any(after[60:])


def test_drop_callback_purges_a_flagged_generation_at_the_pull() -> None:
    gate = PlaybackGate()
    buf = ChunkBuffer(48_000, 1, fade=Fade(48))
    buf.push("a", const(5000, 2000))
    buf.push("b", const(-5000, 200))
    pull_all(buf, 1, gate.is_flagged)
    gate.flag("a", DropReason.INTERRUPTED)  # the buffer is not registered: only the re-check
    after = pull_all(buf, 1, gate.is_flagged)[:, 0]
    assert np.all(np.diff(after[:48].astype(int)) <= 0) and after[0] > 4900
    np.testing.assert_array_equal(after[48:248], np.full(200, -5000))
    (cut,) = buf.cuts()
    assert cut.generation_id == "a" and cut.silent_frame == BLOCK + 48


def test_a_retired_generation_still_plays_out() -> None:
    """gate.should_drop is True for retired generations, whose tail is still queued."""
    gate = PlaybackGate()
    gate.announce("a")
    buf = ChunkBuffer(48_000, 1)
    buf.push("a", const(7, 1000))
    gate.retire("a")
    assert gate.should_drop("a") and not gate.is_flagged("a")
    played = pull_all(buf, 3, gate.is_flagged)[:, 0]
    assert np.count_nonzero(played == 7) == 1000


def test_audio_pushed_after_a_purge_plays_and_the_old_audio_does_not() -> None:
    buf = ChunkBuffer(48_000, 1)
    buf.push("a", const(1, 300))
    buf.purge("a")
    buf.push("a", const(2, 300))
    played = pull_all(buf, 1)[:, 0]
    np.testing.assert_array_equal(played[:300], np.full(300, 2))
    assert not np.any(played == 1)


def test_clear_purges_everything_and_reset_empties_at_once() -> None:
    buf = ChunkBuffer(48_000, 1, fade=Fade(10))
    buf.push("a", const(1000, 1000))
    buf.push("b", const(2000, 1000))
    pull_all(buf, 1)
    cuts = buf.clear()
    assert {c.generation_id for c in cuts} == {"a", "b"}
    after = pull_all(buf, 2)[:, 0]
    assert np.count_nonzero(after) == 10 and not np.any(after == 2000)
    assert buf.empty and buf.frames_queued == 0
    buf.push("c", const(3, 100))
    buf.reset()
    assert buf.empty and buf.free_frames == buf.capacity
    assert not np.any(pull_all(buf, 1))


# ---- underruns --------------------------------------------------------------------------


def test_underrun_plays_silence_is_counted_and_never_replays_stale_audio() -> None:
    buf = ChunkBuffer(2000, 1)
    buf.push("a", const(11, 700))
    played = pull_all(buf, 3)[:, 0]  # 700 of audio, then dry while "a" is still open
    np.testing.assert_array_equal(played[:700], np.full(700, 11))
    assert not np.any(played[700:])
    stats = buf.stats()
    assert stats.underruns == 2 and stats.underrun_frames == 3 * BLOCK - 700
    buf.push("a", const(12, 100))  # late audio plays once, right away
    again = pull_all(buf, 3)[:, 0]
    np.testing.assert_array_equal(again[:100], np.full(100, 12))
    assert not np.any(again[100:]), "stale audio must never be replayed"
    buf.end("a")
    pull_all(buf, 2)
    assert buf.stats().underruns == 5  # 2 + 3; after end() silence is idle time


def test_idle_silence_is_not_an_underrun() -> None:
    buf = ChunkBuffer(2000, 1)
    pull_all(buf, 3)
    buf.push("a", const(1, 10))
    buf.end("a")
    pull_all(buf, 3)
    assert buf.stats().underruns == 0


def test_pull_allocates_no_array_data_in_steady_state() -> None:
    """A temporary the size of a block (9.6 kB here) would show; view objects are ~100 B."""
    block = 4800
    buf = ChunkBuffer(10 * block, 1, fade=Fade(2400))
    out = np.zeros((block, 1), np.int16)
    for _ in range(8):
        buf.push("a", const(5, block))
    buf.pull(out)
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        for _ in range(5):
            buf.pull(out)
        buf.purge("a")
        buf.pull(out)  # the fade
        buf.pull(out)  # an underrun
        peak = tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()
    assert peak < block, f"pull allocated {peak} bytes at once (a block is {block * 2})"


# ---- a model-based check ----------------------------------------------------------------

OPS = st.lists(
    st.one_of(
        st.tuples(st.just("push"), st.integers(0, 3), st.integers(1, 700)),
        st.tuples(st.just("purge"), st.integers(0, 3), st.just(0)),
        st.tuples(st.just("pull"), st.just(0), st.just(0)),
    ),
    max_size=60,
)


@settings(max_examples=150, deadline=None)
@given(OPS)
def test_output_is_the_fifo_minus_purged_audio(ops: list[tuple[str, int, int]]) -> None:
    """With a hard cut, the device gets exactly the queued audio not purged, in order."""
    buf = ChunkBuffer(3000, 1, max_segments=64)
    queue: list[tuple[int, int]] = []  # (generation, sample value) per frame, the model
    counter = 0
    out = np.zeros((BLOCK, 1), np.int16)
    for op, g, n in ops:
        if op == "push":
            if n > buf.free_frames:
                continue
            values = (np.arange(counter, counter + n) % 8000 + 1 + 8000 * g).astype(np.int16)
            counter += n
            buf.push(f"g{g}", values[:, None])
            queue.extend((g, int(v)) for v in values)
        elif op == "purge":
            buf.purge(f"g{g}")
            queue = [(gg, v) for gg, v in queue if gg != g]
        else:
            got = buf.pull(out)
            expected = [v for _, v in queue[:BLOCK]]
            queue = queue[BLOCK:]
            assert got == len(expected)
            assert out[:got, 0].tolist() == expected
            assert not np.any(out[got:])
        assert buf.frames_queued == len(queue)


# ---- fade -------------------------------------------------------------------------------


@pytest.mark.parametrize("frames", [1, 2, 48, 240, 2400])
def test_fade_gains_fall_strictly_within_zero_and_one(frames: int) -> None:
    g = gains(frames).astype(np.float64)
    assert len(g) == frames and np.all(g > 0) and np.all(g < 1)
    assert np.all(np.diff(g) < 0)
    assert np.abs(np.diff(np.r_[1.0, g, 0.0])).max() <= math.pi / (2 * (frames + 1)) + 1e-6


def test_fade_from_ms_and_errors() -> None:
    assert Fade.from_ms(5, 48_000).frames == 240
    assert Fade.from_ms(0, 48_000).frames == 0
    with pytest.raises(ValueError, match="finite number of ms"):
        Fade.from_ms(-1, 48_000)
    with pytest.raises(ValueError, match=r"fade has 1 channel\(s\), buffer has 2"):
        ChunkBuffer(10, 2, fade=Fade(4, 1))


def test_fade_applies_to_every_channel_and_float_output() -> None:
    fade = Fade(100, 2)
    src = np.full((100, 2), 0.5, np.float32)
    dst = np.zeros((100, 2), np.float32)
    fade.apply(src, dst)
    np.testing.assert_allclose(dst[:, 0], 0.5 * gains(100))
    np.testing.assert_array_equal(dst[:, 0], dst[:, 1])


# ---- formats ----------------------------------------------------------------------------


def test_mixing_up_and_down() -> None:
    mono = np.array([[1], [2]], np.int16)
    np.testing.assert_array_equal(mix_channels(mono, 2), [[1, 1], [2, 2]])
    stereo = np.array([[100, 201], [-4, -6]], np.int16)
    np.testing.assert_array_equal(mix_channels(stereo, 1), [[150], [-5]])
    np.testing.assert_array_equal(mix_channels(stereo, 3), [[100, 201, 0], [-4, -6, 0]])
    assert mix_channels(stereo, 2) is stereo


def test_dtype_conversion_round_trips_full_scale() -> None:
    x = np.array([[-32768], [0], [16384], [32767]], np.int16)
    f = to_dtype(x, np.dtype(np.float32))
    np.testing.assert_allclose(f[:, 0], [-1.0, 0.0, 0.5, 32767 / 32768])
    back = to_dtype(np.array([[-2.0], [0.5], [2.0]], np.float32), np.dtype(np.int16))
    np.testing.assert_array_equal(back[:, 0], [-32767, 16384, 32767])


def test_same_rate_conversion_is_bit_exact_and_copy_free() -> None:
    conv = FormatConverter(48_000, 48_000, 1, "int16")
    x = np.arange(-500, 500, dtype=np.int16)[:, None]
    assert not conv.resampling and conv.convert(x) is x


def test_resampling_24k_to_48k_keeps_length_and_pitch() -> None:
    conv = FormatConverter(24_000, 48_000, 2, "int16", src_channels=1)
    assert conv.resampling
    t = np.arange(24_000) / 24_000
    tone = (np.sin(2 * np.pi * 440 * t) * 12_000).astype(np.int16)[:, None]
    parts = [conv.convert(tone[i : i + 240]) for i in range(0, 24_000, 240)]
    out = np.concatenate([*parts, conv.flush()])
    assert out.shape == (48_000, 2)  # every input frame accounted for, up-mixed to stereo
    spectrum = np.abs(np.fft.rfft(out[:, 0].astype(np.float64)))
    assert abs(int(np.argmax(spectrum)) - 440) <= 1  # 1 Hz bins over one second
    np.testing.assert_array_equal(out[:, 0], out[:, 1])
    rms = np.sqrt(np.mean(out[4800:-4800, 0].astype(np.float64) ** 2))
    assert abs(rms - 12_000 / math.sqrt(2)) < 200


def test_frame_samples_reads_pcm_and_livekit_frames() -> None:
    from livekit import rtc

    data = np.arange(20, dtype=np.int16)
    lk = rtc.AudioFrame(data.tobytes(), 24_000, 2, 10)
    np.testing.assert_array_equal(frame_samples(lk), data.reshape(10, 2))
    pcm = PcmFrame(np.zeros((5, 2), np.float32), 16_000)
    assert frame_samples(pcm).shape == (5, 2)
    with pytest.raises(FrameFormatError, match="no samples"):
        frame_samples(object())  # type: ignore[arg-type]


# ---- the WAV fallback, unpaced ----------------------------------------------------------


def test_wav_sink_plays_the_gated_scene_into_a_file(tmp_path: Path) -> None:
    gate = PlaybackGate()
    path = tmp_path / "out.wav"
    sink = WavSink(gate, path=path, samplerate=16_000, paced=False, fade_ms=2)
    sink.start()
    assert sink.write("a", PcmFrame(np.full(1600, 1000, np.int16), 16_000))
    assert sink.write("b", PcmFrame(np.full(800, -2000, np.int16), 16_000))
    sink.advance(800)  # half of "a" plays
    gate.flag("a", DropReason.INTERRUPTED)
    assert not sink.write("a", PcmFrame(np.full(160, 1000, np.int16), 16_000))  # gated
    import asyncio

    asyncio.run(sink.drain())
    sink.close()
    with wave.open(str(path)) as w:
        assert (w.getframerate(), w.getnchannels(), w.getsampwidth()) == (16_000, 1, 2)
        x = np.frombuffer(w.readframes(w.getnframes()), np.int16)
    fade = 32  # 2 ms at 16 kHz
    np.testing.assert_array_equal(x[:800], np.full(800, 1000))
    assert np.all(np.diff(x[800 : 800 + fade].astype(int)) <= 0)
    np.testing.assert_array_equal(x[800 + fade : 1600 + fade], np.full(800, -2000))
    assert not np.any(x[1600 + fade :])
    (cut,) = sink.cuts()
    assert cut.faded_frames == fade and cut.cancel_to_silence == pytest.approx(fade / 16_000)
    assert gate.generation("a").dropped.frames == 1  # type: ignore[union-attr]


# ---- awrite: waiting for room -----------------------------------------------------------

TEN_MS = PcmFrame(np.full(240, 1000, np.int16), 24_000)


async def test_awrite_waits_for_chunk_slots_when_generations_interleave(tmp_path: Path) -> None:
    # Alternating 10 ms frames of two generations take a chunk slot each; awrite must wait for
    # slots, not only frames (it used to raise BufferFullError with most frames free).
    # (The default sizes slots at one per 10 ms of buffer; fewer show the wait quickly.)
    slots = 64
    sink = WavSink(
        PlaybackGate(), path=tmp_path / "x.wav", samplerate=24_000, paced=False, max_segments=slots
    )
    sink.start()
    for i in range(slots + 200):
        assert await sink.awrite("resp_oob" if i % 2 else "resp_default", TEN_MS)
    assert sink.buffer.free_frames > sink.buffer.capacity // 2  # slots, not frames, ran out
    assert sink.buffer.frames_out > 0  # waiting advanced the (virtual) device clock
    with pytest.raises(BufferFullError, match="chunk slots"):
        while True:  # write() does not wait: it says why
            sink.write("resp_oob", TEN_MS)
            sink.write("resp_default", TEN_MS)
    await sink.drain()
    played = sink.stats().buffer.played
    assert played["resp_default"] == played["resp_oob"] >= (slots + 200) // 2 * 240
    sink.close()


async def test_awrite_on_a_paced_sink_is_woken_by_the_pulling_thread(tmp_path: Path) -> None:
    sink = WavSink(
        PlaybackGate(), path=tmp_path / "x.wav", samplerate=24_000, buffer_seconds=0.2,
        max_segments=4,
    )  # fmt: skip
    n = 40  # 0.4 s of audio through 4 slots and 0.2 s of buffer
    with sink:
        for i in range(n):
            assert await sink.awrite("a" if i % 2 else "b", TEN_MS)
        await sink.drain(timeout=10)
        assert sink.stats().buffer.played == {"a": n // 2 * 240, "b": n // 2 * 240}
        assert sink.stats().buffer.frames_purged == 0


async def test_pull_signal_wakes_a_waiter_from_another_thread() -> None:
    signal = PullSignal(recheck=3600.0)  # only notify() can end the wait in time
    waiter = asyncio.ensure_future(signal.wait())
    await asyncio.sleep(0)
    assert signal.waiting
    thread = threading.Thread(target=signal.notify)
    thread.start()
    async with asyncio.timeout(10):
        await waiter
    thread.join()
    assert not signal.waiting
    signal.notify()  # nobody waits: a no-op


async def test_awrite_on_a_sink_that_is_not_playing_raises_instead_of_waiting(
    tmp_path: Path,
) -> None:
    # Unpaced, so start() + stop() pull nothing: the same path as a paced sink never started.
    sink = WavSink(
        PlaybackGate(), path=tmp_path / "y.wav", samplerate=24_000, buffer_seconds=1, paced=False
    )
    frame = PcmFrame(np.ones(2400, np.int16), 24_000)  # 100 ms
    for _ in range(10):  # what fits is queued before start(), to the last frame
        assert await sink.awrite("resp_1", frame)
    assert sink.buffer.free_frames == 0
    with pytest.raises(SinkInactiveError, match=r"not playing.*start"):
        await sink.awrite("resp_1", frame)
    sink.start()
    sink.stop()
    with pytest.raises(SinkInactiveError):
        await sink.awrite("resp_1", frame)
    assert sink.buffer.queued("resp_1") == 24_000
    sink.close()


class _StalledSink(BaseSink):
    """Plays (per ``active``) but never pulls: a hung device."""

    active = True

    def _now(self) -> float | None:
        return None


async def test_awrite_timeout_and_a_chunk_larger_than_the_buffer() -> None:
    sink = _StalledSink(None, samplerate=1000, buffer_seconds=0.1)
    full = PcmFrame(np.ones(100, np.int16), 1000)
    assert await sink.awrite("a", full)
    with pytest.raises(TimeoutError):
        await sink.awrite("a", PcmFrame(np.ones(1, np.int16), 1000), timeout=0.05)
    with pytest.raises(BufferFullError, match="cannot fit a speaker buffer of 100"):
        await sink.awrite("a", PcmFrame(np.ones(101, np.int16), 1000))


async def test_a_generation_flagged_while_awrite_waits_is_not_queued() -> None:
    gate = PlaybackGate()
    sink = _StalledSink(gate, samplerate=24_000, buffer_seconds=0.01)
    assert await sink.awrite("a", TEN_MS)  # fills the buffer; nothing ever pulls
    pending = asyncio.ensure_future(sink.awrite("b", TEN_MS))
    await asyncio.sleep(0)
    assert not pending.done()
    gate.flag("b", DropReason.CANCELLED)  # the purge wakes the writer
    async with asyncio.timeout(10):
        assert await pending is False
    assert sink.buffer.queued("b") == 0 and sink.buffer.queued("a") == 240
    sink.close()


# ---- the sink constructors --------------------------------------------------------------


def test_wav_sink_takes_the_gate_first_like_speaker_sink(tmp_path: Path) -> None:
    gate = PlaybackGate()
    sink = WavSink(gate, path=tmp_path / "a.wav", samplerate=8000, paced=False)
    assert sink.gate is gate and sink.path == tmp_path / "a.wav"
    sink.close()
    with pytest.raises(TypeError, match="positional argument"):  # the old order fails loudly
        WavSink(str(tmp_path / "b.wav"), gate)  # type: ignore[arg-type, call-arg]
    with pytest.raises(TypeError, match="gate must be a PlaybackGate or None"):
        WavSink(str(tmp_path / "b.wav"), path=tmp_path / "b.wav")  # type: ignore[arg-type]
    assert not (tmp_path / "b.wav").exists()


def test_chunk_slots_scale_with_the_buffer_or_are_given(tmp_path: Path) -> None:
    def slots(**kw: float) -> int:
        sink = WavSink(None, path=tmp_path / "s.wav", samplerate=8000, paced=False, **kw)  # type: ignore[arg-type]
        sink.close()
        return sink.buffer.max_segments

    assert slots(buffer_seconds=60) >= 6000  # one per 10 ms chunk
    assert slots(buffer_seconds=1) == 1024
    assert slots(max_segments=16) == 16
