"""OpenAI Realtime event names and small readers for raw event dicts.

The tap reads events as plain JSON dicts, exactly as sent or received. This
module names the event types it knows (GA and beta/Azure), and offers small
field readers that raise :class:`MalformedEventError` with a clear message, so
the tap can count the event and carry on.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from gate import ProtocolError

__all__ = [
    "AUDIO_DELTA_TYPES",
    "KNOWN_CLIENT_TYPES",
    "KNOWN_SERVER_TYPES",
    "Direction",
    "MalformedEvent",
    "MalformedEventError",
    "event_label",
    "optional_str",
    "require_mapping",
    "require_str",
]

Direction = Literal["client", "server"]

#: Audio deltas: GA name first, then the beta (and Azure) name.
AUDIO_DELTA_TYPES = frozenset({"response.output_audio.delta", "response.audio.delta"})

KNOWN_CLIENT_TYPES = frozenset(
    {
        "session.update",
        "transcription_session.update",
        "input_audio_buffer.append",
        "input_audio_buffer.clear",
        "input_audio_buffer.commit",
        "output_audio_buffer.clear",
        "conversation.item.create",
        "conversation.item.delete",
        "conversation.item.retrieve",
        "conversation.item.truncate",
        "response.create",
        "response.cancel",
    }
)
"""Client event types of the GA and beta Realtime APIs."""

KNOWN_SERVER_TYPES = frozenset(
    {
        "error",
        "session.created",
        "session.updated",
        "transcription_session.updated",
        "conversation.created",
        "conversation.item.added",
        "conversation.item.created",
        "conversation.item.done",
        "conversation.item.deleted",
        "conversation.item.retrieved",
        "conversation.item.truncated",
        "conversation.item.input_audio_transcription.completed",
        "conversation.item.input_audio_transcription.delta",
        "conversation.item.input_audio_transcription.failed",
        "conversation.item.input_audio_transcription.segment",
        "input_audio_buffer.cleared",
        "input_audio_buffer.committed",
        "input_audio_buffer.dtmf_event_received",
        "input_audio_buffer.speech_started",
        "input_audio_buffer.speech_stopped",
        "input_audio_buffer.timeout_triggered",
        "output_audio_buffer.cleared",
        "output_audio_buffer.started",
        "output_audio_buffer.stopped",
        "rate_limits.updated",
        "mcp_list_tools.completed",
        "mcp_list_tools.failed",
        "mcp_list_tools.in_progress",
        "response.created",
        "response.done",
        "response.output_item.added",
        "response.output_item.done",
        "response.content_part.added",
        "response.content_part.done",
        "response.output_audio.delta",
        "response.output_audio.done",
        "response.output_audio_transcript.delta",
        "response.output_audio_transcript.done",
        "response.output_text.delta",
        "response.output_text.done",
        "response.function_call_arguments.delta",
        "response.function_call_arguments.done",
        "response.mcp_call.completed",
        "response.mcp_call.failed",
        "response.mcp_call.in_progress",
        "response.mcp_call_arguments.delta",
        "response.mcp_call_arguments.done",
        # beta and Azure names
        "response.audio.delta",
        "response.audio.done",
        "response.audio_transcript.delta",
        "response.audio_transcript.done",
        "response.text.delta",
        "response.text.done",
    }
)
"""Server event types of the GA and beta Realtime APIs."""


class MalformedEventError(ProtocolError):
    """An event the tap cannot use: a missing or mistyped field, bad audio, an unknown type."""


@dataclass(frozen=True, slots=True)
class MalformedEvent:
    """One malformed event, as the tap counted it.

    Attributes:
        direction: ``"client"`` or ``"server"``.
        type: The event's ``type`` (or a placeholder when it has none).
        event_id: The event's ``event_id``, if any.
        problem: What was wrong, in plain words.
    """

    direction: Direction
    type: str
    event_id: str | None
    problem: str

    def to_dict(self) -> dict[str, Any]:
        """Return the record as a JSON-ready dict."""
        return {
            "from": self.direction,
            "type": self.type,
            "event_id": self.event_id,
            "problem": self.problem,
        }


def event_label(event: object) -> tuple[str, str | None]:
    """Return ``(type, event_id)`` for logs; never raises.

    Args:
        event: Anything.

    Returns:
        The type (``"<not a dict>"`` or ``"<no type>"`` when unusable) and the
        ``event_id`` if it is a string.
    """
    if not isinstance(event, Mapping):
        return f"<not a dict: {type(event).__name__}>", None
    kind = event.get("type")
    event_id = event.get("event_id")
    return (
        kind[:100] if isinstance(kind, str) else "<no type>",
        event_id[:100] if isinstance(event_id, str) else None,
    )


def require_mapping(parent: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    """Return ``parent[key]`` if it is a dict.

    Raises:
        MalformedEventError: If it is missing or not a dict.
    """
    value = parent.get(key)
    if not isinstance(value, Mapping):
        raise MalformedEventError(f"{key!r} must be an object, got {_describe(value)}")
    return value


def require_str(parent: Mapping[str, Any], key: str) -> str:
    """Return ``parent[key]`` if it is a non-empty string.

    Raises:
        MalformedEventError: If it is missing, empty or not a string.
    """
    value = parent.get(key)
    if not isinstance(value, str) or not value:
        raise MalformedEventError(f"{key!r} must be a non-empty string, got {_describe(value)}")
    return value


def optional_str(parent: Mapping[str, Any], key: str) -> str | None:
    """Return ``parent[key]`` if present and not null, checking it is a non-empty string.

    Raises:
        MalformedEventError: If it is present, not null, and not a non-empty string.
    """
    if parent.get(key) is None:
        return None
    return require_str(parent, key)


def _describe(value: object) -> str:
    if value is None:
        return "nothing"
    text = repr(value)
    return f"{type(value).__name__} {text[:40]}{'...' if len(text) > 40 else ''}"
