"""Which request a Realtime response answers: the tap's bookkeeping, without the gate.

A request is keyed by ``response.metadata.client_event_id`` when the client
stamped it (the server echoes that metadata in ``response.created``), else by
its ``event_id``, else by a made-up id. Unstamped requests are answered in
order, so an unattributed ``response.created`` is matched to the oldest
unstamped request of the same conversation kind (default or out of band).
"""

from __future__ import annotations

import uuid
from collections import OrderedDict, deque
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from gate import ProtocolError
from gate.validation import MAX_ID_CHARS

__all__ = ["Attribution", "Request", "stamp_response_create"]


@dataclass(frozen=True, slots=True)
class Request:
    """A ``response.create`` whose ``response.created`` has not arrived.

    Attributes:
        request_id: The key the gate knows it by.
        event_id: The event's ``event_id``, if any.
        out_of_band: ``response.conversation == "none"``.
        stamped: Whether it carried ``metadata.client_event_id``.
        echoed: For a request whose id the client reused (tracked under an alias
            as ``request_id``), the id the server will echo; else ``None``.
    """

    request_id: str
    event_id: str | None
    out_of_band: bool
    stamped: bool
    echoed: str | None = None


def stamp_response_create(event: dict[str, Any]) -> dict[str, Any]:
    """Add a missing ``event_id`` and ``response.metadata.client_event_id`` in place.

    Both get the same id, as LiveKit Agents sends them. Present values are kept;
    events other than ``response.create`` are returned untouched.

    Args:
        event: The client event about to be sent.

    Returns:
        The same dict.

    Raises:
        ProtocolError: If ``response`` or its ``metadata`` is not an object, or the
            metadata already has the server's maximum of 16 pairs.
    """
    if event.get("type") != "response.create":
        return event
    event_id = event.get("event_id")
    if not isinstance(event_id, str) or not event_id:
        event_id = event["event_id"] = f"response_create_{uuid.uuid4().hex[:12]}"
    response = event.setdefault("response", {})
    if not isinstance(response, dict):
        raise ProtocolError("response.create 'response' must be an object to stamp it")
    metadata = response.get("metadata")
    if metadata is None:
        metadata = response["metadata"] = {}
    if not isinstance(metadata, dict):
        raise ProtocolError("response.metadata must be an object to stamp it")
    if "client_event_id" not in metadata:
        if len(metadata) >= 16:
            raise ProtocolError("response.metadata already has 16 pairs; cannot stamp it")
        metadata["client_event_id"] = event_id
    return event


def request_key(event: Mapping[str, Any], params: Mapping[str, Any]) -> tuple[str | None, bool]:
    """Return ``(client_event_id or event_id or None, stamped)`` for a ``response.create``."""
    metadata = params.get("metadata")
    cei = metadata.get("client_event_id") if isinstance(metadata, Mapping) else None
    if isinstance(cei, str) and cei:
        return cei, True
    event_id = event.get("event_id")
    return (event_id if isinstance(event_id, str) and event_id else None), False


def is_out_of_band(response: Mapping[str, Any]) -> bool:
    """Whether a server ``response`` object runs outside the default conversation.

    The GA and beta APIs send ``conversation_id: null`` for ``conversation: "none"``.
    """
    return response.get("conversation") == "none" or (
        "conversation_id" in response and response["conversation_id"] is None
    )


class Attribution:
    """Requests waiting for their response, and responses in progress.

    Both tables are bounded by ``max_tracked``; the oldest entry is forgotten first.

    Args:
        max_tracked: Bound on each table.
    """

    def __init__(self, max_tracked: int = 1024) -> None:
        self.max_tracked = max_tracked
        self._requests: OrderedDict[str, Request] = OrderedDict()
        self._unstamped: deque[str] = deque()
        self._responses: OrderedDict[str, bool] = OrderedDict()  # id -> out of band
        self._auto_ids = 0

    def alias(self, request_id: str) -> str:
        """Return a fresh id for a request that reuses ``request_id`` (at most 256 characters)."""
        self._auto_ids += 1
        suffix = f"#reuse{self._auto_ids}"
        return request_id[: MAX_ID_CHARS - len(suffix)] + suffix

    def new_request_id(self) -> str:
        """Return a made-up id for a ``response.create`` with no ids at all."""
        self._auto_ids += 1
        return f"tap_request_{self._auto_ids}"

    def add_request(self, request: Request) -> None:
        """Record a sent ``response.create``."""
        _put(self._requests, request.request_id, request, self.max_tracked)
        if not request.stamped:
            self._unstamped.append(request.request_id)
            while len(self._unstamped) > self.max_tracked:
                self._unstamped.popleft()

    def take_request(self, response: Mapping[str, Any]) -> tuple[str | None, bool]:
        """Match a ``response.created`` to its request and stop tracking the request.

        Args:
            response: The server's ``response`` object.

        Returns:
            ``(request_id or None, out_of_band)``. A stamped id is returned even if
            the request was forgotten here (the gate may still know it).
        """
        out_of_band = is_out_of_band(response)
        metadata = response.get("metadata")
        cei = metadata.get("client_event_id") if isinstance(metadata, Mapping) else None
        if isinstance(cei, str) and cei:
            request_id: str | None = cei
            if cei not in self._requests:  # a reused id: its oldest waiting alias, if any
                request_id = next(
                    (rid for rid, r in self._requests.items() if r.echoed == cei), cei
                )
        else:
            request_id = next(
                (
                    rid
                    for rid in self._unstamped
                    if (r := self._requests.get(rid)) is not None and r.out_of_band == out_of_band
                ),
                None,
            )
            if request_id is not None:
                self._unstamped.remove(request_id)
        request = self._requests.pop(request_id, None) if request_id is not None else None
        return request_id, out_of_band or (request is not None and request.out_of_band)

    def drop_request_by_event_id(self, event_id: str) -> list[str]:
        """Forget the requests a server ``error`` rejected; return their ids."""
        dropped = [rid for rid, r in self._requests.items() if r.event_id == event_id]
        for rid in dropped:
            del self._requests[rid]
            if rid in self._unstamped:
                self._unstamped.remove(rid)
        return dropped

    def waiting(self) -> list[str]:
        """Ids of every request still waiting for its response, oldest first."""
        return list(self._requests)

    def default_requests(self) -> list[str]:
        """Ids of waiting requests of the default conversation, oldest first."""
        return [rid for rid, r in self._requests.items() if not r.out_of_band]

    def start_response(self, response_id: str, out_of_band: bool) -> None:
        """Record a response in progress."""
        _put(self._responses, response_id, out_of_band, self.max_tracked)

    def end_response(self, response_id: str) -> None:
        """Forget a response whose ``response.done`` arrived."""
        self._responses.pop(response_id, None)

    def in_progress(self, *, out_of_band: bool | None = None) -> list[str]:
        """Ids of responses in progress, oldest first; optionally only one kind."""
        return [r for r, oob in self._responses.items() if out_of_band in (None, oob)]

    def is_out_of_band(self, response_id: str) -> bool:
        """Whether an in-progress response runs out of band."""
        return self._responses.get(response_id, False)


def _put(table: OrderedDict[str, Any], key: str, value: Any, bound: int) -> None:
    table[key] = value
    while len(table) > bound:
        table.popitem(last=False)
