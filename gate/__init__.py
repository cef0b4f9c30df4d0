"""playback-gate: drop and purge audio of timed-out or cancelled generations.

The core: numpy and the standard library only. Its modules are private and everything
public is re-exported here; ``gate.validation`` (argument checks the adapters share) and
``gate.cli`` (the console-script host) are the two public submodules. The errors form one
tree, drawn in the docstring of :mod:`gate._errors`. Adapters for frameworks and protocols
live in a separate package and import this one, never the other way round.
"""

from gate._audio_format import AudioFormat, Frame, PcmFrame
from gate._clock import Clock, MonotonicClock, VirtualClock
from gate._errors import (
    AlreadyBoundError,
    CapacityError,
    ConfigurationError,
    FrameFormatError,
    GateError,
    InvalidIdError,
    InvalidTypeError,
    ProtocolError,
    StateError,
    UnknownRequestError,
    UnsupportedVersionError,
)
from gate._ledger import DEFAULT_REQUEST_TIMEOUT, Ledger
from gate._playback_gate import PlaybackGate
from gate._reasons import DropReason, GenerationState
from gate._records import Binding
from gate._sink import PurgeSink
from gate._stats import Counts, GateStats, GenerationInfo

__version__ = "0.1.0"

__all__ = [
    "DEFAULT_REQUEST_TIMEOUT",
    "AlreadyBoundError",
    "AudioFormat",
    "Binding",
    "CapacityError",
    "Clock",
    "ConfigurationError",
    "Counts",
    "DropReason",
    "Frame",
    "FrameFormatError",
    "GateError",
    "GateStats",
    "GenerationInfo",
    "GenerationState",
    "InvalidIdError",
    "InvalidTypeError",
    "Ledger",
    "MonotonicClock",
    "PcmFrame",
    "PlaybackGate",
    "ProtocolError",
    "PurgeSink",
    "StateError",
    "UnknownRequestError",
    "UnsupportedVersionError",
    "VirtualClock",
    "__version__",
]
