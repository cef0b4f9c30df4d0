"""Builders for OpenAI Realtime (GA) server event payloads, as plain dicts.

Only the shapes the simulator sends live here; they follow the GA reference
(``response.output_audio.delta``, ``conversation.item.added``, ...), not the beta
names, which the livekit client ignores.
"""

from __future__ import annotations

import copy
import secrets
import string
import time
from typing import Any

from integrations.openai_realtime.simulator.audio_marker import SAMPLE_RATE
from integrations.openai_realtime.simulator.records import ResponseRecord

__all__ = [
    "ClientEventError",
    "assistant_item",
    "deep_merge",
    "default_session",
    "error_event",
    "new_id",
    "response_object",
]

_ID_ALPHABET = string.ascii_letters + string.digits
_PCM_FORMAT: dict[str, Any] = {"type": "audio/pcm", "rate": SAMPLE_RATE}


class ClientEventError(Exception):
    """A client event the real server would reject with an ``error`` event.

    Args:
        message: Human readable message.
        code: Error code, e.g. ``"invalid_value"``.
        param: The offending parameter, if any.
        error_type: The error ``type``.
        echo_event_id: Whether the ``error`` names the client event's ``event_id``
            (the real service sends ``null`` for some refusals, e.g. a truncate past
            the item's audio).
    """

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        param: str | None = None,
        error_type: str = "invalid_request_error",
        echo_event_id: bool = True,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.param = param
        self.error_type = error_type
        self.echo_event_id = echo_event_id


def new_id(prefix: str) -> str:
    """Return a fresh opaque id like ``resp_Ab3...`` (21 random characters).

    Args:
        prefix: Id prefix without the underscore, e.g. ``"resp"``.

    Returns:
        The id.
    """
    return prefix + "_" + "".join(secrets.choice(_ID_ALPHABET) for _ in range(21))


def error_event(
    message: str,
    *,
    code: str | None = None,
    param: str | None = None,
    error_type: str = "invalid_request_error",
    client_event_id: str | None = None,
) -> dict[str, Any]:
    """Build an ``error`` server event.

    Args:
        message: Human readable message.
        code: Error code.
        param: The offending parameter.
        error_type: The error ``type``.
        client_event_id: ``event_id`` of the client event that caused it.

    Returns:
        The event (without ``event_id``; the connection adds one when sending).
    """
    return {
        "type": "error",
        "error": {
            "type": error_type,
            "code": code,
            "message": message,
            "param": param,
            "event_id": client_event_id,
        },
    }


def default_session(model: str) -> dict[str, Any]:
    """Build the session object sent in ``session.created``.

    Args:
        model: Model name from the connect URL.

    Returns:
        A GA ``realtime`` session object.
    """
    return {
        "type": "realtime",
        "object": "realtime.session",
        "id": new_id("sess"),
        "model": model,
        "output_modalities": ["audio"],
        "instructions": "",
        "tools": [],
        "tool_choice": "auto",
        "max_output_tokens": "inf",
        "tracing": None,
        "truncation": "auto",
        "prompt": None,
        "expires_at": int(time.time()) + 3600,
        "include": None,
        "audio": {
            "input": {
                "format": dict(_PCM_FORMAT),
                "transcription": None,
                "noise_reduction": None,
                "turn_detection": {
                    "type": "server_vad",
                    "threshold": 0.5,
                    "prefix_padding_ms": 300,
                    "silence_duration_ms": 200,
                    "idle_timeout_ms": None,
                    "create_response": True,
                    "interrupt_response": True,
                },
            },
            "output": {"format": dict(_PCM_FORMAT), "voice": "alloy", "speed": 1.0},
        },
    }


def deep_merge(base: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    """Merge ``update`` into a copy of ``base``, recursing into nested dicts.

    Args:
        base: The current object.
        update: Fields to set; ``None`` values clear a field.

    Returns:
        The merged copy.
    """
    merged = copy.deepcopy(base)
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def assistant_item(item_id: str, status: str, transcript: str | None) -> dict[str, Any]:
    """Build the assistant message item of a response.

    Args:
        item_id: The item id.
        status: ``"in_progress"``, ``"completed"`` or ``"incomplete"``.
        transcript: The audio transcript, or ``None`` for an item with no content yet.

    Returns:
        A GA conversation item.
    """
    content: list[dict[str, Any]] = []
    if transcript is not None:
        content.append({"type": "output_audio", "transcript": transcript})
    return {
        "id": item_id,
        "object": "realtime.item",
        "type": "message",
        "status": status,
        "role": "assistant",
        "content": content,
    }


def response_object(
    record: ResponseRecord,
    *,
    status: str,
    conversation_id: str | None,
    voice: str,
    output: list[dict[str, Any]] | None = None,
    reason: str | None = None,
) -> dict[str, Any]:
    """Build the ``response`` object of ``response.created`` / ``response.done``.

    Args:
        record: The response.
        status: ``"in_progress"``, ``"completed"`` or ``"cancelled"``.
        conversation_id: The default conversation's id, or ``None`` when out of band.
        voice: The session voice.
        output: Output items.
        reason: ``status_details.reason`` for a cancelled response.

    Returns:
        A GA ``realtime.response`` object, echoing the request's metadata.
    """
    status_details: dict[str, Any] | None = None
    if status == "cancelled":
        status_details = {"type": "cancelled", "reason": reason or "client_cancelled"}
    elif status == "completed":
        status_details = None
    usage: dict[str, Any] | None = None
    if status != "in_progress":
        audio_tokens = record.chunks_sent
        usage = {
            "total_tokens": audio_tokens,
            "input_tokens": 0,
            "output_tokens": audio_tokens,
            "input_token_details": {
                "text_tokens": 0,
                "audio_tokens": 0,
                "image_tokens": 0,
                "cached_tokens": 0,
                "cached_tokens_details": {"text_tokens": 0, "audio_tokens": 0, "image_tokens": 0},
            },
            "output_token_details": {"text_tokens": 0, "audio_tokens": audio_tokens},
        }
    return {
        "object": "realtime.response",
        "id": record.response_id,
        "status": status,
        "status_details": status_details,
        "output": output or [],
        "conversation_id": conversation_id,
        "output_modalities": ["audio"],
        "max_output_tokens": "inf",
        "audio": {"output": {"format": dict(_PCM_FORMAT), "voice": voice}},
        "usage": usage,
        "metadata": copy.deepcopy(record.metadata),
    }
