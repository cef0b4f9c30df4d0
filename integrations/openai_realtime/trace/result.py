"""What a replay found: one outcome per response, and the totals of the run."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["ReplayResult", "ResponseOutcome"]


@dataclass(frozen=True, slots=True)
class ResponseOutcome:
    """What became of one response.

    Attributes:
        response_id: The server's response id.
        request_id: The request it answered, or ``None`` if unattributed.
        final_state: ``"live"``, ``"flagged"``, ``"done"`` or ``"unknown"``.
        reason: The flag reason (``"timed_out"``, ``"cancelled"``, ...) or ``None``.
        detail: Free text kept with the flag.
        samples_received: Samples decoded from its audio deltas.
        samples_played: Samples the listener heard.
        samples_dropped: ``samples_received - samples_played``.
        samples_purged: The part of ``samples_dropped`` admitted, then purged unplayed.
    """

    response_id: str
    request_id: str | None
    final_state: str
    reason: str | None
    detail: str
    samples_received: int
    samples_played: int
    samples_dropped: int
    samples_purged: int

    def to_dict(self) -> dict[str, Any]:
        """Return the outcome as a JSON-ready dict."""
        return {
            "response_id": self.response_id,
            "request_id": self.request_id,
            "final_state": self.final_state,
            "reason": self.reason,
            "detail": self.detail,
            "samples_received": self.samples_received,
            "samples_played": self.samples_played,
            "samples_dropped": self.samples_dropped,
            "samples_purged": self.samples_purged,
        }


@dataclass(frozen=True)
class ReplayResult:
    """Everything a replay found.

    Attributes:
        sample_rate: The output (and WAV) rate.
        responses: One outcome per response, in order of first appearance.
        output_samples: Samples in the output, silence included (the WAV's length).
        silence_samples: The silent part of ``output_samples``.
        requests_timed_out: Requests whose deadline passed.
        cancels_sent: Targeted cancels the tap would have sent, with ``t`` and ``line``.
        malformed_count: Malformed events in the whole trace.
        malformed: The first 1000 of them, with ``line``.
        duration_s: ``output_samples / sample_rate``.
    """

    sample_rate: int
    responses: list[ResponseOutcome]
    output_samples: int
    silence_samples: int
    requests_timed_out: int
    cancels_sent: list[dict[str, Any]] = field(default_factory=list)
    malformed_count: int = 0
    malformed: list[dict[str, Any]] = field(default_factory=list)

    @property
    def duration_s(self) -> float:
        """Output duration in seconds."""
        return self.output_samples / self.sample_rate

    def outcome(self, response_id: str) -> ResponseOutcome:
        """Return one response's outcome.

        Raises:
            KeyError: If the trace has no such response.
        """
        for r in self.responses:
            if r.response_id == response_id:
                return r
        raise KeyError(response_id)

    def totals(self) -> dict[str, Any]:
        """Return the report's totals."""
        return {
            "responses": len(self.responses),
            "samples_received": sum(r.samples_received for r in self.responses),
            "samples_played": sum(r.samples_played for r in self.responses),
            "samples_dropped": sum(r.samples_dropped for r in self.responses),
            "samples_purged": sum(r.samples_purged for r in self.responses),
            "silence_samples": self.silence_samples,
            "wav_samples": self.output_samples,
            "duration_s": round(self.duration_s, 6),
            "requests_timed_out": self.requests_timed_out,
            "cancels_sent": len(self.cancels_sent),
            "malformed_events": self.malformed_count,
        }

    def to_report(self) -> dict[str, Any]:
        """Return the JSON report."""
        return {
            "sample_rate": self.sample_rate,
            "responses": [r.to_dict() for r in self.responses],
            "totals": self.totals(),
            "cancels_sent": self.cancels_sent,
            "malformed": self.malformed,
        }
