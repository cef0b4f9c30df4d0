"""The generation ledger: which generations may play, and the per-frame drop decision.

A *request* asks for a reply (e.g. the ``event_id`` of an OpenAI Realtime
``response.create``). A *generation* is the reply (its ``response.id``). The
ledger learns the pairing when the server announces the generation, and keeps:

- pending requests, each with a deadline on an injectable :class:`Clock`;
- live generations, whose frames pass;
- tombstones, flagged or retired generations, whose frames drop.

Memory is bounded by counts, not time: at most ``max_live`` live generations,
``max_tombstones`` retired generations, ``max_flagged`` flagged generations,
``max_tombstones`` finished request records and ``max_pending`` pending
requests. When a bound is reached the least recently *added* entry of that kind
is forgotten (FIFO, a simple LRU on insertion). Flagged and retired tombstones
are kept apart, so no flood of retirements (a hostile server's ``response.done``
for made-up ids) can push out the tombstone of a flagged generation that is
still sending; only ``max_flagged`` newer flags can, and
:attr:`GateStats.flagged_forgotten` counts each time that happens. Forgetting a
retired tombstone means a straggler of it would pass as unknown; forgetting a
live generation only loses its request binding, never one of its frames.

Memory is bounded in bytes too: every id is at most
:data:`~gate.validation.MAX_ID_CHARS` (256) characters (longer ones are refused
with :class:`InvalidIdError`; :meth:`Ledger.admit` drops such a frame as
``MALFORMED`` and stores nothing) and a flag's detail is cut to
:data:`~gate.validation.MAX_DETAIL_CHARS` (512). With the defaults the ledger
holds at most 1,024 + 2 x 10,000 + 10,000 + 4,096 records of a few hundred bytes
each plus their ids: under 30 MB however hostile the input.

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

import logging
import reprlib
import threading
from typing import Protocol

from gate._audio_format import AudioFormat, Frame
from gate._bounded_order import BoundedOrder
from gate._clock import Clock, MonotonicClock
from gate._deadline_queue import DeadlineQueue
from gate._errors import AlreadyBoundError, CapacityError, UnknownRequestError
from gate._reasons import DropReason, GenerationState
from gate._records import Binding, GenerationRecord, RequestRecord
from gate._stats import GateStats, GenerationInfo
from gate._tally import Tally
from gate.validation import check_cap, check_id, check_reason, check_timeout, clip_detail

__all__ = ["DEFAULT_REQUEST_TIMEOUT", "Binding", "Lane", "Ledger"]

logger = logging.getLogger("playback_gate")

DEFAULT_REQUEST_TIMEOUT = 10.0
"""Seconds, the same as LiveKit Agents' ``generate_reply`` timeout."""

_LIVE = GenerationState.LIVE
_FLAGGED = GenerationState.FLAGGED
_DONE = GenerationState.DONE


class Lane(Protocol):
    """One generation's admission, from :meth:`Ledger.lane`: ``lane(frame, buffered=False)``."""

    def __call__(self, frame: Frame, buffered: bool = False) -> bool:
        """Decide and count one frame, as ``Ledger.admit(generation_id, frame, buffered)``."""
        ...


