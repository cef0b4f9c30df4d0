"""What the chunk buffer reports: cuts with their timing, counters, and the sink errors."""

from __future__ import annotations

from dataclasses import dataclass

from gate import CapacityError, StateError

__all__ = ["BufferFullError", "BufferStats", "Cut", "SinkInactiveError"]


class BufferFullError(CapacityError):
    """The buffer has no room for a chunk; wait for playback or raise its capacity."""


class SinkInactiveError(StateError):
    """A write must wait for room, but the sink is not playing, so room would never come."""


@dataclass(slots=True)
class Cut:
    """A generation purged from the buffer, and when its audio stopped.

    Frame indices count frames handed to the device since the buffer was made.

    Attributes:
        generation_id: The purged generation.
        flagged_frame: Frames handed to the device when it was purged.
        dropped_frames: Its queued frames that never play.
        silent_frame: Frame index right after its last audible frame (after the
            fade); ``None`` while the fade is pending.
        faded_frames: Frames played under the fade.
        flagged_at: Stream time of the purge, in seconds, if the sink knows it.
        silent_at: Stream (DAC) time its last frame leaves the device, if known.
    """

    generation_id: str
    flagged_frame: int
    dropped_frames: int
    silent_frame: int | None = None
    faded_frames: int = 0
    flagged_at: float | None = None
    silent_at: float | None = None

    @property
    def cancel_to_silence(self) -> float | None:
        """Seconds from the purge until its audio stopped at the device, if measured."""
        if self.flagged_at is None or self.silent_at is None:
            return None
        return max(0.0, self.silent_at - self.flagged_at)


@dataclass(frozen=True, slots=True)
class BufferStats:
    """Counters of a :class:`ChunkBuffer`.

    Attributes:
        frames_out: Frames handed to the device (audio and silence).
        frames_played: Frames of audio handed to the device, faded ones included.
        frames_faded: Frames of purged generations played under a fade.
        frames_purged: Queued frames of purged generations that never played.
        frames_queued: Live frames waiting to play.
        underruns: Pulls that ran dry while a generation was still open.
        underrun_frames: Silent frames those pulls padded with.
        played: Frames played per generation (the most recent generations).
    """

    frames_out: int
    frames_played: int
    frames_faded: int
    frames_purged: int
    frames_queued: int
    underruns: int
    underrun_frames: int
    played: dict[str, int]
