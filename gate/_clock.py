"""Clocks for request deadlines.

The gate reads time only through a :class:`Clock`, so live code uses the
monotonic clock and replays and tests drive a :class:`VirtualClock`.
"""

from __future__ import annotations

import math
import time
from typing import Protocol, runtime_checkable

from gate._errors import ConfigurationError

__all__ = ["Clock", "MonotonicClock", "VirtualClock"]


@runtime_checkable
class Clock(Protocol):
    """Anything that tells the time in seconds, never going backwards."""

    def now(self) -> float:
        """Return the current time in seconds."""
        ...


class MonotonicClock:
    """The live clock: :func:`time.monotonic`."""

    def now(self) -> float:
        """Return :func:`time.monotonic`."""
        return time.monotonic()


class VirtualClock:
    """A clock that moves only when told to, for replay and tests.

    Args:
        start: The initial time in seconds.

    Raises:
        ConfigurationError: If ``start`` is not a finite number.
    """

    def __init__(self, start: float = 0.0) -> None:
        if not math.isfinite(start):
            raise ConfigurationError(f"VirtualClock start must be finite, got {start!r}")
        self._now = float(start)

    def now(self) -> float:
        """Return the virtual time in seconds."""
        return self._now

    def advance(self, seconds: float) -> float:
        """Move time forward.

        Args:
            seconds: How far to move, ``>= 0``.

        Returns:
            The new time.

        Raises:
            ConfigurationError: If ``seconds`` is negative or not finite.
        """
        if not math.isfinite(seconds) or seconds < 0:
            raise ConfigurationError(
                f"can only advance by a finite, non-negative step, got {seconds!r}"
            )
        self._now += seconds
        return self._now

    def set(self, t: float) -> None:
        """Jump to time ``t``.

        Args:
            t: The new time; must not be earlier than the current time.

        Raises:
            ConfigurationError: If ``t`` is earlier than now or not finite.
        """
        if not math.isfinite(t) or t < self._now:
            raise ConfigurationError(f"virtual time cannot go back from {self._now} to {t!r}")
        self._now = float(t)
