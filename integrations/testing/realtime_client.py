"""A bare websocket client of the Realtime simulator, and helpers to read what it got.

Shared by the simulator's tests; the simulator is tooling, so is this.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp

__all__ = ["Event", "RawClient", "connect_raw", "is_done_for", "server_event_adapter", "types"]

Event = dict[str, Any]


class RawClient:
    """A bare websocket client that keeps every server event it reads."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.events: list[Event] = []

    async def send(self, event: Event) -> None:
        await self.ws.send_str(json.dumps(event))

    async def recv(self, timeout: float = 3.0) -> Event:
        msg = await self.ws.receive(timeout=timeout)
        assert msg.type == aiohttp.WSMsgType.TEXT, f"unexpected {msg.type}"
        event: Event = json.loads(msg.data)
        self.events.append(event)
        return event

    async def until(self, predicate: Callable[[Event], bool], timeout: float = 3.0) -> list[Event]:
        """Read until an event matches; return everything read, the match last."""
        got: list[Event] = []
        async with asyncio.timeout(timeout):
            while True:
                event = await self.recv()
                got.append(event)
                if predicate(event):
                    return got

    async def until_type(self, etype: str, timeout: float = 3.0) -> list[Event]:
        return await self.until(lambda e: e["type"] == etype, timeout)


def is_done_for(response_id: str) -> Callable[[Event], bool]:
    return lambda e: e["type"] == "response.done" and e["response"]["id"] == response_id


def types(events: list[Event]) -> list[str]:
    return [e["type"] for e in events]


def server_event_adapter() -> Any:
    """A pydantic validator of the ``openai`` package's ``RealtimeServerEvent``."""
    from openai.types.realtime import RealtimeServerEvent
    from pydantic import TypeAdapter

    return TypeAdapter(RealtimeServerEvent)


@contextlib.asynccontextmanager
async def connect_raw(url: str, model: str = "gpt-realtime") -> AsyncIterator[RawClient]:
    """Connect a :class:`RawClient` and read its ``session.created``.

    Args:
        url: The simulator's websocket URL (``sim.url``).
        model: The ``model`` query parameter.

    Yields:
        The connected client.
    """
    async with (
        aiohttp.ClientSession() as session,
        session.ws_connect(f"{url}?model={model}") as ws,
    ):
        raw = RawClient(ws)
        first = await raw.recv()
        assert first["type"] == "session.created", first
        yield raw