class Ledger:
    """Tracks requests and generations, and decides frame by frame.

    Args:
        audio_format: When given, :meth:`admit` drops (as ``MALFORMED``) any
            frame whose sample rate or channel count disagrees, and
            :meth:`check_frame` raises for it. ``None`` skips the check.
        clock: Time source for deadlines; :class:`MonotonicClock` by default.
        request_timeout: Default seconds a request may wait for its generation.
        max_live: Live generations kept; the oldest is forgotten beyond it.
        max_tombstones: Retired generations kept, and finished request
            records kept.
        max_pending: Pending requests allowed at once.
        max_flagged: Flagged generations kept; ``max_tombstones`` if ``None``.

    Raises:
        ConfigurationError: If a bound or the timeout is out of range.
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
        max_flagged: int | None = None,
    ) -> None:
        self.audio_format = audio_format
        self.clock: Clock = clock if clock is not None else MonotonicClock()
        self.request_timeout = check_timeout(request_timeout)
        self.max_live = check_cap("max_live", max_live)
        self.max_tombstones = check_cap("max_tombstones", max_tombstones)
        self.max_pending = check_cap("max_pending", max_pending)
        self.max_flagged = check_cap(
            "max_flagged", self.max_tombstones if max_flagged is None else max_flagged
        )
        self._rate = audio_format.sample_rate if audio_format else 0
        self._channels = audio_format.num_channels if audio_format else 0
        self._dtype = audio_format.dtype if audio_format else "int16"
        self._dtypeless: type | None = None  # a frame class with no dtype (LiveKit's): int16
        # (sample rate, channels) every frame must have, or None; every record holds this tuple
        self._fmt = (self._rate, self._channels) if audio_format else None
        self._lock = threading.Lock()
        self._generations: dict[str, GenerationRecord] = {}
        self._live_order = BoundedOrder(self.max_live)
        self._tombstone_order = BoundedOrder(self.max_tombstones)  # retired only
        self._flagged_order = BoundedOrder(self.max_flagged)
        self._tombstones_forgotten = 0
        self._flagged_forgotten = 0
        self._requests: dict[str, RequestRecord] = {}
        self._finished_requests = BoundedOrder(self.max_tombstones)
        self._pending = 0
        self._deadlines = DeadlineQueue()
        self._tally = Tally()
        self._generations_seen = 0
        self._generations_flagged = 0
        self._requests_timed_out = 0
        self.last_timeout_at: float | None = None
        """Clock time of the most recent request timeout, for unattributed-reply policies."""

    # ---- the hot path -------------------------------------------------------

    def admit(self, generation_id: str, frame: Frame, buffered: bool = False) -> bool:
        """Decide whether one frame may play. The hot path.

        O(1) and copy-free: it reads the frame's sample count (and format when
        the ledger has one) and bumps counters. It never raises: a malformed
        frame (a sample count that is not an int ``>= 0``; a rate, channel count
        or dtype unlike the ledger's format) or a bad id (not a str, empty, or
        longer than ``MAX_ID_CHARS``) is dropped, counted once as ``MALFORMED``
        and stored nowhere. A frame of a generation never seen before passes and
        starts tracking it. A frame without a ``dtype`` attribute (LiveKit's) is
        int16.

        Cost of these checks, measured with ``timeit`` (best of 15 x 200k calls,
        interleaved with the unchecked code, 2 busy cores): the sample-count
        check adds 12-15 ns to every frame; the dtype check, only on a ledger
        with an ``audio_format``, adds about 35 ns more for a ``PcmFrame``
        (124 -> 173 ns in all) and about 10 ns for an ``rtc.AudioFrame``, whose
        class is remembered as dtype-less (236 -> 262 ns in all). Sharing the
        decision with :meth:`lane` (no second copy of it) adds one call level:
        with an ``audio_format``, 206-226 ns for a ``PcmFrame`` and 278-285 ns for
        an ``rtc.AudioFrame``; without one, 131-141 and 168-183 ns (same method).

        Args:
            generation_id: The frame's generation.
            frame: The frame; only its metadata is read.
            buffered: Decide for an output stage behind a buffer (see
                :meth:`admit_buffered`).

        Returns:
            ``True`` to play the frame, ``False`` to drop it.
        """
        # The decision itself is GenerationRecord.admit, shared with lane() and
        # admit_buffered(). A copy of it inline here would save the call level: 25-30 ns
        # per frame (timeit, best of 15-25 x 200k calls, this 2-CPU machine), 0.0003 % of a
        # 10 ms frame: not worth a second copy to keep in sync.
        try:
            gen = self._generations.get(generation_id)
            if gen is None:
                gen = self._track_unknown(generation_id)
        except Exception:  # an unhashable or invalid id
            return self._drop_malformed(generation_id, frame, None)
        return gen.admit(frame, buffered)

    def admit_buffered(self, generation_id: str, frame: Frame) -> bool:
        """Like :meth:`admit`, for an output stage behind a buffer.

        A frame reaching a track or speaker after ``response.done`` was usually
        received before it and only waited in a buffer, so here a retired
        generation's frames pass; only flagged generations drop. Use
        :meth:`admit` where frames arrive from the network, so true stragglers
        are caught there. Same guarantees as :meth:`admit`, and
        ``admit(generation_id, frame, buffered=True)``; an output stage that
        admits frame after frame of one generation can take its :meth:`lane`.

        Args:
            generation_id: The frame's generation.
            frame: The frame; only its metadata is read.

        Returns:
            ``True`` to play the frame, ``False`` to drop it.
        """
        return self.admit(generation_id, frame, True)

    def lane(self, generation_id: str) -> Lane:
        """Return one generation's own admission: ``lane(frame, buffered=False)``.

        It decides and counts exactly like ``admit(generation_id, frame,
        buffered)``, without looking the generation up: for an output stage
        that admits frame after frame of the same generation (a gated LiveKit
        output keeps one per segment). It stays right for the generation's
        whole life: a flag is seen by the next call, and once the ledger has
        forgotten the generation it defers to :meth:`admit`. A generation never
        seen before starts being tracked, as its first admitted frame would.

        Args:
            generation_id: The generation.

        Returns:
            The callable; it never raises.

        Raises:
            InvalidIdError: If ``generation_id`` is not a valid id.
        """
        gen = self._generations.get(generation_id) if isinstance(generation_id, str) else None
        if gen is None:
            gen = self._track_unknown(generation_id)
        return gen.admit

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

        A request flagged before it was expected (see :meth:`flag_request`)
        stays flagged: expecting it is a no-op.

        Returns:
            The deadline, in clock time.

        Raises:
            InvalidIdError: If ``request_id`` is empty or not a str.
            AlreadyBoundError: If the id is already pending, bound or timed out.
            ConfigurationError: If ``timeout`` is negative or not finite.
            CapacityError: If ``max_pending`` requests are already waiting.
        """
        check_id("request", request_id)
        wait = self.request_timeout if timeout is None else check_timeout(timeout)
        with self._lock:
            now = self.clock.now()
            self._expire_locked(now)
            known = self._requests.get(request_id)
            if known is not None:
                if known.generation_id is None and known.reason is not None:
                    return known.deadline  # flagged before it was expected: stays flagged
                raise AlreadyBoundError(f"request {request_id!r} is already known")
            if self._pending >= self.max_pending:
                raise CapacityError(
                    f"too many pending requests ({self._pending}); bind or expire them first"
                )
            request = RequestRecord(request_id, now + wait)
            self._requests[request_id] = request
            self._pending += 1
            self._deadlines.push(request.deadline, request_id)
            self._deadlines.compact(self._is_pending_deadline, self._pending)
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
        check_id("request", request_id)
        check_id("generation", generation_id)
        flagged: GenerationRecord | None = None
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
            ConfigurationError: If ``reason`` is not a flag reason.
        """
        check_id("request", request_id)
        check_reason(reason)
        flagged: GenerationRecord | None = None
        with self._lock:
            request = self._requests.get(request_id)
            if request is None:
                request = RequestRecord(request_id, self.clock.now())
                request.reason, request.detail = reason, clip_detail(detail)
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
                    request.reason, request.detail = reason, clip_detail(detail)
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
            while (entry := self._deadlines.peek()) is not None:
                if self._is_pending_deadline(*entry):
                    return entry[0]
                self._deadlines.pop()
            return None

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
        check_id("generation", generation_id)
        with self._lock:
            gen = self._get_or_add_live_locked(generation_id)
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
            ConfigurationError: If ``reason`` is not a flag reason.
        """
        check_id("generation", generation_id)
        check_reason(reason)
        with self._lock:
            gen = self._get_or_add_live_locked(generation_id)
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
        check_id("generation", generation_id)
        with self._lock:
            gen = self._generations.get(generation_id)
            if gen is None:
                gen = self._new_generation_locked(generation_id, _DONE)
            elif gen.state is _LIVE:
                gen.state = _DONE
                self._entomb_locked(gen)
            state = gen.state
        logger.debug("generation %s retired: %s", generation_id, gen.describe())
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
            return self._tally.snapshot(
                self._generations.values(),
                generations_seen=self._generations_seen,
                generations_flagged=self._generations_flagged,
                requests_timed_out=self._requests_timed_out,
                pending_requests=self._pending,
                tombstones_forgotten=self._tombstones_forgotten,
                flagged_forgotten=self._flagged_forgotten,
            )

    def footprint(self) -> dict[str, int]:
        """Return how many records of each kind the ledger holds (for memory checks).

        ``tombstones`` counts retired generations, ``flagged`` flagged ones (each
        kind has its own FIFO and cap).
        """
        with self._lock:
            return {
                "generations": len(self._generations),
                "live": len(self._live_order),
                "tombstones": len(self._tombstone_order),
                "flagged": len(self._flagged_order),
                "requests": len(self._requests),
                "pending": self._pending,
                "deadlines": len(self._deadlines),
            }

    # ---- hooks and internals ----------------------------------------------------

    def _on_flagged(self, info: GenerationInfo) -> None:
        """Called once per newly flagged generation, outside the lock."""

    def _track_unknown(self, generation_id: str) -> GenerationRecord:
        check_id("generation", generation_id)
        with self._lock:
            gen = self._get_or_add_live_locked(generation_id)
            return gen

    def _dtype_differs(self, frame: Frame) -> bool:
        """The dtype check's slow path: a frame without ``dtype`` is int16 (LiveKit's).

        Such a class is remembered, so its frames skip the ``getattr`` from then on
        (a miss costs about 50 ns on an ``rtc.AudioFrame``).
        """
        dtype = getattr(frame, "dtype", None)
        if dtype is not None:
            return bool(dtype != self._dtype)
        if self._dtype == "int16" and not hasattr(frame.__class__, "dtype"):
            self._dtypeless = frame.__class__
        return self._dtype != "int16"

    def _drop_malformed(self, generation_id: object, frame: object, samples: object) -> bool:
        count = self._tally.count_malformed(samples)
        if count & (count - 1) == 0:  # log the 1st, 2nd, 4th, 8th, ...
            logger.warning(
                "dropped malformed frame #%d (generation %s, %s); expected %s",
                count,
                reprlib.repr(generation_id),  # bounded: the id may be huge
                reprlib.repr(frame),
                self.audio_format or "a frame with samples_per_channel",
            )
        return False

    def _get_or_add_live_locked(self, generation_id: str) -> GenerationRecord:
        """The generation's record, added as a live one if the ledger has none."""
        gen = self._generations.get(generation_id)
        return gen if gen is not None else self._new_generation_locked(generation_id, _LIVE)

    def _new_generation_locked(
        self, generation_id: str, state: GenerationState
    ) -> GenerationRecord:
        gen = GenerationRecord(generation_id, state, self)
        self._generations[generation_id] = gen
        self._generations_seen += 1
        if state is _LIVE:
            self._forget_locked(self._live_order.add(generation_id))
        else:
            self._entomb_locked(gen)
        return gen

    def _flag_locked(self, gen: GenerationRecord, reason: DropReason, detail: str) -> bool:
        if gen.state is _FLAGGED:
            return False
        gen.reason, gen.detail = reason, clip_detail(detail)
        gen.state = _FLAGGED  # set last: admit reads state alone
        self._generations_flagged += 1
        self._entomb_locked(gen)  # from live, or from the retired FIFO to the flagged one
        return True

    def _entomb_locked(self, gen: GenerationRecord) -> None:
        gid = gen.generation_id
        self._live_order.discard(gid)
        if gen.state is _FLAGGED:
            self._tombstone_order.discard(gid)
            forgotten = self._flagged_order.add(gid)
            if forgotten is not None:
                self._flagged_forgotten += 1
                if self._flagged_forgotten & (self._flagged_forgotten - 1) == 0:
                    logger.warning(
                        "forgot flagged generation %s: %d flagged generations forgotten so far "
                        "(max_flagged=%d): a flood of flags, or raise max_flagged",
                        forgotten,
                        self._flagged_forgotten,
                        self.max_flagged,
                    )
        else:
            forgotten = self._tombstone_order.add(gid)
            if forgotten is not None:
                self._tombstones_forgotten += 1
        self._forget_locked(forgotten)

    def _forget_locked(self, generation_id: str | None) -> None:
        if generation_id is not None:
            gen = self._generations.pop(generation_id)
            gen.forgotten = True  # a lane still holding it defers to the table from now on
            self._tally.forget(gen)

    def _finish_request_locked(self, request_id: str) -> None:
        forgotten = self._finished_requests.add(request_id)
        if forgotten is not None:
            self._requests.pop(forgotten, None)

    def _is_pending_deadline(self, deadline: float, request_id: str) -> bool:
        request = self._requests.get(request_id)
        return request is not None and request.pending and request.deadline == deadline

    def _expire_locked(self, now: float) -> list[str]:
        timed_out: list[str] = []
        for deadline, request_id in self._deadlines.pop_due(now):
            if not self._is_pending_deadline(deadline, request_id):
                continue
            request = self._requests[request_id]
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
