"""The simulator as a server facing any client: what it accepts, and what it keeps.

Every bound here is in bytes (or a count of bounded things), because the input comes
from outside:

- a message longer than ``max_message_bytes`` (16 MiB) is never read: aiohttp sees its
  length in the frame header, the client gets an ``error`` event naming the limit
  (code ``message_too_large``) and the connection closes with 1009, the websocket code
  for a message too big (the stream can't be resynchronised after an unread frame);
- a message with more than ``max_containers`` ``{``/``[`` bytes, or nested deeper than
  ``max_depth``, gets an ``error`` event (code ``invalid_json``) and the connection
  stays up: it is refused before (or right after) ``json.loads``, never recursed into;
- each connection's log keeps at most ``max_log_bytes`` of messages (their wire size,
  oldest dropped first); a message over ``max_log_entry_bytes`` is logged as a stub
  (its type, event id and size); the logs of only the ``max_closed_logs`` most recently
  closed connections are kept;
- what a client can make the server hold: a session of at most ``max_session_bytes``
  (``session.update`` merges keys, so it could grow), at most ``max_conversation_items``
  client-created items of ``max_conversation_bytes`` in all (``error`` events
  ``session_too_large`` / ``conversation_too_large`` name the bound), and the last
  10,000 truncates and deletes recorded (``items.MAX_EDITS_KEPT``);
- at most ``max_active_responses`` responses streaming at once per connection
  (``error`` event ``too_many_active_responses``).

With the defaults, the simulator's logs hold at most 8 MiB per open connection plus
16 x 8 MiB for closed ones, a conversation at most 4 MiB of session and 32 MiB of client
items, and one message costs at most 16 MiB while it is handled. Not bounded here: the
response records (``RealtimeSimulator.responses``, a few hundred bytes plus echoed
metadata each) and the items the server itself makes per response.
"""

from __future__ import annotations

import collections
import json
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any

from aiohttp import WSCloseCode, hdrs, web

from integrations.openai_realtime.simulator.protocol import ClientEventError
from integrations.openai_realtime.simulator.records import LogEntry

__all__ = [
    "DEFAULT_LIMITS",
    "EventLog",
    "ServerLimits",
    "SimWebSocket",
    "parse_client_json",
    "without_key_protocols",
]

#: The browser form of authentication, a subprotocol ``openai-insecure-api-key.<key>``.
KEY_PROTOCOL_PREFIX = "openai-insecure-api-key."


@dataclass(frozen=True, slots=True)
class ServerLimits:
    """What the simulator accepts from a client and keeps of it (see the module docstring).

    Attributes:
        max_message_bytes: Longest websocket message read.
        max_containers: Most ``{`` and ``[`` bytes in one message.
        max_depth: Deepest nesting of objects and arrays in one event.
        max_log_bytes: Bytes of messages each connection's log keeps.
        max_log_entry_bytes: Longest message logged whole; longer ones become stubs.
        max_closed_logs: Closed connections whose logs are kept.
        max_session_bytes: Largest session (JSON) ``session.update`` may build.
        max_conversation_items: Most client-created items one conversation holds.
        max_conversation_bytes: Most JSON bytes of client-created items it holds.
        max_active_responses: Most responses one connection streams at once (each is a
            task; out-of-band ``response.create`` could otherwise start any number).
    """

    max_message_bytes: int = 16 << 20
    max_containers: int = 10_000
    max_depth: int = 64
    max_log_bytes: int = 8 << 20
    max_log_entry_bytes: int = 1 << 20
    max_closed_logs: int = 16
    max_session_bytes: int = 4 << 20
    max_conversation_items: int = 4096
    max_conversation_bytes: int = 32 << 20
    max_active_responses: int = 64

    def __post_init__(self) -> None:
        for name in self.__slots__:
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")


DEFAULT_LIMITS = ServerLimits()


def parse_client_json(text: str, limits: ServerLimits) -> Any:
    """Parse one client message within ``limits``.

    Args:
        text: The message.
        limits: The bounds.

    Returns:
        The parsed JSON value.

    Raises:
        ClientEventError: (``invalid_json``) If it holds too many objects and arrays
            or nests too deep.
        ValueError: If it is not JSON.
    """
    containers = text.count("{") + text.count("[")
    if containers > limits.max_containers:
        raise ClientEventError(
            f"The event holds {containers} JSON objects and arrays; at most "
            f"{limits.max_containers} are accepted.",
            code="invalid_json",
        )
    try:
        value = json.loads(text)
    except RecursionError:
        value = None
    else:
        if _depth(value, limits.max_depth) <= limits.max_depth:
            return value
    raise ClientEventError(
        f"The event is nested deeper than {limits.max_depth} levels.", code="invalid_json"
    )


