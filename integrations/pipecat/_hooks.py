"""Every private Pipecat hook the adapter uses, in this one module, checked at runtime.

Pipecat 1.14 has no public way to see the OpenAI Realtime events its service sends
and receives, and the response id is not on any frame. So the adapter wraps the
service's websocket: :func:`attach_socket` replaces the instance's ``_connect``
with one that, after connecting, puts a :class:`SocketTap` around ``_websocket``
before the receive task starts reading it. Those two attributes are the only
private names used (:data:`PRIVATE_API`); :func:`missing_private_api` checks them,
and :func:`check_pipecat_version` refuses any Pipecat outside the tested range.
"""

from __future__ import annotations

import importlib.metadata
import inspect
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from pipecat.services.openai.realtime.llm import OpenAIRealtimeLLMService

from gate import StateError, UnsupportedVersionError

__all__ = [
    "PRIVATE_API",
    "SUPPORTED_PIPECAT",
    "SocketTap",
    "attach_socket",
    "check_pipecat_version",
    "missing_private_api",
]

logger = logging.getLogger("playback_gate.pipecat")

SUPPORTED_PIPECAT = "1.14."
"""pipecat-ai versions (prefix) this adapter was tested on."""

PRIVATE_API = ("OpenAIRealtimeLLMService._connect", "OpenAIRealtimeLLMService._websocket")
"""The private Pipecat names the adapter relies on."""

#: Called with each raw server event (parsed) before Pipecat sees it.
OnReceive = Callable[[dict[str, Any]], None]
#: Called with each raw client event before it is sent; returns the event to send
#: now, or ``None`` to hold it (the adapter sends it later through ``send_raw``).
OnSend = Callable[[dict[str, Any]], dict[str, Any] | None]


def pipecat_version() -> str:
    """Return the installed pipecat-ai version.

    Returns:
        The version string, or ``"unknown"`` if the distribution metadata is missing.
    """
    try:
        return importlib.metadata.version("pipecat-ai")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def check_pipecat_version(version: str | None = None) -> str:
    """Refuse a Pipecat outside the tested range.

    Args:
        version: The version to check; the installed one if omitted.

    Returns:
        The version checked.

    Raises:
        UnsupportedVersionError: Naming the version, if it is not 1.14.x.
    """
    found = pipecat_version() if version is None else version
    if not found.startswith(SUPPORTED_PIPECAT):
        raise UnsupportedVersionError(
            f"playback-gate's Pipecat adapter was tested on pipecat-ai {SUPPORTED_PIPECAT}x "
            f"only; found pipecat-ai {found}"
        )
    return found


def missing_private_api(service: object) -> list[str]:
    """Return the private names of :data:`PRIVATE_API` that ``service`` lacks.

    Args:
        service: The Pipecat OpenAI Realtime service instance.

    Returns:
        The missing names; empty on pipecat-ai 1.14.
    """
    missing: list[str] = []
    if not inspect.iscoroutinefunction(getattr(service, "_connect", None)):
        missing.append(PRIVATE_API[0])
    if "_websocket" not in getattr(service, "__dict__", {}):
        missing.append(PRIVATE_API[1])
    return missing


class SocketTap:
    """Stands in for the service's websocket: every message in and out passes the hooks.

    Pipecat reads it with ``async for``, sends with ``send`` and closes it with
    ``close``; anything else is delegated to the real connection.

    Args:
        ws: The real websocket connection.
        on_receive: See :data:`OnReceive`.
        on_send: See :data:`OnSend`.
    """

    def __init__(self, ws: Any, on_receive: OnReceive, on_send: OnSend) -> None:
        self.ws = ws
        self._on_receive = on_receive
        self._on_send = on_send

    def __aiter__(self) -> AsyncIterator[str | bytes]:
        return self._messages()

    async def _messages(self) -> AsyncIterator[str | bytes]:
        async for message in self.ws:
            try:
                event = json.loads(message)
            except ValueError:
                event = None
            if isinstance(event, dict):
                try:
                    self._on_receive(event)
                except Exception:  # never into Pipecat's receive loop: it would end it
                    logger.exception("playback-gate failed on a server event; passing it on")
            yield message

    async def send(self, message: str | bytes) -> None:
        """Send one client event, after the send hook had its say.

        Args:
            message: The JSON text Pipecat built.
        """
        try:
            event = json.loads(message)
        except ValueError:
            event = None
        if not isinstance(event, dict):
            await self.ws.send(message)
            return
        try:
            outgoing = self._on_send(event)
        except Exception:  # a gate bug must not cost Pipecat its event
            logger.exception("playback-gate failed on a client event; sending it unchanged")
            outgoing = event
        if outgoing is not None:
            await self.ws.send(json.dumps(outgoing))

    async def send_raw(self, event: dict[str, Any]) -> None:
        """Send an event of the adapter's own (a targeted cancel, a held truncate).

        Args:
            event: The event.
        """
        await self.ws.send(json.dumps(event))

    async def close(self, *args: Any, **kwargs: Any) -> None:
        """Close the real connection."""
        await self.ws.close(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.ws, name)


def attach_socket(
    service: OpenAIRealtimeLLMService, on_receive: OnReceive, on_send: OnSend
) -> Callable[[], SocketTap | None]:
    """Wrap every websocket ``service`` opens from now on in a :class:`SocketTap`.

    Args:
        service: The service, not yet connected.
        on_receive: See :data:`OnReceive`.
        on_send: See :data:`OnSend`.

    Returns:
        A function returning the current :class:`SocketTap` (``None`` while
        disconnected).

    Raises:
        UnsupportedVersionError: If a private hook is missing.
        StateError: If the service is already connected (its receive
            task already reads the bare websocket).
    """
    missing = missing_private_api(service)
    if missing:
        raise UnsupportedVersionError(
            f"pipecat-ai {pipecat_version()} lacks {', '.join(missing)}, "
            "which playback-gate's Pipecat adapter relies on"
        )
    if vars(service)["_websocket"] is not None:
        raise StateError(
            "install the gate before the pipeline starts: the service is already connected"
        )
    connect: Callable[[], Awaitable[None]] = vars(service).get("_connect") or service._connect

    async def connect_tapped() -> None:
        await connect()
        ws = vars(service).get("_websocket")
        # Pipecat created its receive task in connect() but it has not run yet:
        # swapping now, before yielding to the loop, means it reads the tap.
        if ws is not None and not isinstance(ws, SocketTap):
            vars(service)["_websocket"] = SocketTap(ws, on_receive, on_send)

    service._connect = connect_tapped  # type: ignore[method-assign]

    def current() -> SocketTap | None:
        ws = vars(service).get("_websocket")
        return ws if isinstance(ws, SocketTap) else None

    return current
