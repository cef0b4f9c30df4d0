"""What crossed the websocket, per response: the client's own view of the server.

The demo counts "what the server sent" from the raw events the LiveKit OpenAI
client received (``openai_server_event_received``), so the same figures exist
against the simulator and against the real service.
"""

from __future__ import annotations

import base64
import binascii
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["ResponseWire", "Wire"]


@dataclass(slots=True)
class ResponseWire:
    """One response as the client saw it. Times are ``time.monotonic()``.

    Attributes:
        response_id: The server's ``response.id``.
        request_id: ``metadata.client_event_id`` echoed in ``response.created``.
        created_at: When ``response.created`` arrived.
        done_at: When ``response.done`` arrived.
        status: ``response.done`` status.
        samples: Audio samples received (24 kHz PCM16 mono).
    """

    response_id: str
    request_id: str | None = None
    created_at: float | None = None
    done_at: float | None = None
    status: str | None = None
    samples: int = 0


class Wire:
    """Listens to one LiveKit OpenAI realtime session's raw client and server events."""

    def __init__(self) -> None:
        self.requests: dict[str, float] = {}
        """``response.create`` event ids -> when they were queued."""
        self.responses: dict[str, ResponseWire] = {}
        self._by_request: dict[str, str] = {}

    def attach(self, rt_session: Any) -> None:
        """Listen to ``rt_session`` (a ``livekit.plugins.openai.realtime.RealtimeSession``).

        Args:
            rt_session: The session.
        """
        rt_session.on("openai_client_event_queued", self.on_client_event)
        rt_session.on("openai_server_event_received", self.on_server_event)

    def response_for(self, request_id: str) -> ResponseWire | None:
        """Return the response created for a request, if it was."""
        rid = self._by_request.get(request_id)
        return None if rid is None else self.responses.get(rid)

    def on_client_event(self, event: Mapping[str, Any]) -> None:
        """Record a client event (only ``response.create`` matters)."""
        if event.get("type") == "response.create" and isinstance(event.get("event_id"), str):
            self.requests[event["event_id"]] = time.monotonic()

    def on_server_event(self, event: Mapping[str, Any]) -> None:
        """Record a server event; never raises."""
        try:
            self._on_server_event(event)
        except Exception:  # a demo counter must never break the client's loop
            return

    def _on_server_event(self, event: Mapping[str, Any]) -> None:
        kind = event.get("type")
        now = time.monotonic()
        if kind == "response.output_audio.delta":
            rw = self._get(str(event.get("response_id")))
            try:
                n = len(base64.b64decode(str(event.get("delta", "")), validate=True)) // 2
            except (binascii.Error, ValueError):
                return
            rw.samples += n
        elif kind in ("response.created", "response.done"):
            response = event.get("response") or {}
            rw = self._get(str(response.get("id")))
            if kind == "response.created":
                rw.created_at = now
                metadata = response.get("metadata") or {}
                request_id = metadata.get("client_event_id")
                if isinstance(request_id, str):
                    rw.request_id = request_id
                    self._by_request[request_id] = rw.response_id
            else:
                rw.done_at = now
                rw.status = response.get("status")

    def _get(self, response_id: str) -> ResponseWire:
        rw = self.responses.get(response_id)
        if rw is None:
            rw = self.responses[response_id] = ResponseWire(response_id)
        return rw
