"""What the Realtime simulator observed: event log entries and per-response facts."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any, Literal

from integrations.openai_realtime.simulator.audio_marker import MAX_RESPONSES
from integrations.openai_realtime.simulator.plans import ResponsePlan

__all__ = ["Direction", "LogEntry", "ResponseRecord", "ResponseStatus"]

#: ``"recv"``: client -> simulator; ``"send"``: simulator -> client.
Direction = Literal["recv", "send"]

#: ``pending`` until ``response.created`` is sent; ``dropped`` when the connection
#: went away before ``response.done``.
ResponseStatus = Literal["pending", "in_progress", "completed", "cancelled", "dropped"]


@dataclass(frozen=True)
class LogEntry:
    """One websocket message, as the simulator saw it.

    Attributes:
        t: ``time.monotonic()`` when it was received, or just before it was sent.
        connection: The connection's id (1, 2, ... in connect order).
        direction: ``"recv"`` or ``"send"``.
        type: The event ``type`` (``"<invalid>"`` for unparseable input).
        event: The parsed event; for invalid input ``{"raw": <text>}``.
    """

    t: float
    connection: int
    direction: Direction
    type: str
    event: dict[str, Any]


@dataclass
class ResponseRecord:
    """Facts about one simulated response. Times are ``time.monotonic()`` values.

    Attributes:
        number: Simulator-wide response number (1, 2, ...), the number in the audio.
        response_id: The ``response.id`` sent to the client.
        item_id: The id of the response's output message item.
        connection: Id of the connection it ran on.
        conversation: ``"auto"`` (default conversation) or ``"none"`` (out of band).
        metadata: Metadata from ``response.create`` (echoed back), or ``None``.
        plan: The plan it ran with.
        client_event_id: ``event_id`` of the ``response.create``, if any.
        server_initiated: Started with ``start_server_response`` (no ``response.create``).
        requested_at: When ``response.create`` arrived (``None`` if server initiated).
        created_at: When ``response.created`` was sent.
        first_audio_at: When the first audio delta was sent.
        done_at: When ``response.done`` was sent (or the connection dropped).
        status: See :data:`ResponseStatus`.
        status_reason: ``status_details.reason`` sent, e.g. ``"client_cancelled"``.
        cancel_requested_at: When the first ``response.cancel`` aimed at it arrived.
        cancel_requests: How many ``response.cancel`` events were aimed at it.
        cancel_reason: ``"client_cancelled"`` or ``"turn_detected"`` (server VAD), once
            a cancel was requested.
        chunks_sent: Audio deltas sent, in total.
        samples_sent: Audio samples sent, in total.
        chunks_before_cancel: Deltas sent before the first cancel arrived.
        chunks_after_cancel: Deltas sent after the first cancel arrived.
        chunks_after_done: Deltas sent after ``response.done``.
        transcript: The transcript text sent so far.
        created: Set when ``response.created`` is sent.
        done: Set when the response ends (``response.done`` sent or connection dropped).
    """

    number: int
    response_id: str
    item_id: str
    connection: int
    conversation: Literal["auto", "none"]
    metadata: dict[str, Any] | None
    plan: ResponsePlan
    client_event_id: str | None = None
    server_initiated: bool = False
    requested_at: float | None = None
    created_at: float | None = None
    first_audio_at: float | None = None
    done_at: float | None = None
    status: ResponseStatus = "pending"
    status_reason: str | None = None
    cancel_requested_at: float | None = None
    cancel_requests: int = 0
    cancel_reason: str | None = None
    chunks_sent: int = 0
    samples_sent: int = 0
    chunks_before_cancel: int = 0
    chunks_after_cancel: int = 0
    chunks_after_done: int = 0
    transcript: str = ""
    created: asyncio.Event = field(default_factory=asyncio.Event, repr=False)
    done: asyncio.Event = field(default_factory=asyncio.Event, repr=False)

    @property
    def marker_response(self) -> int:
        """The response field ``audio_marker.decode`` reports for this response."""
        return self.number % MAX_RESPONSES

    @property
    def is_active(self) -> bool:
        """Whether the response is pending or in progress."""
        return self.status in ("pending", "in_progress")

    @property
    def cancelled(self) -> bool:
        """Whether a cancel arrived for it (honoured or not)."""
        return self.cancel_requested_at is not None
