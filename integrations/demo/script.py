"""The #6222 story's script: its four replies, their timing and the simulator's plans."""

from __future__ import annotations

import math
from dataclasses import dataclass

from gate import ConfigurationError
from integrations.openai_realtime.simulator.audio_marker import AudioMode
from integrations.openai_realtime.simulator.plans import ResponsePlan

__all__ = ["LIVEKIT_REPLY_TIMEOUT", "STEPS", "Step", "StoryTiming"]

LIVEKIT_REPLY_TIMEOUT = 10.0
"""Seconds; ``generate_reply``'s hard-coded timeout in livekit-agents 1.8.9."""


@dataclass(frozen=True, slots=True)
class Step:
    """One reply of the story.

    Attributes:
        kind: ``"normal"``, ``"late"`` (timed out, the server keeps streaming) or
            ``"interrupt"`` (cut mid-word, the server ignores the cancel).
        label: What the table calls it.
        prompt: Instructions for a real model (the simulator ignores them).
    """

    kind: str
    label: str
    prompt: str


STEPS: tuple[Step, ...] = (
    Step("normal", "normal reply", "Greet the user in one short sentence."),
    Step("late", "timed out, server kept streaming", "Say one short sentence about the sea."),
    Step("interrupt", "interrupted mid-word", "Tell a four-sentence story about a lighthouse."),
    Step("normal", "final normal reply", "Say goodbye in one short sentence."),
)


@dataclass(frozen=True, slots=True)
class StoryTiming:
    """How long each reply lasts and when the story gives up or interrupts (seconds).

    Attributes:
        deadline: The gate's request timeout. The default is LiveKit's own
            ``generate_reply`` timeout, so both give up at the same moment.
        late_by: The late reply's ``response.created`` comes this long after
            the deadline.
        normal_s: Audio length of the first reply.
        late_s: Audio length of the late reply (streamed in full: it ignores cancels).
        interrupted_s: Audio length of the reply that is interrupted.
        interrupt_after_s: Played audio after which the user barges in.
        final_s: Audio length of the last reply.
    """

    deadline: float = LIVEKIT_REPLY_TIMEOUT
    late_by: float = 0.8
    normal_s: float = 1.2
    late_s: float = 2.0
    interrupted_s: float = 3.0
    interrupt_after_s: float = 1.0
    final_s: float = 1.2

    def __post_init__(self) -> None:
        """Validate.

        Raises:
            ConfigurationError: If a duration is not positive or the interrupt point is
                past the interrupted reply's end.
        """
        for name in ("deadline", "normal_s", "late_s", "interrupted_s", "final_s"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise ConfigurationError(
                    f"{name} must be a positive number of seconds, got {value!r}"
                )
        if not 0 < self.interrupt_after_s < self.interrupted_s:
            raise ConfigurationError("interrupt_after_s must be inside the interrupted reply")
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
            final_s=0.6,
        )

    @property
    def livekit_times_out(self) -> bool:
        """Whether LiveKit's own 10 s timeout fires before the late reply arrives."""
        return self.deadline + self.late_by > LIVEKIT_REPLY_TIMEOUT

    def plans(self, audio: AudioMode) -> list[ResponsePlan]:
        """The simulator plans for the four replies, in order.

        Args:
            audio: ``"tone"`` (audible) or ``"marker"`` (decodable).

        Returns:
            Four plans, paced in real time.
        """
        words = "one two three four five six seven eight nine ten eleven twelve"
        return [
            ResponsePlan.for_duration(self.normal_s, audio=audio, transcript="Hello there."),
            ResponsePlan.for_duration(
                self.late_s,
                audio=audio,
                created_delay_s=self.deadline + self.late_by,
                ignore_cancel=True,
                transcript="Sorry, I was slow: nobody is listening to this any more.",
            ),
            ResponsePlan.for_duration(
                self.interrupted_s, audio=audio, ignore_cancel=True, transcript=words
            ),
            ResponsePlan.for_duration(self.final_s, audio=audio, transcript="Goodbye."),
        ]
