"""Test helpers for the project's real, paced audio output device.

``scripts/audio-device.sh start`` runs a private PulseAudio daemon with a null sink and writes
an ALSA config defining ``gatefile``: a ``type file`` tee PCM that appends every byte the app
plays to a raw file (``$PLAYBACK_GATE_TEE_FILE``) and forwards it to the sink, which sets the
pace. This module finds that device, reads and resets the tee, locates the app's audio in it,
plays signals with a proper drain, and provides the ``audio_device`` pytest fixture.

Facts about the tee, measured on Debian 12 (alsa-lib 1.2.8, PortAudio 19.6.0):

* The ALSA file plugin opens its file lazily, at the first write of a newly opened PCM.
  PortAudio's device probing at import does not touch it.
* With a plain ``file "path"`` it opens with ``O_TRUNC``: every new stream wipes the previous
  one, and truncating the file while a stream is open leaves a sparse hole (zeros) up to the
  writer's old offset. ``truncate false`` does not append either; it writes ``path.0001``,
  ``path.0002``, and so on. The script therefore pipes to ``cat >>path``: every stream is
  appended, and :func:`reset_tee` (truncate to 0) is clean even while a stream is open.
* The file gets exactly what the callback wrote, from its first callback, with no PortAudio
  priming silence. It lags the callback by a few blocks while the stream runs and is complete
  once the stream is closed (``pclose`` waits for ``cat``).
* The app's own audio may still start after silence it wrote itself, and several streams may
  be appended, so tests should locate their audio with a marker (:data:`MARKER`,
  :func:`find_marker`, :func:`after_marker`), not by offset.
* ``sd.CallbackStop`` and ``stream.stop()`` both cut the tail of what PulseAudio plays (not of
  the tee): 30 ms / 20 ms at ``latency='low'``, 60 ms / 40 ms at ``'high'``. :func:`play`
  drains by writing silence until the stream clock passes the last sample's DAC time.
* At ``latency='high'`` callbacks arrive in pairs every 20 ms; use ``latency='low'`` for a
  10 ms cadence at blocksize 480.
"""

from __future__ import annotations

import functools
import os
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import pytest

from integrations.testing.device import CHANNELS, DTYPE, SAMPLERATE, SCRIPT
from integrations.testing.device import REQUIRED_ENV as REQUIRED_ENV  # re-exported for the tests
from integrations.testing.device import adopt_running_device_env as _adopt
from integrations.testing.device import probe_device as _probe

BLOCKSIZE = 480

#: A 64-sample pseudo-random int16 marker with no zero samples; put it right before the audio
#: under test and find it with :func:`find_marker`. Fixed seed, so it is the same every run.
MARKER: npt.NDArray[np.int16] = (
    np.random.default_rng(0x6A7E).integers(1000, 30000, 64)
    * np.where(np.arange(64) % 2 == 0, 1, -1)
).astype(np.int16)

Int16Array = npt.NDArray[np.int16]
Latency = Literal["low", "high"] | float


@dataclass(frozen=True)
class AudioTestDevice:
    """The test output device: an ALSA tee PCM in front of a paced PulseAudio null sink.

    Attributes:
        device: PortAudio/ALSA device name to pass to ``sd.OutputStream(device=...)``.
        tee_path: Raw file that receives every int16 sample written to ``device``.
        samplerate: Sample rate of the sink, in Hz.
        channels: Channel count of the sink.
        dtype: Sample type of the tee file.
    """

    device: str
    tee_path: Path
    samplerate: int = SAMPLERATE
    channels: int = CHANNELS
    dtype: str = DTYPE

    def read(self) -> Int16Array:
        """Read everything in the tee file.

        Returns:
            The samples as a 1-D int16 array (mono) or ``(frames, channels)`` array.
        """
        return read_tee(self.tee_path, self.channels)

    def reset(self) -> None:
        """Truncate the tee file to zero length (safe while a stream is open)."""
        reset_tee(self.tee_path)

    def stream_kwargs(self, latency: Latency = "low") -> dict[str, Any]:
        """Keyword arguments for ``sd.OutputStream`` that match this device.

        Args:
            latency: PortAudio latency hint; ``'low'`` gives a 10 ms cadence at blocksize 480.

        Returns:
            ``device``, ``samplerate``, ``channels``, ``dtype``, ``blocksize`` and ``latency``.
        """
        return {
            "device": self.device,
            "samplerate": self.samplerate,
            "channels": self.channels,
            "dtype": self.dtype,
            "blocksize": BLOCKSIZE,
            "latency": latency,
        }


