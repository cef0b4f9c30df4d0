"""Traces of Realtime events: record, read, script and replay them (tooling).

- ``recorder`` writes a trace from a live session (keys and secrets scrubbed by ``scrub``);
- ``reader`` reads one back, bounded, with errors naming the line;
- ``script`` writes traces from Python, for tests and examples;
- ``replay`` (with ``playout`` and ``result``) replays a trace through the tap and a gate
  on a virtual clock; ``plot`` draws a replay's timeline (matplotlib, imported when
  drawing); ``cli`` is the ``playback-gate replay`` command.

It depends on the tap (:mod:`integrations.openai_realtime`) and the core; the library
never imports it.
"""

from integrations.openai_realtime.trace.reader import (
    DEFAULT_LIMITS,
    TraceEntry,
    TraceError,
    TraceLimits,
    iter_trace,
    read_trace,
)
from integrations.openai_realtime.trace.recorder import TraceRecorder
from integrations.openai_realtime.trace.replay import replay_entries, replay_file
from integrations.openai_realtime.trace.result import ReplayResult, ResponseOutcome
from integrations.openai_realtime.trace.script import TraceScript
from integrations.openai_realtime.trace.scrub import REDACTED, scrub

__all__ = [
    "DEFAULT_LIMITS",
    "REDACTED",
    "ReplayResult",
    "ResponseOutcome",
    "TraceEntry",
    "TraceError",
    "TraceLimits",
    "TraceRecorder",
    "TraceScript",
    "iter_trace",
    "read_trace",
    "replay_entries",
    "replay_file",
    "scrub",
]
