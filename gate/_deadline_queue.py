"""Pending deadlines, earliest first, with lazy deletion."""

from __future__ import annotations

import heapq
from collections.abc import Callable

__all__ = ["DeadlineQueue"]


class DeadlineQueue:
    """A min-heap of ``(deadline, key)``.

    Entries are never removed when their key stops mattering (a request gets
    bound); the owner skips them when they come due and calls :meth:`compact`
    so stale entries cannot pile up.
    """

    __slots__ = ("_heap", "_seq")

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, str]] = []
        self._seq = 0

    def push(self, deadline: float, key: str) -> None:
        """Add an entry; ties keep insertion order."""
        self._seq += 1
        heapq.heappush(self._heap, (deadline, self._seq, key))

    def peek(self) -> tuple[float, str] | None:
        """Return the earliest entry without removing it, or ``None``."""
        if not self._heap:
            return None
        deadline, _, key = self._heap[0]
        return deadline, key

    def pop(self) -> tuple[float, str]:
        """Remove and return the earliest entry.

        Raises:
            IndexError: If the queue is empty.
        """
        deadline, _, key = heapq.heappop(self._heap)
        return deadline, key

    def pop_due(self, now: float) -> list[tuple[float, str]]:
        """Remove and return every entry with ``deadline <= now``, earliest first."""
        due: list[tuple[float, str]] = []
        while self._heap and self._heap[0][0] <= now:
            due.append(self.pop())
        return due

    def compact(self, keep: Callable[[float, str], bool], live: int) -> None:
        """Drop stale entries once they outnumber the live ones.

        Args:
            keep: Whether an entry still matters.
            live: How many entries still matter.
        """
        if len(self._heap) > 2 * live + 64:
            self._heap = [e for e in self._heap if keep(e[0], e[2])]
            heapq.heapify(self._heap)

    def __len__(self) -> int:
        return len(self._heap)
