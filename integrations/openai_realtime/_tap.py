"""The OpenAI Realtime event tap: raw client and server events drive the gate.

Feed it every client event as sent and every server event as received::

    tap = RealtimeTap(gate, send=ws_send_json)
    tap.on_client_event(tap.stamp({"type": "response.create", "response": {...}}))
    ...
    audio = tap.on_server_event(event)         # for each received event
    if audio is not None and gate.admit(audio.response_id, audio.frame):
        speaker.write(audio.frame)

Which id keys a request: ``response.metadata.client_event_id``, because the server
echoes it in ``response.created`` (the ``event_id`` is echoed only in ``error``
events). LiveKit Agents 1.8.9 sends ``event_id == metadata.client_event_id``
(``response_create_...``), so both name the same request. A ``response.create``
without ``client_event_id`` is *unstamped*: it is keyed by its ``event_id`` (or a
tap-made id), and an unattributed ``response.created`` binds to the oldest
unstamped request of the same conversation kind still waiting, because the server
answers ``response.create`` in order. That is exact when server VAD is off; with
it on, a VAD reply can take the answer's place, so stamp requests
(:meth:`RealtimeTap.stamp`) to make binding exact.

A client that reuses a request id (the same ``client_event_id`` twice) still sends
a request: the tap tracks the second one under an alias (``<id>#reuseN``), binds
the next ``response.created`` echoing that id to it, and counts the reuse as
malformed. A duplicate ``response.created`` (a hostile or buggy server) is tracked
as unattributed, so a bare ``response.cancel`` still reaches it. Ids longer than
the gate's 256-character limit are malformed and never stored.

The tap never raises into the caller's loop: a malformed event is counted
(:attr:`RealtimeTap.malformed`), logged with its type and id, and ignored; it
never changes the fate of any other response.
"""

from __future__ import annotations

import enum
import logging
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from gate import (
    AlreadyBoundError,
    ConfigurationError,
    DropReason,
    GateError,
    InvalidIdError,
    InvalidTypeError,
    PcmFrame,
    PlaybackGate,
    UnknownRequestError,
)
from gate.validation import MAX_ID_CHARS, check_cap, check_timeout
from integrations.openai_realtime._attribution import (
    Attribution,
    Request,
    request_key,
    stamp_response_create,
)
from integrations.openai_realtime._audio_decode import (
    DEFAULT_OUTPUT_FORMAT,
    OutputAudioFormat,
    decode_delta,
    output_format_from_session,
)
from integrations.openai_realtime._endings import ResponseEndings
from integrations.openai_realtime._events import (
    AUDIO_DELTA_TYPES,
    KNOWN_CLIENT_TYPES,
    KNOWN_SERVER_TYPES,
    Direction,
    MalformedEvent,
    MalformedEventError,
    event_label,
    optional_str,
    require_mapping,
    require_str,
)
from integrations.openai_realtime._history import HistoryKeeper
from integrations.openai_realtime._items import ItemBook

__all__ = ["RealtimeTap", "TapAudio", "UnattributedPolicy"]

logger = logging.getLogger("playback_gate.tap")

_MAX_PROBLEM_CHARS = 300


class UnattributedPolicy(enum.Enum):
    """What to do with a ``response.created`` that no request of ours asked for.

    ``PLAY`` (the default) plays it unless it is flagged: with stamped requests
    every answer to our own request is attributed, so an unattributed reply is
    one the user's speech asked for (server VAD), and dropping it would silence
    a real turn. ``DROP_AFTER_TIMEOUT`` flags it (``TIMED_OUT``) and sends a
    targeted cancel when it arrives within ``unattributed_grace`` seconds of a
    request timing out; use it when requests cannot be stamped and an orphaned
    late reply is worse than a lost turn.
    """

    PLAY = "play"
    DROP_AFTER_TIMEOUT = "drop_after_timeout"

    def drops(self, gate: PlaybackGate, grace: float) -> bool:
        """Return whether an unattributed response arriving now is to be dropped.

        Args:
            gate: The gate; its clock and ``last_timeout_at`` decide.
            grace: Seconds after a request timeout during which
                ``DROP_AFTER_TIMEOUT`` drops.

        Returns:
            ``True`` only under ``DROP_AFTER_TIMEOUT`` within ``grace`` of the
            gate's last request timeout.
        """
        if self is not UnattributedPolicy.DROP_AFTER_TIMEOUT:
            return False
        last = gate.last_timeout_at
        return last is not None and gate.clock.now() - last <= grace


