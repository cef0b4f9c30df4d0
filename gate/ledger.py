"""The generation ledger: which generations may play, and the per-frame drop decision.

A *request* asks for a reply (e.g. the ``event_id`` of an OpenAI Realtime
``response.create``). A *generation* is the reply (its ``response.id``). The
ledger learns the pairing when the server announces the generation, and keeps:

- pending requests, each with a deadline on an injectable :class:`Clock`;
- live generations, whose frames pass;
- tombstones, flagged or retired generations, whose frames drop.

Memory is bounded by counts, not time: at most ``max_live`` live generations,
``max_tombstones`` generation tombstones, ``max_tombstones`` finished request
records and ``max_pending`` pending requests. When a bound is reached the
least recently *added* entry is forgotten (FIFO, a simple LRU on insertion).
Forgetting a tombstone means a straggler of that generation, arriving after
``max_tombstones`` newer generations ended, would pass as unknown; forgetting a
live generation only loses its request binding, never one of its frames.

Threads: control calls (``expect``, ``bind``, ``announce``, ``flag``,
``flag_request``, ``retire``, ``expire``) may come from any thread and
serialise on one short, O(1) lock. :meth:`Ledger.admit` reads a dict and an
attribute without the lock (each read is atomic under CPython's GIL), so an
audio callback never waits on the event loop. The only admit that takes the
lock is the first frame of a generation never seen before, once. A flag is
visible to every :meth:`Ledger.admit` that starts after :meth:`Ledger.flag`
returns.
"""

from __future__ import annotations

import heapq
import logging
import math
import threading
from collections import OrderedDict
from dataclasses import dataclass

from gate.audio_format import AudioFormat, Frame
from gate.clock import Clock, MonotonicClock
from gate.errors import AlreadyBoundError, GateError, InvalidIdError, UnknownRequestError
from gate.reasons import DropReason, GenerationState
from gate.stats import Counts, GateStats, GenerationInfo

__all__ = ["DEFAULT_REQUEST_TIMEOUT", "Binding", "Ledger"]

logger = logging.getLogger("playback_gate")

DEFAULT_REQUEST_TIMEOUT = 10.0
"""Seconds, the same as LiveKit Agents' ``generate_reply`` timeout."""

_LIVE = GenerationState.LIVE
_FLAGGED = GenerationState.FLAGGED
_DONE = GenerationState.DONE


class _Generation:
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


class _Request:
    __slots__ = ("deadline", "detail", "generation_id", "reason", "request_id")

    def __init__(self, request_id: str, deadline: float) -> None:
        self.request_id = request_id
        self.deadline = deadline
        self.generation_id: str | None = None
        self.reason: DropReason | None = None
        self.detail = ""

    @property
    def pending(self) -> bool:
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


def _check_id(kind: str, value: object) -> str:
    if not isinstance(value, str):
        raise InvalidIdError(f"{kind} id must be a str, got {type(value).__name__}: {value!r}")
    if not value:
        raise InvalidIdError(f"{kind} id must not be empty")
    return value


def _check_cap(name: str, value: int) -> int:
    if not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}")
    return value


def _check_timeout(timeout: float) -> float:
    if not isinstance(timeout, int | float) or not math.isfinite(timeout) or timeout < 0:
        raise ValueError(f"request timeout must be a finite number >= 0 seconds, got {timeout!r}")
    return float(timeout)


