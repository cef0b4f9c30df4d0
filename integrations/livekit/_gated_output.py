"""A gated ``io.AudioOutput`` for LiveKit Agents 1.8.9: wraps the session's audio chain.

Frames name their generation through :mod:`integrations.livekit._tagging`. A frame
of a flagged generation is not forwarded. When a generation is flagged while
its audio is downstream (mid-playout), the purge:

1. interrupts the :class:`SpeechHandle` that plays it, so the agent stops
   forwarding, truncates the message and records it as interrupted (chat
   history stays honest);
2. clears the sink (``flush()`` + ``clear_buffer()``), so audio already queued
   there (RoomIO's track queue) is dropped, **only if everything the sink still
   holds is flagged**. A sink's ``clear_buffer()`` drops all it holds and no
   LiveKit sink can drop one generation's audio selectively, so while the sink
   also holds audio of a live generation (or untagged audio) nothing is cleared:
   flagged audio queued *ahead of* live audio, or mixed with it in one segment,
   plays out; flagged audio queued *behind* live audio is cleared as soon as the
   live audio ahead of it has played (the sink reports its segment finished).
   Frames captured after the flag are dropped either way. RoomIO's output takes
   no new segment until the previous one played out, so with it this only
   arises when one segment mixes generations (not the case inside AgentSession,
   where each speech is one generation).

Playback contract: every segment this output counts ends with exactly one
``on_playback_finished``. A segment whose frames were all dropped never reaches
the sink, so it is finished here (``playback_position=0``, ``interrupted=True``);
a segment cut by a flag is reported ``interrupted=True`` whatever the sink says.
Live audio captured into a segment after the sink's segment was cut (or ended by
the sink) starts a new segment, so it is never dropped.

LiveKit private API: to see the sink's ``playback_finished`` per segment before
LiveKit forwards it, this output overrides ``io.AudioOutput._dispatch_playback_finished``
and recognises ``io._CaptureCancelledEvent``; to stop listening to the sink when
detached (:meth:`GatedAudioOutput.detach`), it names the two forwarders the base class
subscribed, ``_forward_next_playback_started`` / ``_progressed`` (all 1.8.x internals,
in one place at the end of this module; :func:`missing_private_api` checks them, and
:func:`integrations.livekit._install.check_agents_version` reports it).
"""

from __future__ import annotations

import collections
import functools
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

from livekit import rtc
from livekit.agents.voice import io
from livekit.agents.voice.speech_handle import SpeechHandle

from gate import (
    DropReason,
    GateError,
    InvalidTypeError,
    Lane,
    PlaybackGate,
    UnsupportedVersionError,
)
from integrations.livekit._tagging import GENERATION_KEY, generation_of

__all__ = ["GatedAudioOutput", "missing_private_api"]

logger = logging.getLogger("playback_gate.livekit")


@dataclass(slots=True)
class _Segment:
    generations: list[str] = field(default_factory=list)
    last: str | None = None  # the generation of the previous frame (skips the list scan)
    lane: Lane | None = None  # its admission (the gate's, minus the lookup per frame)
    untagged: bool = False  # forwarded audio of no generation (a purge never clears it)
    forwarded: bool = False  # the sink has (or had) a segment for it
    sink_open: bool = False  # ... still capturing, not flushed
    gated: bool = False  # some of its audio was dropped or purged
    finished: bool = False  # on_playback_finished already called for it


