"""A gated ``io.AudioOutput`` for LiveKit Agents 1.8.9: wraps the session's audio chain.

Frames name their generation through :mod:`integrations.livekit.tagging`. A frame
of a flagged generation is not forwarded. When a generation is flagged while
its audio is downstream (mid-playout), the purge:

1. interrupts the :class:`SpeechHandle` that plays it, so the agent stops
   forwarding, truncates the message and records it as interrupted (chat
   history stays honest);
2. ends the downstream segment at once (``flush()`` + ``clear_buffer()``), so
   audio already queued in the sink (RoomIO's track queue) is dropped.

Playback contract: every segment this output counts ends with exactly one
``on_playback_finished``. A segment whose frames were all dropped never reaches
the sink, so it is finished here (``playback_position=0``, ``interrupted=True``);
a segment cut by a flag is reported ``interrupted=True`` whatever the sink says.
"""

from __future__ import annotations

import collections
import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from livekit import rtc
from livekit.agents.voice import io
from livekit.agents.voice.speech_handle import SpeechHandle

from gate import DropReason, PlaybackGate
from integrations.livekit.tagging import GENERATION_KEY, current_generation

__all__ = ["GatedAudioOutput"]

logger = logging.getLogger("playback_gate.livekit")


@dataclass(slots=True)
class _Segment:
    generations: list[str] = field(default_factory=list)
    last: str | None = None  # the generation of the previous frame (skips the list scan)
    forwarded: bool = False  # the sink has (or had) a segment for it
    sink_open: bool = False  # ... still capturing, not flushed
    gated: bool = False  # some of its audio was dropped or purged
    finished: bool = False  # on_playback_finished already called for it


