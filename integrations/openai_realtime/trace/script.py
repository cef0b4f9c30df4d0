"""Write Realtime traces by hand: for tests, docs and bug reports.

Each method appends one raw event, shaped like the GA API's, at a given time::

    s = TraceScript()
    s.response_create(0.0, "req_1")
    s.response_created(0.3, "resp_1", "req_1")
    t = s.audio_stream(0.4, "resp_1", chunks=50)     # 1 s of audio at 1x
    s.response_done(t, "resp_1")
    s.write("session.jsonl")

Audio samples are a constant ``value`` per call, so a test can tell which
response every played sample came from.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import numpy as np

from integrations.openai_realtime._events import Direction
from integrations.openai_realtime.trace.reader import TraceEntry

__all__ = ["TraceScript", "pcm16_delta"]


def pcm16_delta(samples: int, value: int = 1000) -> str:
    """Return a base64 PCM16 delta of ``samples`` samples all equal to ``value``."""
    return base64.b64encode(np.full(samples, value, dtype="<i2").tobytes()).decode("ascii")


class TraceScript:
    """Builds a list of :class:`TraceEntry`; events may be added out of time order.

    Args:
        sample_rate: Output rate, for :meth:`audio_stream` durations.
    """

    def __init__(self, sample_rate: int = 24_000) -> None:
        self.sample_rate = sample_rate
        self.entries: list[TraceEntry] = []
        self._n = 0

    def add(self, t: float, direction: Direction, event: dict[str, Any]) -> dict[str, Any]:
        """Append a raw event at time ``t`` and return it."""
        self.entries.append(TraceEntry(t, direction, event, len(self.entries) + 1))
        return event

    def _event_id(self, prefix: str) -> str:
        self._n += 1
        return f"{prefix}_{self._n}"

    def response_create(
        self, t: float, request_id: str, *, out_of_band: bool = False, stamped: bool = True
    ) -> dict[str, Any]:
        """A client ``response.create`` like LiveKit Agents' (event_id == client_event_id)."""
        params: dict[str, Any] = {}
        if stamped:
            params["metadata"] = {"client_event_id": request_id}
        if out_of_band:
            params["conversation"] = "none"
        return self.add(
            t, "client", {"type": "response.create", "event_id": request_id, "response": params}
        )

    def response_created(
        self,
        t: float,
        response_id: str,
        request_id: str | None = None,
        *,
        out_of_band: bool = False,
    ) -> dict[str, Any]:
        """A server ``response.created``; ``request_id=None`` is unattributed (server VAD)."""
        response: dict[str, Any] = {
            "object": "realtime.response",
            "id": response_id,
            "status": "in_progress",
            "conversation_id": None if out_of_band else "conv_1",
            "metadata": {"client_event_id": request_id} if request_id else None,
            "output": [],
        }
        return self.add(
            t,
            "server",
            {"type": "response.created", "event_id": self._event_id("ev"), "response": response},
        )

    def audio(
        self, t: float, response_id: str, samples: int, value: int = 1000, *, beta: bool = False
    ) -> dict[str, Any]:
        """One audio delta (GA name, or the beta/Azure name with ``beta=True``)."""
        kind = "response.audio.delta" if beta else "response.output_audio.delta"
        return self.add(
            t,
            "server",
            {
                "type": kind,
                "event_id": self._event_id("ev"),
                "response_id": response_id,
                "item_id": f"item_{response_id}",
                "output_index": 0,
                "content_index": 0,
                "delta": pcm16_delta(samples, value),
            },
        )

    def audio_stream(
        self,
        t: float,
        response_id: str,
        chunks: int,
        *,
        chunk_ms: int = 20,
        pace: float = 1.0,
        value: int = 1000,
    ) -> float:
        """``chunks`` deltas of ``chunk_ms`` each, sent at ``pace`` x real time.

        Returns:
            The time just after the last chunk was sent.
        """
        samples = self.sample_rate * chunk_ms // 1000
        step = chunk_ms / 1000 / pace
        for i in range(chunks):
            self.audio(t + i * step, response_id, samples, value)
        return t + chunks * step

    def response_done(
        self, t: float, response_id: str, status: str = "completed", reason: str | None = None
    ) -> dict[str, Any]:
        """A server ``response.done`` with ``status`` and ``status_details.reason``."""
        details = {"type": status, "reason": reason} if reason else None
        response = {"id": response_id, "status": status, "status_details": details}
        return self.add(
            t,
            "server",
            {"type": "response.done", "event_id": self._event_id("ev"), "response": response},
        )

    def cancel(self, t: float, response_id: str | None = None) -> dict[str, Any]:
        """A client ``response.cancel``, targeted or bare."""
        event: dict[str, Any] = {"type": "response.cancel", "event_id": self._event_id("cancel")}
        if response_id is not None:
            event["response_id"] = response_id
        return self.add(t, "client", event)

    def session(self, t: float, output_format: dict[str, Any] | str) -> dict[str, Any]:
        """A ``session.updated`` with a GA format object or a beta format name."""
        session: dict[str, Any] = (
            {"audio": {"output": {"format": output_format}}}
            if isinstance(output_format, dict)
            else {"output_audio_format": output_format}
        )
        return self.add(t, "server", {"type": "session.updated", "session": session})

    def ordered(self) -> list[TraceEntry]:
        """Return the entries sorted by time (stable), with line numbers as in the file."""
        entries = sorted(self.entries, key=lambda e: e.t)
        return [TraceEntry(e.t, e.direction, e.event, i + 1) for i, e in enumerate(entries)]

    def to_jsonl(self) -> str:
        """Return the trace as JSON Lines, in time order."""
        return "".join(
            json.dumps({"t": e.t, "from": e.direction, "event": e.event}) + "\n"
            for e in self.ordered()
        )

    def write(self, path: str | Path) -> Path:
        """Write the trace and return its path."""
        path = Path(path)
        path.write_text(self.to_jsonl(), encoding="utf-8")
        return path
