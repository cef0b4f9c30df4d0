"""One ``response.cancel`` per response: the gate's targeted cancel only if LiveKit sends none.

LiveKit Agents 1.8.9 cancels a response itself in two ways:

- a response it discarded (its ``generate_reply`` timed out, or was cancelled before
  ``response.created``): on ``response.created`` it sends a targeted cancel
  (``response_id``) and never surfaces it;
- a response whose ``SpeechHandle`` is interrupted while it still generates (which is
  what the installer does to a reply that arrives dead): ``RealtimeSession.interrupt()``
  sends a bare cancel, which the server applies to the default-conversation response
  in progress.

A second cancel for a response the server already cancelled is answered with an
``error`` (``response_cancel_not_active``), which some clients treat as fatal. So the
tap's targeted cancel is *held*: dropped as soon as LiveKit queues a cancel that covers
the response (seen on ``openai_client_event_queued``) or the response ends
(``response.done``), sent only if neither happened within ``settle`` seconds. Holding
costs no audio: the gate drops every frame of the response meanwhile.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["CANCEL_EVENT_PREFIX", "CancelArbiter"]

logger = logging.getLogger("playback_gate.livekit")

CANCEL_EVENT_PREFIX = "playback_gate_cancel_"
"""The ``event_id`` prefix of the cancels the arbiter sends (how it tells them from LiveKit's)."""


class CancelArbiter:
    """Holds the tap's targeted cancels until it is clear LiveKit sends none.

    Pass :meth:`hold` as the tap's ``send``, and feed every client event queued and
    server event received to :meth:`on_client_event` / :meth:`on_server_event`.

    Args:
        send: Sends a client event (the realtime session's ``send_event``).
        in_progress_default: Whether a response is in progress in the default
            conversation (a bare cancel applies to it).
        settle: Seconds to wait for LiveKit's own cancel before sending ours.

    Attributes:
        sent: Targeted cancels sent (LiveKit sent none for the response).
        left_to_livekit: Cancels not sent because LiveKit queued one covering the response.
        unneeded: Cancels not sent because the response ended first.
        cancel_not_active: ``response_cancel_not_active`` errors the server sent.
    """

    def __init__(
        self,
        send: Callable[[dict[str, Any]], None],
        in_progress_default: Callable[[str], bool],
        *,
        settle: float = 0.5,
    ) -> None:
        self._send = send
        self._in_progress_default = in_progress_default
        self.settle = settle
        self._held: dict[str, asyncio.TimerHandle | None] = {}
        self._ids = itertools.count(1)
        self._closed = False
        self.sent = 0
        self.left_to_livekit = 0
        self.unneeded = 0
        self.cancel_not_active = 0

    @property
    def held(self) -> list[str]:
        """The response ids whose cancel is held."""
        return list(self._held)

    def hold(self, event: dict[str, Any]) -> None:
        """Take a client event from the tap: hold a targeted cancel, send anything else.

        Args:
            event: The event the tap wants sent.
        """
        response_id = event.get("response_id")
        if event.get("type") != "response.cancel" or not isinstance(response_id, str):
            self._send(event)
            return
        if self._closed or response_id in self._held:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # no loop to wait on: nothing of LiveKit's can come either
            self._release(response_id)
            return
        self._held[response_id] = loop.call_later(self.settle, self._release, response_id)

    def on_client_event(self, event: Mapping[str, Any]) -> None:
        """See a client event as queued: a cancel of LiveKit's covers held ones. Never raises.

        Args:
            event: The raw client event.
        """
        try:
            if event.get("type") != "response.cancel" or not self._held:
                return
            event_id = event.get("event_id")
            if isinstance(event_id, str) and event_id.startswith(CANCEL_EVENT_PREFIX):
                return  # ours
            response_id = event.get("response_id")
            if isinstance(response_id, str):
                covered = [response_id] if response_id in self._held else []
            else:
                covered = [rid for rid in self._held if self._in_progress_default(rid)]
            for rid in covered:
                self._drop(rid)
                self.left_to_livekit += 1
                logger.debug("LiveKit cancels %s itself; the gate's cancel is not sent", rid)
        except Exception:
            logger.exception("playback-gate cancel arbiter failed on a client event")

    def on_server_event(self, event: Mapping[str, Any]) -> None:
        """See a server event: a response that ended needs no cancel. Never raises.

        Args:
            event: The raw server event.
        """
        try:
            kind = event.get("type")
            if kind == "response.done":
                response = event.get("response")
                rid = response.get("id") if isinstance(response, Mapping) else None
                if isinstance(rid, str) and rid in self._held:
                    self._drop(rid)
                    self.unneeded += 1
            elif kind == "error":
                error = event.get("error")
                if isinstance(error, Mapping) and error.get("code") == "response_cancel_not_active":
                    self.cancel_not_active += 1
        except Exception:
            logger.exception("playback-gate cancel arbiter failed on a server event")

    def close(self) -> None:
        """Forget every held cancel and its timer; :meth:`hold` sends nothing after this."""
        self._closed = True
        for rid in list(self._held):
            self._drop(rid)

    def _drop(self, response_id: str) -> None:
        timer = self._held.pop(response_id, None)
        if timer is not None:
            timer.cancel()

    def _release(self, response_id: str) -> None:
        self._held.pop(response_id, None)
        cancel = {
            "type": "response.cancel",
            "event_id": f"{CANCEL_EVENT_PREFIX}{next(self._ids)}",
            "response_id": response_id,
        }
        self.sent += 1
        try:
            self._send(cancel)
        except Exception:
            logger.exception("could not send the targeted cancel of %s", response_id)
