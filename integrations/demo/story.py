"""One run of the demo's story: a real ``AgentSession`` playing six replies on a sink.

The session runs the real ``livekit-plugins-openai`` client, against the
project's simulator (which misbehaves as scripted in
:mod:`~integrations.demo.script`) or the real service. With a gate, it is
installed with ``install_gate`` and the gate purges the sink through a
:class:`~integrations.demo.outcome.PurgeCounter`; without one, frames are only
tagged, to attribute what played. The same script, run both ways at once,
shows what the gate stops.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
from collections.abc import Callable
from typing import Any, cast

from livekit.agents import Agent, AgentSession
from livekit.plugins.openai.realtime import RealtimeSession

from gate import Counts, PlaybackGate
from integrations.demo.outcome import PurgeCounter, ReplyOutcome
from integrations.demo.script import STEPS, Step, StoryTiming
from integrations.demo.sink_output import SinkAudioOutput
from integrations.demo.wire import ResponseWire, Wire
from integrations.livekit._install import GateInstallation, install_gate
from integrations.livekit._tagging import tag_generation_event
from integrations.openai_realtime.simulator.audio_marker import SAMPLE_RATE, AudioMode
from integrations.openai_realtime.simulator.server import RealtimeSimulator
from integrations.openai_realtime.trace.recorder import TraceRecorder
from integrations.speakers import BaseSink
from integrations.testing.reconnect import answer_after_reconnect

__all__ = ["ReplyOutcome", "Story"]

logger = logging.getLogger("playback_gate.demo")

_POLL_S = 0.01


class Story:
    """Plays the script on one session and one sink.

    Args:
        model: A ``livekit.plugins.openai.realtime.RealtimeModel``.
        sink: Where audio plays; create it with ``gate=None`` and start it.
        timing: The script's timing.
        gate: The gate, or ``None`` for the ungated baseline.
        steps: The replies to play (the whole story by default).
        sim: The simulator the model talks to (``None`` for the real service);
            the reconnect step needs it.
        audio: The simulator's audio mode, for the answer after a reconnect.
        late_deadline: The gate's deadline for the late reply only, when the
            server cannot be made late (the real service); ``None`` uses
            ``timing.deadline``.
        trace: Records the session's wire traffic, if given.
        name: For logs and the progress line.
    """

    def __init__(
        self,
        model: Any,
        sink: BaseSink,
        timing: StoryTiming,
        *,
        gate: PlaybackGate | None = None,
        steps: tuple[Step, ...] = STEPS,
        sim: RealtimeSimulator | None = None,
        audio: AudioMode = "marker",
        late_deadline: float | None = None,
        trace: TraceRecorder | None = None,
        name: str = "story",
    ) -> None:
        self.model = model
        self.sink = sink
        self.timing = timing
        self.gate = gate
        self.steps = steps
        self.sim = sim
        self.audio: AudioMode = audio
        self.late_deadline = late_deadline
        self.trace = trace
        self.name = name
        self.wire = Wire()
        self.status = "starting"
        """One short line: what the story is doing now."""
        self.outcomes: list[ReplyOutcome] = []
        self.output = SinkAudioOutput(sink, gate=gate)
        self.gate_purges = PurgeCounter(sink)
        """What the gate purged from the sink (registered with the gate for the sink)."""
        self.session: AgentSession[Any] = AgentSession(llm=model)
        self.wiring: GateInstallation | None = None
        self._started = False

    # ---- lifecycle ----------------------------------------------------------------------

    async def start(self) -> None:
        """Start the session and wire the gate (or the tagging) to it."""
        self.session.output.audio = self.output
        await self.session.start(Agent(instructions="You are a brief, friendly voice."))
        self._started = True
        rt = self.session.current_agent.realtime_llm_session
        if self.gate is not None:
            self.wiring = install_gate(self.session, self.gate)
            self.gate.add_sink(self.gate_purges)
        else:
            rt.on("generation_created", tag_generation_event)  # attribution only
        self.wire.attach(rt)
        if self.trace is not None:
            self.trace.attach(rt)

    async def aclose(self) -> None:
        """Close the session and the output watchers (not the model or the sink)."""
        if self.trace is not None:
            self.trace.detach()
        if self._started:
            with contextlib.suppress(Exception):
                await self.session.aclose()
        await self.output.aclose()

    # ---- the story ------------------------------------------------------------------------

    async def play(self, progress: Callable[[], None] | None = None) -> list[ReplyOutcome]:
        """Play the replies in order.

        Args:
            progress: Called after each reply.

        Returns:
            One outcome per reply (also kept in :attr:`outcomes`).
        """
        for number, step in enumerate(self.steps, 1):
            self.status = f"reply {number}/{len(self.steps)}: {step.label}"
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
        if step.kind == "late":
            self.status += f" (the gate gives up after {deadline:g} s)"
        if step.kind == "reconnect":
            await self._reconnect(request_id)
        rw = await self._created(request_id, timeout=deadline + timing.late_by + 15.0)
        played_at_give_up = 0.0
        if step.kind in ("interrupt", "cancel") and rw is not None:
            played_at_give_up = await self._give_up(rw, step.kind)
        if rw is not None:
            await self._until(lambda: rw.done_at is not None, timeout=30.0)
        with contextlib.suppress(Exception):  # a timed-out reply's handle ends with its error
            await asyncio.wait_for(handle.wait_for_playout(), 15.0)
        if rw is not None:
            await self._until(lambda: not self.sink.buffer.queued(rw.response_id), timeout=15.0)
        return self._outcome(number, step, rw, played_at_give_up)

    async def _give_up(self, rw: ResponseWire, kind: str) -> float:
        """Barge in (``interrupt``) or cancel the reply (``cancel``) once enough has played."""
        after = self.timing.interrupt_after_s if kind == "interrupt" else self.timing.cancel_after_s
        target = round(after * self.sink.samplerate)
        buffer = self.sink.buffer
        await self._until(lambda: buffer.played(rw.response_id) >= target, timeout=15.0)
        played = buffer.played(rw.response_id) / self.sink.samplerate
        if kind == "interrupt":
            self.status += f" (interrupted at {played:.2f} s)"
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.session.interrupt(), 5.0)
        else:
            # the app cancels this reply (say, a guardrail fired): a targeted response.cancel
            self.status += f" (cancelled at {played:.2f} s)"
            rt = cast(RealtimeSession, self.session.current_agent.realtime_llm_session)
            rt.send_event({"type": "response.cancel", "response_id": rw.response_id})
        return played

    async def _reconnect(self, request_id: str) -> None:
        """Drop the socket while the request waits; the server answers it after the reconnect."""
        if self.sim is None:
            raise RuntimeError("the reconnect step needs the simulator")
        self.status += " (socket dropped)"
        await answer_after_reconnect(
            self.sim, request_id, self.timing.reconnect_answer(self.audio), timeout=10.0
        )

    def _outcome(
        self, number: int, step: Step, rw: ResponseWire | None, played_at_give_up: float
    ) -> ReplyOutcome:
        rid = rw.response_id if rw is not None else None
        sent = rw.samples / SAMPLE_RATE if rw is not None else 0.0
        played = self.sink.buffer.played(rid) / self.sink.samplerate if rid else 0.0
        outcome = ReplyOutcome(
            step=number,
            kind=step.kind,
            label=step.label,
            response_id=rid,
            sent=sent,
            played=played,
            played_at_give_up=played_at_give_up,
            why=self._why(step, rid, sent, played),
            cleared_by_livekit=self.output.cleared_seconds(rid) if rid else 0.0,
        )
        if self.gate is None or rid is None:
            return outcome
        info = self.gate.generation(rid)
        passed = info.passed if info is not None else Counts()
        dropped = info.dropped if info is not None else Counts()
        cancels = sum(
            1
            for tap in (self.wiring.taps.values() if self.wiring is not None else ())
            for c in tap.cancels_sent
            if c.get("response_id") == rid
        )
        reached = passed.samples + dropped.samples
        return dataclasses.replace(
            outcome,
            reached_output=reached / SAMPLE_RATE,
            at_output=dropped.samples / SAMPLE_RATE,
            output_frames=dropped.frames,
            purged_by_gate=self.gate_purges.seconds(rid) + self.output.cleared_flagged.seconds(rid),
            targeted_cancels=cancels,
            killed_early=info is not None and info.reason is not None and not passed.frames,
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
