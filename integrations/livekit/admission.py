"""The admission rule at an output stage, downstream of a buffer.

The gate's own :meth:`~gate.PlaybackGate.admit` drops the frames of a retired
generation as stragglers: right where frames arrive from the network. A LiveKit
output sits behind buffers (the agent's channels, a source's queue), so a frame
reaching it after ``response.done`` was usually received *before* it and only
waited. Output-stage adapters therefore drop **flagged** generations only, and
let a retired generation's buffered frames finish. True stragglers (received
after the end) never get this far: LiveKit 1.8.9 discards them at the socket,
and the tap counts them there.
"""

from __future__ import annotations

from gate import Frame, PlaybackGate

__all__ = ["admit_buffered"]


def admit_buffered(gate: PlaybackGate, generation_id: str, frame: Frame) -> bool:
    """Decide whether a buffered frame may play. O(1), never raises.

    Args:
        gate: The gate.
        generation_id: The frame's generation.
        frame: The frame.

    Returns:
        ``False`` if the generation is flagged, else ``True``; both counted
        by the gate.
    """
    return gate.admit_buffered(generation_id, frame)
