"""Self-identifying PCM16 audio for the Realtime simulator.

Marker encoding
---------------
Every audio delta (a *chunk*) the simulator sends holds one constant int16 value,
repeated for the whole chunk. The value encodes ``(response, chunk)``::

    code  = (response_number % MAX_RESPONSES) * CHUNK_MODULUS + (chunk_number % CHUNK_MODULUS)
    q     = code - HALF_CODES          if code <  HALF_CODES    (-2047 .. -1)
    q     = code - HALF_CODES + 1      if code >= HALF_CODES    (1 .. 2047)
    value = q * STEP                                             (STEP = 16)

So ``MAX_RESPONSES`` (63) responses and ``CHUNK_MODULUS`` (64) chunks fit in
``2 * HALF_CODES`` (4094) codes. ``q == 0`` is never used: every sample whose
value is within ``STEP // 2`` of zero decodes as *silence*, so the 10 ms silence
frames an idle ``rtc.AudioSource`` emits, and zero padding, are never mistaken
for audio. Response numbers wrap modulo 63 and chunk numbers modulo 64; inside
one response consecutive chunks differ by one ``STEP``, so the steps a resampler
has to follow are small.

Decoding rounds ``value / STEP`` to the nearest integer, so it tolerates an error
of up to 7 per sample. LiveKit's 24 kHz -> 48 kHz resampling (``rtc.AudioStream``
with ``sample_rate=48000`` and ``rtc.AudioResampler`` at every quality) was
measured to be within 1 of the value inside a chunk; only about 50 samples either
side of a large step ring. :func:`identify` therefore reports runs of equal codes
and drops runs shorter than ``min_run`` samples (the resampling edges). A
same-rate path (``AudioSource``/``AudioStream`` at 24 kHz, or a PulseAudio null
sink) is bit exact.

:func:`identify` also unwraps the chunk counter: within one response, a chunk
field lower than the previous one is taken to have wrapped past 63. This is best
effort; it assumes the first chunk seen of a response is chunk 0..63 and that no
64 consecutive chunks of one response vanish between two that are seen.

Tone mode
---------
``mode="tone"`` produces an audible sine (about -10 dBFS) whose pitch depends on
the response number, for demos through a real speaker. Tone audio cannot be
decoded by :func:`decode`/:func:`identify`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt

__all__ = [
    "CHUNK_MODULUS",
    "HALF_CODES",
    "MAX_RESPONSES",
    "SAMPLE_RATE",
    "STEP",
    "AudioMode",
    "MarkerRun",
    "chunk_samples",
    "decode",
    "decode_value",
    "encode_value",
    "identify",
    "responses_in",
    "samples_per_response",
    "tone_frequency",
]

#: Sample rate of Realtime API output audio.
SAMPLE_RATE = 24000
#: Distance between two neighbouring marker values.
STEP = 16
#: Number of marker codes on each side of zero.
HALF_CODES = 2047
#: Chunk numbers are encoded modulo this.
CHUNK_MODULUS = 64
#: Response numbers are encoded modulo this.
MAX_RESPONSES = (2 * HALF_CODES) // CHUNK_MODULUS

#: How chunk audio is generated.
AudioMode = Literal["marker", "tone"]

_TONE_AMPLITUDE = 10000.0
_TONE_BASE_HZ = 220.0

Int16Array = npt.NDArray[np.int16]
IntArray = npt.NDArray[np.int64]


def encode_value(response_number: int, chunk_number: int) -> int:
    """Return the constant int16 sample value marking one chunk.

    Args:
        response_number: The simulator's response number (wraps modulo ``MAX_RESPONSES``).
        chunk_number: The chunk index within the response (wraps modulo ``CHUNK_MODULUS``).

    Returns:
        The sample value, a non-zero multiple of ``STEP`` in ``[-32752, 32752]``.

    Raises:
        ValueError: If either number is negative.
    """
    if response_number < 0 or chunk_number < 0:
        raise ValueError("response and chunk numbers must be >= 0")
    code = (response_number % MAX_RESPONSES) * CHUNK_MODULUS + chunk_number % CHUNK_MODULUS
    q = code - HALF_CODES if code < HALF_CODES else code - HALF_CODES + 1
    return q * STEP


def decode_value(value: int) -> tuple[int, int] | None:
    """Decode one sample value.

    Args:
        value: A sample value (int16 range; small errors are tolerated).

    Returns:
        ``(response field, chunk field)``, or ``None`` for silence or an unused code.
    """
    response, chunk = decode(np.asarray([value], dtype=np.int64))
    if response[0] < 0:
        return None
    return int(response[0]), int(chunk[0])


def _as_int_samples(samples: object) -> IntArray:
    """Convert PCM16 bytes or a numeric array to a 1-D int64 array (first channel)."""
    if isinstance(samples, bytes | bytearray | memoryview):
        arr: npt.NDArray[np.generic] = np.frombuffer(samples, dtype=np.int16)
    else:
        arr = np.asarray(samples)
    if arr.ndim == 2:
        arr = arr[:, 0]
    elif arr.ndim != 1:
        raise ValueError(f"expected 1-D or (frames, channels) samples, got shape {arr.shape}")
    if np.issubdtype(arr.dtype, np.floating):
        return np.rint(arr.astype(np.float64) * 32768.0).astype(np.int64)
    if not np.issubdtype(arr.dtype, np.integer):
        raise ValueError(f"unsupported sample dtype {arr.dtype}")
    return arr.astype(np.int64)


def decode(samples: object) -> tuple[IntArray, IntArray]:
    """Decode every sample to its (response field, chunk field).

    Args:
        samples: PCM16 bytes, an int16/int array, or a float array in [-1, 1). A
            2-D ``(frames, channels)`` array is read from its first channel.

    Returns:
        Two int64 arrays of the input's length: response field and chunk field.
        Both are ``-1`` where the sample is silence or not a marker code.

    Raises:
        ValueError: If the array has an unsupported shape or dtype.
    """
    values = _as_int_samples(samples)
    q = np.rint(values / STEP).astype(np.int64)
    code = np.where(q < 0, q + HALF_CODES, q + HALF_CODES - 1)
    valid = (q != 0) & (np.abs(q) <= HALF_CODES) & (code < MAX_RESPONSES * CHUNK_MODULUS)
    response = np.where(valid, code // CHUNK_MODULUS, -1)
    chunk = np.where(valid, code % CHUNK_MODULUS, -1)
    return response, chunk


@dataclass(frozen=True)
class MarkerRun:
    """A run of consecutive samples carrying one chunk's marker.

    Attributes:
        response: Response field (the response number modulo ``MAX_RESPONSES``).
        chunk: Chunk number, unwrapped past ``CHUNK_MODULUS`` when ``identify`` could.
        raw_chunk: Chunk field as encoded (modulo ``CHUNK_MODULUS``).
        start: Index of the run's first sample.
        stop: Index one past the run's last sample.
    """

    response: int
    chunk: int
    raw_chunk: int
    start: int
    stop: int

    @property
    def length(self) -> int:
        """Number of samples in the run."""
        return self.stop - self.start


def identify(samples: object, *, min_run: int = 24, unwrap: bool = True) -> list[MarkerRun]:
    """Map played samples back to the (response, chunk) runs they came from.

    Runs shorter than ``min_run`` (resampling edges, fades, glitches) are dropped;
    two kept runs of the same code separated only by such junk are merged.

    Args:
        samples: Played audio, as accepted by :func:`decode`.
        min_run: Minimum run length in samples for a run to count.
        unwrap: Unwrap chunk numbers past ``CHUNK_MODULUS`` per response.

    Returns:
        The runs in playback order.

    Raises:
        ValueError: If ``min_run`` is below 1 or the samples are unsupported.
    """
    if min_run < 1:
        raise ValueError("min_run must be >= 1")
    response, chunk = decode(samples)
    if response.size == 0:
        return []
    code = np.where(response >= 0, response * CHUNK_MODULUS + chunk, -1)
    change = np.flatnonzero(np.diff(code)) + 1
    starts = np.concatenate(([0], change))
    stops = np.concatenate((change, [code.size]))

    kept: list[tuple[int, int, int]] = []  # (code, start, stop)
    for start, stop in zip(starts.tolist(), stops.tolist(), strict=True):
        c = int(code[start])
        if c < 0 or stop - start < min_run:
            continue
        if kept and kept[-1][0] == c and _only_junk(code, kept[-1][2], start, min_run):
            kept[-1] = (c, kept[-1][1], stop)
        else:
            kept.append((c, start, stop))

    last_abs: dict[int, int] = {}
    runs: list[MarkerRun] = []
    for c, start, stop in kept:
        resp, raw = divmod(c, CHUNK_MODULUS)
        absolute = raw
        if unwrap and resp in last_abs:
            prev = last_abs[resp]
            absolute = prev - prev % CHUNK_MODULUS + raw
            if absolute < prev:
                absolute += CHUNK_MODULUS
        last_abs[resp] = absolute
        runs.append(MarkerRun(resp, absolute, raw, start, stop))
    return runs


def _only_junk(code: IntArray, start: int, stop: int, min_run: int) -> bool:
    """Whether ``code[start:stop]`` holds no silence and no run of ``min_run`` or more."""
    if stop - start >= min_run * 4:
        return False
    gap = code[start:stop]
    return bool(np.all(gap >= 0))


def samples_per_response(samples: object, *, min_run: int = 24) -> dict[int, int]:
    """Count the samples attributed to each response field.

    Args:
        samples: Played audio, as accepted by :func:`decode`.
        min_run: Passed to :func:`identify`.

    Returns:
        Response field -> number of samples in its kept runs.
    """
    counts: dict[int, int] = {}
    for run in identify(samples, min_run=min_run, unwrap=False):
        counts[run.response] = counts.get(run.response, 0) + run.length
    return counts


def responses_in(samples: object, *, min_run: int = 24) -> list[int]:
    """List the response fields heard, in order of first appearance.

    Args:
        samples: Played audio, as accepted by :func:`decode`.
        min_run: Passed to :func:`identify`.

    Returns:
        Distinct response fields.
    """
    seen: dict[int, None] = {}
    for run in identify(samples, min_run=min_run, unwrap=False):
        seen.setdefault(run.response, None)
    return list(seen)


def tone_frequency(response_number: int) -> float:
    """Return the tone-mode pitch for a response (a semitone apart, cycling an octave).

    Args:
        response_number: The simulator's response number.

    Returns:
        Frequency in Hz.
    """
    return float(_TONE_BASE_HZ * 2.0 ** ((response_number % 12) / 12.0))


def chunk_samples(
    response_number: int,
    chunk_number: int,
    num_samples: int,
    *,
    mode: AudioMode = "marker",
    sample_rate: int = SAMPLE_RATE,
) -> Int16Array:
    """Generate one chunk of audio.

    Args:
        response_number: The simulator's response number.
        chunk_number: The chunk index within the response.
        num_samples: Chunk length in samples.
        mode: ``"marker"`` (constant, decodable) or ``"tone"`` (audible sine).
        sample_rate: Sample rate, used by tone mode only.

    Returns:
        A 1-D int16 array of ``num_samples`` samples.

    Raises:
        ValueError: If ``num_samples`` is negative or ``mode`` is unknown.
    """
    if num_samples < 0:
        raise ValueError("num_samples must be >= 0")
    if mode == "marker":
        return np.full(num_samples, encode_value(response_number, chunk_number), dtype=np.int16)
    if mode == "tone":
        start = chunk_number * num_samples  # phase-continuous for equal-length chunks
        t = (start + np.arange(num_samples, dtype=np.float64)) / sample_rate
        wave = _TONE_AMPLITUDE * np.sin(2.0 * math.pi * tone_frequency(response_number) * t)
        return np.rint(wave).astype(np.int16)
    raise ValueError(f"unknown audio mode {mode!r}")
