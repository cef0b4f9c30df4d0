"""What the installer reads from LiveKit Agents, and how.

The version, and the private names the gated output relies on: :func:`check_agents_version`.

A ``generate_reply`` timeout. LiveKit gives no timeout-specific type or code: the
OpenAI plugin fails the reply's future with ``llm.RealtimeError("generate_reply timed
out.")`` (``code=None``), and the ``SpeechHandle`` reports it from ``exception()``. The
structural part of the signal is the type and the missing code: a reply the *server*
rejected carries its provider code (``RealtimeError.code``), so it is never taken for
a timeout. What tells a timeout from the other code-less failures (``"realtime session
closed"``, ``"pending response discarded due to session reconnection"``) is only the
text, so :data:`TIMEOUT_TEXT` is matched as the last step; a test runs LiveKit's real
timeout against the simulator and fails loudly if the text ever changes.

Whether an agent will run a realtime session: its own ``llm``, else the session's.
"""

from __future__ import annotations

import logging
from typing import Any

from livekit.agents import Agent, AgentSession, llm, utils
from livekit.agents import __version__ as agents_version

from integrations.livekit._gated_output import missing_private_api

__all__ = [
    "SUPPORTED_AGENTS_VERSIONS",
    "TIMEOUT_TEXT",
    "check_agents_version",
    "is_reply_timeout",
    "openai_session_type",
    "runs_realtime_model",
]

logger = logging.getLogger("playback_gate.livekit")

SUPPORTED_AGENTS_VERSIONS = ("1.8.",)
"""livekit-agents versions whose event order and chain this module was tested on."""

TIMEOUT_TEXT = "timed out"
"""Words of LiveKit 1.8.9's ``generate_reply`` timeout error (``"generate_reply timed out."``)."""


def is_reply_timeout(error: BaseException | None) -> bool:
    """Return whether a failed reply's error is LiveKit's ``generate_reply`` timeout.

    Args:
        error: ``SpeechHandle.exception()`` of a finished reply.

    Returns:
        ``True`` for a code-less ``llm.RealtimeError`` whose text says it timed out.
    """
    if not isinstance(error, llm.RealtimeError):
        return False
    if getattr(error, "code", None) is not None:
        return False  # the server refused the request: no answer will ever come
    return TIMEOUT_TEXT in str(error)


def runs_realtime_model(agent: Agent, session: AgentSession[Any]) -> bool:
    """Return whether ``agent`` runs a realtime model (its own ``llm``, else the session's).

    Args:
        agent: The agent.
        session: Its session.

    Returns:
        ``True`` if its activity will have a realtime session.
    """
    model = agent.llm if utils.is_given(agent.llm) else session.llm
    return isinstance(model, llm.RealtimeModel)


def check_agents_version(version: str = agents_version) -> bool:
    """Return whether ``version`` of livekit-agents is one this module supports; warn if not.

    The installer relies on 1.8.x behaviour: listeners run in registration order
    and the agent reads ``GenerationCreatedEvent.message_stream`` only after
    ``generation_created`` listeners ran. :class:`GatedAudioOutput` also relies on
    two livekit-agents internals (see :func:`missing_private_api`); their absence
    in the installed livekit-agents is reported here too, whatever ``version`` says.

    Args:
        version: A livekit-agents version string.

    Returns:
        ``True`` if supported.
    """
    ok = version.startswith(SUPPORTED_AGENTS_VERSIONS)
    if not ok:
        logger.warning(
            "playback-gate's LiveKit installer was tested on livekit-agents %s, not %s",
            "/".join(v + "x" for v in SUPPORTED_AGENTS_VERSIONS),
            version,
        )
    missing = missing_private_api()
    if missing:
        logger.warning(
            "livekit-agents %s lacks %s, which playback-gate's audio output relies on",
            agents_version,
            ", ".join(missing),
        )
    return ok and not missing


def openai_session_type() -> type | None:
    """Return the OpenAI plugin's ``RealtimeSession`` class, or ``None`` if it isn't installed."""
    try:
        from livekit.plugins.openai.realtime import RealtimeSession
    except ImportError:
        return None
    return RealtimeSession
