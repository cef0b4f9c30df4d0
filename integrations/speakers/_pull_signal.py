"""Wake coroutines waiting for room when the device's thread pulls a block."""

from __future__ import annotations

import asyncio
import contextlib

__all__ = ["PullSignal"]


class PullSignal:
    """An event set from the pulling thread (an audio callback), awaited on an event loop.

    Waiters share one future; :meth:`notify` resolves it through
    ``loop.call_soon_threadsafe``, so the pulling thread never blocks and only
    posts a callback while someone waits. A waiter re-checks after
    ``recheck`` seconds regardless, e.g. for a stream that stopped by itself.

    Args:
        recheck: Seconds a :meth:`wait` lasts at most.
    """

    def __init__(self, recheck: float = 0.25) -> None:
        self.recheck = recheck
        # Assigned only on the loop thread; the pulling thread only reads it.
        self._waiting: tuple[asyncio.AbstractEventLoop, asyncio.Future[None]] | None = None

    @property
    def waiting(self) -> bool:
        """Whether a coroutine waits (cheap; for the pulling thread)."""
        return self._waiting is not None

    async def wait(self) -> None:
        """Wait for the next :meth:`notify`, or :attr:`recheck` seconds."""
        waiting = self._waiting
        if waiting is None or waiting[1].done():
            loop = asyncio.get_running_loop()
            waiting = self._waiting = (loop, loop.create_future())
        # asyncio.wait, not wait_for: a timed-out waiter must not cancel the shared future.
        await asyncio.wait((waiting[1],), timeout=self.recheck)

    def notify(self) -> None:
        """Wake the waiters. Any thread; never blocks or raises."""
        waiting = self._waiting
        if waiting is not None:
            with contextlib.suppress(RuntimeError):  # its loop is closed: nobody waits
                waiting[0].call_soon_threadsafe(self._wake, waiting[1])

    def _wake(self, future: asyncio.Future[None]) -> None:
        # On the loop thread.
        waiting = self._waiting
        if waiting is not None and waiting[1] is future:
            self._waiting = None
        if not future.done():
            future.set_result(None)
