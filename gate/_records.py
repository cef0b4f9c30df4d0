"""The ledger's records: one per generation, one per request, and a bind's outcome."""

from __future__ import annotations

from dataclasses import dataclass

from gate._reasons import DropReason, GenerationState
from gate._stats import Counts, GenerationInfo

__all__ = ["Binding", "GenerationRecord", "RequestRecord"]


class GenerationRecord:
    """A generation's state and counters. Mutated only by the ledger.

    ``state`` is written last on every transition: :meth:`Ledger.admit` reads
    it without the lock.
    """

    __slots__ = (
        "detail",
        "frames_dropped",
        "frames_passed",
        "frames_straggling",
        "generation_id",
        "reason",
        "request_id",
        "samples_dropped",
        "samples_passed",
        "samples_straggling",
        "state",
    )

    def __init__(self, generation_id: str, state: GenerationState) -> None:
        self.generation_id = generation_id
        self.request_id: str | None = None
        self.state = state
        self.reason: DropReason | None = None
        self.detail = ""
        self.frames_passed = 0
        self.samples_passed = 0
        self.frames_dropped = 0
        self.samples_dropped = 0
        self.frames_straggling = 0
        self.samples_straggling = 0

    def info(self) -> GenerationInfo:
        """Return a read-only snapshot."""
        return GenerationInfo(
            generation_id=self.generation_id,
            request_id=self.request_id,
            state=self.state,
            reason=self.reason,
            detail=self.detail,
            passed=Counts(self.frames_passed, self.samples_passed),
            dropped=Counts(
                self.frames_dropped + self.frames_straggling,
                self.samples_dropped + self.samples_straggling,
            ),
            stragglers=Counts(self.frames_straggling, self.samples_straggling),
        )

    def describe(self) -> str:
        """Return a one-line summary for logs."""
        return (
            f"{self.state.value}, passed {self.frames_passed} frames/{self.samples_passed} "
            f"samples, dropped {self.frames_dropped + self.frames_straggling} frames/"
            f"{self.samples_dropped + self.samples_straggling} samples"
        )


class RequestRecord:
    """A request: pending until bound to a generation or flagged."""

    __slots__ = ("deadline", "detail", "generation_id", "reason", "request_id")

    def __init__(self, request_id: str, deadline: float) -> None:
        self.request_id = request_id
        self.deadline = deadline
        self.generation_id: str | None = None
        self.reason: DropReason | None = None
        self.detail = ""

    @property
    def pending(self) -> bool:
        """Neither bound nor flagged yet."""
        return self.generation_id is None and self.reason is None


@dataclass(frozen=True, slots=True)
class Binding:
    """The outcome of :meth:`Ledger.bind`.

    Attributes:
        request_id: The request.
        generation_id: Its generation.
        state: The generation's state after binding.
        reason: Why it is flagged, if it is.
    """

    request_id: str
    generation_id: str
    state: GenerationState
    reason: DropReason | None

    @property
    def live(self) -> bool:
        """Whether the generation's frames will pass."""
        return self.state is GenerationState.LIVE

    @property
    def dead_on_arrival(self) -> bool:
        """True when the generation was flagged before it was announced.

        The integration should then send a cancel aimed at this generation
        (e.g. ``{"type": "response.cancel", "response_id": generation_id}``).
        """
        return self.state is GenerationState.FLAGGED
