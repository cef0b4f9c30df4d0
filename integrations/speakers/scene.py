"""A short scripted scene for ``playback-gate speakers``: three replies, one cut mid-way."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

import numpy as np

from gate import DropReason, PcmFrame, PlaybackGate
from integrations.speakers._base_sink import BaseSink
from integrations.speakers._chunk_buffer import Cut
from integrations.speakers._wav_sink import WavSink

__all__ = ["SOURCE_RATE", "Reply", "SceneResult", "run_scene", "tone"]

SOURCE_RATE = 24_000
"""The scene's replies come at OpenAI Realtime's PCM16 rate and are resampled to the device's."""

FRAME_MS = 20


@dataclass(frozen=True, slots=True)
class Reply:
    """One generation of the scene.

    Attributes:
        generation_id: Its id.
        hz: Tone pitch.
        seconds: Length the server sends.
        cut_after: Seconds of it that play before it is interrupted; ``None`` plays it all.
    """

    generation_id: str
    hz: float
    seconds: float
    cut_after: float | None = None


SCENE = (
    Reply("resp_1", 440.0, 0.8),
    Reply("resp_2", 660.0, 1.6, cut_after=0.5),
    Reply("resp_3", 550.0, 0.6),
)


@dataclass(frozen=True, slots=True)
class SceneResult:
    """What the scene sent, what played and what the cut measured.

    Attributes:
        sent: Frames sent per generation, at the source rate.
        admitted: Frames the gate let through, per generation.
        played: Frames played per generation, at the device rate.
        cut: The interrupted reply's cut, timed on the stream clock.
        device_rate: Device sample rate.
        underruns: Buffer underruns during the scene.
    """

    sent: dict[str, int]
    admitted: dict[str, int]
    played: dict[str, int]
    cut: Cut | None
    device_rate: int
    underruns: int


def tone(hz: float, seconds: float, rate: int = SOURCE_RATE, level: float = 0.3) -> np.ndarray:
    """A sine tone with 5 ms ramps at both ends (its own start and end do not click).

    Args:
        hz: Pitch.
        seconds: Length.
        rate: Sample rate.
        level: Peak, as a fraction of full scale.

    Returns:
        int16 samples.
    """
    n = round(seconds * rate)
    x = np.sin(2 * np.pi * hz * np.arange(n) / rate) * level
    ramp = min(n // 2, rate // 200)
    env = np.ones(n)
    env[:ramp] = np.linspace(0, 1, ramp)
    env[n - ramp :] = np.linspace(1, 0, ramp)
    return np.rint(x * env * 32767).astype(np.int16)


async def run_scene(
    sink: BaseSink, gate: PlaybackGate, progress: Callable[[str], None] = print
) -> SceneResult:
    """Play the scene on a started sink, then drain it.

    The server sends each reply faster than real time; reply 2 is interrupted
    once ``cut_after`` seconds of it have played, and the server keeps
    streaming it (the gate drops the rest).

    Args:
        sink: A started sink registered with ``gate``.
        gate: The gate.
        progress: Called with a line per step.

    Returns:
        The result.
    """
    frame_len = SOURCE_RATE * FRAME_MS // 1000
    sent: dict[str, int] = {}
    admitted: dict[str, int] = {}
    cut: Cut | None = None
    for reply in SCENE:
        gid = reply.generation_id
        gate.announce(gid)
        samples = tone(reply.hz, reply.seconds)
        frames = [samples[i : i + frame_len] for i in range(0, len(samples), frame_len)]
        sent[gid] = admitted[gid] = 0
        progress(f"{gid}: {reply.hz:.0f} Hz tone, {reply.seconds:.1f} s")
        # A reply to cut is sent 0.5 s ahead of the cut, so it has audio queued to purge.
        ahead = (
            None if reply.cut_after is None else round((reply.cut_after + 0.5) * 1000 / FRAME_MS)
        )
        cut_at = len(frames) if ahead is None else min(ahead, len(frames))
        for k, chunk in enumerate(frames):
            if k == cut_at and reply.cut_after is not None:
                target = round(reply.cut_after * sink.samplerate)
                await _until(sink, partial(_played_at_least, sink, gid, target))
                gate.flag(gid, DropReason.INTERRUPTED, "user barged in")
                cut = sink.cuts()[-1]
                progress(f"{gid}: interrupted after {reply.cut_after:.1f} s; server keeps sending")
            sent[gid] += len(chunk)
            if await sink.awrite(gid, PcmFrame(chunk, SOURCE_RATE)):
                admitted[gid] += len(chunk)
        gate.retire(gid)
        sink.end(gid)
        await _until(sink, partial(_played_out, sink, gid))
    await sink.drain(timeout=30)
    stats = sink.stats()
    return SceneResult(
        sent, admitted, stats.buffer.played, cut, sink.samplerate, stats.buffer.underruns
    )


async def _until(sink: BaseSink, done: Callable[[], bool]) -> None:
    while not done():
        if isinstance(sink, WavSink) and not sink.paced:
            sink.advance(sink.blocksize)
        else:
            await asyncio.sleep(0.002)


def _played_at_least(sink: BaseSink, generation_id: str, frames: int) -> bool:
    return sink.buffer.played(generation_id) >= frames


def _played_out(sink: BaseSink, generation_id: str) -> bool:
    return sink.buffer.queued(generation_id) == 0
