"""The demo's script: its six replies, their timing and the simulator's plans."""

from __future__ import annotations

import math
from dataclasses import dataclass

from gate import ConfigurationError
from integrations.openai_realtime.simulator.audio_marker import AudioMode
from integrations.openai_realtime.simulator.plans import ResponsePlan

__all__ = ["KINDS", "LIVEKIT_REPLY_TIMEOUT", "NEEDS_SIMULATOR", "STEPS", "Step", "StoryTiming"]

LIVEKIT_REPLY_TIMEOUT = 10.0
"""Seconds; ``generate_reply``'s hard-coded timeout in livekit-agents 1.8.9."""


@dataclass(frozen=True, slots=True)
class Step:
    """One reply of the story.

    Attributes:
        kind: ``"normal"``; ``"late"`` (timed out, the server answers late and
            keeps streaming); ``"interrupt"`` (the user barges in, the server
            ignores the cancel); ``"cancel"`` (the app cancels a reply streamed
            faster than real time, the server honours it); ``"reconnect"`` (the
            socket drops while the request waits, the server answers it on the
            new connection).
        label: What the table calls it.
        prompt: Instructions for a real model (the simulator ignores them).
    """

    kind: str
    label: str
    prompt: str


STEPS: tuple[Step, ...] = (
    Step("normal", "normal reply", "Greet the user in one short sentence."),
    Step("late", "#6222: timed out, answered late", "Say one short sentence about the sea."),
    Step("interrupt", "interrupted mid-word", "Tell a four-sentence story about a lighthouse."),
    Step("cancel", "app cancel, audio queued", "Describe a storm in four sentences."),
    Step("reconnect", "answered after a reconnect", "Say one short sentence about boats."),
    Step("normal", "final normal reply", "Say goodbye in one short sentence."),
)

KINDS = ("normal", "late", "interrupt", "cancel", "reconnect")
"""Every step kind, for ``--only``."""

NEEDS_SIMULATOR = frozenset({"reconnect"})
"""Kinds only the simulator can play: the real service does not answer across a reconnect."""


@dataclass(frozen=True, slots=True)
class StoryTiming:
    """How long each reply lasts and when the story gives up, interrupts or cancels (seconds).

    Attributes:
        deadline: The gate's request timeout. The default is LiveKit's own
            ``generate_reply`` timeout, so both give up at the same moment.
        late_by: The late reply's ``response.created`` comes this long after
            the deadline.
        normal_s: Audio length of the first reply.
        late_s: Audio length of the late reply (streamed in full: it ignores cancels).
        interrupted_s: Audio length of the reply that is interrupted.
        interrupt_after_s: Played audio after which the user barges in.
        cancelled_s: Audio length of the reply that is cancelled.
        cancel_pace: How much faster than real time the server streams it.
        cancel_after_s: Played audio after which the app cancels it.
        reconnect_s: Audio length of the answer sent after the reconnect.
        final_s: Audio length of the last reply.
    """

    deadline: float = LIVEKIT_REPLY_TIMEOUT
    late_by: float = 0.8
    normal_s: float = 1.2
    late_s: float = 1.0
    interrupted_s: float = 2.0
    interrupt_after_s: float = 0.8
    cancelled_s: float = 3.0
    cancel_pace: float = 4.0
    cancel_after_s: float = 0.7
    reconnect_s: float = 2.0
    final_s: float = 1.2

    def __post_init__(self) -> None:
        """Validate.

        Raises:
            ConfigurationError: If a duration is not positive or a cut point is past
                its reply's end.
        """
        for name in (
            "deadline",
            "normal_s",
            "late_s",
            "interrupted_s",
            "cancelled_s",
            "cancel_pace",
            "reconnect_s",
            "final_s",
        ):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise ConfigurationError(
                    f"{name} must be a positive number of seconds, got {value!r}"
                )
        if not 0 < self.interrupt_after_s < self.interrupted_s:
            raise ConfigurationError("interrupt_after_s must be inside the interrupted reply")
        if not 0 < self.cancel_after_s < self.cancelled_s:
            raise ConfigurationError("cancel_after_s must be inside the cancelled reply")
        if self.late_by < 0:
            raise ConfigurationError("late_by must be >= 0")

    @classmethod
    def fast(cls) -> StoryTiming:
        """A short story: the gate's deadline (1.5 s) is stricter than LiveKit's 10 s.

        Returns:
            The timing.
        """
        return cls(
            deadline=1.5,
            late_by=0.5,
            normal_s=0.6,
            late_s=1.0,
            interrupted_s=1.6,
            interrupt_after_s=0.5,
            cancelled_s=1.6,
            cancel_after_s=0.3,
            reconnect_s=1.0,
            final_s=0.6,
        )

    @property
    def livekit_times_out(self) -> bool:
        """Whether LiveKit's own 10 s timeout fires before the late reply arrives."""
        return self.deadline + self.late_by > LIVEKIT_REPLY_TIMEOUT

    def plan(self, kind: str, audio: AudioMode, *, first: bool = True) -> ResponsePlan:
        """The simulator's plan for one reply.

        Args:
            kind: The step's kind.
            audio: ``"tone"`` (audible) or ``"marker"`` (decodable).
            first: For ``"normal"``: the first reply (else the final one).

        Returns:
            The plan. For ``"reconnect"`` it is the request's, which the server
            never answers on that connection (see :meth:`reconnect_answer`).

        Raises:
            ValueError: If ``kind`` is unknown.
        """
        if kind == "normal":
            return ResponsePlan.for_duration(
                self.normal_s if first else self.final_s,
                audio=audio,
                transcript="Hello there." if first else "Goodbye.",
            )
        if kind == "late":
            return ResponsePlan.for_duration(
                self.late_s,
                audio=audio,
                created_delay_s=self.deadline + self.late_by,
                ignore_cancel=True,
                transcript="Sorry, I was slow: nobody is listening to this any more.",
            )
        if kind == "interrupt":
            words = "one two three four five six seven eight nine ten"
            return ResponsePlan.for_duration(
                self.interrupted_s, audio=audio, ignore_cancel=True, transcript=words
            )
        if kind == "cancel":
            return ResponsePlan.for_duration(
                self.cancelled_s,
                audio=audio,
                pace=self.cancel_pace,
                transcript="The storm came in from the west, fast and loud.",
            )
        if kind == "reconnect":
            # never answered on this connection: the socket drops first
            return ResponsePlan.for_duration(self.reconnect_s, audio=audio, created_delay_s=60.0)
        raise ValueError(f"unknown step kind {kind!r}")

    def reconnect_answer(self, audio: AudioMode) -> ResponsePlan:
        """The answer the server sends on the new connection to the abandoned request.

        Args:
            audio: ``"tone"`` or ``"marker"``.

        Returns:
            The plan: it honours a cancel.
        """
        return ResponsePlan.for_duration(
            self.reconnect_s, audio=audio, transcript="As I was saying, before the line dropped."
        )

    def plans(self, steps: tuple[Step, ...], audio: AudioMode) -> list[ResponsePlan]:
        """The simulator plans for the steps' requests, in order.

        Args:
            steps: The story's steps.
            audio: ``"tone"`` (audible) or ``"marker"`` (decodable).

        Returns:
            One plan per step.
        """
        return [self.plan(s.kind, audio, first=s is not STEPS[-1]) for s in steps]
