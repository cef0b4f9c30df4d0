"""An ``io.AudioOutput`` that plays an ``AgentSession``'s audio on a speaker sink.

LiveKit Agents pushes a segment's frames faster than real time and waits for
``on_playback_finished``. This output queues each frame in a
:class:`~integrations.speakers.BaseSink` (a speaker or a WAV file) under its
generation id (the frame's tag, see :mod:`integrations.livekit._tagging`) and
reports the segment finished once the sink has played (or dropped) all of it.
It is the *leaf* of the chain: the gate's :class:`GatedAudioOutput` sits above
it in a gated session, nothing does in an ungated one.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass, field

from livekit import rtc
from livekit.agents.voice import io

from gate import PlaybackGate
from integrations.demo.outcome import PurgeCounter
from integrations.livekit._tagging import generation_of
from integrations.speakers import BaseSink

__all__ = ["SinkAudioOutput"]

_POLL_S = 0.01


@dataclass(slots=True)
class _Segment:
    played_before: dict[str, int] = field(default_factory=dict)  # gid -> played at start
    task: asyncio.Task[None] | None = None
    finished: bool = False


class SinkAudioOutput(io.AudioOutput):
    """Plays captured frames on ``sink``, one LiveKit playback segment at a time.

    Args:
        sink: A started (or soon started) speaker or WAV sink. Create it with
            ``gate=None``: admission happens upstream, and the sink is purged
            by :meth:`clear_buffer` (and by the gate, if registered with it).
        label: The output's label.
    """

    def __init__(
        self, sink: BaseSink, *, gate: PlaybackGate | None = None, label: str = "SpeakerSink"
    ) -> None:
        super().__init__(
            label=label,
            capabilities=io.AudioOutputCapabilities(pause=False),
            next_in_chain=None,
            sample_rate=None,  # any rate: the sink converts
        )
        self.sink = sink
        self._segment: _Segment | None = None  # being captured
        self._playing: list[_Segment] = []  # flushed, not finished
        self._untagged = 0
        self._untagged_id = ""
        self.gate = gate
        self.cleared = PurgeCounter(sink)
        """Counts what :meth:`clear_buffer` removed of generations the gate had not flagged
        (LiveKit's own interrupt)."""
        self.cleared_flagged = PurgeCounter(sink)
        """Counts what :meth:`clear_buffer` removed of flagged generations (the gated
        output clears the sink to purge them)."""
        self.dropped_after_clear: dict[str, float] = {}
        """Seconds of audio captured after a clear, in a segment it had already ended."""

    async def capture_frame(self, frame: rtc.AudioFrame) -> None:
        """Queue one frame on the sink, waiting for room (never faster than a speaker drains).

        Args:
            frame: The frame; its generation comes from its tag.
        """
        await super().capture_frame(frame)
        seg = self._segment
        if seg is None:
            seg = self._segment = _Segment()
            self._untagged += 1
            self._untagged_id = f"untagged-{self._untagged}"
            self.on_playback_started(created_at=time.time())
        gid = generation_of(frame) or self._untagged_id
        if seg.finished:  # cleared mid-capture: the rest of this segment is dropped
            late = frame.samples_per_channel / frame.sample_rate
            self.dropped_after_clear[gid] = self.dropped_after_clear.get(gid, 0.0) + late
            return
        if gid not in seg.played_before:
            seg.played_before[gid] = self.sink.buffer.played(gid)
        await self.sink.awrite(gid, frame)

    def flush(self) -> None:
        """End the segment; it is reported finished when the sink has played it."""
        super().flush()
        seg, self._segment = self._segment, None
        if seg is None:
            return
        for gid in seg.played_before:
            self.sink.end(gid)
        if seg.finished:
            return
        self._playing.append(seg)
        seg.task = asyncio.create_task(self._play_out(seg), name="sink-output-playout")

    def clear_buffer(self) -> None:
        """Drop everything queued on the sink now; the sounding generation fades out."""
        segments = [*self._playing, *([self._segment] if self._segment else [])]
        for seg in segments:
            for gid in seg.played_before:
                flagged = self.gate is not None and self.gate.is_flagged(gid)
                (self.cleared_flagged if flagged else self.cleared).purge(gid)
        for seg in self._playing:
            if seg.task is not None:
                seg.task.cancel()
            self._finish(seg, interrupted=True)
        self._playing.clear()
        if self._segment is not None:
            # reported now; its later frames are dropped and its flush is a no-op
            self._finish(self._segment, interrupted=True)

    async def aclose(self) -> None:
        """Stop every playout watcher (the sink itself is closed by its owner)."""
        tasks = [s.task for s in self._playing if s.task is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _play_out(self, seg: _Segment) -> None:
        buffer = self.sink.buffer
        while any(buffer.queued(gid) for gid in seg.played_before):
            await asyncio.sleep(_POLL_S)
        # the last block is at the device, not yet heard: wait one more block
        await asyncio.sleep(_POLL_S)
        if seg in self._playing:
            self._playing.remove(seg)
        self._finish(seg, interrupted=False)

    def _finish(self, seg: _Segment, *, interrupted: bool) -> None:
        if seg.finished:
            return
        seg.finished = True
        played = sum(
            self.sink.buffer.played(gid) - before for gid, before in seg.played_before.items()
        )
        self.on_playback_finished(
            playback_position=played / self.sink.samplerate, interrupted=interrupted
        )

    def cleared_seconds(self, generation_id: str) -> float:
        """Seconds of a generation's audio that LiveKit's clears removed or cut off.

        Args:
            generation_id: The generation.

        Returns:
            Queued audio the clears purged, plus audio captured after them.
        """
        return self.cleared.seconds(generation_id) + self.dropped_after_clear.get(
            generation_id, 0.0
        )
