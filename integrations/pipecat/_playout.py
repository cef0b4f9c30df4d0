"""What the output transport holds and what it actually played, per response and item.

Pipecat's output transport re-chunks audio (and resamples it when its rate differs),
so a frame's tags do not survive inside it. This ledger rebuilds the mapping in
FIFO order: the gate's processor reports each audio frame it forwards
(:meth:`PlayoutLedger.forwarded`), the transport's pushes report each chunk it
wrote (:meth:`PlayoutLedger.played`) and each interruption that dropped what it
held (:meth:`PlayoutLedger.interrupted`).

An interruption leaves at most the chunk being written to play. When the transport
runs at the audio's own rate, chunks are byte-exact slices of what was forwarded,
so such a chunk is matched against the dropped audio by content; at another rate
it is attributed to no one. Either way a count can only fall short of what
played, never exceed it.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

__all__ = ["PlayoutLedger"]

_BYTES_PER_SAMPLE = 2
_RESYNC_SPANS = 8
_RESYNC_BYTES = 32


@dataclass(slots=True)
class _Span:
    """Forwarded audio of one item not yet played: ``audio[offset:]``."""

    response_id: str
    item_id: str
    audio: bytes
    rate: int
    offset: int = 0

    @property
    def left(self) -> int:
        return len(self.audio) - self.offset


@dataclass
class PlayoutLedger:
    """Forwarded, held and played audio (mono PCM16) per response and item.

    Attributes:
        played_bytes: Bytes played per item, at the item's own rate.
        played_by_response: Bytes played per response.
        unattributed_bytes: Bytes of chunks the ledger could not attribute.
    """

    played_bytes: dict[str, int] = field(default_factory=dict)
    played_by_response: dict[str, int] = field(default_factory=dict)
    unattributed_bytes: int = 0
    _pending: deque[_Span | None] = field(default_factory=deque)
    _doomed: deque[_Span] = field(default_factory=deque)

    def forwarded(self, response_id: str, item_id: str, audio: bytes, rate: int) -> None:
        """Record audio handed to the transport.

        Args:
            response_id: Its response.
            item_id: Its conversation item.
            audio: The PCM16 bytes (kept by reference, not copied).
            rate: Their sample rate.
        """
        if audio:
            self._pending.append(_Span(response_id, item_id, audio, rate))

    def barrier(self) -> None:
        """Mark that an interruption was sent to the transport after what is pending."""
        self._pending.append(None)

    def interrupted(self) -> None:
        """The transport dropped what it held up to the oldest barrier."""
        while self._pending:
            span = self._pending.popleft()
            if span is None:
                return
            self._doomed.append(span)

    def settle(self) -> None:
        """Give up on dropped audio: none of it will be reported played any more."""
        self._doomed.clear()

    def played(self, audio: bytes, rate: int) -> None:
        """Record one chunk the transport wrote.

        Args:
            audio: The chunk's PCM16 bytes.
            rate: The transport's rate.
        """
        if self._doomed:
            comparable = all(span.rate == rate for span in self._doomed)
            if comparable and self._consume(self._doomed, audio, rate):
                self._doomed.clear()  # the chunk in flight: the transport dropped the rest
                return
            self._doomed.clear()
            if not comparable:
                self.unattributed_bytes += len(audio)  # can't tell old audio from new
                return
        if not self._consume(self._pending, audio, rate):
            self.unattributed_bytes += len(audio)

    def holds(self) -> set[str]:
        """Return the responses with audio the transport holds and will play.

        Audio before a barrier is left out: an interruption is on its way to drop it.
        """
        held: set[str] = set()
        for span in self._pending:
            if span is None:
                held.clear()
            else:
                held.add(span.response_id)
        return held

    def responses_held(self) -> list[str]:
        """Return the responses of :meth:`holds`, oldest first."""
        found: dict[str, None] = {}
        for span in self._pending:
            if span is None:
                found.clear()
            else:
                found[span.response_id] = None
        return list(found)

    def held_bytes(self, response_id: str) -> int:
        """Return the bytes of ``response_id`` forwarded and not yet played or dropped.

        Args:
            response_id: The response.

        Returns:
            The byte count, at the audio's own rate.
        """
        return sum(s.left for s in self._pending if s is not None and s.response_id == response_id)

    def holds_response(self, response_id: str) -> bool:
        """Return whether any forwarded audio of ``response_id`` is neither played nor dropped.

        Args:
            response_id: The response.

        Returns:
            ``True`` while the transport may still play some of it.
        """
        return any(s is not None and s.response_id == response_id for s in self._pending)

    def played_samples(self, response_id: str) -> int:
        """Return the samples of ``response_id`` played (PCM16 mono, at its own rate).

        Args:
            response_id: The response.

        Returns:
            The sample count.
        """
        return self.played_by_response.get(response_id, 0) // _BYTES_PER_SAMPLE

    @property
    def unsettled(self) -> bool:
        """Whether audio dropped by an interruption may still show up as played (in flight)."""
        return bool(self._doomed)

    def played_ms(self, item_id: str, rate: int) -> int:
        """Return whole milliseconds of ``item_id`` played, rounded down.

        Args:
            item_id: The item.
            rate: The item's sample rate.

        Returns:
            The milliseconds.
        """
        return self.played_bytes.get(item_id, 0) * 1000 // (rate * _BYTES_PER_SAMPLE)

    # ---- internals ------------------------------------------------------------

    def _consume(self, spans: deque[_Span | None] | deque[_Span], audio: bytes, rate: int) -> bool:
        """Attribute a chunk to the spans in order, up to a barrier.

        At the audio's own rate every byte is checked against what was forwarded:
        attribution stops at the first difference (a flush's silence padding, or
        audio that is not ours), and a chunk that does not start where the oldest
        span stands is looked for a few spans on (audio the transport discarded
        on its own). At another rate bytes are converted and trusted.

        Returns:
            Whether any of the chunk was attributed.
        """
        if not spans or spans[0] is None:
            return False
        first = spans[0]
        exact = first.rate == rate
        view = memoryview(audio)
        if exact and not self._resync(spans, view):
            return False
        want = len(audio) if exact else (len(audio) * first.rate // rate) & ~1
        pos = 0
        while pos < want and spans:
            span = spans[0]
            if span is None:
                break  # an interruption the transport has yet to act on: don't cross it
            take = min(span.left, want - pos)
            if exact:
                take = _common_prefix(view[pos : pos + take], span.audio, span.offset)
                if take == 0:
                    break
            span.offset += take
            pos += take
            self.played_bytes[span.item_id] = self.played_bytes.get(span.item_id, 0) + take
            self.played_by_response[span.response_id] = (
                self.played_by_response.get(span.response_id, 0) + take
            )
            if span.left == 0:
                spans.popleft()
            elif exact and pos < want:
                break  # mismatch inside the span
        return pos > 0

    @staticmethod
    def _resync(spans: deque[_Span | None] | deque[_Span], view: memoryview) -> bool:
        for skip, span in enumerate(spans):
            if span is None or skip > _RESYNC_SPANS:
                return False
            k = min(_RESYNC_BYTES, len(view), span.left)
            if k and _common_prefix(view[:k], span.audio, span.offset) == k:
                for _ in range(skip):
                    spans.popleft()
                return True
        return False


def _common_prefix(chunk: memoryview, audio: bytes, offset: int) -> int:
    """Length (even) of the common prefix of ``chunk`` and ``audio[offset:]``."""
    n = min(len(chunk), len(audio) - offset)
    if chunk[:n] == memoryview(audio)[offset : offset + n]:
        return n
    lo, hi = 0, n  # binary search the first differing byte
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if chunk[:mid] == memoryview(audio)[offset : offset + mid]:
            lo = mid
        else:
            hi = mid - 1
    return lo & ~1
