"""The ledger's records: one per generation, one per request, and a bind's outcome."""

from __future__ import annotations

import operator
from dataclasses import dataclass
from typing import Protocol

from gate._audio_format import Frame
from gate._reasons import DropReason, GenerationState
from gate._stats import Counts, GenerationInfo

__all__ = ["Binding", "GenerationRecord", "RequestRecord"]

_LIVE = GenerationState.LIVE
_FLAGGED = GenerationState.FLAGGED
_DONE = GenerationState.DONE


class _Owner(Protocol):
    """What a record needs of its ledger (``gate._ledger.Ledger``)."""

    _fmt: tuple[int, int] | None

    @property
    def _dtype(self) -> str: ...

    _dtypeless: type | None

    def _dtype_differs(self, frame: Frame) -> bool: ...

    def _drop_malformed(self, generation_id: object, frame: object, samples: object) -> bool: ...

    def admit(self, generation_id: str, frame: Frame, buffered: bool = False) -> bool: ...


def sample_count(value: object) -> int:
    """Return ``value`` as a sample count, or -1 if it is not an int ``>= 0`` (a bool is not).

    The slow path of :meth:`GenerationRecord.admit`: plain ints never get here.
    """
    if isinstance(value, bool):
        return -1
    try:
        count = operator.index(value)  # type: ignore[arg-type]  # int subclasses, numpy
    except TypeError:
        return -1
    return count if count >= 0 else -1


class GenerationRecord:
    """A generation's state and counters. Mutated only by the ledger and :meth:`admit`.

    ``state`` is written last on every transition: :meth:`admit` reads it
    without the lock.
    """

    __slots__ = (
        "detail",
        "fmt",
        "forgotten",
        "frames_dropped",
        "frames_passed",
        "frames_straggling",
        "generation_id",
        "ledger",
        "reason",
        "request_id",
        "samples_dropped",
        "samples_passed",
        "samples_straggling",
        "state",
    )

    def __init__(self, generation_id: str, state: GenerationState, ledger: _Owner) -> None:
        self.generation_id = generation_id
        self.ledger = ledger
        self.fmt = ledger._fmt  # (sample rate, channels) every frame must have, or None
        self.forgotten = False  # set by the ledger when it drops this record from its table
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

    def admit(self, frame: Frame, buffered: bool = False) -> bool:
        """Decide whether one frame of this generation may play, and count it. The hot path.

        The one copy of the per-frame decision: ``Ledger.admit`` looks the
        record up and calls this, and ``Ledger.lane`` hands it out so an output
        stage admitting frame after frame of one generation skips the lookup.
        Never raises: a malformed frame is dropped and counted as ``MALFORMED``.

        Args:
            frame: The frame; only its metadata is read.
            buffered: Decide for an output stage behind a buffer: a retired
                generation's frames pass (see ``Ledger.admit_buffered``).

        Returns:
            ``True`` to play the frame, ``False`` to drop it.
        """
        try:
            samples = frame.samples_per_channel
            if samples.__class__ is not int or samples < 0:
                samples = sample_count(samples)  # slow path: an int subclass, numpy, junk
                if samples < 0:
                    return self.ledger._drop_malformed(self.generation_id, frame, None)
            # a slot read when the ledger has no format: reading the ledger's attributes
            # instead cost ~50 ns per frame through the gated LiveKit output
            fmt = self.fmt
            if fmt is not None:  # inline, not a call: a call cost 60-80 ns more per frame
                ledger = self.ledger
                if (
                    frame.sample_rate != fmt[0]
                    or frame.num_channels != fmt[1]
                    or (
                        frame.__class__ is not ledger._dtypeless
                        and getattr(frame, "dtype", None) != ledger._dtype
                        and ledger._dtype_differs(frame)
                    )
                ):
                    return ledger._drop_malformed(self.generation_id, frame, samples)
            if self.forgotten:  # a lane outlived the record: the ledger's table decides
                return self.ledger.admit(self.generation_id, frame, buffered)
            state = self.state
            if state is _LIVE or (buffered and state is _DONE):
                self.frames_passed += 1
                self.samples_passed += samples
                return True
            if state is _FLAGGED:
                self.frames_dropped += 1
                self.samples_dropped += samples
            else:
                self.frames_straggling += 1
                self.samples_straggling += samples
            return False
        except Exception:
            return self.ledger._drop_malformed(self.generation_id, frame, None)

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
