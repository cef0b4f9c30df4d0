"""A simulated real-time speaker on a virtual timeline, for replay.

Admitted audio queues and plays at 1x: sample ``n`` of the output plays at
``n / sample_rate`` seconds. When the queue runs dry the output is silence
until audio arrives again. :meth:`SimulatedPlayout.purge` (the gate's purge
sink protocol) removes a generation's unplayed audio at the current instant;
later audio closes the gap, as a real queue would.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable

import numpy as np
import numpy.typing as npt

from gate import ConfigurationError, DropReason

__all__ = ["SimulatedPlayout"]

Samples = npt.NDArray[np.int16]


class SimulatedPlayout:
    """A queue in front of a virtual speaker that plays mono int16 at 1x.

    Args:
        sample_rate: Output samples per second.
        write: Receives every output block (audio or silence) in order, e.g. a
            WAV writer. ``None`` keeps only the counts.
    """

    def __init__(self, sample_rate: int, write: Callable[[Samples], None] | None = None) -> None:
        if sample_rate <= 0:
            raise ConfigurationError(f"sample_rate must be positive, got {sample_rate}")
        self.sample_rate = sample_rate
        self._write = write
        self._queue: deque[tuple[str, Samples]] = deque()
        self._head_offset = 0  # samples of the queue's head already played
        self._queued = 0
        self.position = 0
        """Output samples emitted so far (audio and silence)."""
        self.silence = 0
        """Output samples of silence emitted so far."""
        self.played: dict[str, int] = {}
        """Samples played, per generation."""
        self.purged: dict[str, int] = {}
        """Samples removed unplayed by :meth:`purge`, per generation."""

    @property
    def queued(self) -> int:
        """Samples waiting to play."""
        return self._queued

    def advance_to(self, t: float) -> None:
        """Play until virtual time ``t`` (seconds); earlier times are a no-op.

        Args:
            t: The virtual time.
        """
        target = int(t * self.sample_rate + 1e-6)
        while self.position < target:
            if not self._queue:
                self._emit_silence(target - self.position)
                return
            generation_id, samples = self._queue[0]
            n = min(len(samples) - self._head_offset, target - self.position)
            self._emit(generation_id, samples[self._head_offset : self._head_offset + n])
            self._head_offset += n
            self._queued -= n
            if self._head_offset == len(samples):
                self._queue.popleft()
                self._head_offset = 0

    def enqueue(self, generation_id: str, samples: Samples) -> None:
        """Queue admitted audio behind whatever is queued.

        Args:
            generation_id: Its generation.
            samples: Mono int16 samples at :attr:`sample_rate`.
        """
        if len(samples):
            self._queue.append((generation_id, samples))
            self._queued += len(samples)

    def purge(self, generation_id: str, reason: DropReason) -> None:
        """Drop every queued, unplayed sample of ``generation_id`` (the purge sink protocol).

        Args:
            generation_id: The flagged generation.
            reason: Why it was flagged (unused).
        """
        kept: deque[tuple[str, Samples]] = deque()
        removed = 0
        for i, (gid, samples) in enumerate(self._queue):
            offset = self._head_offset if i == 0 else 0
            if gid == generation_id:
                removed += len(samples) - offset
            elif offset and i == 0:
                kept.append((gid, samples[offset:]))
            else:
                kept.append((gid, samples))
        if removed:
            self._queue = kept
            self._head_offset = 0
            self._queued -= removed
            self.purged[generation_id] = self.purged.get(generation_id, 0) + removed

    def drain(self) -> None:
        """Play everything still queued, back to back."""
        while self._queue:
            generation_id, samples = self._queue.popleft()
            self._emit(generation_id, samples[self._head_offset :])
            self._head_offset = 0
        self._queued = 0

    def _emit(self, generation_id: str, block: Samples) -> None:
        self.position += len(block)
        self.played[generation_id] = self.played.get(generation_id, 0) + len(block)
        if self._write is not None:
            self._write(block)

    def _emit_silence(self, n: int) -> None:
        self.position += n
        self.silence += n
        if self._write is not None:
            block = np.zeros(min(n, self.sample_rate), dtype=np.int16)
            while n > 0:  # one second at a time: a long gap never allocates much
                self._write(block[: min(n, len(block))])
                n -= len(block)
