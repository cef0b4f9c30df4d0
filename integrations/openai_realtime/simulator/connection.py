"""One simulated OpenAI Realtime websocket connection: client events in, server events out."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import time
from typing import Any, Literal

from aiohttp import WSCloseCode, web

from integrations.openai_realtime.simulator.conversation import Conversation, Handler
from integrations.openai_realtime.simulator.limits import (
    DEFAULT_LIMITS,
    EventLog,
    ServerLimits,
    parse_client_json,
)
from integrations.openai_realtime.simulator.plans import DropMode, ResponsePlan
from integrations.openai_realtime.simulator.ports import ConnectionGone, SimulatorHub
from integrations.openai_realtime.simulator.protocol import (
    ClientEventError,
    error_event,
    new_id,
)
from integrations.openai_realtime.simulator.records import Direction, LogEntry, ResponseRecord
from integrations.openai_realtime.simulator.responses import mark_dropped, run_response
from integrations.openai_realtime.simulator.vad import ServerVad

__all__ = ["ConnectionGone", "SimConnection"]

logger = logging.getLogger(__name__)

_MAX_METADATA_PAIRS = 16


class SimConnection:
    """State and behaviour of one client connection.

    Args:
        hub: The owning simulator.
        connection_id: Id of this connection (1, 2, ...).
        request: The aiohttp request that opened it.
        ws: The prepared websocket.
        model: Model name from the ``model`` query parameter.
        max_log_entries: Bound on ``log`` (oldest dropped), ``None`` for no count bound.
        limits: The server's bounds; ``log`` keeps ``limits.max_log_bytes`` at most.
    """

    def __init__(
        self,
        hub: SimulatorHub,
        connection_id: int,
        request: web.Request,
        ws: web.WebSocketResponse,
        *,
        model: str,
        max_log_entries: int | None = None,
        limits: ServerLimits = DEFAULT_LIMITS,
    ) -> None:
        self.hub = hub
        self.id = connection_id
        self.request = request
        self.ws = ws
        self.model = model
        self.authorization: str | None = request.headers.get("Authorization")
        self.opened_at = time.monotonic()
        self.closed_at: float | None = None
        self.dropped = False
        self.limits = limits
        self.log = EventLog(max_log_entries, limits)
        self.conversation = Conversation(self.send, model, connection_id, limits)
        self.vad = ServerVad(self)
        self.conversation.on_input_audio = self.vad.on_audio
        self.conversation.on_input_reset = self.vad.reset
        self.conversation_id = new_id("conv")
        self.responses: list[ResponseRecord] = []
        self._send_lock = asyncio.Lock()
        self._tasks: dict[int, asyncio.Task[None]] = {}
        self._cancel_events: dict[int, asyncio.Event] = {}
        self._handlers: dict[str, Handler] = {
            **self.conversation.handlers(),
            "response.create": self._on_response_create,
            "response.cancel": self._on_response_cancel,
        }

    # ------------------------------------------------------------------ sending

    @property
    def session(self) -> dict[str, Any]:
        """The session object (the conversation's)."""
        return self.conversation.session

    @property
    def closed(self) -> bool:
        """Whether the websocket is closed (or being closed)."""
        return self.closed_at is not None or self.ws.closed

    def _record(self, direction: Direction, event: dict[str, Any], t: float, size: int) -> None:
        etype = event.get("type")
        self.log.append(
            LogEntry(
                t, self.id, direction, etype if isinstance(etype, str) else "<invalid>", event
            ),
            size,
        )

    async def send(self, event: dict[str, Any]) -> None:
        """Send one server event and log it.

        Args:
            event: The event; an ``event_id`` is added when missing.

        Raises:
            ConnectionGone: If the websocket is closed.
        """
        event.setdefault("event_id", new_id("event"))
        async with self._send_lock:
            if self.closed:
                raise ConnectionGone(f"connection {self.id} is closed")
            text = json.dumps(event)
            self._record("send", event, time.monotonic(), len(text))
            try:
                await self.ws.send_str(text)
            except (ConnectionError, RuntimeError) as exc:
                raise ConnectionGone(str(exc)) from exc

    async def send_error(self, exc: ClientEventError, client_event_id: str | None) -> None:
        """Send an ``error`` event for a rejected client event, if still connected.

        Args:
            exc: The rejection.
            client_event_id: ``event_id`` of the rejected event.
        """
        with contextlib.suppress(ConnectionGone):
            await self.send(
                error_event(
                    exc.message,
                    code=exc.code,
                    param=exc.param,
                    error_type=exc.error_type,
                    client_event_id=client_event_id if exc.echo_event_id else None,
                )
            )

    # ---------------------------------------------------------------- receiving

    async def handle_text(self, text: str) -> None:
        """Handle one text frame from the client; never raises for bad input.

        Args:
            text: The frame's text.
        """
        t = time.monotonic()
        try:
            event = parse_client_json(text, self.limits)
        except ClientEventError as exc:  # too many objects, or too deep
            self._record("recv", {"raw": text[:256]}, t, len(text))
            await self.send_error(exc, None)
            return
        except ValueError:
            self._record("recv", {"raw": text}, t, len(text))
            await self.send_error(
                ClientEventError("The server could not parse the JSON event.", code="invalid_json"),
                None,
            )
            return
        if not isinstance(event, dict):
            self._record("recv", {"raw": text}, t, len(text))
            await self.send_error(
                ClientEventError("Expected a JSON object.", code="invalid_json"), None
            )
            return
        self._record("recv", event, t, len(text))
        raw_id = event.get("event_id")
        client_event_id = raw_id if isinstance(raw_id, str) else None
        etype = event.get("type")
        handler = self._handlers.get(etype) if isinstance(etype, str) else None
        if handler is None:
            await self.send_error(
                ClientEventError(
                    f"Invalid value: {etype!r}. Supported values are: "
                    + ", ".join(repr(k) for k in self._handlers)
                    + ".",
                    code="invalid_value",
                    param="type",
                ),
                client_event_id,
            )
            return
        try:
            await handler(event, client_event_id)
        except ClientEventError as exc:
            await self.send_error(exc, client_event_id)
        except ConnectionGone:
            pass
        except Exception:  # a simulator bug must not kill the connection
            logger.exception("simulator failed to handle %s", etype)
            await self.send_error(
                ClientEventError(
                    "The simulator failed to handle the event.",
                    code="server_error",
                    error_type="server_error",
                ),
                client_event_id,
            )

    async def refuse_too_big(self) -> None:
        """Send the ``error`` event for a message over ``limits.max_message_bytes``.

        Called by the websocket just before it closes with 1009: the message was
        never read, so the stream can't go on.
        """
        self._record("recv", {"raw": "<too big>"}, time.monotonic(), 0)
        limit = self.limits.max_message_bytes
        await self.send_error(
            ClientEventError(
                f"The message is larger than the limit of {limit} bytes "
                f"({limit >> 20} MiB); the connection will close.",
                code="message_too_large",
            ),
            None,
        )

    async def handle_binary(self) -> None:
        """Reject a binary frame with an ``error`` event."""
        self._record("recv", {"raw": "<binary>"}, time.monotonic(), 0)
        await self.send_error(
            ClientEventError("Binary frames are not supported.", code="invalid_json"), None
        )

    # ------------------------------------------------------------- responses

    def active_default_response(self) -> ResponseRecord | None:
        """The pending or in-progress default-conversation response, if any.

        Returns:
            The record, or ``None``.
        """
        for record in self.responses:
            if record.conversation == "auto" and record.is_active:
                return record
        return None

    async def _on_response_create(self, event: dict[str, Any], client_event_id: str | None) -> None:
        params = event.get("response", {})
        if params is None:
            params = {}
        if not isinstance(params, dict):
            raise ClientEventError(
                "Invalid type for 'response'.", code="invalid_type", param="response"
            )
        conversation = params.get("conversation", "auto")
        if conversation not in ("auto", "none"):
            raise ClientEventError(
                f"Invalid value: {conversation!r}. Supported values are: 'auto' and 'none'.",
                code="invalid_value",
                param="response.conversation",
            )
        metadata = params.get("metadata")
        _check_metadata(metadata)
        if conversation == "auto" and (active := self.active_default_response()) is not None:
            raise ClientEventError(
                "Conversation already has an active response in progress: "
                f"{active.response_id}. Wait until the response is finished before creating "
                "a new one.",
                code="conversation_already_has_active_response",
            )
        if len(self._tasks) >= self.limits.max_active_responses:  # out-of-band ones pile up
            raise ClientEventError(
                f"The connection already has {len(self._tasks)} responses in progress, the "
                f"simulator's limit ({self.limits.max_active_responses}). Wait for one to finish.",
                code="too_many_active_responses",
            )
        self.start_response(
            self.hub.next_plan(),
            conversation="auto" if conversation == "auto" else "none",
            metadata=metadata,
            client_event_id=client_event_id,
        )

    def start_response(
        self,
        plan: ResponsePlan,
        *,
        conversation: Literal["auto", "none"] = "auto",
        metadata: dict[str, Any] | None = None,
        client_event_id: str | None = None,
        server_initiated: bool = False,
    ) -> ResponseRecord:
        """Create a response record and start streaming it.

        Args:
            plan: How to stream it.
            conversation: ``"auto"`` or ``"none"``.
            metadata: Metadata to echo.
            client_event_id: ``event_id`` of the ``response.create``.
            server_initiated: Whether no ``response.create`` asked for it.

        Returns:
            The new record (status ``pending``).

        Raises:
            ConnectionGone: If the connection is closed.
        """
        if self.closed:
            raise ConnectionGone(f"connection {self.id} is closed")
        record = ResponseRecord(
            number=self.hub.next_response_number(),
            response_id=new_id("resp"),
            item_id=new_id("item"),
            connection=self.id,
            conversation=conversation,
            metadata=dict(metadata) if metadata is not None else None,
            plan=plan,
            client_event_id=client_event_id,
            server_initiated=server_initiated,
            requested_at=None if server_initiated else time.monotonic(),
        )
        self.responses.append(record)
        self.hub.add_response(record)
        cancel_event = asyncio.Event()
        self._cancel_events[record.number] = cancel_event
        task = asyncio.create_task(
            run_response(self, record, cancel_event),
            name=f"sim-response-{record.number}",
        )
        self._tasks[record.number] = task
        task.add_done_callback(functools.partial(self._forget_task, record.number))
        return record

    def _forget_task(self, number: int, _task: asyncio.Task[None]) -> None:
        self._tasks.pop(number, None)

    async def _on_response_cancel(self, event: dict[str, Any], _: str | None) -> None:
        response_id = event.get("response_id")
        target: ResponseRecord | None = None
        for record in self.responses:
            if record.status != "in_progress":
                continue
            if response_id is None:
                matches = record.conversation == "auto"
            else:
                matches = record.response_id == response_id
            if matches:
                target = record
        if target is None:
            raise ClientEventError(
                "Cancellation failed: no active response found", code="response_cancel_not_active"
            )
        target.cancel_requests += 1
        self._cancel(target, "client_cancelled")

    def _cancel(self, target: ResponseRecord, reason: str) -> None:
        if target.cancel_requested_at is None:
            target.cancel_requested_at = time.monotonic()
            target.chunks_before_cancel = target.chunks_sent
            target.cancel_reason = reason
        if not target.plan.ignore_cancel:
            self._cancel_events[target.number].set()
        self.hub.notify()

    # ------------------------------------------------------------- server VAD

    async def commit_input(self, item_id: str) -> None:
        """Commit the input buffer as the user item ``item_id`` (server VAD).

        Args:
            item_id: The item id announced in ``speech_started``.
        """
        await self.conversation.commit_input(item_id)

    def interrupt_default_response(self) -> bool:
        """Cancel the default conversation's response in progress, reason ``turn_detected``.

        Returns:
            Whether there was one (a plan that ignores cancels keeps streaming).
        """
        active = self.active_default_response()
        if active is None or active.status != "in_progress":
            return False
        self._cancel(active, "turn_detected")
        return True

    def respond_to_turn(self) -> bool:
        """Start the server's reply to a user turn (the next queued plan), unless one is active.

        Returns:
            Whether a response started.
        """
        if self.closed or self.active_default_response() is not None:
            return False
        self.start_response(self.hub.next_plan(), server_initiated=True)
        return True

    # --------------------------------------------------------------- teardown

    async def drop(self, mode: DropMode = "abort") -> None:
        """Drop the connection the way a failing network or server would.

        Args:
            mode: ``"abort"`` resets the TCP connection with no close frame;
                ``"close"`` sends a close frame with code 1011.
        """
        self.dropped = True
        if mode == "abort":
            transport = self.request.transport
            if transport is not None:
                transport.abort()
        else:
            with contextlib.suppress(ConnectionError, RuntimeError):
                await self.ws.close(code=WSCloseCode.INTERNAL_ERROR, message=b"simulated drop")

    async def shutdown(self) -> None:
        """Stop every response task and mark unfinished responses dropped."""
        if self.closed_at is None:
            self.closed_at = time.monotonic()
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for record in self.responses:
            if record.is_active:
                mark_dropped(record)
        self.hub.notify()


def _check_metadata(metadata: object) -> None:
    """Reject metadata the real server would reject (16 pairs, 64/512 chars)."""
    if metadata is None:
        return
    if not isinstance(metadata, dict) or len(metadata) > _MAX_METADATA_PAIRS:
        raise ClientEventError(
            "Invalid 'response.metadata': expected an object with at most 16 pairs.",
            code="invalid_value",
            param="response.metadata",
        )
    for key, value in metadata.items():
        if not isinstance(value, str) or len(key) > 64 or len(value) > 512:
            raise ClientEventError(
                "Invalid 'response.metadata': keys are at most 64 characters and values "
                "strings of at most 512 characters.",
                code="invalid_value",
                param="response.metadata",
            )