def in_ci() -> bool:
    """Tell whether a missing device must fail the run instead of skipping.

    Returns:
        True if ``CI`` or ``PLAYBACK_GATE_REQUIRE_AUDIO`` is set to a truthy value.
    """
    return any(
        os.environ.get(name, "").strip().lower() in {"1", "true", "yes", "on"}
        for name in ("CI", "PLAYBACK_GATE_REQUIRE_AUDIO")
    )


def adopt_running_device_env() -> bool:
    """Copy a running private device's environment into ``os.environ``.

    See :func:`integrations.testing.device.adopt_running_device_env`.

    Returns:
        True if the environment was adopted.
    """
    return _adopt(SCRIPT)


def probe_device() -> AudioTestDevice | str:
    """Find the test device and check that PortAudio can open it.

    Returns:
        The device description, or a human-readable reason why it is unavailable (for
        ``pytest.skip``).
    """
    found = _probe(SCRIPT)
    if isinstance(found, str):
        return found
    device, tee_path = found
    return AudioTestDevice(device=device, tee_path=tee_path)


@functools.cache
def cached_probe() -> AudioTestDevice | str:
    """Probe once per process; see :func:`probe_device`.

    Returns:
        The device description or the reason it is unavailable.
    """
    return probe_device()


def read_tee(path: Path | str, channels: int = CHANNELS) -> Int16Array:
    """Read a raw little-endian int16 tee file.

    A trailing partial sample or frame (possible while a stream is still writing) is dropped.

    Args:
        path: The tee file. A missing file reads as empty.
        channels: Interleaved channel count.

    Returns:
        1-D samples for mono, else a ``(frames, channels)`` array.
    """
    try:
        raw = Path(path).read_bytes()
    except FileNotFoundError:
        raw = b""
    frame_bytes = 2 * channels
    raw = raw[: len(raw) - len(raw) % frame_bytes]
    samples = np.frombuffer(raw, dtype="<i2").astype(np.int16)
    return samples if channels == 1 else samples.reshape(-1, channels)


def reset_tee(path: Path | str) -> None:
    """Truncate the tee file to zero length, creating it if needed.

    The device appends (``cat >>``), so this is clean even while a stream is open; audio
    already inside PortAudio/ALSA buffers at that moment still lands after the reset.

    Args:
        path: The tee file.
    """
    with open(path, "ab") as f:
        f.truncate(0)


def find_marker(samples: Int16Array, marker: Int16Array = MARKER, start: int = 0) -> int:
    """Find the first exact occurrence of ``marker`` in mono ``samples``.

    Args:
        samples: Mono int16 samples, e.g. from :func:`read_tee`.
        marker: The int16 sequence to look for.
        start: Sample index to start searching at.

    Returns:
        The sample index where the marker starts, or -1 if it is absent.
    """
    hay = np.ascontiguousarray(samples, dtype="<i2").tobytes()
    needle = np.ascontiguousarray(marker, dtype="<i2").tobytes()
    pos = hay.find(needle, 2 * start)
    while pos != -1 and pos % 2:  # only sample-aligned matches count
        pos = hay.find(needle, pos + 1)
    return -1 if pos == -1 else pos // 2


def after_marker(samples: Int16Array, marker: Int16Array = MARKER) -> Int16Array:
    """Return the samples that follow the first marker.

    Args:
        samples: Mono int16 samples, e.g. from :func:`read_tee`.
        marker: The marker written right before the audio of interest.

    Returns:
        Everything after the marker.

    Raises:
        AssertionError: If the marker is not in ``samples``.
    """
    idx = find_marker(samples, marker)
    assert idx >= 0, f"marker not found in {len(samples)} samples of tee audio"
    return samples[idx + len(marker) :]


def first_nonzero(samples: Int16Array) -> int:
    """Index of the first non-zero sample (the end of leading silence).

    Args:
        samples: Int16 samples.

    Returns:
        The index, or -1 if all samples are zero.
    """
    nz = np.flatnonzero(samples)
    return int(nz[0]) if nz.size else -1


