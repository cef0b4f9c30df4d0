"""A local, protocol-faithful OpenAI Realtime API (GA) simulator for tests and demos.

The simulator is an aiohttp websocket server on ``127.0.0.1`` that speaks enough of
the GA Realtime protocol for ``livekit.plugins.openai.realtime.RealtimeModel``
(``base_url=sim.base_url``) to run a real session::

    async with RealtimeSimulator(port=0) as sim:
        sim.enqueue(ResponsePlan(chunks=5), ResponsePlan(created_delay_s=0.5))
        model = RealtimeModel(base_url=sim.base_url, api_key="x", modalities=["audio"])
        ...
        record = await sim.wait_for_response(1)
        await record.done.wait()

Protocol
--------
* ``session.created`` on connect; ``session.update`` -> ``session.updated`` (merged).
* ``input_audio_buffer.append`` / ``commit`` (``committed`` + a user item, or an
  ``input_audio_buffer_commit_empty`` error below 100 ms) / ``clear`` (``cleared``).
* ``conversation.item.create`` / ``delete`` / ``truncate`` / ``retrieve`` with the GA
  replies (``conversation.item.added`` + ``conversation.item.done``, ...). Each
  assistant item's audio is counted; a truncate past it is refused like the real
  service refuses it (see :mod:`.items`). Every truncate and delete is recorded:
  :meth:`RealtimeSimulator.context_edits`, and the server's final view per assistant
  item, :meth:`RealtimeSimulator.item_audio`.
* Server VAD (``turn_detection`` ``server_vad``, the default): speech in the appended
  input audio, or :meth:`RealtimeSimulator.user_speaks` from Python, gives
  ``input_audio_buffer.speech_started`` (cancelling the default response in progress,
  reason ``turn_detected``), then ``speech_stopped``, the committed user item and a
  server-initiated response using the next queued plan (see :mod:`.vad`).
* ``response.create`` -> the events listed in :mod:`sim_responses`, echoing
  ``response.metadata`` in ``response.created`` and ``response.done``.
  ``response.conversation == "none"`` runs out of band, concurrently with the
  default-conversation response; a second default-conversation response while one is
  active is refused (``conversation_already_has_active_response``).
* ``response.cancel`` with ``response_id`` cancels that in-progress response; without
  it, the in-progress default-conversation response only (never an out-of-band one).
  With nothing to cancel the reply is an ``error`` whose message starts with
  ``"Cancellation failed"``, like the real server's. A response that is still
  waiting out ``created_delay_s`` cannot be cancelled yet.
* Malformed JSON, unknown event types and bad parameters get an ``error`` event;
  the connection stays up.

Audio is 24 kHz mono PCM16 whose samples identify their response and chunk; see
:mod:`integrations.openai_realtime.simulator.audio_marker` for the encoding and decoders.
Misbehaviour is chosen per response with a :class:`ResponsePlan`.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import time
from collections.abc import Callable, Iterator
from types import TracebackType
from typing import Any

from aiohttp import WSCloseCode, WSMsgType, web

from integrations.openai_realtime.simulator.connection import ConnectionGone, SimConnection
from integrations.openai_realtime.simulator.items import ContextEdit, EditKind, ItemAudio
from integrations.openai_realtime.simulator.limits import (
    DEFAULT_LIMITS,
    ServerLimits,
    SimWebSocket,
    without_key_protocols,
)
from integrations.openai_realtime.simulator.plans import DropMode, ResponsePlan
from integrations.openai_realtime.simulator.records import Direction, LogEntry, ResponseRecord

__all__ = ["HOST", "RealtimeSimulator"]

logger = logging.getLogger(__name__)

#: The simulator only ever binds the loopback interface.
HOST = "127.0.0.1"


class RealtimeSimulator:
    """An OpenAI Realtime API simulator bound to ``127.0.0.1``.

    Args:
        port: TCP port; 0 picks a free one (read it back from :attr:`port`).
        default_plan: Plan used when the queue is empty; ``ResponsePlan()`` if omitted.
        max_log_entries: Bound on each connection's log (oldest entries dropped);
            ``None`` for no count bound (the byte bounds of ``limits`` still hold).
        close_timeout: Seconds to wait for a client's close reply on shutdown.
        limits: What a client may send and what is kept of it, in bytes (see
            :mod:`~integrations.openai_realtime.simulator.limits`): messages up to
            16 MiB, 8 MiB of log per connection, the logs of the 16 most recently
            closed connections.
    """

    def __init__(
        self,
        *,
        port: int = 0,
        default_plan: ResponsePlan | None = None,
        max_log_entries: int | None = None,
        close_timeout: float = 1.0,
        limits: ServerLimits = DEFAULT_LIMITS,
    ) -> None:
        self.default_plan = default_plan if default_plan is not None else ResponsePlan()
        self.plans: collections.deque[ResponsePlan] = collections.deque()
        self.connections: list[SimConnection] = []
        """Open connections, and the ``limits.max_closed_logs`` most recently closed."""
        self._connections_made = 0
        self.responses: list[ResponseRecord] = []
        self._requested_port = port
        self._port: int | None = None
        self._max_log_entries = max_log_entries
        self.limits = limits
        self._closed_logs: collections.deque[SimConnection] = collections.deque()
        self._close_timeout = close_timeout
        self._runner: web.AppRunner | None = None
        self._response_counter = 0
        self._changed = asyncio.Event()
        self._handlers: set[asyncio.Task[Any]] = set()

    # ------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        """Start serving.

        Raises:
            RuntimeError: If already started.
            OSError: If the port cannot be bound.
        """
        if self._runner is not None:
            raise RuntimeError("simulator already started")
        app = web.Application()
        app.router.add_get("/v1/realtime", self._handle_ws)
        app.router.add_get("/realtime", self._handle_ws)
        runner = web.AppRunner(app, handle_signals=False, access_log=None, shutdown_timeout=1.0)
        await runner.setup()
        site = web.TCPSite(runner, HOST, self._requested_port)
        try:
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        address = runner.addresses[0]
        self._port = int(address[1])

    async def aclose(self) -> None:
        """Close every websocket, stop every response task and stop serving."""
        runner, self._runner = self._runner, None
        if runner is None:
            return
        for conn in list(self.connections):  # closing handlers may forget old ones
            await conn.shutdown()
            if not conn.ws.closed:
                with contextlib.suppress(ConnectionError, RuntimeError, asyncio.TimeoutError):
                    await asyncio.wait_for(
                        conn.ws.close(code=WSCloseCode.GOING_AWAY, message=b"simulator shutdown"),
                        self._close_timeout,
                    )
        handlers = list(self._handlers)
        if handlers:
            _, pending = await asyncio.wait(handlers, timeout=self._close_timeout)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        await runner.cleanup()

    async def __aenter__(self) -> RealtimeSimulator:
        """Start serving.

        Returns:
            The simulator.
        """
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Shut down (see :meth:`aclose`)."""
        await self.aclose()

    @property
    def port(self) -> int:
        """The bound port.

        Raises:
            RuntimeError: If not started.
        """
        if self._port is None:
            raise RuntimeError("simulator not started")
        return self._port

    @property
    def url(self) -> str:
        """Websocket URL of the Realtime endpoint (``ws://127.0.0.1:PORT/v1/realtime``)."""
        return f"ws://{HOST}:{self.port}/v1/realtime"

    @property
    def base_url(self) -> str:
        """HTTP base URL to give an OpenAI client (``http://127.0.0.1:PORT/v1``)."""
        return f"http://{HOST}:{self.port}/v1"

    # ---------------------------------------------------------------- plans

    def enqueue(self, *plans: ResponsePlan) -> None:
        """Queue plans for the next ``response.create`` events, in order.

        Args:
            *plans: The plans.
        """
        self.plans.extend(plans)

    def next_plan(self) -> ResponsePlan:
        """Pop the next queued plan, or return :attr:`default_plan`.

        Returns:
            The plan.
        """
        return self.plans.popleft() if self.plans else self.default_plan

    def next_response_number(self) -> int:
        """Allocate the next simulator-wide response number (1, 2, ...).

        Returns:
            The number.
        """
        self._response_counter += 1
        return self._response_counter

    def add_response(self, record: ResponseRecord) -> None:
        """Register a response record (called by connections).

        Args:
            record: The record.
        """
        self.responses.append(record)
        self.notify()

    # ----------------------------------------------------------- server side

    @property
    def connection(self) -> SimConnection:
        """The most recent connection.

        Raises:
            LookupError: If no client has connected.
        """
        if not self.connections:
            raise LookupError("no client has connected")
        return self.connections[-1]

    async def start_server_response(
        self,
        plan: ResponsePlan | None = None,
        *,
        connection: SimConnection | None = None,
    ) -> ResponseRecord:
        """Start a server-initiated response (as after server VAD): no ``response.create``,
        no metadata, default conversation.

        Args:
            plan: How to stream it; :attr:`default_plan` if omitted (the queue is untouched).
            connection: Where to send it; the most recent open connection if omitted.

        Returns:
            The response record (status ``pending`` until ``response.created`` is sent).

        Raises:
            LookupError: If there is no open connection.
            RuntimeError: If that connection already has an active default response.
        """
        conn = connection if connection is not None else self._latest_open()
        if conn.active_default_response() is not None:
            raise RuntimeError(f"connection {conn.id} already has an active default response")
        try:
            return conn.start_response(
                plan if plan is not None else self.default_plan, server_initiated=True
            )
        except ConnectionGone as exc:
            raise LookupError(str(exc)) from exc

    async def drop_connection(
        self, connection: SimConnection | None = None, *, mode: DropMode = "abort"
    ) -> None:
        """Drop a connection now, as a network failure would.

        Args:
            connection: The connection; the most recent open one if omitted.
            mode: ``"abort"`` (no close frame) or ``"close"`` (close code 1011).

        Raises:
            LookupError: If there is no open connection.
        """
        conn = connection if connection is not None else self._latest_open()
        await conn.drop(mode)

    async def user_speaks(
        self, seconds: float = 0.3, *, connection: SimConnection | None = None
    ) -> str:
        """The user speaks for ``seconds``, as server VAD would hear it, then stops.

        Sends ``speech_started`` (interrupting the default response in progress), waits,
        then ``speech_stopped``, commits the user item and, with ``create_response``,
        starts the server's reply with the next queued plan. Needs server VAD on.

        Args:
            seconds: How long the speech lasts.
            connection: The connection; the most recent open one if omitted.

        Returns:
            The user item's id.

        Raises:
            LookupError: If there is no open connection.
            RuntimeError: If the session's turn detection is off.
        """
        conn = connection if connection is not None else self._latest_open()
        item_id = await self.start_user_speech(connection=conn)
        await asyncio.sleep(seconds)
        conn.vad.input_ms += seconds * 1000.0
        await conn.vad.stop_speech()
        return item_id

    async def start_user_speech(self, *, connection: SimConnection | None = None) -> str:
        """Speech starts now (server VAD): see :meth:`user_speaks`.

        Args:
            connection: The connection; the most recent open one if omitted.

        Returns:
            The id of the user item the speech will become.

        Raises:
            LookupError: If there is no open connection.
            RuntimeError: If the session's turn detection is off.
        """
        conn = connection if connection is not None else self._latest_open()
        if conn.vad.settings() is None:
            raise RuntimeError(f"connection {conn.id} has turn detection off")
        try:
            return await conn.vad.start_speech()
        except ConnectionGone as exc:
            raise LookupError(str(exc)) from exc

    # ------------------------------------------------------------ conversation

    def item_audio(self, record: ResponseRecord | None = None) -> list[ItemAudio]:
        """The server's view of assistant items: audio sent, truncated, deleted, held.

        Args:
            record: Only this response's item(s); every item of every connection if omitted.

        Returns:
            The items, in connection and creation order (out-of-band replies have none).
        """
        items = [i for conn in self.connections for i in conn.conversation.audio.items.values()]
        if record is None:
            return items
        return [i for i in items if i.response_id == record.response_id]

    def held_ms(self, record: ResponseRecord) -> int:
        """Milliseconds of a response's audio the server's conversation holds now.

        Args:
            record: The response.

        Returns:
            The sum over its items (0 for an out-of-band reply or a deleted item).
        """
        return sum(i.held_ms for i in self.item_audio(record))

    def context_edits(
        self, kind: EditKind | None = None, *, item_id: str | None = None
    ) -> list[ContextEdit]:
        """Every ``conversation.item.truncate`` / ``delete`` received, accepted or not.

        Args:
            kind: Only ``"truncate"`` or ``"delete"``.
            item_id: Only those naming this item.

        Returns:
            The edits, in time order.
        """
        edits = [
            e
            for conn in self.connections
            for e in conn.conversation.audio.edits
            if (kind is None or e.kind == kind) and (item_id is None or e.item_id == item_id)
        ]
        edits.sort(key=lambda e: e.t)
        return edits

    def _latest_open(self) -> SimConnection:
        for conn in reversed(self.connections):
            if not conn.closed:
                return conn
        raise LookupError("no open connection")

    # -------------------------------------------------------------- handler

    async def _handle_ws(self, request: web.Request) -> web.StreamResponse:
        task = asyncio.current_task()
        if task is not None:
            self._handlers.add(task)
        clean_request, protocols = without_key_protocols(request)
        ws = SimWebSocket(
            timeout=self._close_timeout, limit=self.limits.max_message_bytes, protocols=protocols
        )
        await ws.prepare(clean_request)
        conn = SimConnection(
            self,
            self._connections_made + 1,
            request,
            ws,
            model=request.query.get("model", "gpt-realtime"),
            max_log_entries=self._max_log_entries,
            limits=self.limits,
        )
        ws.on_too_big = conn.refuse_too_big
        self._connections_made += 1
        self.connections.append(conn)
        self.notify()
        try:
            await conn.send({"type": "session.created", "session": conn.conversation.session})
            async for msg in ws:
                if msg.type == WSMsgType.TEXT:
                    await conn.handle_text(msg.data)
                elif msg.type == WSMsgType.BINARY:
                    await conn.handle_binary()
                elif msg.type == WSMsgType.ERROR:
                    break
        except ConnectionGone:
            pass
        finally:
            await conn.shutdown()
            self._keep_log_of(conn)
            if task is not None:
                self._handlers.discard(task)
            logger.debug(
                "connection %d closed after %.3fs", conn.id, time.monotonic() - conn.opened_at
            )
        return ws

    def _keep_log_of(self, conn: SimConnection) -> None:
        """Keep a closed connection; forget the oldest closed beyond ``max_closed_logs``."""
        self._closed_logs.append(conn)
        while len(self._closed_logs) > self.limits.max_closed_logs:
            old = self._closed_logs.popleft()
            old.log.clear()
            self.connections.remove(old)

    # ------------------------------------------------------------ the read side

    def notify(self) -> None:
        """Wake every ``wait_*`` call so it re-checks its condition."""
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()

    def log(
        self,
        *,
        type: str | None = None,
        direction: Direction | None = None,
        connection: int | None = None,
    ) -> list[LogEntry]:
        """Every logged message of every connection, in time order, optionally filtered.

        Args:
            type: Keep only this event type.
            direction: Keep only ``"recv"`` or ``"send"``.
            connection: Keep only this connection id.

        Returns:
            The entries.
        """
        entries = [
            e
            for conn in self.connections
            if connection is None or conn.id == connection
            for e in conn.log
            if (type is None or e.type == type) and (direction is None or e.direction == direction)
        ]
        entries.sort(key=lambda e: e.t)
        return entries

    def response_by_id(self, response_id: str) -> ResponseRecord:
        """Find a response by its ``response.id``.

        Args:
            response_id: The id.

        Returns:
            The record.

        Raises:
            KeyError: If no response has that id.
        """
        for record in self.responses:
            if record.response_id == response_id:
                return record
        raise KeyError(response_id)

    def iter_events(self, response: ResponseRecord) -> Iterator[dict[str, Any]]:
        """Yield the sent events that carry ``response``'s id, in order.

        Args:
            response: The response.

        Yields:
            The events.
        """
        for entry in self.log(direction="send", connection=response.connection):
            event = entry.event
            rid = event.get("response_id") or (event.get("response") or {}).get("id")
            if rid == response.response_id:
                yield event

    async def wait_until(self, predicate: Callable[[], bool], timeout: float = 5.0) -> None:
        """Wait until ``predicate()`` is true; it is re-checked on every state change.

        Args:
            predicate: The condition.
            timeout: Seconds to wait.

        Raises:
            TimeoutError: If it is still false after ``timeout``.
        """
        async with asyncio.timeout(timeout):
            while not predicate():
                await self._changed.wait()

    async def wait_for_connection(self, count: int = 1, timeout: float = 5.0) -> SimConnection:
        """Wait until ``count`` connections have been made.

        Args:
            count: Connection number to wait for (1 = the first).
            timeout: Seconds to wait.

        Returns:
            Connection number ``count``.

        Raises:
            TimeoutError: On timeout.
            LookupError: If it closed and is no longer kept (``limits.max_closed_logs``).
        """
        await self.wait_until(lambda: self._connections_made >= count, timeout)
        for conn in self.connections:
            if conn.id == count:
                return conn
        raise LookupError(f"connection {count} closed long ago and was forgotten")

    async def wait_for_response(self, number: int, timeout: float = 5.0) -> ResponseRecord:
        """Wait until response ``number`` exists (it may still be pending).

        Args:
            number: Simulator-wide response number (1 = the first).
            timeout: Seconds to wait.

        Returns:
            The record.

        Raises:
            TimeoutError: On timeout.
        """
        await self.wait_until(lambda: len(self.responses) >= number, timeout)
        return self.responses[number - 1]

    async def wait_done(self, record: ResponseRecord, timeout: float = 5.0) -> ResponseRecord:
        """Wait until a response ends (``response.done`` sent or connection dropped).

        Args:
            record: The response.
            timeout: Seconds to wait.

        Returns:
            The same record.

        Raises:
            TimeoutError: On timeout.
        """
        await asyncio.wait_for(record.done.wait(), timeout)
        return record
