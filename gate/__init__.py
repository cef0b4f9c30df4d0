"""playback-gate: drop and purge audio of timed-out or cancelled generations.

The core has no heavy dependencies. Adapters for LiveKit, the OpenAI Realtime
protocol and local speakers live in the ``integrations`` package.
"""

from gate._audio_format import AudioFormat, Frame, PcmFrame
from gate._clock import Clock, MonotonicClock, VirtualClock
from gate._errors import (
    AlreadyBoundError,
    FrameFormatError,
    GateError,
    InvalidIdError,
    UnknownRequestError,
)
from gate._ledger import DEFAULT_REQUEST_TIMEOUT, Lane, Ledger
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
    "Clock",
    "Counts",
    "DropReason",
    "Frame",
    "FrameFormatError",
    "GateError",
    "GateStats",
    "GenerationInfo",
    "GenerationState",
    "InvalidIdError",
    "Lane",
    "Ledger",
    "MonotonicClock",
    "PcmFrame",
    "PlaybackGate",
    "PurgeSink",
    "UnknownRequestError",
    "VirtualClock",
    "__version__",
]
