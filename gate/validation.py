"""Argument checks at the gate's API boundary; each error names the problem."""

from __future__ import annotations

import math

from gate._errors import ConfigurationError, InvalidIdError
from gate._reasons import DropReason

__all__ = ["check_cap", "check_id", "check_reason", "check_timeout"]


def check_id(kind: str, value: object) -> str:
    """Return ``value`` if it is a non-empty str.

    Raises:
        InvalidIdError: Naming ``kind`` ("request" or "generation") and the value.
    """
    if not isinstance(value, str):
        raise InvalidIdError(f"{kind} id must be a str, got {type(value).__name__}: {value!r}")
    if not value:
        raise InvalidIdError(f"{kind} id must not be empty")
    return value


def check_cap(name: str, value: int) -> int:
    """Return ``value`` if it is a positive int.

    Raises:
        ConfigurationError: Naming the setting.
    """
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ConfigurationError(f"{name} must be a positive int, got {value!r}")
    return value


def check_timeout(timeout: float, name: str = "request timeout") -> float:
    """Return ``timeout`` (seconds) as a float if it is finite and ``>= 0``.

    Raises:
        ConfigurationError: Naming the setting, if it is negative, infinite, NaN or not a number.
    """
    if (
        not isinstance(timeout, int | float)
        or isinstance(timeout, bool)
        or not math.isfinite(timeout)
        or timeout < 0
    ):
        raise ConfigurationError(f"{name} must be a finite number >= 0 seconds, got {timeout!r}")
    return float(timeout)


def check_reason(reason: DropReason) -> None:
    """Accept only flag reasons.

    Raises:
        ConfigurationError: If ``reason`` is ``RETIRED``, ``MALFORMED`` or not a ``DropReason``.
    """
    if not isinstance(reason, DropReason) or not reason.is_flag:
        raise ConfigurationError(
            f"not a flag reason: {reason!r}; use one of TIMED_OUT, CANCELLED, ..."
        )