@dataclass
class PlaybackStats:
    """What happened during :func:`play`.

    Attributes:
        callback_times: ``time.currentTime`` of each callback, in seconds (CLOCK_MONOTONIC,
            the same clock as ``time.monotonic()`` on Linux).
        in_flight: Per callback, ``outputBufferDacTime - currentTime`` in seconds: audio that
            earlier callbacks wrote but the sink has not consumed yet.
        reported_latency: ``stream.latency`` as reported by PortAudio, in seconds.
        end_dac_time: Stream time at which the last signal sample reaches the sink.
        stop_time: Stream time at which the drain ended and the stream was stopped.
        statuses: Non-empty callback status flags, as strings.
    """

    callback_times: list[float] = field(default_factory=list)
    in_flight: list[float] = field(default_factory=list)
    reported_latency: float = 0.0
    end_dac_time: float | None = None
    stop_time: float = 0.0
    statuses: list[str] = field(default_factory=list)

    def periods_ms(self) -> npt.NDArray[np.float64]:
        """Callback-to-callback intervals.

        Returns:
            Intervals in milliseconds.
        """
        return np.diff(np.asarray(self.callback_times, dtype=np.float64)) * 1000.0


def play(
    device: AudioTestDevice,
    signal: Int16Array,
    *,
    latency: Latency = "low",
    blocksize: int = BLOCKSIZE,
    drain_margin: float = 0.02,
    timeout: float = 10.0,
    on_callback: Callable[[int], None] | None = None,
) -> PlaybackStats:
    """Play mono ``signal`` on ``device`` from a callback, drain it, then stop and close.

    Drain: after the signal the callback writes silence; the caller waits until the stream
    clock passes the last signal sample's DAC time plus ``drain_margin`` and only then stops
    the stream, so the sink really consumes every sample (``CallbackStop`` would cut the tail).

    Args:
        device: The test device.
        signal: Mono int16 samples to play.
        latency: PortAudio latency hint.
        blocksize: Frames per callback.
        drain_margin: Extra seconds of silence to play after the last sample's DAC time.
        timeout: Upper bound in seconds on the whole playback; never hangs.
        on_callback: Called with the callback index inside the audio callback (for tests).

    Returns:
        Timing figures for the playback.

    Raises:
        TimeoutError: If playback or drain did not finish within ``timeout``.
    """
    import sounddevice as sd

    stats = PlaybackStats()
    sig = np.ascontiguousarray(signal, dtype=np.int16).reshape(-1)
    pos = 0
    ended = threading.Event()

    def callback(out: Int16Array, frames: int, t: Any, status: Any) -> None:
        nonlocal pos
        if on_callback is not None:
            on_callback(len(stats.callback_times))
        stats.callback_times.append(t.currentTime)
        stats.in_flight.append(t.outputBufferDacTime - t.currentTime)
        if status:
            stats.statuses.append(str(status))
        chunk = sig[pos : pos + frames]
        out[: len(chunk), 0] = chunk
        out[len(chunk) :, 0] = 0
        if len(chunk) and pos + frames >= len(sig):
            stats.end_dac_time = t.outputBufferDacTime + len(chunk) / device.samplerate
            ended.set()
        pos += frames

    stream = sd.OutputStream(
        callback=callback, **{**device.stream_kwargs(latency), "blocksize": blocksize}
    )
    stats.reported_latency = float(stream.latency)
    deadline = time.monotonic() + timeout
    try:
        stream.start()
        if len(sig) and not ended.wait(timeout):
            raise TimeoutError(f"signal not written within {timeout} s")
        end = (stats.end_dac_time if stats.end_dac_time is not None else stream.time) + drain_margin
        while stream.time < end:
            if time.monotonic() > deadline:
                raise TimeoutError(f"drain did not finish within {timeout} s")
            time.sleep(min(0.005, max(end - stream.time, 0.0005)))
        stats.stop_time = stream.time
        stream.stop()
    finally:
        stream.close()
    return stats


def make_audio_device_fixture(
    *, reset: bool = True, required_in_ci: bool = True
) -> Callable[[], Iterator[AudioTestDevice]]:
    """Build a function-scoped pytest fixture that yields the test device.

    The device is probed once per process. When it is missing the test is skipped with the
    reason, except in CI (``CI`` or ``PLAYBACK_GATE_REQUIRE_AUDIO`` truthy), where it fails.

    Args:
        reset: Truncate the tee file before each test.
        required_in_ci: Fail instead of skip when :func:`in_ci` is true.

    Returns:
        A pytest fixture function; assign it to a module-level name in a conftest or test.
    """

    @pytest.fixture
    def _audio_device() -> Iterator[AudioTestDevice]:
        found = cached_probe()
        if isinstance(found, str):
            if required_in_ci and in_ci():
                pytest.fail(f"CI requires the test audio device: {found}", pytrace=False)
            pytest.skip(found)
        if reset:
            found.reset()
        yield found

    return _audio_device


#: Import into ``tests/conftest.py`` (``from audio_device import audio_device``) to share it.
audio_device = make_audio_device_fixture()
