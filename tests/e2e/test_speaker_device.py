"""The speaker sink on a real PortAudio device: what reached the device, sample by sample.

Uses the project's test device (``scripts/audio-device.sh start``): a paced PulseAudio
null sink behind an ALSA tee that records every sample the callback wrote. Skips with
the reason when there is no device, and fails instead when ``CI=true``.

Each generation has its own signature, so every captured sample tells which generation
it came from: A is a positive constant, B a negative ramp, X another positive constant.
Timings are recorded (``record_property``) and printed, never asserted.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable

import numpy as np
import pytest

import integrations.testing.audio_device as adev
from gate import DropReason, PcmFrame, PlaybackGate
from integrations.speakers import FormatConverter, SpeakerSink
from integrations.testing.audio_device import AudioTestDevice

SR = 48_000
BLOCK = 480
A_LEVEL = 3000
X_LEVEL = 12_345


def b_signal(n: int) -> np.ndarray:
    """Generation B: a negative sawtooth, never zero."""
    return (-(1000 + (np.arange(n) * 7) % 29_000)).astype(np.int16)


def chunks(signal: np.ndarray, size: int = BLOCK) -> list[PcmFrame]:
    return [PcmFrame(signal[i : i + size], SR) for i in range(0, len(signal), size)]


def open_sink(device: AudioTestDevice, gate: PlaybackGate, fade_ms: float) -> SpeakerSink:
    return SpeakerSink(
        gate,
        device=device.device,
        samplerate=SR,
        channels=1,
        blocksize=BLOCK,
        latency="low",
        fade_ms=fade_ms,
    )


def wait_until(predicate, timeout: float = 10.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "playback did not progress"
        time.sleep(0.001)


def played_from_marker(device: AudioTestDevice) -> np.ndarray:
    tee = device.read()
    idx = adev.find_marker(tee)
    assert idx >= 0, f"marker not in the tee ({len(tee)} samples)"
    return tee[idx:]  # index k is output frame k: the marker was the first audio queued


@pytest.mark.parametrize("fade_ms", [5.0, 0.0])
def test_flagged_generation_stops_within_a_block_plus_the_fade(
    audio_device: AudioTestDevice, fade_ms: float, record_property: Callable[[str, object], None]
) -> None:
    gate = PlaybackGate()
    sink = open_sink(audio_device, gate, fade_ms)
    fade = sink.fade.frames
    b = b_signal(SR // 4)
    try:
        sink.write("marker", PcmFrame(adev.MARKER, SR))
        sink.end("marker")
        for frame in chunks(np.full(2 * SR, A_LEVEL, np.int16)):  # 2 s, flagged after 0.3 s
            assert sink.write("A", frame)
        for frame in chunks(np.full(SR // 2, X_LEVEL, np.int16)):  # queued, never sounds
            assert sink.write("X", frame)
        for frame in chunks(b):
            assert sink.write("B", frame)
        sink.end("B")
        sink.start()
        wait_until(lambda: sink.buffer.played("A") >= int(0.3 * SR))
        before = sink.buffer.frames_out
        gate.flag("A", DropReason.INTERRUPTED)
        after = sink.buffer.frames_out
        gate.flag("X", DropReason.CANCELLED)
        assert not sink.write("A", PcmFrame(np.full(BLOCK, A_LEVEL, np.int16), SR))  # straggler
        asyncio.run(sink.drain(timeout=10))
        cut_a, cut_x = sink.cuts()
        stats = sink.stats()
    finally:
        sink.close()
    body = played_from_marker(audio_device)

    # The sink's own account of the cut.
    assert cut_a.generation_id == "A" and before <= cut_a.flagged_frame <= after
    assert cut_a.faded_frames == fade and cut_a.silent_frame == cut_a.flagged_frame + fade
    silent = cut_a.silent_frame
    # What the device got: A bit-exact up to the flag, its fade, then B bit-exact, then silence.
    np.testing.assert_array_equal(body[:64], adev.MARKER)
    np.testing.assert_array_equal(body[64 : cut_a.flagged_frame], A_LEVEL)
    np.testing.assert_array_equal(body[silent : silent + len(b)], b)
    assert not np.any(body[silent + len(b) :])
    # A stops within one device block (the one in flight at the flag) plus the fade ...
    last_a = int(np.flatnonzero(body > 0)[-1])
    assert silent - fade <= last_a + 1 <= silent <= after + fade  # the fade's tail rounds to 0
    assert silent - before <= (after - before) + fade
    # ... and not one sample of A (positive) or of the queued, flagged X appears after it.
    assert not np.any(body[silent:] > 0)
    assert not np.any(body == X_LEVEL)
    assert cut_x.silent_frame == cut_x.flagged_frame  # X never sounded
    assert cut_x.dropped_frames == SR // 2

    # The fade: monotone and continuous (no step larger than the curve allows).
    edge = body[cut_a.flagged_frame - 1 : silent].astype(np.int64)
    steps = np.diff(edge)
    if fade:
        assert np.all(steps <= 0), "the fade must be monotone"
        assert np.abs(steps).max() <= A_LEVEL * math.pi / (2 * (fade + 1)) + 1
        assert 0 <= body[silent - 1] <= A_LEVEL * 0.001
    else:
        assert len(steps) == 0 and body[silent - 1] == A_LEVEL  # a hard cut

    assert stats.buffer.played["A"] == cut_a.flagged_frame - 64
    assert stats.buffer.played["B"] == len(b) and stats.callback_errors == 0
    assert gate.generation("A").dropped.frames == 1  # type: ignore[union-attr]
    # Measured on the stream's clock (outputBufferDacTime); recorded, not asserted.
    c2s = cut_a.cancel_to_silence
    assert c2s is not None
    figures = {
        "cancel_to_silence_ms": round(c2s * 1000, 2),
        "block_ms": BLOCK / SR * 1000,
        "fade_ms": fade / SR * 1000,
        "stream_latency_ms": round(sink.latency * 1000, 2),
        "frames_in_flight_at_flag": after - before,
    }
    for name, value in figures.items():
        record_property(name, value)
    print(f"fade_ms={fade_ms}: {figures}")


def test_live_generations_are_bit_exact_and_resampled_ones_match_the_resampler(
    audio_device: AudioTestDevice,
) -> None:
    gate = PlaybackGate()
    sink = open_sink(audio_device, gate, 5.0)
    rng = np.random.default_rng(7)
    a = rng.integers(-32768, 32767, SR // 5, dtype=np.int16)
    t = np.arange(24_000 // 4) / 24_000
    c24 = (np.sin(2 * np.pi * 330 * t) * 9000).astype(np.int16)  # 24 kHz: resampled
    b = b_signal(SR // 5)
    try:
        sink.write("marker", PcmFrame(adev.MARKER, SR))
        for frame in chunks(a, 960):
            sink.write("A", frame)
        for i in range(0, len(c24), 240):
            sink.write("C", PcmFrame(c24[i : i + 240], 24_000))
        sink.end("C")
        for frame in chunks(b, 333):
            sink.write("B", frame)
        sink.start()
        asyncio.run(sink.drain(timeout=10))
        stats = sink.stats()
    finally:
        sink.close()
    body = played_from_marker(audio_device)
    offline = FormatConverter(24_000, SR, 1, "int16")
    c48 = np.concatenate(
        [offline.convert(c24[i : i + 240, None]) for i in range(0, len(c24), 240)]
        + [offline.flush()]
    )[:, 0]
    assert len(c48) == 2 * len(c24)
    expected = np.concatenate([adev.MARKER, a, c48, b])
    i, j = 64 + len(a), 64 + len(a) + len(c48)
    np.testing.assert_array_equal(body[:i], expected[:i])  # no resampling: bit-exact
    np.testing.assert_array_equal(body[j : len(expected)], expected[j:])
    # Resampled: libsoxr dithers its int16 output, so equal to the offline run within 2 LSB.
    assert np.abs(body[i:j].astype(int) - c48.astype(int)).max() <= 2
    assert not np.any(body[len(expected) :])
    assert stats.buffer.underruns == 0 and stats.buffer.frames_purged == 0
    assert stats.buffer.played == {"marker": 64, "A": len(a), "C": len(c48), "B": len(b)}


def test_awrite_keeps_a_small_buffer_fed_from_the_callback_with_interleaved_generations(
    audio_device: AudioTestDevice,
) -> None:
    # 0.1 s of buffer and 4 chunk slots for 1 s of two interleaved generations: every awrite
    # past the first few waits, and only the PortAudio callback's wake-ups let it go on.
    gate = PlaybackGate()
    sink = SpeakerSink(
        gate,
        device=audio_device.device,
        samplerate=SR,
        blocksize=BLOCK,
        buffer_seconds=0.1,
        max_segments=4,
    )
    a = np.full(SR // 2, A_LEVEL, np.int16)
    b = b_signal(SR // 2)

    async def feed() -> None:
        sink.write("marker", PcmFrame(adev.MARKER, SR))
        sink.start()
        for fa, fb in zip(chunks(a), chunks(b), strict=True):
            assert await sink.awrite("A", fa)
            assert await sink.awrite("B", fb)
        await sink.drain(timeout=10)

    try:
        asyncio.run(feed())
        stats = sink.stats()
    finally:
        sink.close()
    body = played_from_marker(audio_device)[len(adev.MARKER) :]
    expected = np.stack([a.reshape(-1, BLOCK), b.reshape(-1, BLOCK)], axis=1).reshape(-1)
    # Neither signal has a zero sample, so zeros are underrun silence (counted, not asserted).
    np.testing.assert_array_equal(body[body != 0], expected)
    assert stats.buffer.played == {"marker": len(adev.MARKER), "A": len(a), "B": len(b)}
    assert stats.buffer.frames_purged == 0
    print(f"underruns while awrite kept 0.1 s fed: {stats.buffer.underruns}")


def test_low_latency_mode_opens_with_its_documented_settings_and_cuts_within_a_block(
    audio_device: AudioTestDevice, record_property: Callable[[str, object], None]
) -> None:
    from integrations.speakers import (
        LOW_LATENCY_BLOCK_MS,
        LOW_LATENCY_BUFFER_BLOCKS,
        LOW_LATENCY_FADE_MS,
    )

    gate = PlaybackGate()
    sink = SpeakerSink.low_latency(gate, device=audio_device.device, samplerate=SR)
    block = round(SR * LOW_LATENCY_BLOCK_MS / 1000)
    try:
        assert sink.blocksize == block == 120
        assert sink.latency == pytest.approx(LOW_LATENCY_BUFFER_BLOCKS * block / SR, rel=0.05)
        assert sink.fade.frames == round(SR * LOW_LATENCY_FADE_MS / 1000)
        sink.write("marker", PcmFrame(adev.MARKER, SR))
        sink.end("marker")
        for frame in chunks(np.full(SR // 2, A_LEVEL, np.int16)):
            assert sink.write("A", frame)
        sink.start()
        wait_until(lambda: sink.buffer.played("A") >= int(0.1 * SR))
        gate.flag("A", DropReason.INTERRUPTED)
        asyncio.run(sink.drain(timeout=10))
        (cut,) = sink.cuts()
    finally:
        sink.close()
    body = played_from_marker(audio_device)
    last_a = int(np.flatnonzero(body > 0)[-1])
    # A stops within the block in flight at the flag plus the fade (both 2.5 ms here)
    assert last_a < cut.flagged_frame + block + sink.fade.frames
    record_property("low_latency_cut_frames_after_flag", last_a + 1 - cut.flagged_frame)


def test_low_latency_mode_lets_given_settings_win(audio_device: AudioTestDevice) -> None:
    sink = SpeakerSink.low_latency(
        None, device=audio_device.device, samplerate=SR, blocksize=240, latency=0.02, fade_ms=0.0
    )
    try:
        assert sink.blocksize == 240 and sink.fade.frames == 0
        assert sink.latency >= 0.015
    finally:
        sink.close()
