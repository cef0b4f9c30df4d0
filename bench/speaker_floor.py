"""Section 3b, part 2: the test device's physical floor and steady playback underruns.

The floor is the smallest device buffer that plays steadily: a gated
``SpeakerSink`` plays a constant tone for a few seconds at each setting (a
block size and PortAudio's latency in blocks, from 20 ms of buffer down to
2 ms) and counts underflows (the device's, flagged by PortAudio, and the
sink's own: a callback with nothing queued). The smallest buffer with none is
the floor: no output stage can silence a device faster than the audio the
device already holds, which is what its buffer means. Then the low-latency
mode plays for a minute (the full run) and its underruns are counted: the goal
is none.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from bench.timing import percentile

__all__ = ["SteadyResult", "floor_of", "steady"]

SR = 48_000
LEAD_S = 0.1  # audio kept queued ahead of the device, as a real producer would


@dataclass(frozen=True, slots=True)
class SteadyResult:
    """One setting played steadily.

    Attributes:
        blocksize: Frames per callback.
        buffer_blocks: PortAudio's latency asked for, in blocks.
        latency_ms: PortAudio's output latency for the stream, as it reports it.
        in_flight_ms: Audio already handed to the device, sampled while playing: p50.
        seconds: How long it played.
        device_underflows: Callbacks PortAudio flagged as underflowed.
        sink_underruns: Callbacks the sink had nothing queued for.
    """

    blocksize: int
    buffer_blocks: int
    latency_ms: float
    in_flight_ms: float
    seconds: float
    device_underflows: int
    sink_underruns: int

    @property
    def underruns(self) -> int:
        """Both kinds together."""
        return self.device_underflows + self.sink_underruns

    def to_json(self) -> dict[str, Any]:
        """Return the result as a JSON-ready dict."""
        return {
            "blocksize": self.blocksize,
            "buffer_blocks": self.buffer_blocks,
            "block_ms": self.blocksize / SR * 1e3,
            "latency_ms": self.latency_ms,
            "in_flight_ms": self.in_flight_ms,
            "seconds": self.seconds,
            "device_underflows": self.device_underflows,
            "sink_underruns": self.sink_underruns,
        }


def steady(device: str, seconds: float, setting: tuple[int, int] | None = None) -> SteadyResult:
    """Play a steady tone through a gated ``SpeakerSink`` and count underruns.

    Args:
        device: The PortAudio device.
        seconds: How long to play.
        setting: ``(frames per callback, PortAudio latency in blocks)``; ``None`` for the
            sink's low-latency mode as it ships (``SpeakerSink.low_latency``).

    Returns:
        What it measured.
    """
    import numpy as np

    from gate import PcmFrame, PlaybackGate
    from integrations.speakers import LOW_LATENCY_BUFFER_BLOCKS, SpeakerSink

    gate = PlaybackGate()
    if setting is None:
        sink = SpeakerSink.low_latency(gate, device=device, samplerate=SR)
        blocks = LOW_LATENCY_BUFFER_BLOCKS
    else:
        block, blocks = setting
        sink = SpeakerSink.low_latency(
            gate, device=device, samplerate=SR, blocksize=block, latency=blocks * block / SR
        )
    frame = PcmFrame(np.full(SR // 100, 1000, np.int16), SR)
    buf = sink.buffer
    in_flight: list[float] = []
    try:
        while buf.queued("tone") < LEAD_S * SR:
            sink.write("tone", frame)
        sink.start()
        t0 = time.monotonic()
        next_probe = t0 + 0.05
        while (now := time.monotonic()) - t0 < seconds:
            while buf.queued("tone") < LEAD_S * SR:
                sink.write("tone", frame)
            if now >= next_probe:
                t, dac = sink._now(), sink.frame_time(buf.frames_out)  # stream clock
                if t is not None and dac is not None:
                    in_flight.append((dac - t) * 1e3)
                next_probe = now + 0.05
            time.sleep(0.002)
        stats = sink.stats()
        return SteadyResult(
            blocksize=sink.blocksize,
            buffer_blocks=blocks,
            latency_ms=sink.latency * 1e3,
            in_flight_ms=percentile(in_flight, 50) if in_flight else float("nan"),
            seconds=seconds,
            device_underflows=stats.device_underflows,
            sink_underruns=stats.buffer.underruns,
        )
    finally:
        sink.close()


def floor_of(results: list[SteadyResult]) -> SteadyResult | None:
    """Return the smallest stable setting: the smallest buffer that played with no underrun.

    A larger buffer that underran is shown beside it (on a shared machine a busy moment can
    hit any setting), but does not move the floor.

    Args:
        results: Settings, any order.

    Returns:
        The floor, or ``None`` if every setting underran.
    """
    clean = [r for r in results if not r.underruns]
    return min(clean, key=lambda r: r.blocksize * r.buffer_blocks, default=None)
