"""The interfaces between the simulator's parts, so that no two of its modules import each other.

The server owns connections (:class:`SimulatorHub` is what a connection needs of it); a
connection runs responses (:class:`ResponseHost` is what a response needs of its connection).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

from integrations.openai_realtime.simulator.plans import DropMode, ResponsePlan
from integrations.openai_realtime.simulator.records import ResponseRecord

if TYPE_CHECKING:
    from integrations.openai_realtime.simulator.conversation import Conversation

__all__ = ["ConnectionGone", "ResponseHost", "SimulatorHub"]


class ConnectionGone(Exception):
    """The websocket closed while the simulator was sending."""


class SimulatorHub(Protocol):
    """What a connection needs from its simulator."""

    def next_plan(self) -> ResponsePlan:
        """Pop the next queued plan, or return the default one."""
        ...

    def next_response_number(self) -> int:
        """Allocate a simulator-wide response number."""
        ...

    def add_response(self, record: ResponseRecord) -> None:
        """Register a new response record."""
        ...

    def notify(self) -> None:
        """Wake anything waiting for a state change."""
        ...


class ResponseHost(Protocol):
    """What a running response needs from its connection."""

    hub: SimulatorHub
    conversation: Conversation
    conversation_id: str

    async def send(self, event: dict[str, Any]) -> None:
        """Send one server event and log it."""
        ...

    async def drop(self, mode: DropMode = "abort") -> None:
        """Drop the websocket the way ``mode`` says."""
        ...
