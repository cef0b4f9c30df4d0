"""A local, protocol-faithful OpenAI Realtime API server (tooling, not library).

It speaks the GA event names on 127.0.0.1 only; every event it sends validates against
the ``openai`` package's schema. Misbehaviour is chosen per response with a
:class:`ResponsePlan`. Its audio identifies itself (:mod:`.audio_marker`).

Modules, top to bottom: ``server`` (the aiohttp app, connections, the read side and the
``wait_*`` helpers) -> ``connection`` (one websocket) -> ``conversation`` (session, input
buffer, items) and ``responses`` (one streamed reply), which meet only through the
protocols in ``ports``; ``plans``, ``records``, ``protocol`` and ``audio_marker`` are leaves.
``cli`` is the ``playback-gate simulator`` command. Nothing here imports the tap.
"""

from integrations.openai_realtime.simulator.plans import DropMode, ResponsePlan
from integrations.openai_realtime.simulator.records import LogEntry, ResponseRecord
from integrations.openai_realtime.simulator.server import HOST, RealtimeSimulator

__all__ = ["HOST", "DropMode", "LogEntry", "RealtimeSimulator", "ResponsePlan", "ResponseRecord"]
