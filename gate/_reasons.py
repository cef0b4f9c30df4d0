"""The states a generation can be in, and why its frames are dropped."""

from __future__ import annotations

import enum

__all__ = ["DropReason", "GenerationState"]


class GenerationState(enum.Enum):
    """Where a generation is in its life.

    ``LIVE`` frames pass. ``FLAGGED`` and ``DONE`` generations are tombstones:
    their frames are dropped.
    """

    LIVE = "live"
    """Frames pass."""
    FLAGGED = "flagged"
    """Timed out, cancelled, interrupted or failed: frames drop, sinks purge."""
    DONE = "done"
    """Retired: the stream ended, so any later frame is a straggler and drops."""


class DropReason(enum.Enum):
    """Why a frame was dropped.

    The first five are flag reasons (pass them to ``flag``); ``RETIRED`` and
    ``MALFORMED`` are set by the gate itself.
    """

    TIMED_OUT = "timed_out"
    """Its request was not answered before the deadline."""
    CANCELLED = "cancelled"
    """The client (or the server) cancelled it."""
    INTERRUPTED = "interrupted"
    """The user barged in."""
    FAILED = "failed"
    """The server ended it with ``status: failed``."""
    INCOMPLETE = "incomplete"
    """The server ended it with ``status: incomplete``."""
    RETIRED = "retired"
    """A straggler: the frame arrived after the generation was retired."""
    MALFORMED = "malformed"
    """The frame itself was bad (wrong format, bad id, unreadable)."""

    @property
    def is_flag(self) -> bool:
        """Whether this reason can be passed to ``flag``."""
        return self not in (DropReason.RETIRED, DropReason.MALFORMED)
