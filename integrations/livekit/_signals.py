"""What LiveKit Agents 1.8.9 tells the installer, and how it is read.

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

from typing import Any

from livekit.agents import Agent, AgentSession, llm, utils

__all__ = ["TIMEOUT_TEXT", "is_reply_timeout", "runs_realtime_model"]

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