class GatedAudioOutput(io.AudioOutput):
    """Drops flagged generations before the sink and purges the sink on a flag.

    Install it on top of a running session's chain (see
    :func:`integrations.livekit.install.install_gate`), or by hand::

        session.output.audio = GatedAudioOutput(gate, next_in_chain=session.output.audio)

    Args:
        gate: The gate. This output registers itself as a sink.
        next_in_chain: The output it forwards to (RoomIO's, or any sink).
        current_speech: Returns the speech handle playing right now (e.g.
            ``lambda: session.current_speech``); used to interrupt the owner of
            a generation flagged mid-playout.
        label: The output's label.
    """

    def __init__(
        self,
        gate: PlaybackGate,
        *,
        next_in_chain: io.AudioOutput,
        current_speech: Callable[[], SpeechHandle | None] | None = None,
        label: str = "PlaybackGate",
    ) -> None:
        if not isinstance(next_in_chain, io.AudioOutput):
            raise TypeError(
                f"next_in_chain must be an io.AudioOutput, got {type(next_in_chain).__name__}"
            )
        super().__init__(
            label=label,
            capabilities=io.AudioOutputCapabilities(pause=True),
            next_in_chain=next_in_chain,
            sample_rate=None,
        )
        self.gate = gate
        self._admit = gate.admit_buffered
        sink = self.next_in_chain  # LiveKit's _AudioSinkProxy if next_in_chain is a leaf
        assert sink is not None
        self._sink = sink  # fixed for the output's life: io.AudioOutput has no setter
        self._current_speech = current_speech
        self._segment: _Segment | None = None  # being captured
        self._at_sink: collections.deque[_Segment] = collections.deque()  # flushed to the sink
        self._owners: dict[str, SpeechHandle] = {}
        self._clearing = False
        self.frames_dropped = 0
        """Frames this output did not forward."""
        self.mid_playout_purges = 0
        """Flags that cut a generation whose audio was already at the sink."""
        gate.add_sink(self)

    # ---- delegation -------------------------------------------------------------

    @property
    def sink(self) -> io.AudioOutput:
        """The next output in the chain."""
        return self._sink

    @property
    def sample_rate(self) -> int | None:
        """The sink's sample rate (the agent resamples to it, above this output)."""
        return self._sink.sample_rate

    def playing_generations(self) -> list[str]:
        """Return the generations whose audio is at the sink or being captured."""
        gens: list[str] = []
        for seg in (*self._at_sink, self._segment):
            if seg is not None:
                gens.extend(g for g in seg.generations if g not in gens)
        return gens

    def owner(self, generation_id: str) -> SpeechHandle | None:
        """Return the speech handle that played ``generation_id``, if known."""
        return self._owners.get(generation_id)

    def set_owner(self, generation_id: str, handle: SpeechHandle) -> None:
        """Record the speech handle that plays ``generation_id``.

        Args:
            generation_id: The generation.
            handle: Its speech.
        """
        self._owners[generation_id] = handle
        while len(self._owners) > 256:
            del self._owners[next(iter(self._owners))]

    # ---- the chain ----------------------------------------------------------------

    async def capture_frame(self, frame: rtc.AudioFrame) -> None:
        """Forward the frame unless its generation is flagged.

        Args:
            frame: The frame; its generation comes from its tag.
        """
        seg = self._segment
        if seg is None:
            # The base class counts a segment on its first frame and does nothing on the
            # others until flush(), so it is called once per segment (this output's
            # _segment lives exactly as long as the base class's capturing state).
            await super().capture_frame(frame)
            seg = self._segment = _Segment()
        # generation_of(frame), inlined: one call level less per frame
        try:
            gen = frame.userdata.get(GENERATION_KEY)
        except Exception:
            gen = None
        if not (isinstance(gen, str) and gen):
            gen = current_generation()
        if gen is not None:
            if gen is not seg.last:
                seg.last = gen
                if gen not in seg.generations:
                    seg.generations.append(gen)
                    self._note_owner(gen)
            if not self._admit(gen, frame):
                self.frames_dropped += 1
                seg.gated = True
                return
        if not seg.sink_open:  # never open once finished
            if seg.finished or seg.forwarded:
                # cut (cleared or purged mid-segment): the sink's segment is over, and
                # another would give the agent two finished events for one segment
                self.frames_dropped += 1
                return
            seg.forwarded = seg.sink_open = True
        await self._sink.capture_frame(frame)

    def flush(self) -> None:
        """End the segment: flush the sink, or finish a fully gated segment here."""
        super().flush()
        seg, self._segment = self._segment, None
        if seg is None:
            return
        if seg.sink_open:
            seg.sink_open = False
            self._at_sink.append(seg)
            self._sink.flush()
        elif not seg.forwarded and not seg.finished:
            seg.finished = True
            self.on_playback_finished(playback_position=0.0, interrupted=True)

    def clear_buffer(self) -> None:
        """Stop playback now, and flag what was cut (a SpeechHandle interruption)."""
        seg = self._segment
        cut = self.playing_generations()
        if seg is not None and not seg.forwarded and not seg.finished:
            seg.finished = True
            self.on_playback_finished(playback_position=0.0, interrupted=True)
        self._sink.clear_buffer()
        self._clearing = True
        try:
            for gen in cut:
                if not self.gate.is_flagged(gen):
                    self.gate.flag(gen, DropReason.INTERRUPTED, "audio output cleared")
        finally:
            self._clearing = False

    def _forward_next_playback_finished(self, ev: io.PlaybackFinishedEvent) -> None:
        seg = self._at_sink.popleft() if self._at_sink else None
        if seg is None and self._segment is not None and self._segment.forwarded:
            seg = self._segment  # the sink ended a segment we had not flushed yet
            seg.sink_open = False
        if seg is not None:
            if seg.finished:
                return
            seg.finished = True
        interrupted = ev.interrupted or (seg is not None and seg.gated)
        self.on_playback_finished(
            playback_position=ev.playback_position,
            interrupted=interrupted,
            synchronized_transcript=ev.synchronized_transcript,
        )

    # ---- the purge sink ---------------------------------------------------------

    def purge(self, generation_id: str, reason: DropReason) -> None:
        """Cut ``generation_id`` if its audio is downstream. Never blocks.

        Args:
            generation_id: The flagged generation.
            reason: Why it was flagged.
        """
        if self._clearing:
            return  # clear_buffer flagged it and already cleared the sink
        hit = False
        for seg in (*self._at_sink, self._segment):
            if seg is not None and generation_id in seg.generations:
                seg.gated = hit = True
        handle = self._owners.get(generation_id)
        if handle is not None and not handle.done() and not handle.interrupted:
            try:
                handle.interrupt(force=True)
            except Exception:
                logger.exception("could not interrupt the speech of %s", generation_id)
        if not hit:
            return
        self.mid_playout_purges += 1
        logger.info("purging %s (%s) from the audio output", generation_id, reason.value)
        seg = self._segment
        if seg is not None and seg.sink_open and generation_id in seg.generations:
            # end the sink's segment now, so the sink drops its queue now; the rest of
            # this segment is dropped (see capture_frame)
            seg.sink_open = False
            self._at_sink.append(seg)
            self._sink.flush()
        self._sink.clear_buffer()

    def _note_owner(self, generation_id: str) -> None:
        if generation_id in self._owners or self._current_speech is None:
            return
        try:
            handle = self._current_speech()
        except Exception:
            handle = None
        if handle is not None:
            self.set_owner(generation_id, handle)
