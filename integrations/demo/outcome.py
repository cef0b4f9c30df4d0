"""What became of one reply of the demo, and where its dropped audio was stopped."""

from __future__ import annotations

from dataclasses import dataclass

from gate import DropReason
from integrations.speakers import BaseSink

__all__ = ["GIVE_UP_KINDS", "PurgeCounter", "ReplyOutcome"]

GIVE_UP_KINDS = frozenset({"interrupt", "cancel"})
"""Kinds whose reply is wanted until the client gives up on it mid-playout."""

WHOLE_REPLY_KINDS = frozenset({"late", "reconnect"})
"""Kinds whose reply the client gave up on before any of it arrived: all of it is unwanted."""


@dataclass(frozen=True, slots=True)
class ReplyOutcome:
    """What happened to one reply. Durations are seconds of audio.

    Attributes:
        step: 1-based position in the story.
        kind: The step's kind (see :class:`~integrations.demo.script.Step`).
        label: The step's label.
        response_id: The server's response id (``None`` if none was created).
        sent: Audio the server sent for it (received by the client).
        played: Audio the sink played.
        played_at_give_up: Audio played when the client gave up mid-playout
            (an interrupt or a cancel).
        why: Why the rest was dropped (empty if nothing was).
        reached_output: Audio that reached the gated output (gated run only).
        at_output: The part of it the gated output dropped.
        output_frames: Frames the gated output dropped.
        purged_by_gate: Audio the gate purged from the sink's queue.
        cleared_by_livekit: Audio LiveKit's own ``clear_buffer`` (its interrupt)
            removed from the sink's queue.
        targeted_cancels: ``response.cancel`` events the gate sent for it.
        killed_early: The gate flagged it before any of its audio reached the output.
    """

    step: int
    kind: str
    label: str
    response_id: str | None
    sent: float
    played: float
    played_at_give_up: float
    why: str
    reached_output: float = 0.0
    at_output: float = 0.0
    output_frames: int = 0
    purged_by_gate: float = 0.0
    cleared_by_livekit: float = 0.0
    targeted_cancels: int = 0
    killed_early: bool = False

    @property
    def dropped(self) -> float:
        """Audio sent but not played."""
        return max(0.0, self.sent - self.played)

    @property
    def before_output(self) -> float:
        """Dropped audio that never reached the output (LiveKit dropped it upstream)."""
        stopped = self.at_output + self.purged_by_gate + self.cleared_by_livekit
        return max(0.0, self.dropped - stopped)

    @property
    def unwanted(self) -> float:
        """Audio played after the client gave up on the reply (the leak)."""
        if self.kind in WHOLE_REPLY_KINDS:
            return self.played
        if self.kind in GIVE_UP_KINDS:
            return max(0.0, self.played - self.played_at_give_up)
        return 0.0


class PurgeCounter:
    """Purges a sink and counts, per generation, the queued audio each purge removed.

    Registered with the gate in place of the sink, it tells the gate's purges
    apart from LiveKit's own ``clear_buffer``; the output keeps a second one.

    Args:
        sink: The sink to purge.
    """

    def __init__(self, sink: BaseSink) -> None:
        self.sink = sink
        self.frames: dict[str, int] = {}

    def purge(self, generation_id: str, reason: DropReason = DropReason.CANCELLED) -> None:
        """Purge ``generation_id`` from the sink and count what the cut dropped."""
        self.sink.purge(generation_id, reason)
        cuts = self.sink.cuts()
        if cuts and cuts[-1].generation_id == generation_id:
            self.frames[generation_id] = self.frames.get(generation_id, 0) + cuts[-1].dropped_frames

    def seconds(self, generation_id: str) -> float:
        """Seconds of a generation's queued audio that purges removed."""
        return self.frames.get(generation_id, 0) / self.sink.samplerate
