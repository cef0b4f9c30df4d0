"""Keep the server's conversation honest for every reply the gate kills.

Stopping a reply's audio is half the job: the model's conversation must also hold
exactly what the listener heard, or it talks as if the user heard what they never
got. For each reply the gate flagged (timed out, cancelled, interrupted, ...), once
the server's item audio is final (``response.done``) and what played is known:

- a message item none of which played gets ``conversation.item.delete``;
- an item partly played gets ``conversation.item.truncate`` at the played position
  (whole milliseconds, rounded down, so never past what the server sent);
- an item that played in full is left alone;
- an item someone already truncated or deleted (LiveKit Agents does it on an
  interruption mid-playout; so may your own code) is left alone: never two edits;
- an out-of-band reply (``conversation: "none"``) has no conversation item: left alone.

What played: reported by the output stage (:meth:`HistoryKeeper.playout_final`),
or, with no report, zero when no frame of the reply ever passed the gate (then
nothing of it can have reached any output). A reply with frames through the gate
and no report waits for one.

Each edit goes out through ``send`` and is kept in :attr:`HistoryKeeper.sent`.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable
from typing import Any

from gate import DropReason, PlaybackGate
from integrations.openai_realtime._items import ItemBook, Reply

__all__ = ["HistoryKeeper"]

logger = logging.getLogger("playback_gate.tap")


class HistoryKeeper:
    """Sends the delete or truncate each killed reply's items need (see the module doc).

    It is a purge sink of the gate, so a flag made anywhere (the tap, an output
    stage, your code) re-checks the reply. A flag from another thread than the one
    that made the keeper is handed to that thread's event loop, if it runs one, so
    ``send`` is always called there.

    Args:
        gate: The gate whose flags say which replies were killed.
        book: The tap's item book.
        send: Sends a client event; ``None`` only records it.
    """

    def __init__(
        self,
        gate: PlaybackGate,
        book: ItemBook,
        send: Callable[[dict[str, Any]], None] | None,
    ) -> None:
        self.gate = gate
        self.book = book
        self.send = send
        self.sent: list[dict[str, Any]] = []
        """Every edit handed to ``send``, in order (bounded by the book's replies)."""
        self.hold: Callable[[str], bool] | None = None
        """While it returns ``True`` for a reply, the keeper waits (another party,
        e.g. LiveKit Agents, may still edit that reply's history itself)."""
        self._thread = threading.get_ident()
        try:
            self._loop: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            self._loop = None
        gate.add_sink(self)

    def close(self) -> None:
        """Stop listening to the gate's flags."""
        self.gate.remove_sink(self)

    def purge(self, generation_id: str, reason: DropReason) -> None:
        """The gate flagged a reply: deal with it if its audio is final (the purge-sink call).

        Args:
            generation_id: The reply's response id.
            reason: Why (unused: every kill is treated alike).
        """
        if self._loop is not None and threading.get_ident() != self._thread:
            self._loop.call_soon_threadsafe(self.check, generation_id)
            return
        self.check(generation_id)

    def playout_final(self, response_id: str, samples: int, sample_rate: int) -> None:
        """The output stage will play no more of a reply: ``samples`` at ``sample_rate`` played.

        Args:
            response_id: The reply.
            samples: Samples the listener heard, in all.
            sample_rate: Their rate.
        """
        if self.book.playout_final(response_id, samples, sample_rate) is not None:
            self.check(response_id)

    def check(self, response_id: str) -> list[dict[str, Any]]:
        """Send the edits a killed reply needs, if it is killed, final and not yet settled.

        Args:
            response_id: The reply.

        Returns:
            The edits sent now.
        """
        reply = self.book.reply(response_id)
        if reply is None or reply.settled or not reply.done:
            return []
        if reply.out_of_band:
            reply.settled = True
            return []
        if not self.gate.is_flagged(response_id):
            return []
        if self.hold is not None and self.hold(response_id):
            return []
        played = self._played(reply)
        if played is None:
            return []  # frames went out and the output stage has not said what played
        reply.settled = True
        return self._edit(reply, played)

    # ---- helpers ------------------------------------------------------------------------

    def _played(self, reply: Reply) -> float | None:
        """Seconds of the reply the listener heard, if known."""
        if reply.played is not None:
            samples, rate = reply.played
            return samples / rate if rate > 0 else 0.0
        info = self.gate.generation(reply.response_id)
        if info is not None and info.passed.samples == 0:
            return 0.0
        return None

    def _edit(self, reply: Reply, played_s: float) -> list[dict[str, Any]]:
        sent: list[dict[str, Any]] = []
        left = played_s
        rate = reply.sample_rate
        for item in reply.items.values():
            sent_s = item.samples_sent / rate
            heard = min(max(left, 0.0), sent_s)
            left -= sent_s
            if item.type != "message" or item.edit is not None or (sent_s > 0 and heard >= sent_s):
                continue  # not speech, already edited by someone, or played in full
            end_ms = int(heard * 1000 + 1e-6)
            if end_ms <= 0:
                event: dict[str, Any] = {
                    "type": "conversation.item.delete",
                    "item_id": item.item_id,
                }
                item.edit = "delete"
            else:
                event = {
                    "type": "conversation.item.truncate",
                    "item_id": item.item_id,
                    "content_index": 0,
                    "audio_end_ms": min(end_ms, item.samples_sent * 1000 // rate),
                }
                item.edit = "truncate"
            sent.append(event)
        for event in sent:
            self._send(reply.response_id, event)
        return sent

    def _send(self, response_id: str, event: dict[str, Any]) -> None:
        self.sent.append(event)
        del self.sent[: max(0, len(self.sent) - 4 * self.book.max_tracked)]
        logger.info(
            "history of killed reply %s: %s %s%s",
            response_id,
            event["type"],
            event["item_id"],
            f" at {event['audio_end_ms']} ms" if "audio_end_ms" in event else "",
        )
        if self.send is None:
            return
        try:
            self.send(dict(event))
        except Exception:
            logger.exception("send() failed for the %s of %s", event["type"], event["item_id"])