class GatedAudioOutput(io.AudioOutput):
    """Drops flagged generations before the sink and purges the sink on a flag.

    Install it on top of a running session's chain (see
    :func:`integrations.livekit._install.install_gate`), or by hand::

        session.output.audio = GatedAudioOutput(gate, next_in_chain=session.output.audio)

    Args:
        gate: The gate. This output registers itself as a sink.
        next_in_chain: The output it forwards to (RoomIO's, or any sink).
        current_speech: Returns the speech handle playing right now (e.g.
            ``lambda: session.current_speech``); used to interrupt the owner of
            a generation flagged mid-playout.
        label: The output's label.

    Raises:
        InvalidTypeError: If ``next_in_chain`` is not an ``io.AudioOutput``.
        UnsupportedVersionError: If this livekit-agents lacks the private hook it needs.
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
            raise InvalidTypeError(
                f"next_in_chain must be an io.AudioOutput, got {type(next_in_chain).__name__}"
            )
        if _DISPATCH not in vars(io.AudioOutput):
            raise UnsupportedVersionError(
                f"io.AudioOutput has no {_DISPATCH} in this livekit-agents: GatedAudioOutput "
                "cannot keep the playback contract (tested on 1.8.x)"
            )
        super().__init__(
            label=label,
            capabilities=io.AudioOutputCapabilities(pause=True),
            next_in_chain=next_in_chain,
            sample_rate=None,
        )
        self.gate = gate
        sink = self.next_in_chain  # LiveKit's _AudioSinkProxy if next_in_chain is a leaf
        assert sink is not None
        self._sink = sink  # fixed for the output's life: io.AudioOutput has no setter
        self._current_speech = current_speech
        self._segment: _Segment | None = None  # being captured
        self._at_sink: collections.deque[_Segment] = collections.deque()  # flushed to the sink
        self._owners: dict[str, SpeechHandle] = {}
        self._clearing = False
        self._purge_pending = False  # flagged audio at the sink waits for live audio ahead
        self.frames_dropped = 0
        """Frames this output did not forward."""
        self.mid_playout_purges = 0
        """Flags of a generation whose audio was already at the sink."""
        self.uncleared_purges = 0
        """Of those, flags that could not clear the sink at once: it also held live audio."""
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
        # generation_of(frame)'s first step (the tag read), inlined so the next frame of the
        # same generation takes the segment's lane at once; any other frame goes through
        # generation_of() itself. The copy pays: 50 ns inline vs 90-98 ns for the call
        # (timeit, best of 25, rtc.AudioFrame), a third of the 150 ns budget of this output.
        try:
            gen = frame.userdata.get(GENERATION_KEY)
        except Exception:
            gen = None
        lane = seg.lane
        if gen is not seg.last or lane is None:  # another generation, untagged, or the first
            gen = generation_of(frame)  # checks the tag; else the task's current generation
            lane = None if gen is None else self._enter(seg, gen)
        if lane is not None:
            if not lane(frame, True):  # admit_buffered: a retired generation's tail plays
                self.frames_dropped += 1
                seg.gated = True
                return
        else:
            seg.untagged = True
        if not seg.sink_open:
            if seg.forwarded or seg.finished:
                # its sink segment was cut (or ended by the sink) and reported finished:
                # this live audio must not be lost, so it starts a new segment
                seg = await self._restart_segment(frame, gen)
            seg.forwarded = seg.sink_open = True
        await self._sink.capture_frame(frame)

    def _enter(self, seg: _Segment, gen: str) -> Lane:
        """The segment's frames switch to ``gen``: note it, and take its lane."""
        if gen == seg.last and seg.lane is not None:
            return seg.lane  # an equal tag, another str object
        if gen not in seg.generations:
            seg.generations.append(gen)
            self._note_owner(gen)
        try:
            lane = self.gate.lane(gen)
        except GateError:  # an id the gate refuses (e.g. empty): admit() drops and counts it
            lane = functools.partial(self.gate.admit, gen)
        seg.last, seg.lane = gen, lane
        return lane

    async def _restart_segment(self, frame: rtc.AudioFrame, gen: str | None) -> _Segment:
        super().flush()  # the base class's count: the old segment is over ...
        await super().capture_frame(frame)  # ... and this one is counted
        old = self._segment
        seg = self._segment = _Segment(untagged=gen is None)
        if gen is not None:
            seg.generations.append(gen)
            if old is not None:
                seg.last, seg.lane = old.last, old.lane
        return seg

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
        self._purge_pending = False
        self._clearing = True
        try:
            for gen in cut:
                if not self.gate.is_flagged(gen):
                    self.gate.flag(gen, DropReason.INTERRUPTED, "audio output cleared")
        finally:
            self._clearing = False

    def _sink_finished(self, ev: io.PlaybackFinishedEvent) -> None:
        """The sink finished its oldest segment (or the one it is capturing)."""
        seg = self._at_sink.popleft() if self._at_sink else None
        if seg is None and self._segment is not None and self._segment.sink_open:
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
        if self._purge_pending:
            self._clear_if_only_flagged()

    def _capture_cancelled(self) -> None:
        """The sink's newest segment was cancelled before it took any audio.

        LiveKit finishes it for the wrappers itself (without ``_sink_finished``),
        so it is finished here too and leaves the queue of segments at the sink.
        """
        seg = self._segment
        if seg is not None and seg.sink_open:
            seg.sink_open = False
        elif self._at_sink:
            seg = self._at_sink.pop()
        else:
            return
        seg.finished = True

    # ---- the purge sink ---------------------------------------------------------

    def purge(self, generation_id: str, reason: DropReason) -> None:
        """Cut ``generation_id`` if its audio is downstream. Never blocks.

        The sink is cleared only if all it holds is flagged; otherwise the clear
        waits until the live audio ahead has played (see the module doc).

        Args:
            generation_id: The flagged generation.
            reason: Why it was flagged.
        """
        if self._clearing:
            return  # clear_buffer flagged it and already cleared the sink
        hit = any(generation_id in seg.generations for seg in self._held())
        handle = self._owners.get(generation_id)
        if handle is not None and not handle.done() and not handle.interrupted:
            try:
                handle.interrupt(force=True)
            except Exception:
                logger.exception("could not interrupt the speech of %s", generation_id)
        if not hit:
            return
        self.mid_playout_purges += 1
        if self._clear_if_only_flagged():
            logger.info("purged %s (%s) from the audio output", generation_id, reason.value)
            return
        self.uncleared_purges += 1
        self._purge_pending = True
        logger.info(
            "%s (%s): the audio output also holds live audio; its audio queued ahead of or "
            "with it plays out, its audio behind it is cleared once that has played",
            generation_id,
            reason.value,
        )

    def _held(self) -> Iterator[_Segment]:
        """The segments whose audio the sink may still hold, oldest first."""
        yield from self._at_sink
        seg = self._segment
        if seg is not None and seg.sink_open:
            yield seg

    def _clear_if_only_flagged(self) -> bool:
        """Clear the sink if all it holds is flagged audio; return whether it did."""
        flagged = self.gate.is_flagged
        held = list(self._held())
        if not any(flagged(g) for s in held for g in s.generations):
            self._purge_pending = False  # no flagged audio left at the sink
            return False
        if any(s.untagged or not all(map(flagged, s.generations)) for s in held):
            return False
        self._purge_pending = False
        for s in held:
            s.gated = True
        seg = self._segment
        if seg is not None and seg.sink_open:
            # end the sink's segment now, so the sink drops its queue now; the rest of
            # this segment drops (flagged) or starts a new one (see capture_frame)
            seg.sink_open = False
            self._at_sink.append(seg)
            self._sink.flush()
        self._sink.clear_buffer()
        return True

    def _note_owner(self, generation_id: str) -> None:
        if generation_id in self._owners or self._current_speech is None:
            return
        try:
            handle = self._current_speech()
        except Exception:
            handle = None
        if handle is not None:
            self.set_owner(generation_id, handle)

    # ---- LiveKit private API (1.8.x): the only uses, checked by missing_private_api ------
    # io.AudioOutput.__init__ subscribes its own _dispatch_playback_finished to the sink's
    # public "playback_finished" event and forwards every event 1:1 (capture-cancelled
    # events go around _forward_next_playback_finished). There is no public way to
    # replace that forwarder, and this output must (gated segments report
    # interrupted, finished-here segments must not be counted twice). Keeping the
    # sink out of next_in_chain to subscribe publicly would lose LiveKit's chain
    # walks (tail swap, input-truncated marks), so the forwarder is overridden here.

    def detach(self) -> None:
        """Stop listening to the sink and leave the gate's purge sinks. Idempotent.

        ``io.AudioOutput.__init__`` subscribed three of its methods to the sink's
        public events; they are named here (LiveKit's ``_forward_next_*``, checked by
        :func:`missing_private_api`) because the base class has no way to undo it. The
        output forwards no more sink events after this; a session whose chain still
        holds it keeps playing through it, ungated from then on.
        """
        self.gate.remove_sink(self)
        self._sink.off("playback_finished", self._dispatch_playback_finished)
        for event, name in _FORWARDERS:
            forwarder = getattr(self, name, None)
            if forwarder is not None:
                self._sink.off(event, forwarder)
        self._owners.clear()

    def _dispatch_playback_finished(self, ev: io.PlaybackFinishedEvent) -> None:
        if _CAPTURE_CANCELLED is not None and isinstance(ev, _CAPTURE_CANCELLED):
            self._capture_cancelled()
            super()._dispatch_playback_finished(ev)  # LiveKit counts and forwards it
            return
        self._sink_finished(ev)


_DISPATCH = "_dispatch_playback_finished"
_FORWARDERS: tuple[tuple[Literal["playback_started", "playback_progressed"], str], ...] = (
    ("playback_started", "_forward_next_playback_started"),
    ("playback_progressed", "_forward_next_playback_progressed"),
)
_CAPTURE_CANCELLED: Any = getattr(io, "_CaptureCancelledEvent", None)


def missing_private_api() -> list[str]:
    """Return the livekit-agents internals :class:`GatedAudioOutput` relies on that are missing.

    Returns:
        The missing names; empty on livekit-agents 1.8.x.
    """
    missing: list[str] = []
    if not callable(vars(io.AudioOutput).get(_DISPATCH)):
        missing.append(f"io.AudioOutput.{_DISPATCH}")
    if not (
        isinstance(_CAPTURE_CANCELLED, type)
        and issubclass(_CAPTURE_CANCELLED, io.PlaybackFinishedEvent)
    ):
        missing.append("io._CaptureCancelledEvent")
    missing.extend(
        f"io.AudioOutput.{name}"
        for _, name in _FORWARDERS
        if not callable(getattr(io.AudioOutput, name, None))
    )
    return missing
