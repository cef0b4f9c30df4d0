"""How a response (or a request) ends, as the tap tells the gate.

- ``response.cancel`` (client): with ``response_id``, flag that response.
  Without, flag the default-conversation response(s) in progress, never an
  out-of-band one; if none is in progress, flag the default-conversation
  requests still waiting for ``response.created`` (all were sent before the
  cancel, so it can only mean them; a request sent later is a new turn). The
  log names what was flagged.
- ``response.done`` (server): ``completed`` retires (later deltas are
  stragglers, dropped and counted by the gate); ``cancelled``, ``failed``,
  ``incomplete`` flag, with ``status_details.reason`` as the detail.
- ``error`` (server) naming a ``response.create``'s ``event_id``: that request
  will never be answered; it is finished (flagged ``FAILED``), so it neither
  times out later nor takes an unstamped answer's place.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from gate import DropReason, PlaybackGate
from integrations.openai_realtime._attribution import Attribution
from integrations.openai_realtime._events import MalformedEventError, optional_str, require_str

__all__ = ["ResponseEndings"]

logger = logging.getLogger("playback_gate.tap")

_DONE_FLAGS = {
    "cancelled": DropReason.CANCELLED,
    "failed": DropReason.FAILED,
    "incomplete": DropReason.INCOMPLETE,
}


class ResponseEndings:
    """Applies the rules above to one tap's gate and attribution.

    Args:
        gate: The gate to flag, retire and fail in.
        attribution: The tap's requests and in-progress responses.
    """

    def __init__(self, gate: PlaybackGate, attribution: Attribution) -> None:
        self.gate = gate
        self.attribution = attribution

    def on_response_cancel(self, event: Mapping[str, Any]) -> None:
        """Flag what a client ``response.cancel`` cancels.

        Args:
            event: The ``response.cancel`` event.

        Raises:
            MalformedEventError: If ``response_id`` is present but not a string.
        """
        response_id = optional_str(event, "response_id")
        if response_id is not None:
            self.gate.flag(response_id, DropReason.CANCELLED, "client response.cancel")
            return
        # A bare cancel: the in-progress default-conversation response(s), else the
        # default-conversation requests sent before it and still waiting.
        targets = [
            rid
            for rid in self.attribution.in_progress(out_of_band=False)
            if not self.gate.should_drop(rid)
        ]
        if targets:
            for rid in targets:
                self.gate.flag(rid, DropReason.CANCELLED, "client response.cancel (no id)")
            logger.info("bare response.cancel flagged in-progress response(s) %s", targets)
            return
        pending = set(self.gate.pending_requests())
        requests = [req for req in self.attribution.default_requests() if req in pending]
        for req in requests:
            self.gate.flag_request(
                req, DropReason.CANCELLED, "client response.cancel before response.created"
            )
        if requests:
            logger.info(
                "bare response.cancel before response.created flagged request(s) %s", requests
            )
        else:
            logger.info("bare response.cancel with nothing in progress or pending")

    def on_response_done(self, response: Mapping[str, Any]) -> None:
        """Retire or flag a response by its ``response.done`` status.

        Args:
            response: The event's ``response`` object.

        Raises:
            MalformedEventError: If the id is missing, or the status is unknown (the
                response is retired first).
        """
        response_id = require_str(response, "id")
        self.attribution.end_response(response_id)
        status = response.get("status")
        if status == "completed":
            self.gate.retire(response_id)
            return
        reason = _DONE_FLAGS.get(status) if isinstance(status, str) else None
        if reason is None:
            self.gate.retire(response_id)
            raise MalformedEventError(f"response.done has unknown status {status!r}; retired")
        details = response.get("status_details")
        detail = details.get("reason") if isinstance(details, Mapping) else None
        text = f"response.done status {status}" + (f": {detail}" if detail else "")
        self.gate.flag(response_id, reason, text)

    def on_error(self, event: Mapping[str, Any]) -> None:
        """Finish the request of a ``response.create`` the server rejected.

        Args:
            event: The server ``error`` event; one naming no ``event_id`` is ignored.
        """
        error = event.get("error")
        failed_id = error.get("event_id") if isinstance(error, Mapping) else None
        if not isinstance(failed_id, str):
            return
        code = error.get("code") if isinstance(error, Mapping) else None
        for request_id in self.attribution.drop_request_by_event_id(failed_id):
            self.gate.flag_request(
                request_id, DropReason.FAILED, f"server rejected response.create ({code})"
            )
            logger.info("server rejected response.create %s (%s)", request_id, code)