@dataclass(frozen=True, slots=True)
class TapAudio:
    """A decoded audio delta, not yet admitted: call ``gate.admit(response_id, frame)``.

    Attributes:
        response_id: The response (generation) the audio belongs to.
        frame: Mono int16 samples at the session's output rate.
    """

    response_id: str
    frame: PcmFrame


class RealtimeTap:
    """Drives a :class:`~gate.PlaybackGate` from raw OpenAI Realtime events.

    Rules, event by event:

    - ``response.create`` (client): ``gate.expect(request_id)`` (see the module
      docstring for which id).
    - ``response.created`` (server): bind it to its request; dead on arrival (the
      request timed out or was cancelled) -> ``send`` a targeted cancel. No
      request -> unattributed, per :class:`UnattributedPolicy`.
    - ``response.cancel`` (client), ``response.done`` (server) and ``error``
      (server) naming a ``response.create``: flag, retire or fail, per
      :mod:`~integrations.openai_realtime._endings`.
    - ``session.created`` / ``session.updated``: the output audio format. A
      ``session.created`` after the first means the socket was reconnected: the
      requests still waiting were sent on the lost one and the client gave up on
      them, so they are flagged cancelled (a server that resumes sessions may
      still answer them on the new socket).
    - Every event first expires overdue requests (``gate.expire()``).

    Args:
        gate: The gate; its clock times the requests.
        send: Called with a targeted ``response.cancel`` for each response that
            arrives dead on arrival. Exceptions from it are logged, not raised.
        decode_audio: Decode audio deltas into :class:`TapAudio`; when ``False``
            :meth:`on_server_event` always returns ``None``.
        unattributed_policy: See :class:`UnattributedPolicy`.
        unattributed_grace: Seconds after a request timeout during which
            ``DROP_AFTER_TIMEOUT`` drops an unattributed response.
        output_format: The output format until the session says otherwise.
        max_tracked: Bound on requests and in-progress responses the tap
            remembers (oldest forgotten first).
        max_delta_chars: Longest base64 audio delta decoded (a larger one is
            malformed); the default is about 16 s of 24 kHz PCM16.
        max_malformed_kept: Bound on :attr:`malformed_events` (each record's type and
            event id are cut to 100 characters, its problem to 300, so the records take
            at most about 500 bytes each however large the event).
        on_malformed: Called with each :class:`MalformedEvent` (e.g. to attach
            a trace line number). Exceptions from it are logged.
        keep_history: Keep the server's conversation honest for every reply the
            gate kills (:mod:`~integrations.openai_realtime._history`): the edits go
            out through ``send``. Report what played with :meth:`playout_final`.

    Raises:
        InvalidTypeError: If ``gate`` is not a :class:`~gate.PlaybackGate`.
        ConfigurationError: If a bound or the grace is out of range, or the policy
            is not an :class:`UnattributedPolicy`.
    """

    def __init__(
        self,
        gate: PlaybackGate,
        *,
        send: Callable[[dict[str, Any]], None] | None = None,
        decode_audio: bool = True,
        unattributed_policy: UnattributedPolicy = UnattributedPolicy.PLAY,
        unattributed_grace: float = 2.0,
        output_format: OutputAudioFormat = DEFAULT_OUTPUT_FORMAT,
        max_tracked: int = 1024,
        max_delta_chars: int = 1 << 20,
        max_malformed_kept: int = 1000,
        on_malformed: Callable[[MalformedEvent], None] | None = None,
        keep_history: bool = True,
    ) -> None:
        if not isinstance(gate, PlaybackGate):
            raise InvalidTypeError(f"gate must be a PlaybackGate, got {type(gate).__name__}")
        if not isinstance(unattributed_policy, UnattributedPolicy):
            raise ConfigurationError(
                f"unattributed_policy must be an UnattributedPolicy, got {unattributed_policy!r}"
            )
        check_timeout(unattributed_grace, "unattributed_grace")
        for name, bound in (
            ("max_tracked", max_tracked),
            ("max_delta_chars", max_delta_chars),
            ("max_malformed_kept", max_malformed_kept),
        ):
            check_cap(name, bound)
        self.gate = gate
        self.send = send
        self.decode_audio = decode_audio
        self.unattributed_policy = unattributed_policy
        self.unattributed_grace = unattributed_grace
        self.output_format = output_format
        self.max_tracked = max_tracked
        self.max_delta_chars = max_delta_chars
        self.on_malformed = on_malformed
        self.malformed = 0
        """Malformed events counted so far."""
        self.malformed_events: deque[MalformedEvent] = deque(maxlen=max_malformed_kept)
        """The most recent malformed events."""
        self.cancels_sent: deque[dict[str, Any]] = deque(maxlen=1000)
        """Targeted ``response.cancel`` events handed to ``send`` (most recent kept)."""
        self.cancels_sent_count = 0
        self._attribution = Attribution(max_tracked)
        self._endings = ResponseEndings(gate, self._attribution)
        self._warned_unstamped = False
        self.items = ItemBook(max_tracked)
        """Each reply's output items and the audio sent for each."""
        self.history = HistoryKeeper(gate, self.items, send) if keep_history else None
        """Sends the deletes and truncates killed replies need (``None`` if off)."""
        self._server_events = 0

    # ---- public API -----------------------------------------------------------

    def stamp(self, event: dict[str, Any]) -> dict[str, Any]:
        """Add a missing ``event_id`` and ``response.metadata.client_event_id`` in place.

        See :func:`~integrations.openai_realtime._attribution.stamp_response_create`.

        Raises:
            ConfigurationError: If the event cannot carry the metadata.
        """
        return stamp_response_create(event)

    def on_client_event(self, event: Mapping[str, Any]) -> None:
        """Take one client event as sent. Never raises.

        Args:
            event: The raw event dict.
        """
        try:
            self._expire()
            if not isinstance(event, Mapping):
                raise MalformedEventError("event is not a JSON object")
            kind = require_str(event, "type")
            self.items.observe_client(kind, event)
            if kind == "response.create":
                self._on_response_create(event)
            elif kind == "response.cancel":
                self._endings.on_response_cancel(event)
            elif kind not in KNOWN_CLIENT_TYPES:
                raise MalformedEventError("unknown client event type")
        except (MalformedEventError, InvalidIdError) as e:
            self._malformed("client", event, str(e))
        except Exception as e:
            logger.exception("tap failed on a client event")
            self._malformed("client", event, f"internal error: {e!r}")

    def on_server_event(self, event: Mapping[str, Any]) -> TapAudio | None:
        """Take one server event as received. Never raises.

        Args:
            event: The raw event dict.

        Returns:
            For an audio delta (when ``decode_audio``), the decoded frame and
            its response id, not yet admitted; otherwise ``None``.
        """
        self._server_events += 1
        try:
            self._expire()
            if not isinstance(event, Mapping):
                raise MalformedEventError("event is not a JSON object")
            kind = event.get("type")
            if not isinstance(kind, str) or not kind:
                raise MalformedEventError("'type' must be a non-empty string")
            done = self.items.observe_server(kind, event, self.output_format)
            if kind in AUDIO_DELTA_TYPES:
                if not self.decode_audio:
                    return None
                response_id = require_str(event, "response_id")
                frame = decode_delta(event.get("delta"), self.output_format, self.max_delta_chars)
                return TapAudio(response_id, frame)
            if kind == "response.created":
                self._on_response_created(require_mapping(event, "response"))
            elif kind == "response.done":
                self._endings.on_response_done(require_mapping(event, "response"))
            elif kind in ("session.created", "session.updated"):
                session = require_mapping(event, "session")
                if kind == "session.created":
                    self._on_new_session()
                self._on_session(session)
            elif kind == "error":
                self._endings.on_error(event)
            elif kind not in KNOWN_SERVER_TYPES:
                raise MalformedEventError("unknown server event type")
            if done is not None and self.history is not None:
                self.history.check(done.response_id)
        except (MalformedEventError, InvalidIdError) as e:
            self._malformed("server", event, str(e))
        except Exception as e:
            logger.exception("tap failed on a server event")
            self._malformed("server", event, f"internal error: {e!r}")
        return None

    def playout_final(self, response_id: str, samples: int, sample_rate: int) -> None:
        """Say the output stage will play no more of a reply, and how much of it played.

        Args:
            response_id: The reply.
            samples: Samples of it the listener heard, in all.
            sample_rate: Their rate.
        """
        if self.history is not None:
            self.history.playout_final(response_id, samples, sample_rate)

    def close(self) -> None:
        """Stop the history keeper listening to the gate's flags (the tap stays usable)."""
        if self.history is not None:
            self.history.close()

    def in_progress(self) -> list[str]:
        """Return the ids of responses created and not yet done, oldest first."""
        return self._attribution.in_progress()

    def is_out_of_band(self, response_id: str) -> bool:
        """Return whether an in-progress response runs out of band (``conversation: "none"``)."""
        return self._attribution.is_out_of_band(response_id)

    # ---- client events ----------------------------------------------------------

    def _on_response_create(self, event: Mapping[str, Any]) -> None:
        params = event.get("response")
        if params is None:
            params = {}
        if not isinstance(params, Mapping):
            raise MalformedEventError("'response' must be an object")
        event_id = optional_str(event, "event_id")
        if event_id is not None and len(event_id) > MAX_ID_CHARS:
            event_id = None  # kept per request: bounded; an error naming it can't be matched
        key, stamped = request_key(event, params)
        request_id = key if key is not None else self._attribution.new_request_id()
        reused = False
        try:
            self.gate.expect(request_id)
        except AlreadyBoundError:
            # A client reusing an id is still sending a request: track it under an alias,
            # so its response is bound, times out and is cancellable like any other.
            reused, request_id = True, self._attribution.alias(request_id)
            self.gate.expect(request_id)
        except GateError as e:
            raise MalformedEventError(f"gate refused the request: {e}") from None
        out_of_band = params.get("conversation") == "none"
        self._attribution.add_request(
            Request(request_id, event_id, out_of_band, stamped, echoed=key if reused else None)
        )
        if reused:
            raise MalformedEventError(
                f"request id {key!r} was already used; tracked as {request_id!r}"
            )
        if not stamped:
            logger.log(
                logging.DEBUG if self._warned_unstamped else logging.WARNING,
                "response.create %s has no response.metadata.client_event_id; its response "
                "will be bound in order (use RealtimeTap.stamp to bind exactly)",
                request_id,
            )
            self._warned_unstamped = True

    # ---- server events ----------------------------------------------------------

    def _on_response_created(self, response: Mapping[str, Any]) -> None:
        response_id = require_str(response, "id")
        request_id, out_of_band = self._attribution.take_request(response)
        duplicate = None
        if request_id is not None:
            try:
                request_id = self._bind(request_id, response_id)
            except AlreadyBoundError as e:  # still tracked below, so a cancel can reach it
                duplicate, request_id = f"duplicate response.created ({e}); unattributed", None
        if request_id is None and self.unattributed_policy.drops(
            self.gate, self.unattributed_grace
        ):
            self.gate.flag(
                response_id,
                DropReason.TIMED_OUT,
                f"unattributed response within {self.unattributed_grace:g} s of a request timeout",
            )
            self._send_cancel(response_id)
        elif request_id is None:
            self.gate.announce(response_id)
        self._attribution.start_response(response_id, out_of_band)
        if duplicate is not None:
            raise MalformedEventError(duplicate)

    def _on_new_session(self) -> None:
        if self._server_events == 1:
            return  # the first socket
        for request_id in self._attribution.waiting():
            self.gate.flag_request(
                request_id, DropReason.CANCELLED, "sent before a reconnect, given up with it"
            )

    def _on_session(self, session: Mapping[str, Any]) -> None:
        fmt = output_format_from_session(session)
        if fmt is not None and fmt != self.output_format:
            logger.info("output audio format: %s at %d Hz", fmt.encoding, fmt.sample_rate)
            self.output_format = fmt

    # ---- helpers ----------------------------------------------------------------

    def _expire(self) -> None:
        self.gate.expire()  # the gate logs timeouts; a late response.created finds them dead

    def _bind(self, request_id: str, response_id: str) -> str | None:
        try:
            binding = self.gate.bind(request_id, response_id)
        except UnknownRequestError:
            logger.warning(
                "response.created %s names client_event_id %r that the tap never saw sent "
                "(or the gate forgot); treating it as unattributed",
                response_id,
                request_id,
            )
            return None
        if binding.dead_on_arrival:
            logger.info(
                "response %s of request %s is dead on arrival (%s)",
                response_id,
                request_id,
                binding.reason.value if binding.reason else "flagged",
            )
            self._send_cancel(response_id)
        return request_id

    def _send_cancel(self, response_id: str) -> None:
        cancel = {"type": "response.cancel", "response_id": response_id}
        self.cancels_sent.append(cancel)
        self.cancels_sent_count += 1
        if self.send is None:
            return
        try:
            self.send(dict(cancel))
        except Exception:
            logger.exception("send() failed for the targeted cancel of %s", response_id)

    def _malformed(self, direction: Direction, event: object, problem: str) -> None:
        kind, event_id = event_label(event)
        if len(problem) > _MAX_PROBLEM_CHARS:  # it may quote a value the server chose
            problem = problem[: _MAX_PROBLEM_CHARS - 3] + "..."
        record = MalformedEvent(direction, kind, event_id, problem)
        self.malformed += 1
        self.malformed_events.append(record)
        level = logging.WARNING if self.malformed & (self.malformed - 1) == 0 else logging.DEBUG
        msg = "malformed %s event #%d (type %s, event_id %s): %s"
        logger.log(level, msg, direction, self.malformed, kind, event_id, problem)
        if self.on_malformed is not None:
            try:
                self.on_malformed(record)
            except Exception:
                logger.exception("on_malformed callback failed")