class Ledger:
    """Tracks requests and generations, and decides frame by frame.

    Args:
        audio_format: When given, :meth:`admit` drops (as ``MALFORMED``) any
            frame whose sample rate or channel count disagrees, and
            :meth:`check_frame` raises for it. ``None`` skips the check.
        clock: Time source for deadlines; :class:`MonotonicClock` by default.
        request_timeout: Default seconds a request may wait for its generation.
        max_live: Live generations kept; the oldest is forgotten beyond it.
        max_tombstones: Flagged or retired generations kept, and finished
            request records kept.
        max_pending: Pending requests allowed at once.

    Raises:
        ValueError: If a bound or the timeout is out of range.
    """

    def __init__(
        self,
        *,
        audio_format: AudioFormat | None = None,
        clock: Clock | None = None,
        request_timeout: float = DEFAULT_REQUEST_TIMEOUT,
        max_live: int = 1024,
        max_tombstones: int = 10_000,
        max_pending: int = 4096,
    ) -> None:
        self.audio_format = audio_format
        self.clock: Clock = clock if clock is not None else MonotonicClock()
        self.request_timeout = _check_timeout(request_timeout)
        self.max_live = _check_cap("max_live", max_live)
        self.max_tombstones = _check_cap("max_tombstones", max_tombstones)
        self.max_pending = _check_cap("max_pending", max_pending)
        self._rate = audio_format.sample_rate if audio_format else 0
        self._channels = audio_format.num_channels if audio_format else 0
        self._lock = threading.Lock()
        self._generations: dict[str, _Generation] = {}
        self._live_order: OrderedDict[str, None] = OrderedDict()
        self._tombstone_order: OrderedDict[str, None] = OrderedDict()
        self._requests: dict[str, _Request] = {}
        self._finished_requests: OrderedDict[str, None] = OrderedDict()
        self._pending = 0
        self._deadlines: list[tuple[float, int, str]] = []
        self._deadline_seq = 0
        self._forgotten: dict[DropReason | None, list[int]] = {}
        self._forgotten_passed = [0, 0]
        self._malformed = [0, 0]
        self._generations_seen = 0
        self._generations_flagged = 0
        self._requests_timed_out = 0
        self.last_timeout_at: float | None = None
        """Clock time of the most recent request timeout, for unattributed-reply policies."""

    # ---- the hot path -------------------------------------------------------

    def admit(self, generation_id: str, frame: Frame) -> bool:
        """Decide whether one frame may play. The hot path.

        O(1) and copy-free: it reads the frame's sample count (and format when
        the ledger has one) and bumps counters. It never raises: a malformed
        frame, or a bad id, is dropped and counted as ``MALFORMED``. A frame of
        a generation never seen before passes and starts tracking it.

        Args:
            generation_id: The frame's generation.
            frame: The frame; only its metadata is read.

        Returns:
            ``True`` to play the frame, ``False`` to drop it.
        """
        try:
            samples = frame.samples_per_channel
            if self._rate and (
                frame.sample_rate != self._rate or frame.num_channels != self._channels
            ):
                return self._drop_malformed(generation_id, frame, samples)
            gen = self._generations.get(generation_id)
            if gen is None:
                gen = self._track_unknown(generation_id)
            state = gen.state
            if state is _LIVE:
                gen.frames_passed += 1
                gen.samples_passed += samples
                return True
            if state is _FLAGGED:
                gen.frames_dropped += 1
                gen.samples_dropped += samples
            else:
                gen.frames_straggling += 1
                gen.samples_straggling += samples
            return False
        except Exception:
            return self._drop_malformed(generation_id, frame, None)

    def admit_buffered(self, generation_id: str, frame: Frame) -> bool:
        """Like :meth:`admit`, for an output stage behind a buffer.

        A frame reaching a track or speaker after ``response.done`` was usually
        received before it and only waited in a buffer, so here a retired
        generation's frames pass; only flagged generations drop. Use
        :meth:`admit` where frames arrive from the network, so true stragglers
        are caught there. Same cost and guarantees as :meth:`admit`.

        Args:
            generation_id: The frame's generation.
            frame: The frame; only its metadata is read.

        Returns:
            ``True`` to play the frame, ``False`` to drop it.
        """
        # Mirrors admit() line for line: one call level less on the hot path.
        try:
            samples = frame.samples_per_channel
            if self._rate and (
                frame.sample_rate != self._rate or frame.num_channels != self._channels
            ):
                return self._drop_malformed(generation_id, frame, samples)
            gen = self._generations.get(generation_id)
            if gen is None:
                gen = self._track_unknown(generation_id)
            if gen.state is not _FLAGGED:
                gen.frames_passed += 1
                gen.samples_passed += samples
                return True
            gen.frames_dropped += 1
            gen.samples_dropped += samples
            return False
        except Exception:
            return self._drop_malformed(generation_id, frame, None)

    def should_drop(self, generation_id: str) -> bool:
        """Return whether a new frame of ``generation_id`` would be dropped now.

        Counts nothing. True for retired generations too, so sinks re-checking
        audio they already admitted must use :meth:`is_flagged` instead: a
        retired generation's queued tail must still play. Unknown ids return
        ``False``. Never raises.

        Args:
            generation_id: The generation.

        Returns:
            ``True`` if the generation is flagged or retired.
        """
        try:
            gen = self._generations.get(generation_id)
        except Exception:
            return True
        return gen is not None and gen.state is not _LIVE

    def is_flagged(self, generation_id: str) -> bool:
        """Return whether ``generation_id`` is flagged (a retired one is not). Never raises.

        This is the check for sinks re-checking buffered audio on their own
        thread (e.g. an audio callback): flagged audio must go, a retired
        generation's already-admitted tail must play out.

        Args:
            generation_id: The generation.

        Returns:
            ``True`` if it is flagged.
        """
        try:
            gen = self._generations.get(generation_id)
        except Exception:
            return False
        return gen is not None and gen.state is _FLAGGED

    def check_frame(self, frame: Frame) -> None:
        """Raise if ``frame`` disagrees with the ledger's format (API boundaries).

        Args:
            frame: The frame to check.

        Raises:
            FrameFormatError: Naming the field that disagrees.
        """
        if self.audio_format is not None:
            self.audio_format.check(frame)

    # ---- requests -------------------------------------------------------------

    def expect(self, request_id: str, timeout: float | None = None) -> float:
        """Record a request whose generation is yet to be announced.

        Args:
            request_id: E.g. the ``event_id`` of a ``response.create``.
            timeout: Seconds until it times out; the ledger's default if ``None``.

        Returns:
            The deadline, in clock time.

        Raises:
            InvalidIdError: If ``request_id`` is empty or not a str.
            AlreadyBoundError: If the id is already known.
            ValueError: If ``timeout`` is negative or not finite.
            GateError: If ``max_pending`` requests are already waiting.
        """
        _check_id("request", request_id)
        wait = self.request_timeout if timeout is None else _check_timeout(timeout)
        with self._lock:
            now = self.clock.now()
            self._expire_locked(now)
            if request_id in self._requests:
                raise AlreadyBoundError(f"request {request_id!r} is already known")
            if self._pending >= self.max_pending:
                raise GateError(
                    f"too many pending requests ({self._pending}); bind or expire them first"
                )
            request = _Request(request_id, now + wait)
            self._requests[request_id] = request
            self._pending += 1
            self._deadline_seq += 1
            heapq.heappush(self._deadlines, (request.deadline, self._deadline_seq, request_id))
            self._compact_deadlines_locked()
            return request.deadline

    def bind(self, request_id: str, generation_id: str) -> Binding:
        """Pair a request with the generation the server announced for it.

        A request already flagged, or past its deadline, makes the generation
        dead on arrival: it is flagged with the request's reason (sinks purge)
        and the result says so, so the caller can send a targeted cancel.

        Args:
            request_id: The request's id.
            generation_id: The generation's id.

        Returns:
            Whether the generation is live, and if not, why.

        Raises:
            InvalidIdError: If an id is empty or not a str.
            UnknownRequestError: If the request was never expected (or forgotten).
            AlreadyBoundError: If the request, or the generation, is already bound.
        """
        _check_id("request", request_id)
        _check_id("generation", generation_id)
        flagged: _Generation | None = None
        with self._lock:
            now = self.clock.now()
            self._expire_locked(now)
            request = self._requests.get(request_id)
            if request is None:
                raise UnknownRequestError(
                    f"request {request_id!r} was never expected (or forgotten)"
                )
            if request.generation_id is not None:
                raise AlreadyBoundError(
                    f"request {request_id!r} is already bound to {request.generation_id!r}"
                )
            gen = self._generations.get(generation_id)
            if gen is not None and gen.request_id not in (None, request_id):
                raise AlreadyBoundError(
                    f"generation {generation_id!r} is already bound to request {gen.request_id!r}"
                )
            if request.pending:
                self._pending -= 1
            request.generation_id = generation_id
            self._finish_request_locked(request_id)
            if gen is None:
                gen = self._new_generation_locked(generation_id, _LIVE)
            gen.request_id = request_id
            if request.reason is not None and self._flag_locked(
                gen, request.reason, request.detail
            ):
                flagged = gen
            binding = Binding(request_id, generation_id, gen.state, gen.reason)
        if flagged is not None:
            self._on_flagged(flagged.info())
        return binding

    def flag_request(self, request_id: str, reason: DropReason, detail: str = "") -> str | None:
        """Flag a request: its generation, now or when announced, is dropped.

        An id never expected is recorded as flagged too, so a late
        ``expect``/``bind`` still finds it dead.

        Args:
            request_id: The request.
            reason: A flag reason (``DropReason.is_flag``).
            detail: Free text kept with the flag.

        Returns:
            The bound generation's id if the request was already bound, else ``None``.

        Raises:
            InvalidIdError: If ``request_id`` is empty or not a str.
            ValueError: If ``reason`` is not a flag reason.
        """
        _check_id("request", request_id)
        _check_reason(reason)
        flagged: _Generation | None = None
        with self._lock:
            request = self._requests.get(request_id)
            if request is None:
                request = _Request(request_id, self.clock.now())
                request.reason, request.detail = reason, detail
                self._requests[request_id] = request
                self._finish_request_locked(request_id)
            if request.generation_id is not None:
                gen = self._generations.get(request.generation_id)
                if gen is None:
                    gen = self._new_generation_locked(request.generation_id, _LIVE)
                    gen.request_id = request_id
                if self._flag_locked(gen, reason, detail):
                    flagged = gen
                generation_id: str | None = request.generation_id
            else:
                if request.pending:
                    self._pending -= 1
                    self._finish_request_locked(request_id)
                if request.reason is None:
                    request.reason, request.detail = reason, detail
                generation_id = None
        if flagged is not None:
            self._on_flagged(flagged.info())
        return generation_id

    def expire(self, now: float | None = None) -> list[str]:
        """Time out every pending request whose deadline has passed.

        A request is timed out once ``now >= deadline``. :meth:`bind` and
        :meth:`expect` also expire what is due, so a late bind is never missed
        even if nobody calls this.

        Args:
            now: Clock time to expire at; the clock's ``now()`` if ``None``.

        Returns:
            The ids of the requests that timed out in this call.
        """
        with self._lock:
            return self._expire_locked(self.clock.now() if now is None else now)

    def next_deadline(self) -> float | None:
        """Return the earliest pending deadline, for scheduling :meth:`expire`.

        Returns:
            Clock time, or ``None`` if nothing is pending.
        """
        with self._lock:
            while self._deadlines:
                deadline, _, request_id = self._deadlines[0]
                request = self._requests.get(request_id)
                if request is not None and request.pending and request.deadline == deadline:
                    return deadline
                heapq.heappop(self._deadlines)
            return None

    def request_generation(self, request_id: str) -> str | None:
        """Return the generation bound to a request, or ``None``. Never raises."""
        request = self._requests.get(request_id) if isinstance(request_id, str) else None
        return None if request is None else request.generation_id

    def pending_requests(self) -> list[str]:
        """Return the ids of requests still waiting for their generation, oldest first."""
        with self._lock:
            return [r.request_id for r in self._requests.values() if r.pending]

    # ---- generations ----------------------------------------------------------

    def announce(self, generation_id: str) -> bool:
        """Record a generation that no request of ours asked for (e.g. server VAD).

        Args:
            generation_id: The generation.

        Returns:
            ``True`` if it is live, ``False`` if it was already flagged or retired.

        Raises:
            InvalidIdError: If the id is empty or not a str.
        """
        _check_id("generation", generation_id)
        with self._lock:
            gen = self._generations.get(generation_id)
            if gen is None:
                gen = self._new_generation_locked(generation_id, _LIVE)
            return gen.state is _LIVE

    def flag(self, generation_id: str, reason: DropReason, detail: str = "") -> bool:
        """Flag a generation: drop its frames from now on and purge downstream.

        Flagging a retired generation still flags it (its audio may still be
        queued downstream). Flagging an unknown one records a flagged tombstone.

        Args:
            generation_id: The generation.
            reason: A flag reason (``DropReason.is_flag``).
            detail: Free text kept with the flag.

        Returns:
            ``True`` if this call flagged it, ``False`` if it already was.

        Raises:
            InvalidIdError: If the id is empty or not a str.
            ValueError: If ``reason`` is not a flag reason.
        """
        _check_id("generation", generation_id)
        _check_reason(reason)
        with self._lock:
            gen = self._generations.get(generation_id)
            if gen is None:
                gen = self._new_generation_locked(generation_id, _LIVE)
            changed = self._flag_locked(gen, reason, detail)
        if changed:
            self._on_flagged(gen.info())
        return changed

    def retire(self, generation_id: str) -> GenerationState:
        """Mark a generation's stream as finished; later frames are stragglers and drop.

        Args:
            generation_id: The generation.

        Returns:
            Its state afterwards: ``DONE``, or ``FLAGGED`` if it was flagged.

        Raises:
            InvalidIdError: If the id is empty or not a str.
        """
        _check_id("generation", generation_id)
        with self._lock:
            gen = self._generations.get(generation_id)
            if gen is None:
                gen = self._new_generation_locked(generation_id, _DONE)
            elif gen.state is _LIVE:
                gen.state = _DONE
                self._entomb_locked(gen)
            state = gen.state
        logger.debug("generation %s retired: %s", generation_id, _describe(gen))
        return state

    def generation(self, generation_id: str) -> GenerationInfo | None:
        """Return a snapshot of one generation, or ``None`` if unknown or forgotten."""
        gen = self._generations.get(generation_id) if isinstance(generation_id, str) else None
        return None if gen is None else gen.info()

    def generations(self) -> list[GenerationInfo]:
        """Return snapshots of every generation held, oldest first within each group."""
        with self._lock:
            return [g.info() for g in self._generations.values()]

    def stats(self) -> GateStats:
        """Return totals over the ledger's whole life."""
        with self._lock:
            passed = list(self._forgotten_passed)
            by_reason: dict[DropReason, Counts] = {}
            for reason, (frames, samples) in self._forgotten.items():
                key = DropReason.RETIRED if reason is None else reason
                by_reason[key] = by_reason.get(key, Counts()) + Counts(frames, samples)
            live = tombstones = 0
            for gen in self._generations.values():
                passed[0] += gen.frames_passed
                passed[1] += gen.samples_passed
                if gen.state is _LIVE:
                    live += 1
                else:
                    tombstones += 1
                if gen.frames_dropped:
                    key = gen.reason or DropReason.RETIRED
                    by_reason[key] = by_reason.get(key, Counts()) + Counts(
                        gen.frames_dropped, gen.samples_dropped
                    )
                if gen.frames_straggling:
                    by_reason[DropReason.RETIRED] = by_reason.get(
                        DropReason.RETIRED, Counts()
                    ) + Counts(gen.frames_straggling, gen.samples_straggling)
            if self._malformed[0]:
                by_reason[DropReason.MALFORMED] = Counts(*self._malformed)
            dropped = sum(by_reason.values(), Counts())
            return GateStats(
                passed=Counts(*passed),
                dropped=dropped,
                dropped_by_reason=dict(sorted(by_reason.items(), key=lambda kv: kv[0].value)),
                generations_seen=self._generations_seen,
                generations_flagged=self._generations_flagged,
                requests_timed_out=self._requests_timed_out,
                live_generations=live,
                tombstones=tombstones,
                pending_requests=self._pending,
            )

    def footprint(self) -> dict[str, int]:
        """Return how many records of each kind the ledger holds (for memory checks)."""
        with self._lock:
            return {
                "generations": len(self._generations),
                "live": len(self._live_order),
                "tombstones": len(self._tombstone_order),
                "requests": len(self._requests),
                "pending": self._pending,
                "deadlines": len(self._deadlines),
            }

    # ---- hooks and internals ----------------------------------------------------

    def _on_flagged(self, info: GenerationInfo) -> None:
        """Called once per newly flagged generation, outside the lock."""

    def _track_unknown(self, generation_id: str) -> _Generation:
        _check_id("generation", generation_id)
        with self._lock:
            gen = self._generations.get(generation_id)
            if gen is None:
                gen = self._new_generation_locked(generation_id, _LIVE)
            return gen

    def _drop_malformed(self, generation_id: object, frame: object, samples: object) -> bool:
        self._malformed[0] += 1
        if isinstance(samples, int):
            self._malformed[1] += samples
        if self._malformed[0] & (self._malformed[0] - 1) == 0:  # 1st, 2nd, 4th, 8th, ...
            logger.warning(
                "dropped malformed frame #%d (generation %r, %r); expected %s",
                self._malformed[0],
                generation_id,
                frame,
                self.audio_format or "a frame with samples_per_channel",
            )
        return False

    def _new_generation_locked(self, generation_id: str, state: GenerationState) -> _Generation:
        gen = _Generation(generation_id, state)
        self._generations[generation_id] = gen
        self._generations_seen += 1
        if state is _LIVE:
            self._live_order[generation_id] = None
            if len(self._live_order) > self.max_live:
                oldest, _ = self._live_order.popitem(last=False)
                self._forget_locked(oldest)
        else:
            self._entomb_locked(gen)
        return gen

    def _flag_locked(self, gen: _Generation, reason: DropReason, detail: str) -> bool:
        if gen.state is _FLAGGED:
            return False
        gen.reason, gen.detail = reason, detail
        was_live = gen.state is _LIVE
        gen.state = _FLAGGED  # set last: admit reads state alone
        self._generations_flagged += 1
        if was_live:
            self._entomb_locked(gen)
        return True

    def _entomb_locked(self, gen: _Generation) -> None:
        self._live_order.pop(gen.generation_id, None)
        self._tombstone_order[gen.generation_id] = None
        if len(self._tombstone_order) > self.max_tombstones:
            oldest, _ = self._tombstone_order.popitem(last=False)
            self._forget_locked(oldest)

    def _forget_locked(self, generation_id: str) -> None:
        gen = self._generations.pop(generation_id)
        self._forgotten_passed[0] += gen.frames_passed
        self._forgotten_passed[1] += gen.samples_passed
        for key, frames, samples in (
            (gen.reason, gen.frames_dropped, gen.samples_dropped),
            (None, gen.frames_straggling, gen.samples_straggling),
        ):
            if frames:
                acc = self._forgotten.setdefault(key, [0, 0])
                acc[0] += frames
                acc[1] += samples

    def _finish_request_locked(self, request_id: str) -> None:
        self._finished_requests[request_id] = None
        if len(self._finished_requests) > self.max_tombstones:
            oldest, _ = self._finished_requests.popitem(last=False)
            self._requests.pop(oldest, None)

    def _expire_locked(self, now: float) -> list[str]:
        timed_out: list[str] = []
        while self._deadlines and self._deadlines[0][0] <= now:
            deadline, _, request_id = heapq.heappop(self._deadlines)
            request = self._requests.get(request_id)
            if request is None or not request.pending or request.deadline != deadline:
                continue
            request.reason = DropReason.TIMED_OUT
            request.detail = "no generation announced before the deadline"
            self._pending -= 1
            self._requests_timed_out += 1
            self.last_timeout_at = deadline
            self._finish_request_locked(request_id)
            timed_out.append(request_id)
        if timed_out:
            logger.info("request(s) timed out: %s", ", ".join(timed_out))
        return timed_out

    def _compact_deadlines_locked(self) -> None:
        if len(self._deadlines) > 2 * self._pending + 64:
            self._deadlines = [
                entry
                for entry in self._deadlines
                if (r := self._requests.get(entry[2])) is not None
                and r.pending
                and r.deadline == entry[0]
            ]
            heapq.heapify(self._deadlines)


def _check_reason(reason: DropReason) -> None:
    if not isinstance(reason, DropReason) or not reason.is_flag:
        raise ValueError(f"not a flag reason: {reason!r}; use one of TIMED_OUT, CANCELLED, ...")


def _describe(gen: _Generation) -> str:
    return (
        f"{gen.state.value}, passed {gen.frames_passed} frames/{gen.samples_passed} samples, "
        f"dropped {gen.frames_dropped + gen.frames_straggling} frames/"
        f"{gen.samples_dropped + gen.samples_straggling} samples"
    )
