"""Running totals behind :meth:`Ledger.stats`: forgotten generations and bad frames."""

from __future__ import annotations

from collections.abc import Iterable

from gate._reasons import DropReason, GenerationState
from gate._records import GenerationRecord
from gate._stats import Counts, GateStats

__all__ = ["Tally"]


class Tally:
    """Keeps the counts of generations the ledger forgot, so totals never shrink.

    Malformed frames have no trustworthy generation, so they are counted here
    too. Not thread-safe on its own: the ledger calls it under its lock, except
    :meth:`count_malformed`, which an audio thread may call (a lost increment
    there only undercounts a diagnostic).
    """

    __slots__ = ("_dropped", "_malformed", "_passed")

    def __init__(self) -> None:
        self._passed = [0, 0]
        self._dropped: dict[DropReason, list[int]] = {}
        self._malformed = [0, 0]

    def count_malformed(self, samples: object) -> int:
        """Count one malformed frame.

        Args:
            samples: Its samples per channel; counted only if an int ``>= 0``, so
                junk never makes the totals negative or NaN.

        Returns:
            How many malformed frames so far.
        """
        self._malformed[0] += 1
        if isinstance(samples, int) and samples.__class__ is not bool and samples >= 0:
            self._malformed[1] += samples
        return self._malformed[0]

    def forget(self, record: GenerationRecord) -> None:
        """Fold a forgotten generation's counts into the totals."""
        self._passed[0] += record.frames_passed
        self._passed[1] += record.samples_passed
        for reason, frames, samples in (
            (record.reason or DropReason.RETIRED, record.frames_dropped, record.samples_dropped),
            (DropReason.RETIRED, record.frames_straggling, record.samples_straggling),
        ):
            if frames:
                acc = self._dropped.setdefault(reason, [0, 0])
                acc[0] += frames
                acc[1] += samples

    def snapshot(
        self,
        records: Iterable[GenerationRecord],
        *,
        generations_seen: int,
        generations_flagged: int,
        requests_timed_out: int,
        pending_requests: int,
        tombstones_forgotten: int = 0,
        flagged_forgotten: int = 0,
    ) -> GateStats:
        """Return totals: what was forgotten plus what ``records`` hold now."""
        passed = Counts(*self._passed)
        by_reason = {reason: Counts(*fs) for reason, fs in self._dropped.items()}

        def add(reason: DropReason, frames: int, samples: int) -> None:
            by_reason[reason] = by_reason.get(reason, Counts()) + Counts(frames, samples)

        live = tombstones = 0
        for gen in records:
            passed += Counts(gen.frames_passed, gen.samples_passed)
            if gen.state is GenerationState.LIVE:
                live += 1
            else:
                tombstones += 1
            if gen.frames_dropped:
                add(gen.reason or DropReason.RETIRED, gen.frames_dropped, gen.samples_dropped)
            if gen.frames_straggling:
                add(DropReason.RETIRED, gen.frames_straggling, gen.samples_straggling)
        if self._malformed[0]:
            by_reason[DropReason.MALFORMED] = Counts(*self._malformed)
        return GateStats(
            passed=passed,
            dropped=sum(by_reason.values(), Counts()),
            dropped_by_reason=dict(sorted(by_reason.items(), key=lambda kv: kv[0].value)),
            generations_seen=generations_seen,
            generations_flagged=generations_flagged,
            requests_timed_out=requests_timed_out,
            live_generations=live,
            tombstones=tombstones,
            pending_requests=pending_requests,
            tombstones_forgotten=tombstones_forgotten,
            flagged_forgotten=flagged_forgotten,
        )
