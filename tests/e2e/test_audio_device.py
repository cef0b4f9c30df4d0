"""The test audio device is real, paced in real time, and records exactly what was played.

Needs ``eval "$(scripts/audio-device.sh start)"`` (or a running daemon from that script).
Without it these tests skip, except in CI (``CI=true``), where they fail.
"""

from __future__ import annotations

import shutil
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Literal

import numpy as np
import pytest

import integrations.testing.audio_device as adev
from integrations.testing.audio_device import AudioTestDevice
from integrations.testing.audio_device import audio_device as audio_device  # the fixture
from integrations.testing.device import SAMPLERATE

SR = SAMPLERATE


def ramp(n: int) -> adev.Int16Array:
    """A sawtooth covering the whole int16 range, so any byte slip or gain change shows.

    Args:
        n: Number of samples.

    Returns:
        ``n`` int16 samples.
    """
    return ((np.arange(n, dtype=np.int64) * 97) % 65536 - 32768).astype(np.int16)


def test_plays_bit_exact_and_paced(audio_device: AudioTestDevice) -> None:
    """0.5 s of ramp after a marker arrives bit-exactly, at a 10 ms callback cadence."""
    signal = ramp(SR // 2)  # 0.5 s
    stats = adev.play(audio_device, np.concatenate([adev.MARKER, signal]), latency="low")

    tee = audio_device.read()
    idx = adev.find_marker(tee)
    assert idx >= 0, f"marker not in tee ({len(tee)} samples)"
    assert not np.any(tee[:idx]), "only silence may precede the marker"
    body = tee[idx + len(adev.MARKER) :]
    assert len(body) >= len(signal), f"tee has {len(body)} of {len(signal)} samples"
    np.testing.assert_array_equal(body[: len(signal)], signal)
    assert not np.any(body[len(signal) :]), "only the drain's silence may follow the signal"

    periods = stats.periods_ms()
    median, p95 = float(np.median(periods)), float(np.percentile(periods, 95))
    assert 9.5 <= median <= 10.5, f"callback period median {median:.2f} ms, want 10 ms"
    assert p95 < 20.0, f"callback period p95 {p95:.2f} ms"
    # Paced, not free-running (an unpaced file PCM runs 100 callbacks in about 2 ms).
    span = stats.callback_times[-1] - stats.callback_times[0]
    assert span >= 0.45, f"{len(periods) + 1} callbacks took only {span * 1000:.1f} ms"
    assert stats.end_dac_time is not None and stats.stop_time >= stats.end_dac_time


def test_sink_consumes_everything_after_drain(audio_device: AudioTestDevice) -> None:
    """What PulseAudio itself played (its monitor) matches, so the drain cut nothing."""
    parec = shutil.which("parec")
    if parec is None:
        pytest.skip("parec (pulseaudio-utils) not installed")
    signal = ramp(SR // 4)
    cmd = [parec, "--device=gate_sink.monitor", "--format=s16le", f"--rate={SR}"]
    cmd += ["--channels=1", "--raw", "--latency-msec=5"]
    rec = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    captured: list[bytes] = []
    stdout = rec.stdout
    assert stdout is not None
    reader = threading.Thread(target=lambda: captured.append(stdout.read()))
    reader.start()
    try:
        time.sleep(0.2)  # parec connected and recording silence
        adev.play(audio_device, np.concatenate([adev.MARKER, signal]), latency="high")
        time.sleep(0.1)
    finally:
        rec.terminate()
        reader.join(timeout=5)
        rec.wait(timeout=5)
    raw = b"".join(captured)
    played = np.frombuffer(raw[: len(raw) // 2 * 2], "<i2").astype(np.int16)
    body = adev.after_marker(played)
    assert len(body) >= len(signal), f"sink played {len(body)} of {len(signal)} samples"
    np.testing.assert_array_equal(body[: len(signal)], signal)


def test_tee_appends_streams_and_reset_truncates(audio_device: AudioTestDevice) -> None:
    """Streams append to the tee; reset truncates cleanly, even with a stream open."""
    first, second = ramp(4800), ramp(9600)[::-1].copy()
    adev.play(audio_device, np.concatenate([adev.MARKER, first]), drain_margin=0.0)
    adev.play(audio_device, np.concatenate([adev.MARKER, second]), drain_margin=0.0)
    tee = audio_device.read()
    i = adev.find_marker(tee)
    j = adev.find_marker(tee, start=i + 1)
    assert 0 <= i < j, "both streams must be in the tee, in order"
    np.testing.assert_array_equal(tee[i + 64 : i + 64 + len(first)], first)
    np.testing.assert_array_equal(tee[j + 64 : j + 64 + len(second)], second)

    audio_device.reset()
    assert len(audio_device.read()) == 0

    # Reset while a stream is open: later audio starts near offset 0, with no sparse hole.
    half = threading.Event()
    stop_resetter = threading.Event()

    def resetter() -> None:
        if half.wait(timeout=5) and not stop_resetter.is_set():
            audio_device.reset()

    thread = threading.Thread(target=resetter)
    thread.start()
    try:
        adev.play(
            audio_device,
            np.concatenate([ramp(SR // 4), adev.MARKER, first]),
            on_callback=lambda k: half.set() if k == 20 else None,
        )
    finally:
        stop_resetter.set()
        half.set()
        thread.join(timeout=5)
    tee = audio_device.read()
    k = adev.find_marker(tee)
    assert k >= 0
    np.testing.assert_array_equal(tee[k + 64 : k + 64 + len(first)], first)
    assert adev.first_nonzero(tee) == 0, "a sparse hole of zeros would mean no O_APPEND"
    assert k < SR // 4 - SR // 20, f"reset at 200 ms left {k} samples of the ramp before marker"


@pytest.mark.parametrize("latency", ["low", "high"])
def test_reports_latency_and_in_flight(
    audio_device: AudioTestDevice,
    latency: Literal["low", "high"],
    record_property: Callable[[str, object], None],
) -> None:
    """Record the figures the speaker sink needs to bound cancel-to-silence."""
    stats = adev.play(audio_device, np.zeros(SR, dtype=np.int16), latency=latency)
    periods = stats.periods_ms()
    in_flight = np.asarray(stats.in_flight[10:]) * 1000.0
    figures = {
        "reported_latency_ms": round(stats.reported_latency * 1000.0, 2),
        "period_median_ms": round(float(np.median(periods)), 2),
        "period_p95_ms": round(float(np.percentile(periods, 95)), 2),
        "in_flight_median_ms": round(float(np.median(in_flight)), 2),
        "in_flight_max_ms": round(float(np.max(in_flight)), 2),
    }
    for name, value in figures.items():
        record_property(f"{latency}_{name}", value)
    print(f"latency={latency}: {figures}")
    assert 0 < stats.reported_latency < 0.25
    assert 0 < figures["in_flight_median_ms"] < 250
    if latency == "low":
        assert figures["in_flight_max_ms"] < 100, figures


def test_missing_device_gives_a_reason(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """With no env and no running daemon, the probe explains how to get the device."""
    monkeypatch.setattr(adev, "SCRIPT", tmp_path / "absent.sh")
    for name in adev.REQUIRED_ENV:
        monkeypatch.delenv(name, raising=False)
    reason = adev.probe_device()
    assert isinstance(reason, str) and "scripts/audio-device.sh start" in reason


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, False),
        ({"CI": "true"}, True),
        ({"CI": "false"}, False),
        ({"PLAYBACK_GATE_REQUIRE_AUDIO": "1"}, True),
    ],
)
def test_in_ci(monkeypatch: pytest.MonkeyPatch, env: dict[str, str], expected: bool) -> None:
    """``CI=true`` (or PLAYBACK_GATE_REQUIRE_AUDIO) turns a missing device into a failure."""
    for name in ("CI", "PLAYBACK_GATE_REQUIRE_AUDIO"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert adev.in_ci() is expected


def test_find_marker_is_sample_aligned() -> None:
    """The marker search matches only at whole-sample offsets."""
    data = np.concatenate([np.zeros(3, np.int16), adev.MARKER, np.ones(5, np.int16)])
    assert adev.find_marker(data) == 3
    assert adev.find_marker(data, start=4) == -1
    shifted = np.frombuffer(b"\x00" + data.tobytes()[:-1], "<i2").astype(np.int16)
    assert adev.find_marker(shifted) == -1
