"""The OpenAI Realtime protocol: the tap that drives a gate from the raw events.

This package is library code a user imports::

    from integrations.openai_realtime import RealtimeTap

Its modules are private (``_tap``, ``_endings``, ``_attribution``, ``_audio_decode``,
``_events``, ``_items``, ``_history``, ``_connection``) and re-exported here.
:class:`GatedConnection` wraps the ``openai`` SDK's realtime connection so its audio
plays through the gate on a speaker sink. Two subpackages beside it are tooling, not library,
and the library imports neither:

- :mod:`integrations.openai_realtime.simulator`: a local, protocol-faithful Realtime
  server for tests and the demo (it imports nothing from the tap);
- :mod:`integrations.openai_realtime.trace`: recording, reading and replaying traces of
  the events (it drives the tap).
"""

from integrations.openai_realtime._attribution import stamp_response_create
from integrations.openai_realtime._audio_decode import (
    DEFAULT_OUTPUT_FORMAT,
    Encoding,
    OutputAudioFormat,
    decode_delta,
    output_format_from_session,
)
from integrations.openai_realtime._connection import GatedConnection, GatedSink
from integrations.openai_realtime._events import (
    AUDIO_DELTA_TYPES,
    Direction,
    MalformedEvent,
    MalformedEventError,
)
from integrations.openai_realtime._tap import RealtimeTap, TapAudio, UnattributedPolicy

__all__ = [
    "AUDIO_DELTA_TYPES",
    "DEFAULT_OUTPUT_FORMAT",
    "Direction",
    "Encoding",
    "GatedConnection",
    "GatedSink",
    "MalformedEvent",
    "MalformedEventError",
    "OutputAudioFormat",
    "RealtimeTap",
    "TapAudio",
    "UnattributedPolicy",
    "decode_delta",
    "output_format_from_session",
    "stamp_response_create",
]
