"""The session, the input audio buffer and the conversation items of one simulated connection."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Awaitable, Callable
from typing import Any

from integrations.openai_realtime.simulator.audio_marker import SAMPLE_RATE
from integrations.openai_realtime.simulator.items import EditKind, ItemAudioBook
from integrations.openai_realtime.simulator.limits import DEFAULT_LIMITS, ServerLimits
from integrations.openai_realtime.simulator.protocol import (
    ClientEventError,
    deep_merge,
    default_session,
    new_id,
)

__all__ = ["Conversation", "Handler", "InputAudioHook", "Send"]

#: Sends one server event (the connection's ``send``).
Send = Callable[[dict[str, Any]], Awaitable[None]]
#: Handles one client event: ``(event, client_event_id)``.
Handler = Callable[[dict[str, Any], str | None], Awaitable[None]]
#: Sees each appended input chunk (decoded bytes), e.g. the server VAD.
InputAudioHook = Callable[[bytes], Awaitable[None]]

#: The real server refuses to commit less than 100 ms of input audio.
_MIN_COMMIT_BYTES = SAMPLE_RATE * 2 // 10


class Conversation:
    """Client-event handlers for ``session.*``, ``input_audio_buffer.*`` and
    ``conversation.item.*``, and the state they own; one per connection.

    Args:
        send: Sends one server event (the connection's ``send``, which logs it).
        model: Model name, for the default session.
        connection: The connection's id (named in the item records).
        limits: ``max_session_bytes`` bounds the merged session, and
            ``max_conversation_items`` / ``max_conversation_bytes`` what clients'
            ``conversation.item.create`` may add (items the server makes are small and
            bounded by the responses); past a bound the event gets an ``error`` event
            (``session_too_large`` / ``conversation_too_large``) naming it.

    Attributes:
        session: The session object (GA shape), updated by ``session.update``.
        items: The default conversation's items, in order.
        input_audio_bytes: Bytes appended to the input audio buffer since the last
            commit or clear.
        audio: The assistant items' audio and the truncates and deletes received.
        on_input_audio: Called with each appended chunk (the server VAD).
        on_input_reset: Called when the client commits or clears the buffer.
    """

    def __init__(
        self, send: Send, model: str, connection: int = 0, limits: ServerLimits = DEFAULT_LIMITS
    ) -> None:
        self.send = send
        self.limits = limits
        self._client_items: dict[str, int] = {}  # id -> JSON bytes, of client-created items
        self.session: dict[str, Any] = default_session(model)
        self.items: list[dict[str, Any]] = []
        self.input_audio_bytes = 0
        self.audio = ItemAudioBook(connection)
        self.on_input_audio: InputAudioHook | None = None
        self.on_input_reset: Callable[[], None] | None = None

    def handlers(self) -> dict[str, Handler]:
        """The client-event handlers this conversation owns, by event type.

        Returns:
            A fresh dict of event type to handler.
        """
        return {
            "session.update": self._on_session_update,
            "input_audio_buffer.append": self._on_audio_append,
            "input_audio_buffer.commit": self._on_audio_commit,
            "input_audio_buffer.clear": self._on_audio_clear,
            "conversation.item.create": self._on_item_create,
            "conversation.item.delete": self._on_item_delete,
            "conversation.item.truncate": self._on_item_truncate,
            "conversation.item.retrieve": self._on_item_retrieve,
        }

    # ------------------------------------------------------------ session/input

    async def _on_session_update(self, event: dict[str, Any], _: str | None) -> None:
        session = event.get("session")
        if not isinstance(session, dict):
            raise ClientEventError(
                "Missing required parameter: 'session'.",
                code="missing_required_parameter",
                param="session",
            )
        if session.get("type") != "realtime":
            raise ClientEventError(
                "Missing required parameter: 'session.type'.",
                code="missing_required_parameter",
                param="session.type",
            )
        merged = deep_merge(self.session, session)
        if (size := len(json.dumps(merged))) > self.limits.max_session_bytes:
            raise ClientEventError(
                f"The session would be {size} bytes, over the simulator's limit of "
                f"{self.limits.max_session_bytes} bytes.",
                code="session_too_large",
                param="session",
            )
        self.session = merged
        await self.send({"type": "session.updated", "session": self.session})

    async def _on_audio_append(self, event: dict[str, Any], _: str | None) -> None:
        audio = event.get("audio")
        if not isinstance(audio, str):
            raise ClientEventError(
                "Missing required parameter: 'audio'.",
                code="missing_required_parameter",
                param="audio",
            )
        try:
            pcm = base64.b64decode(audio, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise ClientEventError(
                "Invalid 'audio'. Expected base64-encoded audio bytes.",
                code="invalid_value",
                param="audio",
            ) from exc
        self.input_audio_bytes += len(pcm)
        if self.on_input_audio is not None:
            await self.on_input_audio(pcm)

    async def _on_audio_commit(self, _: dict[str, Any], __: str | None) -> None:
        if self.input_audio_bytes < _MIN_COMMIT_BYTES:
            ms = self.input_audio_bytes * 1000 // (SAMPLE_RATE * 2)
            raise ClientEventError(
                "Error committing input audio buffer: buffer too small. Expected at least "
                f"100ms of audio, but buffer only has {ms:.2f}ms of audio.",
                code="input_audio_buffer_commit_empty",
            )
        if self.on_input_reset is not None:
            self.on_input_reset()
        await self.commit_input(new_id("item"))

    async def commit_input(self, item_id: str) -> None:
        """Commit the input audio buffer as a user item (a client commit, or server VAD).

        Args:
            item_id: The new user item's id.
        """
        self.input_audio_bytes = 0
        item = {
            "id": item_id,
            "object": "realtime.item",
            "type": "message",
            "status": "completed",
            "role": "user",
            "content": [{"type": "input_audio", "transcript": None}],
        }
        previous = self.items[-1]["id"] if self.items else None
        self.items.append(item)
        await self.send(
            {
                "type": "input_audio_buffer.committed",
                "item_id": item["id"],
                "previous_item_id": previous,
            }
        )
        await self.send(
            {"type": "conversation.item.added", "item": item, "previous_item_id": previous}
        )
        await self.send(
            {"type": "conversation.item.done", "item": item, "previous_item_id": previous}
        )

    async def _on_audio_clear(self, _: dict[str, Any], __: str | None) -> None:
        self.input_audio_bytes = 0
        if self.on_input_reset is not None:
            self.on_input_reset()
        await self.send({"type": "input_audio_buffer.cleared"})

    # ---------------------------------------------------------------- items

    def item_index(self, item_id: object) -> int | None:
        """Position of an item in :attr:`items`.

        Args:
            item_id: The item id.

        Returns:
            The index, or ``None`` if absent.
        """
        for i, item in enumerate(self.items):
            if item.get("id") == item_id:
                return i
        return None

    def _require_item(self, event: dict[str, Any], code: str) -> int:
        item_id = event.get("item_id")
        index = self.item_index(item_id) if isinstance(item_id, str) else None
        if index is None:
            raise ClientEventError(
                f"Invalid 'item_id': no item with id {item_id!r} in the conversation.",
                code=code,
                param="item_id",
            )
        return index

    async def _on_item_create(self, event: dict[str, Any], _: str | None) -> None:
        item = event.get("item")
        if not isinstance(item, dict) or not isinstance(item.get("type"), str):
            raise ClientEventError(
                "Missing required parameter: 'item.type'.",
                code="missing_required_parameter",
                param="item.type",
            )
        item = {**item, "object": "realtime.item", "status": "completed"}
        item_id = item.get("id")
        if not isinstance(item_id, str) or not item_id:
            item["id"] = item_id = new_id("item")
        if self.item_index(item_id) is not None:
            raise ClientEventError(
                f"Item with item_id '{item_id}' already exists.",
                code="item_create_duplicate_item_id",
                param="item.id",
            )
        previous_id = event.get("previous_item_id")
        if previous_id is None:
            position = len(self.items)
        elif previous_id == "root":
            position = 0
        else:
            found = self.item_index(previous_id)
            if found is None:
                raise ClientEventError(
                    f"Invalid 'previous_item_id': no item with id {previous_id!r}.",
                    code="invalid_value",
                    param="previous_item_id",
                )
            position = found + 1
        self._admit_client_item(item_id, len(json.dumps(item)))
        previous = self.items[position - 1]["id"] if position > 0 else None
        self.items.insert(position, item)
        await self.send(
            {"type": "conversation.item.added", "item": item, "previous_item_id": previous}
        )
        await self.send(
            {"type": "conversation.item.done", "item": item, "previous_item_id": previous}
        )

    def _admit_client_item(self, item_id: str, size: int) -> None:
        """Count a client-created item against the limits, or refuse it naming them."""
        held = sum(self._client_items.values())
        if (
            len(self._client_items) >= self.limits.max_conversation_items
            or held + size > self.limits.max_conversation_bytes
        ):
            raise ClientEventError(
                f"The conversation holds {len(self._client_items)} client items "
                f"({held} bytes); the simulator's limits are "
                f"{self.limits.max_conversation_items} items and "
                f"{self.limits.max_conversation_bytes} bytes. Delete items first.",
                code="conversation_too_large",
            )
        self._client_items[item_id] = size

    def _require_edited_item(self, event: dict[str, Any], kind: EditKind, eid: str | None) -> int:
        try:
            return self._require_item(event, f"item_{kind}_invalid_item_id")
        except ClientEventError as exc:
            self.audio.refuse(kind, str(event.get("item_id")), exc.message, eid)
            raise

    async def _on_item_delete(self, event: dict[str, Any], client_event_id: str | None) -> None:
        index = self._require_edited_item(event, "delete", client_event_id)
        item = self.items.pop(index)
        self._client_items.pop(item["id"], None)
        self.audio.delete(item["id"], client_event_id)
        await self.send({"type": "conversation.item.deleted", "item_id": item["id"]})

    async def _on_item_truncate(self, event: dict[str, Any], client_event_id: str | None) -> None:
        index = self._require_edited_item(event, "truncate", client_event_id)
        audio_end_ms = event.get("audio_end_ms")
        if not isinstance(audio_end_ms, int) or isinstance(audio_end_ms, bool) or audio_end_ms < 0:
            self.audio.refuse(
                "truncate", self.items[index]["id"], "Invalid 'audio_end_ms'.", client_event_id
            )
            raise ClientEventError(
                "Invalid 'audio_end_ms'.", code="invalid_value", param="audio_end_ms"
            )
        self.audio.truncate(self.items[index]["id"], audio_end_ms, client_event_id)
        await self.send(
            {
                "type": "conversation.item.truncated",
                "item_id": self.items[index]["id"],
                "content_index": event.get("content_index", 0),
                "audio_end_ms": audio_end_ms,
            }
        )

    async def _on_item_retrieve(self, event: dict[str, Any], _: str | None) -> None:
        index = self._require_item(event, "item_retrieve_invalid_item_id")
        await self.send({"type": "conversation.item.retrieved", "item": self.items[index]})
