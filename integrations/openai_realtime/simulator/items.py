"""What the simulated server's conversation holds of each assistant item's audio.

The real service keeps, per assistant message, the audio it generated; a client
``conversation.item.truncate`` cuts it to ``audio_end_ms`` and a
``conversation.item.delete`` removes the item. A truncate past the audio the item
holds is refused with ``invalid_value`` and the message
``"Audio content of {held}ms is already shorter than {asked}ms"`` (the wording the
service sends, as quoted in pipecat #1963 and #3677), with ``param`` and
``event_id`` null; the item is left as it was. A truncate of an item with no model
audio (a user item, or an assistant item before its first delta) is refused with
``"Only model output audio messages can be truncated"`` (livekit/agents #6157).

The simulator records every truncate and delete (accepted or not; the most recent
``MAX_EDITS_KEPT``), so a test can
assert the server's final view: per assistant item, the audio it still holds.
"""

from __future__ import annotations

import collections
import time
from dataclasses import dataclass
from typing import Literal

from integrations.openai_realtime.simulator.audio_marker import SAMPLE_RATE
from integrations.openai_realtime.simulator.protocol import ClientEventError

__all__ = [
    "MAX_EDITS_KEPT",
    "ContextEdit",
    "EditKind",
    "ItemAudio",
    "ItemAudioBook",
    "samples_to_ms",
]

MAX_EDITS_KEPT = 10_000
"""Truncates and deletes recorded per connection, the most recent kept: each one is a
client event, so a flood of them must not grow memory (their ids are kept to 256
characters, their messages to 512)."""
_MAX_KEPT_CHARS = 256

#: What a client did to an item.
EditKind = Literal["truncate", "delete"]


def samples_to_ms(samples: int) -> int:
    """Whole milliseconds of ``samples`` at the simulator's 24 kHz (rounded down).

    Args:
        samples: Sample count.

    Returns:
        Milliseconds.
    """
    return samples * 1000 // SAMPLE_RATE


@dataclass
class ItemAudio:
    """One assistant item of the default conversation and the audio it holds.

    Attributes:
        item_id: The item id.
        response_id: The response that generated it.
        connection: The connection (conversation) it belongs to.
        samples_sent: Audio samples (24 kHz) the server sent for it, in total.
        truncated_ms: ``audio_end_ms`` of the accepted truncate, if any.
        deleted: Whether a ``conversation.item.delete`` removed it.
    """

    item_id: str
    response_id: str
    connection: int
    samples_sent: int = 0
    truncated_ms: int | None = None
    deleted: bool = False

    @property
    def sent_ms(self) -> int:
        """Milliseconds of audio the server sent for the item."""
        return samples_to_ms(self.samples_sent)

    @property
    def held_ms(self) -> int:
        """Milliseconds of audio the server's conversation holds for it now.

        A truncate caps the item for good: audio the server streams into it
        afterwards (a server ignoring the cancel) is not added back.
        """
        if self.deleted:
            return 0
        if self.truncated_ms is None:
            return self.sent_ms
        return min(self.sent_ms, self.truncated_ms)


@dataclass(frozen=True, slots=True)
class ContextEdit:
    """One ``conversation.item.truncate`` or ``conversation.item.delete`` the server got.

    Attributes:
        t: ``time.monotonic()`` when it was handled.
        connection: The connection it came on.
        kind: ``"truncate"`` or ``"delete"``.
        item_id: The item it named.
        audio_end_ms: The truncate's ``audio_end_ms`` (``None`` for a delete).
        held_ms: Audio the item held just before (``None`` if it is not an assistant item).
        accepted: Whether the server applied it.
        error: The ``error`` message sent back, if refused.
        client_event_id: The client event's ``event_id``, if any.
    """

    t: float
    connection: int
    kind: EditKind
    item_id: str
    audio_end_ms: int | None
    held_ms: int | None
    accepted: bool
    error: str | None
    client_event_id: str | None


class ItemAudioBook:
    """The assistant items of one connection's conversation, and the edits it received.

    Args:
        connection: The connection's id.
    """

    def __init__(self, connection: int) -> None:
        self.connection = connection
        self.items: dict[str, ItemAudio] = {}
        self.edits: collections.deque[ContextEdit] = collections.deque(maxlen=MAX_EDITS_KEPT)

    def add_item(self, item_id: str, response_id: str) -> ItemAudio:
        """Record a new assistant item of the default conversation.

        Args:
            item_id: The item id.
            response_id: Its response.

        Returns:
            The record.
        """
        record = ItemAudio(item_id, response_id, self.connection)
        self.items[item_id] = record
        return record

    def add_audio(self, item_id: str, samples: int) -> None:
        """Count audio the server sent for an item (unknown items are out of band).

        Args:
            item_id: The item id.
            samples: Samples in the delta.
        """
        record = self.items.get(item_id)
        if record is not None:
            record.samples_sent += samples

    def truncate(self, item_id: str, audio_end_ms: int, client_event_id: str | None) -> None:
        """Apply a truncate the way the real service does, or refuse it.

        Args:
            item_id: An item present in the conversation.
            audio_end_ms: The requested end, in ms (a non-negative int).
            client_event_id: The client event's ``event_id``.

        Raises:
            ClientEventError: If the item has no model audio, or holds less than
                ``audio_end_ms``; the refusal is recorded and the item is unchanged.
        """
        record = self.items.get(item_id)
        held = record.held_ms if record is not None else None
        if record is None or record.samples_sent == 0:
            error = ClientEventError(
                "Only model output audio messages can be truncated",
                code="unsupported_content_type",
            )
        elif audio_end_ms > record.held_ms:
            error = ClientEventError(
                f"Audio content of {record.held_ms}ms is already shorter than {audio_end_ms}ms",
                code="invalid_value",
                echo_event_id=False,
            )
        else:
            record.truncated_ms = audio_end_ms
            self._log("truncate", item_id, audio_end_ms, held, None, client_event_id)
            return
        self._log("truncate", item_id, audio_end_ms, held, error.message, client_event_id)
        raise error

    def delete(self, item_id: str, client_event_id: str | None) -> None:
        """Record a delete of an item present in the conversation.

        Args:
            item_id: The item id.
            client_event_id: The client event's ``event_id``.
        """
        record = self.items.get(item_id)
        held = record.held_ms if record is not None else None
        if record is not None:
            record.deleted = True
        self._log("delete", item_id, None, held, None, client_event_id)

    def refuse(self, kind: EditKind, item_id: str, error: str, client_event_id: str | None) -> None:
        """Record an edit refused before it reached an item (no such item).

        Args:
            kind: The edit.
            item_id: The id it named.
            error: The message sent back.
            client_event_id: The client event's ``event_id``.
        """
        self._log(kind, item_id, None, None, error, client_event_id)

    def _log(
        self,
        kind: EditKind,
        item_id: str,
        audio_end_ms: int | None,
        held: int | None,
        error: str | None,
        client_event_id: str | None,
    ) -> None:
        # Ids and messages come from the client: clip what is kept (see MAX_EDITS_KEPT).
        self.edits.append(
            ContextEdit(
                time.monotonic(),
                self.connection,
                kind,
                item_id[:_MAX_KEPT_CHARS],
                audio_end_ms,
                held,
                error is None,
                None if error is None else error[: 2 * _MAX_KEPT_CHARS],
                None if client_event_id is None else client_event_id[:_MAX_KEPT_CHARS],
            )
        )
