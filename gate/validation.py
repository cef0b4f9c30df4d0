"""Argument checks at the gate's API boundary; each error names the problem."""

from __future__ import annotations

import math
import reprlib

from gate._errors import ConfigurationError, InvalidIdError
from gate._reasons import DropReason

__all__ = [
    "MAX_DETAIL_CHARS",
    "MAX_ID_CHARS",
    "check_cap",
    "check_id",
    "check_reason",
    "check_timeout",
    "clip_detail",
]

MAX_ID_CHARS = 256
"""Longest request or generation id the gate accepts. Ids come from outside (a server's
``response.id``), so this bound, times the ledger's count bounds, caps its memory in bytes.
Real ids are far shorter (OpenAI's are about 30 characters)."""

MAX_DETAIL_CHARS = 512
"""Longest flag detail kept; a longer one is cut (it is free text, often a server's)."""


def check_id(kind: str, value: object) -> str:
    """Return ``value`` if it is a non-empty str of at most :data:`MAX_ID_CHARS` characters.

    Raises:
        InvalidIdError: Naming ``kind`` ("request" or "generation") and the problem; an
            oversized id is named by its length only, never echoed.
    """
    if not isinstance(value, str):
        shown = reprlib.repr(value)  # bounded: the value may be huge
        raise InvalidIdError(f"{kind} id must be a str, got {type(value).__name__}: {shown}")
    if not value:
        raise InvalidIdError(f"{kind} id must not be empty")
    if len(value) > MAX_ID_CHARS:
        raise InvalidIdError(
            f"{kind} id is {len(value)} characters long, over the limit of {MAX_ID_CHARS}"
        )
    return value


def clip_detail(detail: str) -> str:
    """Return ``detail`` cut to :data:`MAX_DETAIL_CHARS` (flag details are free text).

    Args:
        detail: The text; a non-str is turned into its ``str``.

    Returns:
        The text, at most :data:`MAX_DETAIL_CHARS` characters.
    """
    if not isinstance(detail, str):
        detail = str(detail)
    if len(detail) <= MAX_DETAIL_CHARS:
        return detail
    return detail[: MAX_DETAIL_CHARS - 3] + "..."


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
