"""Read-only snapshots of what the gate passed and dropped."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from gate._reasons import DropReason, GenerationState

__all__ = ["Counts", "GateStats", "GenerationInfo"]


@dataclass(frozen=True, slots=True)
class Counts:
    """A number of frames and the samples (per channel) they held."""

    frames: int = 0
    samples: int = 0

    def __add__(self, other: Counts) -> Counts:
        return Counts(self.frames + other.frames, self.samples + other.samples)


@dataclass(frozen=True, slots=True)
class GenerationInfo:
    """One generation as the gate sees it.

    Attributes:
        generation_id: The model's id, e.g. an OpenAI Realtime ``response.id``.
        request_id: The request bound to it, or ``None`` if unattributed.
        state: Live, flagged or done.
        reason: Why it was flagged, or ``None``.
        detail: Free text given with the flag, e.g. a server's status reason.
        passed: Frames admitted.
        dropped: Frames dropped, stragglers included.
        stragglers: The part of ``dropped`` that arrived after retirement
            while the generation was not flagged.
    """

    generation_id: str
    request_id: str | None
    state: GenerationState
    reason: DropReason | None
    detail: str
    passed: Counts
    dropped: Counts
    stragglers: Counts


@dataclass(frozen=True, slots=True)
class GateStats:
    """Totals over the gate's whole life, forgotten generations included.

    Attributes:
        passed: Frames admitted.
        dropped: Frames dropped, for any reason.
        dropped_by_reason: ``dropped`` split by reason. A flagged generation's
            drops count under its flag reason; stragglers of a retired one
            under ``RETIRED``; bad frames under ``MALFORMED``.
        generations_seen: Generations ever recorded.
        generations_flagged: Generations ever flagged.
        requests_timed_out: Requests whose deadline passed unanswered.
        live_generations: Live generations held now.
        tombstones: Flagged or retired generations held now.
        pending_requests: Requests waiting for their generation now.
        tombstones_forgotten: Retired generations forgotten to stay within
            ``max_tombstones`` (a flood of ``response.done`` shows here).
        flagged_forgotten: Flagged generations forgotten to stay within
            ``max_flagged``; each could play again if it were still sending.
    """

    passed: Counts
    dropped: Counts
    dropped_by_reason: Mapping[DropReason, Counts] = field(default_factory=dict)
    generations_seen: int = 0
    generations_flagged: int = 0
    requests_timed_out: int = 0
    live_generations: int = 0
    tombstones: int = 0
    pending_requests: int = 0
    tombstones_forgotten: int = 0
    flagged_forgotten: int = 0

    def summary(self) -> str:
        """Return a one-line summary for logs."""
        reasons = ", ".join(
            f"{r.value}={c.frames}f/{c.samples}s"
            for r, c in self.dropped_by_reason.items()
            if c.frames
        )
        return (
            f"passed {self.passed.frames} frames ({self.passed.samples} samples), "
            f"dropped {self.dropped.frames} frames ({self.dropped.samples} samples)"
            + (f" [{reasons}]" if reasons else "")
            + f"; generations seen={self.generations_seen} flagged={self.generations_flagged}"
            f" live={self.live_generations} tombstones={self.tombstones}"
            f" pending requests={self.pending_requests}"
            + (
                f"; forgotten tombstones={self.tombstones_forgotten}"
                f" flagged={self.flagged_forgotten}"
                if self.tombstones_forgotten or self.flagged_forgotten
                else ""
            )
        )
