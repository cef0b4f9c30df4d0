"""Section 2b: the gated ``io.AudioOutput`` against the same AgentSession output chain bare.

The chain is what a LiveKit agent plays into: RoomIO's own audio output
(``_ParticipantAudioOutput``: its 50 ms re-chunking, its channel to the track's
source), run without a room by :func:`integrations.testing.agent_rig.roomless_output`.
Three such outputs, side by side in one event loop: a bare one, a second bare
one (A/A control), one behind
:class:`~integrations.livekit._gated_output.GatedAudioOutput`, and,
as the floor of any wrapper in LiveKit's output chain, one behind a
pass-through ``io.AudioOutput`` that only keeps the chain's contract
(``super().capture_frame`` then the next output's). LiveKit Agents 1.8.9
slips an ``_AudioSinkProxy`` (its swap point) under any wrapper whose next
output is a leaf, so every wrapper, gated or not, pays for that extra link.
Two figures come out: added vs the bare chain (the target's), and added vs
the pass-through chain, paired frame by frame (the gate's own share).
Every frame is tagged with its generation, as ``install_gate`` tags the
model's frames. RoomIO's forwarding task (the same for every chain) is not
started, so ``capture_frame`` never waits on pacing and the figure is the
call's own cost; the channel is emptied between rounds.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from bench.chain_timing import AdapterPlan, interleaved_calls
from bench.timing import Tick

__all__ = [
    "RATE",
    "SAMPLES",
    "gated_output_class",
    "measure_output",
    "passthrough_output",
]

RATE = 24_000  # the realtime model's rate; RoomIO resamples to nothing here
SAMPLES = RATE // 100  # 10 ms frames: the smallest, so the worst case relative to the chain


def gated_output_class() -> Any | None:
    """Return ``GatedAudioOutput`` if livekit-agents and the adapter import, else ``None``."""
    try:
        from integrations.livekit._gated_output import GatedAudioOutput
    except ImportError:
        return None
    return GatedAudioOutput


def passthrough_output(next_in_chain: Any) -> Any:
    """A do-nothing ``io.AudioOutput`` wrapper: the cost of any link in LiveKit's chain.

    Args:
        next_in_chain: The output it forwards to.

    Returns:
        The wrapper.
    """
    from livekit.agents.voice import io

    class PassThrough(io.AudioOutput):
        def __init__(self, nxt: io.AudioOutput) -> None:
            super().__init__(
                label="PassThrough",
                capabilities=io.AudioOutputCapabilities(pause=True),
                next_in_chain=nxt,
                sample_rate=None,
            )

        async def capture_frame(self, frame: Any) -> None:
            await super().capture_frame(frame)
            await self.next_in_chain.capture_frame(frame)  # type: ignore[union-attr]

        def flush(self) -> None:
            super().flush()
            self.next_in_chain.flush()  # type: ignore[union-attr]

        def clear_buffer(self) -> None:
            self.next_in_chain.clear_buffer()  # type: ignore[union-attr]

    return PassThrough(next_in_chain)


def _empty(out: Any) -> None:
    # what RoomIO's forwarding task would have taken; keeps memory flat between rounds
    # (LiveKit private names: RoomIO's output has no public way to drop its pending audio)
    if out._bstream_flush_timer is not None:
        out._bstream_flush_timer.cancel()
        out._bstream_flush_timer = None
    out._audio_bstream.clear()
    while not out._audio_buf.empty():
        out._audio_buf.recv_nowait()
    out._pushed_duration = 0.0


async def measure_output(plan: AdapterPlan, tick: Tick | None) -> dict[str, list[float]]:
    """Time ``capture_frame`` through the bare and gated RoomIO chains, frame by frame.

    Args:
        plan: Rounds and frames per round.
        tick: Progress callback, once per round.

    Returns:
        Per-round medians, as :func:`bench.adapter.interleaved_calls` returns them.

    Raises:
        RuntimeError: If the gated output dropped a frame of the live generation.
    """
    import numpy as np
    from livekit import rtc

    from gate import PlaybackGate
    from integrations.livekit._tagging import tag_frame
    from integrations.testing.agent_rig import roomless_output

    gated_cls = gated_output_class()
    assert gated_cls is not None
    gate = PlaybackGate()  # as install_gate makes it
    gid = "resp_output0000000000000"
    gate.announce(gid)
    rooms = [roomless_output(RATE, forward=False) for _ in range(4)]
    outs = [room.output for room in rooms]
    bare, control, behind, behind_floor = outs
    gated = gated_cls(gate, next_in_chain=behind)
    floor = passthrough_output(behind_floor)
    frame = tag_frame(
        rtc.AudioFrame(np.full(SAMPLES, 100, np.int16).tobytes(), RATE, 1, SAMPLES), gid
    )
    calls: dict[str, Callable[[], Awaitable[object]]] = {
        "bare": lambda: bare.capture_frame(frame),
        "control": lambda: control.capture_frame(frame),
        "gated": lambda: gated.capture_frame(frame),
        "floor": lambda: floor.capture_frame(frame),
    }

    def between_rounds() -> None:
        for out in outs:
            _empty(out)

    try:
        raw = await interleaved_calls(calls, plan, tick, between_rounds)
    finally:
        for room in rooms:
            _empty(room.output)
            await room.aclose()
    if gated.frames_dropped:
        raise RuntimeError("the gated output dropped frames of a live generation")
    return raw
