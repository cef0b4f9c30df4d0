"""Track chains on LiveKit Agents' own audio output (RoomIO's, run without a room).

Both feed ``_ParticipantAudioOutput`` (its 50 ms re-chunking, its 200 ms
``rtc.AudioSource`` queue, its forwarding task), whose source
:mod:`bench.track` reads back through a track:

- :class:`ClearBufferChain`: LiveKit Agents' own path when it cancels a
  reply: the forwarding stops, then ``flush()`` and ``clear_buffer()``, as its
  audio forwarding task does when cancelled (``voice/generation.py``).
- :class:`GatedOutputChain`: ``GatedAudioOutput`` on top of it; the flag goes
  to the gate, which purges the output (it ends and clears RoomIO's segment),
  while the producer keeps sending, as a server ignoring the cancel does.
"""

from __future__ import annotations

import asyncio
from typing import Any

from integrations.testing.agent_rig import roomless_output

__all__ = ["ClearBufferChain", "GatedOutputChain"]

RATE = 48_000


class ClearBufferChain:
    """LiveKit Agents' cancel: stop forwarding, ``flush()``, ``clear_buffer()``."""

    def __init__(self) -> None:
        self.name = "LiveKit clear_buffer(), RoomIO output"
        self.gated = False
        self._room = roomless_output(RATE)
        self.output = self._room.output
        self.source = self._room.source
        self._stopped: set[str] = set()

    def start(self, generation_id: str) -> None:
        self._stopped.discard(generation_id)

    async def play(self, generation_id: str, frame: Any) -> None:
        if generation_id not in self._stopped:
            await self.output.capture_frame(frame)

    def flag(self, generation_id: str) -> None:
        self._stopped.add(generation_id)
        self.output.flush()
        self.output.clear_buffer()

    async def finish(self, generation_id: str) -> None:
        """Wait for the segment's end, as the agent does after a cancel."""
        await asyncio.wait_for(self.output.wait_for_playout(), 2.0)

    async def aclose(self) -> None:
        await self._room.aclose()


class GatedOutputChain:
    """``GatedAudioOutput`` over RoomIO's output; the flag goes to the gate."""

    def __init__(self) -> None:
        from gate import PlaybackGate
        from integrations.livekit._gated_output import GatedAudioOutput

        self.name = "gate flag(), GatedAudioOutput -> RoomIO output"
        self.gated = True
        self.gate = PlaybackGate()
        self._room = roomless_output(RATE)
        self.output = GatedAudioOutput(self.gate, next_in_chain=self._room.output)
        self.source = self._room.source

    def start(self, generation_id: str) -> None:
        self.gate.announce(generation_id)

    async def play(self, generation_id: str, frame: Any) -> None:
        from integrations.livekit._tagging import tag_frame

        await self.output.capture_frame(tag_frame(frame, generation_id))

    def flag(self, generation_id: str) -> None:
        from gate import DropReason

        self.gate.flag(generation_id, DropReason.INTERRUPTED)

    async def finish(self, generation_id: str) -> None:
        """End the segment upstream (the model's stream ended) and wait for it."""
        self.output.flush()
        await asyncio.wait_for(self.output.wait_for_playout(), 2.0)

    async def aclose(self) -> None:
        await self._room.aclose()
