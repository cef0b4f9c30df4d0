"""Which conversation items each Realtime reply made, and how much audio the server sent for each.

The tap keeps this book from the raw events, whatever the gate decides:

- ``response.created``: a reply, in the default conversation or out of band
  (``conversation_id: null``; such a reply has no conversation item);
- ``response.output_item.added`` (and ``response.done``'s ``output``): its items;
- audio deltas: samples per item (counted from the base64 length, so it works
  when the tap does not decode audio);
- client ``conversation.item.truncate`` / ``conversation.item.delete`` (anyone's,
  ours included): the item's history was already edited;
- ``response.done``: the server's item audio is final.

The output stage reports what played (:meth:`ItemBook.playout_final`), and
:class:`~integrations.openai_realtime._history.HistoryKeeper` makes the server's
conversation agree with it.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from integrations.openai_realtime._attribution import is_out_of_band
from integrations.openai_realtime._audio_decode import OutputAudioFormat
from integrations.openai_realtime._events import AUDIO_DELTA_TYPES

__all__ = ["ItemBook", "OutputItem", "Reply", "base64_samples"]

#: A client edit of an item's history.
Edit = Literal["truncate", "delete"]


def base64_samples(delta: object, bytes_per_sample: int) -> int:
    """Samples in a base64 audio delta, without decoding it.

    Args:
        delta: The ``delta`` field (anything; a non-string counts 0).
        bytes_per_sample: 2 for PCM16, 1 for G.711.

    Returns:
        The sample count.
    """
    if not isinstance(delta, str) or not delta:
        return 0
    text = delta.strip()
    padding = len(text) - len(text.rstrip("="))
    return max(0, len(text) * 3 // 4 - padding) // bytes_per_sample


@dataclass(slots=True)
class OutputItem:
    """One output item of a reply.

    Attributes:
        item_id: The item id.
        type: The item's ``type`` (``"message"`` for speech).
        samples_sent: Audio samples the server sent for it (at the reply's rate).
        edit: The first client edit seen for it, if any.
    """

    item_id: str
    type: str = "message"
    samples_sent: int = 0
    edit: Edit | None = None


@dataclass(slots=True)
class Reply:
    """One reply (response) and its items.

    Attributes:
        response_id: The response id.
        out_of_band: Whether it runs outside the default conversation.
        sample_rate: The output audio rate when it was created.
        items: Its output items, in order.
        done: Whether ``response.done`` arrived (the server's item audio is final).
        played: ``(samples, rate)`` the listener heard in all, once the output
            stage reported it final.
        settled: Whether the history keeper has dealt with it.
    """

    response_id: str
    out_of_band: bool
    sample_rate: int
    items: dict[str, OutputItem] = field(default_factory=dict)
    done: bool = False
    played: tuple[int, int] | None = None
    settled: bool = False

    @property
    def samples_sent(self) -> int:
        """Audio samples sent for all its items."""
        return sum(item.samples_sent for item in self.items.values())


class ItemBook:
    """Replies and their items, bounded (the oldest reply is forgotten first).

    Args:
        max_tracked: Replies remembered at most.
    """

    def __init__(self, max_tracked: int = 1024) -> None:
        self.max_tracked = max_tracked
        self._replies: OrderedDict[str, Reply] = OrderedDict()
        self._item_reply: dict[str, str] = {}

    def reply(self, response_id: str) -> Reply | None:
        """Return a reply by id, if remembered."""
        return self._replies.get(response_id)

    def replies(self) -> list[Reply]:
        """Return every remembered reply, oldest first."""
        return list(self._replies.values())

    def item(self, item_id: str) -> OutputItem | None:
        """Return an item by id, if its reply is remembered."""
        rid = self._item_reply.get(item_id)
        reply = self._replies.get(rid) if rid is not None else None
        return reply.items.get(item_id) if reply is not None else None

    # ---- the tap's entry points -----------------------------------------------------

    def observe_client(self, kind: str, event: Mapping[str, Any]) -> None:
        """Take a client event the tap saw (only item edits matter here).

        Args:
            kind: Its type.
            event: The event.
        """
        if kind == "conversation.item.truncate":
            self.on_edit("truncate", event.get("item_id"))
        elif kind == "conversation.item.delete":
            self.on_edit("delete", event.get("item_id"))

    def observe_server(
        self, kind: str, event: Mapping[str, Any], fmt: OutputAudioFormat
    ) -> Reply | None:
        """Take a server event the tap saw.

        Args:
            kind: Its type.
            event: The event.
            fmt: The output audio format in force.

        Returns:
            For a ``response.done`` of a remembered reply, the reply; else ``None``.
        """
        if kind in AUDIO_DELTA_TYPES:
            self.on_audio(event, fmt.bytes_per_sample)
            return None
        response = event.get("response")
        if kind == "response.created" and isinstance(response, Mapping):
            response_id = response.get("id")
            if isinstance(response_id, str) and response_id:
                self.on_created(response_id, is_out_of_band(response), fmt.sample_rate)
        elif kind == "response.output_item.added":
            response_id = event.get("response_id")
            if isinstance(response_id, str):
                self.on_item(response_id, event.get("item"))
        elif kind == "response.done" and isinstance(response, Mapping):
            return self.on_done(response)
        return None

    # ---- server events ------------------------------------------------------------

    def on_created(self, response_id: str, out_of_band: bool, sample_rate: int) -> None:
        """A ``response.created``."""
        if response_id in self._replies:
            return
        self._replies[response_id] = Reply(response_id, out_of_band, sample_rate)
        while len(self._replies) > self.max_tracked:
            _, old = self._replies.popitem(last=False)
            for item_id in old.items:
                self._item_reply.pop(item_id, None)

    def on_item(self, response_id: str, item: object) -> None:
        """A ``response.output_item.added`` (or an item of ``response.done``'s output)."""
        reply = self._replies.get(response_id)
        item_id = item.get("id") if isinstance(item, Mapping) else None
        if reply is None or not isinstance(item_id, str) or not item_id:
            return
        if item_id not in reply.items:
            kind = item.get("type") if isinstance(item, Mapping) else None
            reply.items[item_id] = OutputItem(item_id, kind if isinstance(kind, str) else "message")
            self._item_reply[item_id] = response_id

    def on_audio(self, event: Mapping[str, Any], bytes_per_sample: int) -> None:
        """An audio delta: count its samples for its item."""
        response_id, item_id = event.get("response_id"), event.get("item_id")
        if not isinstance(response_id, str) or not isinstance(item_id, str):
            return
        reply = self._replies.get(response_id)
        if reply is None or reply.done:  # deltas after response.done join no item
            return
        self.on_item(response_id, {"id": item_id})
        reply.items[item_id].samples_sent += base64_samples(event.get("delta"), bytes_per_sample)

    def on_done(self, response: Mapping[str, Any]) -> Reply | None:
        """A ``response.done``: the reply's items are final.

        Returns:
            The reply, if remembered.
        """
        response_id = response.get("id")
        reply = self._replies.get(response_id) if isinstance(response_id, str) else None
        if reply is None:
            return None
        output = response.get("output")
        if isinstance(output, list):
            for item in output:
                self.on_item(reply.response_id, item)
        reply.done = True
        return reply

    # ---- client events and the output stage ---------------------------------------

    def on_edit(self, kind: Edit, item_id: object) -> None:
        """A client ``conversation.item.truncate`` / ``delete`` naming ``item_id``."""
        item = self.item(item_id) if isinstance(item_id, str) else None
        if item is not None and item.edit is None:
            item.edit = kind

    def playout_final(self, response_id: str, samples: int, sample_rate: int) -> Reply | None:
        """The output stage will play no more of a reply; ``samples`` at ``sample_rate`` played.

        Returns:
            The reply, if remembered.
        """
        reply = self._replies.get(response_id)
        if reply is not None:
            reply.played = (max(0, int(samples)), int(sample_rate))
        return reply
