"""Errors raised at the gate's API boundary.

All derive from :class:`GateError`; each also derives from the builtin that
fits (``ValueError``, ``KeyError``, ``TypeError``) so generic handlers work.
The admission path (:meth:`gate.PlaybackGate.admit`) never raises.
"""

from __future__ import annotations

__all__ = [
    "AlreadyBoundError",
    "FrameFormatError",
    "GateError",
    "InvalidIdError",
    "UnknownRequestError",
]


class GateError(Exception):
    """Base class of every error the gate raises."""


class InvalidIdError(GateError, ValueError):
    """A request or generation id is empty or not a string."""


class UnknownRequestError(GateError, KeyError):
    """A request id the gate has never been told to expect (or has forgotten)."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "unknown request"


class AlreadyBoundError(GateError, ValueError):
    """A request, or a generation, is already bound to something else."""


class FrameFormatError(GateError, ValueError):
    """A frame's sample rate, channel count or dtype disagrees with the stream."""
