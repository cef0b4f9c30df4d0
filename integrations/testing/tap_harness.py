"""A tap on a virtual clock, fed a scripted trace: the harness of the tap's unit tests."""

from __future__ import annotations

from typing import Any

from gate import DropReason, GenerationState, PlaybackGate, VirtualClock
from integrations.openai_realtime import RealtimeTap
from integrations.openai_realtime.trace.script import TraceScript

__all__ = ["Harness"]


class Harness:
    """A gate on a virtual clock, a tap, and a script whose events are fed at their times."""

    def __init__(self, **tap_kwargs: Any) -> None:
        """Build the gate (10 s timeout), the tap (``send`` collects into :attr:`sent`).

        Args:
            **tap_kwargs: Passed to :class:`RealtimeTap`.
        """
        self.clock = VirtualClock()
        self.gate = PlaybackGate(clock=self.clock, request_timeout=10.0)
        self.sent: list[dict[str, Any]] = []
        self.tap = RealtimeTap(self.gate, send=self.sent.append, **tap_kwargs)
        self.script = TraceScript()
        self.fed = 0

    def run(self) -> dict[str, list[bool]]:
        """Feed the script's new events in time order; return admit decisions per response."""
        decisions: dict[str, list[bool]] = {}
        entries = self.script.entries[self.fed :]
        self.fed = len(self.script.entries)
        for entry in sorted(entries, key=lambda e: e.t):
            self.clock.set(max(entry.t, self.clock.now()))
            if entry.direction == "client":
                self.tap.on_client_event(entry.event)
                continue
            audio = self.tap.on_server_event(entry.event)
            if audio is not None:
                ok = self.gate.admit(audio.response_id, audio.frame)
                decisions.setdefault(audio.response_id, []).append(ok)
        return decisions

    def state(self, response_id: str) -> tuple[GenerationState, DropReason | None]:
        """A generation's state and reason (it must exist)."""
        info = self.gate.generation(response_id)
        assert info is not None, response_id
        return info.state, info.reason
