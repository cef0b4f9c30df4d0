"""Every error the project raises, as one tree.

Each class also derives from the builtin that fits, so ``except ValueError`` and friends
keep working. The admission path (:meth:`gate.PlaybackGate.admit`) never raises, and no
error is ever raised into an audio callback. The adapters define the leaves marked with
their package; everything else lives here::

    GateError
    ├── ConfigurationError (ValueError)    a setting out of range: timeouts, caps, formats,
    │   │                                  clock steps, flag reasons, fades, buffer sizes
    │   └── OutputPathError                  openai_realtime.trace: an output that would
    │                                        overwrite the trace or the other output
    ├── InvalidTypeError (TypeError)       an argument of the wrong kind (a sink with no
    │                                      purge, a gate that is not a PlaybackGate)
    ├── InvalidIdError (ValueError)        a request or generation id: empty, not a str,
    │                                      or over 256 characters
    ├── UnknownRequestError (KeyError)     binding a request the gate never expected
    ├── AlreadyBoundError (ValueError)     a request or generation bound twice
    ├── FrameFormatError (ValueError)      a frame's rate, channels or dtype disagree
    ├── CapacityError (RuntimeError)       a bound is full: too many pending requests
    │   └── BufferFullError                  speakers: no room for a chunk
    ├── StateError (RuntimeError)          called in the wrong lifecycle state (closed, ...)
    │   └── SinkInactiveError                speakers: a write would wait on a stopped sink
    ├── ProtocolError (ValueError)         a malformed protocol event
    │   └── MalformedEventError              openai_realtime: an event the tap can't use
    ├── TraceError (ValueError)              openai_realtime.trace: a broken trace file
    ├── PlotUnavailableError (RuntimeError)  openai_realtime.trace: --plot without matplotlib
    ├── UnsupportedVersionError (RuntimeError)  a framework outside the tested range, or a
    │                                      private hook it no longer has
    └── SpeakerError (RuntimeError)          speakers: the device can't play
        ├── PortAudioMissingError            sounddevice or libportaudio2 missing
        └── NoOutputDeviceError              no output device, or not the one named
"""

from __future__ import annotations

__all__ = [
    "AlreadyBoundError",
    "CapacityError",
    "ConfigurationError",
    "FrameFormatError",
    "GateError",
    "InvalidIdError",
    "InvalidTypeError",
    "ProtocolError",
    "StateError",
    "UnknownRequestError",
    "UnsupportedVersionError",
]


class GateError(Exception):
    """Base class of every error the project raises."""


class ConfigurationError(GateError, ValueError):
    """A setting or argument value is out of range; the message names it."""


class InvalidTypeError(GateError, TypeError):
    """An argument is of the wrong kind; the message names what was expected."""


class InvalidIdError(GateError, ValueError):
    """A request or generation id is empty, not a string, or over ``MAX_ID_CHARS`` (256)."""


class UnknownRequestError(GateError, KeyError):
    """A request id the gate has never been told to expect (or has forgotten)."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "unknown request"


class AlreadyBoundError(GateError, ValueError):
    """A request, or a generation, is already bound to something else."""


class FrameFormatError(GateError, ValueError):
    """A frame's sample rate, channel count or dtype disagrees with the stream."""


class CapacityError(GateError, RuntimeError):
    """A bounded structure is full; the message says which bound and what to do."""


class StateError(GateError, RuntimeError):
    """An object was used in the wrong lifecycle state (for example after ``close``)."""


class ProtocolError(GateError, ValueError):
    """A protocol event is malformed: a missing or mistyped field, bad audio, bad JSON."""


class UnsupportedVersionError(GateError, RuntimeError):
    """A framework is outside the tested range, or lacks a hook the adapter needs."""
