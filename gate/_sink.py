"""The purge protocol between the gate and what holds audio downstream."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from gate._reasons import DropReason

__all__ = ["PurgeSink"]


@runtime_checkable
class PurgeSink(Protocol):
    """Something that buffers admitted audio: a track's queue, a speaker's buffer.

    When a generation is flagged the gate calls :meth:`purge` on every
    registered sink, on the thread that flagged (usually the event loop).
    """

    def purge(self, generation_id: str, reason: DropReason) -> None:
        """Drop every sample of ``generation_id`` not yet played.

        Must be quick and must not block: hand the work to the sink's own
        thread if needed. Must not drop audio of any other generation.

        Args:
            generation_id: The flagged generation.
            reason: Why it was flagged.
        """
        ...