def _depth(value: Any, stop: int) -> int:
    """Nesting depth of ``value`` (a scalar is 0), counted up to ``stop + 1``; no recursion."""
    deepest, level = 0, [(value, 0)]
    while level:
        node, d = level.pop()
        children = (
            node.values() if isinstance(node, dict) else node if isinstance(node, list) else None
        )
        if children is None:
            continue
        deepest = max(deepest, d + 1)
        if deepest > stop:
            break
        level.extend((child, d + 1) for child in children)
    return deepest


# What one entry costs in Python objects beyond its wire size (the parsed dict, its keys,
# the LogEntry): measured with tracemalloc at about 400-500 bytes for small events.
_ENTRY_OVERHEAD = 512


class EventLog:
    """A connection's log, bounded by entries and by bytes.

    Each entry is charged its wire size plus 512 bytes for the Python objects it takes
    (measured), so a flood of tiny events is bounded as well as a few large ones.

    Iterating yields :class:`LogEntry` oldest first, like the deque it replaces.

    Args:
        max_entries: Most entries kept, ``None`` for no count bound.
        limits: ``max_log_bytes`` and ``max_log_entry_bytes``.
    """

    def __init__(self, max_entries: int | None, limits: ServerLimits) -> None:
        self._entries: collections.deque[tuple[LogEntry, int]] = collections.deque()
        self._max_entries = max_entries
        self._max_bytes = limits.max_log_bytes
        self._max_entry_bytes = limits.max_log_entry_bytes
        self.bytes = 0
        """Bytes charged for the entries held (wire size plus per-entry overhead)."""
        self.dropped = 0
        """Entries dropped to stay within the bounds (or by :meth:`clear`)."""

    def append(self, entry: LogEntry, size: int) -> None:
        """Log one message of ``size`` wire bytes; a large one is kept as a stub."""
        if size > self._max_entry_bytes:
            stub = {"type": entry.type, "event_id": entry.event.get("event_id"), "bytes": size}
            entry = LogEntry(entry.t, entry.connection, entry.direction, entry.type, stub)
            size = 256
        size += _ENTRY_OVERHEAD
        self._entries.append((entry, size))
        self.bytes += size
        while self._entries and (
            self.bytes > self._max_bytes
            or (self._max_entries is not None and len(self._entries) > self._max_entries)
        ):
            self.bytes -= self._entries.popleft()[1]
            self.dropped += 1

    def clear(self) -> None:
        """Forget every entry (a closed connection's log past ``max_closed_logs``)."""
        self.dropped += len(self._entries)
        self._entries.clear()
        self.bytes = 0

    def __iter__(self) -> Iterator[LogEntry]:
        return (entry for entry, _ in list(self._entries))

    def __len__(self) -> int:
        return len(self._entries)


def without_key_protocols(request: web.Request) -> tuple[web.Request, tuple[str, ...]]:
    """Strip ``openai-insecure-api-key.<key>`` from the offered subprotocols.

    aiohttp logs the client's whole protocol list at WARNING when none of them is one
    the server speaks, and that list holds the API key. The key is a credential, not
    a protocol: it never reaches the handshake, so no log line can print it.

    Args:
        request: The upgrade request.

    Returns:
        The request to prepare the websocket with (a clone when something was
        stripped) and the protocols to accept: whatever else the client offered.
    """
    offered = request.headers.get(hdrs.SEC_WEBSOCKET_PROTOCOL)
    if offered is None:
        return request, ()
    protocols = [p.strip() for p in offered.split(",")]
    kept = tuple(p for p in protocols if p and not p.startswith(KEY_PROTOCOL_PREFIX))
    if len(kept) == len(protocols):
        return request, kept
    headers = request.headers.copy()
    del headers[hdrs.SEC_WEBSOCKET_PROTOCOL]
    if kept:
        headers[hdrs.SEC_WEBSOCKET_PROTOCOL] = ", ".join(kept)
    return request.clone(headers=headers), kept


class SimWebSocket(web.WebSocketResponse):
    """aiohttp's websocket, telling the client why before closing on a message too big.

    Args:
        limit: ``max_message_bytes``, named in the close reason.
        **kwargs: For :class:`aiohttp.web.WebSocketResponse`.

    Attributes:
        on_too_big: Awaited once, before the 1009 close, to send the ``error`` event.
    """

    def __init__(self, *, limit: int, **kwargs: Any) -> None:
        super().__init__(max_msg_size=limit, **kwargs)
        self.on_too_big: Callable[[], Awaitable[None]] | None = None
        self._limit = limit

    async def close(
        self, *, code: int = WSCloseCode.OK, message: bytes = b"", drain: bool = True
    ) -> bool:
        """Close; on a message too big, send the ``error`` event first.

        Returns:
            What aiohttp's ``close`` returns.
        """
        if code == WSCloseCode.MESSAGE_TOO_BIG:
            on_too_big, self.on_too_big = self.on_too_big, None
            if on_too_big is not None:
                await on_too_big()
            message = message or f"message larger than {self._limit} bytes".encode()
        return await super().close(code=code, message=message, drain=drain)
