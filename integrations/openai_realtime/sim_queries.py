"""Inspecting a simulator and waiting on it: the message log, response records, waits.

The simulator and its connections call :meth:`SimulatorQueries.notify` when their state
changes (a connection made or shut down, a response registered, created, cancel-requested
or ended); it wakes every ``wait_*`` call so it re-checks its condition.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from typing import Any

from integrations.openai_realtime.sim_connection import SimConnection
from integrations.openai_realtime.sim_records import Direction, LogEntry, ResponseRecord

__all__ = ["SimulatorQueries"]


class SimulatorQueries:
    """The read side of :class:`~integrations.openai_realtime.simulator.RealtimeSimulator`;
    mixed into it.

    Attributes:
        connections: Every connection made, in order.
        responses: Every response record, in order of creation.
    """

    connections: list[SimConnection]
    responses: list[ResponseRecord]
    _changed: asyncio.Event

    def notify(self) -> None:
        """Wake every ``wait_*`` call so it re-checks its condition."""
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()

    def log(
        self,
        *,
        type: str | None = None,
        direction: Direction | None = None,
        connection: int | None = None,
    ) -> list[LogEntry]:
        """Every logged message of every connection, in time order, optionally filtered.

        Args:
            type: Keep only this event type.
            direction: Keep only ``"recv"`` or ``"send"``.
            connection: Keep only this connection id.

        Returns:
            The entries.
        """
        entries = [
            e
            for conn in self.connections
            if connection is None or conn.id == connection
            for e in conn.log
            if (type is None or e.type == type) and (direction is None or e.direction == direction)
        ]
        entries.sort(key=lambda e: e.t)
        return entries

    def response_by_id(self, response_id: str) -> ResponseRecord:
        """Find a response by its ``response.id``.

        Args:
            response_id: The id.

        Returns:
            The record.

        Raises:
            KeyError: If no response has that id.
        """
        for record in self.responses:
            if record.response_id == response_id:
                return record
        raise KeyError(response_id)

    def iter_events(self, response: ResponseRecord) -> Iterator[dict[str, Any]]:
        """Yield the sent events that carry ``response``'s id, in order.

        Args:
            response: The response.

        Yields:
            The events.
        """
        for entry in self.log(direction="send", connection=response.connection):
            event = entry.event
            rid = event.get("response_id") or (event.get("response") or {}).get("id")
            if rid == response.response_id:
                yield event

    async def wait_until(self, predicate: Callable[[], bool], timeout: float = 5.0) -> None:
        """Wait until ``predicate()`` is true; it is re-checked on every state change.

        Args:
            predicate: The condition.
            timeout: Seconds to wait.

        Raises:
            TimeoutError: If it is still false after ``timeout``.
        """
        async with asyncio.timeout(timeout):
            while not predicate():
                await self._changed.wait()

    async def wait_for_connection(self, count: int = 1, timeout: float = 5.0) -> SimConnection:
        """Wait until ``count`` connections have been made.

        Args:
            count: Connection number to wait for (1 = the first).
            timeout: Seconds to wait.

        Returns:
            Connection number ``count``.

        Raises:
            TimeoutError: On timeout.
        """
        await self.wait_until(lambda: len(self.connections) >= count, timeout)
        return self.connections[count - 1]

    async def wait_for_response(self, number: int, timeout: float = 5.0) -> ResponseRecord:
        """Wait until response ``number`` exists (it may still be pending).

        Args:
            number: Simulator-wide response number (1 = the first).
            timeout: Seconds to wait.

        Returns:
            The record.

        Raises:
            TimeoutError: On timeout.
        """
        await self.wait_until(lambda: len(self.responses) >= number, timeout)
        return self.responses[number - 1]

    async def wait_done(self, record: ResponseRecord, timeout: float = 5.0) -> ResponseRecord:
        """Wait until a response ends (``response.done`` sent or connection dropped).

        Args:
            record: The response.
            timeout: Seconds to wait.

        Returns:
            The same record.

        Raises:
            TimeoutError: On timeout.
        """
        await asyncio.wait_for(record.done.wait(), timeout)
        return record
