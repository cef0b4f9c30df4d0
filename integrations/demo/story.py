"""One run of the #6222 story: a real ``AgentSession`` playing four replies on a sink.

The session runs the real ``livekit-plugins-openai`` client, against the
project's simulator (which misbehaves as scripted in
:mod:`~integrations.demo.script`) or the real service. With a gate, it is
installed with :func:`integrations.livekit._install.install_gate` and the sink is
registered as a purge sink; without one, frames are only tagged, to attribute
what played. The same script, run both ways at once, shows what the gate stops.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from livekit.agents import Agent, AgentSession

from gate import PlaybackGate
from integrations.demo.script import LIVEKIT_REPLY_TIMEOUT, STEPS, Step, StoryTiming
from integrations.demo.sink_output import SinkAudioOutput
from integrations.demo.wire import ResponseWire, Wire
from integrations.livekit._install import install_gate
from integrations.livekit._tagging import tag_generation_event
from integrations.openai_realtime.simulator.audio_marker import SAMPLE_RATE
from integrations.speakers import BaseSink

__all__ = ["ReplyOutcome", "Story"]

logger = logging.getLogger("playback_gate.demo")

_POLL_S = 0.01


@dataclass(frozen=True, slots=True)
class ReplyOutcome:
    """What happened to one reply. Durations are seconds of audio.

    Attributes:
        step: 1-based position in the story.
        kind: The step's kind (see :class:`~integrations.demo.script.Step`).
        label: The step's label.
        response_id: The server's response id (``None`` if none was created).
        sent: Audio the server sent for it (received by the client).
        sent_after_give_up: The part sent after the client gave up (timeout
            or interrupt): what an output that does not key audio by
            response would still play.
        played: Audio the sink played.
        played_at_give_up: Audio played when the client gave up.
        why: Why the rest was dropped (empty if nothing was).
    """

    step: int
    kind: str
    label: str
    response_id: str | None
    sent: float
    sent_after_give_up: float
    played: float
    played_at_give_up: float
    why: str

    @property
    def dropped(self) -> float:
        """Audio sent but not played."""
        return max(0.0, self.sent - self.played)

    @property
    def unwanted(self) -> float:
        """Audio played after the client gave up on the reply (the leak)."""
        if self.kind == "late":
            return self.played
        if self.kind == "interrupt":
            return max(0.0, self.played - self.played_at_give_up)
        return 0.0


class Story:
    """Plays the script on one session and one sink.

    Args:
        model: A ``livekit.plugins.openai.realtime.RealtimeModel``.
        sink: Where audio plays; create it with ``gate=None`` and start it.
        timing: The script's timing.
        gate: The gate, or ``None`` for the ungated baseline.
        late_deadline: The gate's deadline for the late reply only, when the
            server cannot be made late (the real service); ``None`` uses
            ``timing.deadline``.
        name: For logs and the progress line.
    """

    def __init__(
        self,
        model: Any,
        sink: BaseSink,
        timing: StoryTiming,
        *,
        gate: PlaybackGate | None = None,
        late_deadline: float | None = None,
        name: str = "story",
    ) -> None:
        self.model = model
        self.sink = sink
        self.timing = timing
        self.gate = gate
        self.late_deadline = late_deadline
        self.name = name
        self.wire = Wire()
        self.status = "starting"
        """One short line: what the story is doing now."""
        self.outcomes: list[ReplyOutcome] = []
        self.output = SinkAudioOutput(sink)
        self.session: AgentSession[Any] = AgentSession(llm=model)
        self._started = False

    # ---- lifecycle ----------------------------------------------------------------------

    async def start(self) -> None:
        """Start the session and wire the gate (or the tagging) to it."""
        self.session.output.audio = self.output
        await self.session.start(Agent(instructions="You are a brief, friendly voice."))
        self._started = True
        rt = self.session.current_agent.realtime_llm_session
        if self.gate is not None:
            install_gate(self.session, self.gate)
            self.gate.add_sink(self.sink)
        else:
            rt.on("generation_created", tag_generation_event)  # attribution only
        self.wire.attach(rt)

    async def aclose(self) -> None:
        """Close the session and the output watchers (not the model or the sink)."""
        if self._started:
            with contextlib.suppress(Exception):
                await self.session.aclose()
        await self.output.aclose()

    # ---- the story ------------------------------------------------------------------------

    async def play(self, progress: Callable[[], None] | None = None) -> list[ReplyOutcome]:
        """Play the four replies in order.

        Args:
            progress: Called after each reply.

        Returns:
            One outcome per reply (also kept in :attr:`outcomes`).
        """
        for number, step in enumerate(STEPS, 1):
            self.status = f"reply {number}/{len(STEPS)}: {step.label}"
            self.outcomes.append(await self._reply(number, step))
            if progress is not None:
                progress()
        self.status = "done"
        return self.outcomes

    async def _reply(self, number: int, step: Step) -> ReplyOutcome:
        timing = self.timing
        deadline = timing.deadline
        restore = None
        if step.kind == "late" and self.gate is not None and self.late_deadline is not None:
            restore, self.gate.request_timeout = self.gate.request_timeout, self.late_deadline
            deadline = self.late_deadline
        known = set(self.wire.requests)
        handle = self.session.generate_reply(instructions=step.prompt)
        try:
            request_id = await self._new_request(known)
        finally:
            if restore is not None and self.gate is not None:
                self.gate.request_timeout = restore
        requested_at = self.wire.requests[request_id]
        played_at_give_up = 0.0
        if step.kind == "late":
            gives_up = deadline if self.gate is not None else LIVEKIT_REPLY_TIMEOUT
            self.wire.give_up(request_id, requested_at + gives_up)
            self.status += f" (gives up after {gives_up:g} s)"
        rw = await self._created(request_id, timeout=deadline + timing.late_by + 15.0)
        if step.kind == "interrupt" and rw is not None:
            played_at_give_up = await self._interrupt(rw)
        if rw is not None:
            await self._until(lambda: rw.done_at is not None, timeout=30.0)
        with contextlib.suppress(Exception):  # a timed-out reply's handle ends with its error
            await asyncio.wait_for(handle.wait_for_playout(), 15.0)
        if rw is not None:
            await self._until(lambda: not self.sink.buffer.queued(rw.response_id), timeout=15.0)
        return self._outcome(number, step, rw, played_at_give_up)

    async def _interrupt(self, rw: ResponseWire) -> float:
        """Barge in once ``interrupt_after_s`` of the reply has played."""
        target = round(self.timing.interrupt_after_s * self.sink.samplerate)
        buffer = self.sink.buffer
        await self._until(lambda: buffer.played(rw.response_id) >= target, timeout=15.0)
        rw.give_up_at = time.monotonic()
        played = buffer.played(rw.response_id) / self.sink.samplerate
        self.status += f" (interrupted at {played:.2f} s)"
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.session.interrupt(), 5.0)
        return played

    def _outcome(
        self, number: int, step: Step, rw: ResponseWire | None, played_at_give_up: float
    ) -> ReplyOutcome:
        rid = rw.response_id if rw is not None else None
        sent = rw.samples / SAMPLE_RATE if rw is not None else 0.0
        after = rw.samples_after / SAMPLE_RATE if rw is not None else 0.0
        played = self.sink.buffer.played(rid) / self.sink.samplerate if rid else 0.0
        return ReplyOutcome(
            step=number,
            kind=step.kind,
            label=step.label,
            response_id=rid,
            sent=sent,
            sent_after_give_up=after,
            played=played,
            played_at_give_up=played_at_give_up,
            why=self._why(step, rid, sent, played),
        )

    def _why(self, step: Step, rid: str | None, sent: float, played: float) -> str:
        if rid is None or played >= sent - 0.005:
            return ""
        if self.gate is not None:
            info = self.gate.generation(rid)
            if info is not None and info.reason is not None:
                return info.reason.value + (f": {info.detail}" if info.detail else "")
        if step.kind == "late" and played == 0:
            return "LiveKit discarded it (late response.created after its 10 s timeout)"
        if step.kind == "interrupt":
            return "LiveKit cleared the output at the interrupt"
        return "not played"

    # ---- waiting --------------------------------------------------------------------------

    async def _new_request(self, known: set[str]) -> str:
        async def poll() -> str:
            while True:
                fresh = [r for r in self.wire.requests if r not in known]
                if fresh:
                    return fresh[0]
                await asyncio.sleep(_POLL_S)

        return await asyncio.wait_for(poll(), 10.0)

    async def _created(self, request_id: str, timeout: float) -> ResponseWire | None:
        ok = await self._until(lambda: self.wire.response_for(request_id) is not None, timeout)
        return self.wire.response_for(request_id) if ok else None

    async def _until(self, predicate: Callable[[], bool], timeout: float) -> bool:
        end = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() >= end:
                logger.warning(
                    "%s: gave up waiting after %.1f s (%s)", self.name, timeout, self.status
                )
                return False
            await asyncio.sleep(_POLL_S)
        return True
