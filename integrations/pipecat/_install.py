"""``install_gate(service)``: gate a Pipecat OpenAI Realtime pipeline.

Wiring, for one :class:`OpenAIRealtimeLLMService`:

- a :class:`RealtimeTap` on the raw events (through the one private hook module,
  :mod:`integrations.pipecat._hooks`): it keys requests, binds responses, runs
  the ``response.create`` deadline and flags what the server reports cancelled;
- the service's public ``on_before_push_frame`` event: each ``TTSAudioRawFrame``
  gets an :class:`AudioTag` with the response and item of the delta it came from,
  and a delta after ``response.done`` is marked a straggler there, at the edge;
- a :class:`GateProcessor` for the pipeline, just before ``transport.output()``;
- outgoing events: ``response.create`` is stamped (exact binding), Pipecat's bare
  ``response.cancel`` is aimed at the reply in progress, and every flagged reply in
  progress gets one targeted cancel;
- the conversation's history: Pipecat's ``conversation.item.truncate`` (timed from
  the first delta's arrival, not from playout) is not sent; the reply is flagged
  instead, and once the transport holds nothing of it, what played is reported to
  the tap (``playout_final``), whose history keeper sends the one truncate (or the
  delete, if none of it played) the item needs. A reply the transport was cleared
  in the middle of is flagged the same way, whoever cleared it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

from pipecat.frames.frames import Frame, TTSAudioRawFrame
from pipecat.services.openai.realtime.llm import OpenAIRealtimeLLMService

from gate import AudioFormat, DropReason, InvalidTypeError, PlaybackGate
from integrations.openai_realtime import AUDIO_DELTA_TYPES, RealtimeTap
from integrations.pipecat._hooks import attach_socket, check_pipecat_version
from integrations.pipecat._processor import TAG_KEY, AudioTag, GateProcessor, frame_view

__all__ = ["PipecatGate", "install_gate"]

logger = logging.getLogger("playback_gate.pipecat")

_RATE = 24_000  # the OpenAI Realtime service's output rate in Pipecat (PCM16 mono)
_MAX_TRACKED = 1024  # items and cancelled responses remembered (oldest forgotten)
_POLL_S = 0.005


@dataclass(eq=False)
class PipecatGate:
    """A gate wired into one Pipecat OpenAI Realtime service; see :func:`install_gate`.

    Attributes:
        gate: The gate.
        service: The service.
        tap: The OpenAI Realtime tap on its events.
        processor: Put it in the pipeline just before ``transport.output()``.
        playout_wait_s: Longest a flagged reply's playout is waited for before what
            played of it is reported (its audio may be queued ahead of live audio).
        cancels_sent: Response ids that got a targeted cancel, oldest first.
        history_edits: The truncates and deletes sent for killed replies (the tap's
            history keeper decides them).
    """

    gate: PlaybackGate
    service: OpenAIRealtimeLLMService
    playout_wait_s: float = 2.0
    tap: RealtimeTap = field(init=False)
    processor: GateProcessor = field(init=False)
    cancels_sent: OrderedDict[str, None] = field(default_factory=OrderedDict)
    history_edits: list[dict[str, Any]] = field(default_factory=list)
    _last_delta: tuple[str, str] | None = None

    def __post_init__(self) -> None:
        self.tap = RealtimeTap(self.gate, send=self._on_tap_send, decode_audio=False)
        self.processor = GateProcessor(
            self.gate, on_interruption=self._on_interruption, on_cut=self._on_cut
        )
        self._socket = attach_socket(self.service, self._on_server_event, self._on_client_event)
        self.service.add_event_handler("on_before_push_frame", self._tag)
        self.gate.add_sink(self)

    # ---- the gate's sink --------------------------------------------------------

    def purge(self, generation_id: str, reason: DropReason) -> None:
        """A reply was flagged: one targeted cancel if it streams, then purge the output.

        Called by the gate on the flagging thread; the work runs on the pipeline's loop.

        Args:
            generation_id: The flagged response.
            reason: Why.
        """
        self.processor.on_loop(lambda: self._purge(generation_id, reason))

    def _purge(self, generation_id: str, reason: DropReason) -> None:
        if generation_id in self.tap.in_progress():
            self._cancel(generation_id)
        self.processor.purge(generation_id, reason)
        if self.processor.transport is not None:
            self.processor.spawn(self._report_playout(generation_id))

    # ---- events from the socket hook ----------------------------------------------

    def _on_server_event(self, event: dict[str, Any]) -> None:
        if event.get("type") in AUDIO_DELTA_TYPES:
            response_id, item_id = event.get("response_id"), event.get("item_id")
            if isinstance(response_id, str) and isinstance(item_id, str):
                self._last_delta = (response_id, item_id)
        self.tap.on_server_event(event)

    def _on_client_event(self, event: dict[str, Any]) -> dict[str, Any] | None:
        kind = event.get("type")
        if kind == "response.create":
            try:
                self.tap.stamp(event)
            except ValueError as e:
                logger.warning("response.create left unstamped: %s", e)
        elif kind == "response.cancel" and not event.get("response_id"):
            target = self._default_in_progress()
            if target is not None:
                targeted = {**event, "response_id": target}
                if target in self.cancels_sent:
                    self.tap.on_client_event(targeted)
                    return None  # it already got its one cancel
                self._note_cancel(target)
                event = targeted
        elif kind == "conversation.item.truncate":
            response_id = self._response_of(event.get("item_id"))
            if response_id is not None:
                # Pipecat's value is arrival time; the history keeper sends what played.
                self.gate.flag(response_id, DropReason.INTERRUPTED, "Pipecat truncated it")
                return None
        self.tap.on_client_event(event)
        return event

    async def _tag(self, _service: OpenAIRealtimeLLMService, frame: Frame) -> None:
        # Runs inside the service's push_frame, in its receive loop: the frame is
        # the audio of the last delta the socket hook saw.
        if not isinstance(frame, TTSAudioRawFrame) or self._last_delta is None:
            return
        response_id, item_id = self._last_delta
        straggler = self.gate.should_drop(response_id) and not self.gate.is_flagged(response_id)
        if straggler:
            self.gate.admit(response_id, frame_view(frame))  # counts it as a straggler
        frame.metadata[TAG_KEY] = AudioTag(response_id, item_id, straggler)

    def _on_interruption(self) -> None:
        # Pipecat interrupted the bot: its replies in progress are cut.
        for response_id in self.tap.in_progress():
            if not self.tap.is_out_of_band(response_id):
                self.gate.flag(response_id, DropReason.INTERRUPTED, "Pipecat interruption")

    # ---- cancels --------------------------------------------------------------------

    def _on_tap_send(self, event: dict[str, Any]) -> None:
        # The tap sends targeted cancels and its history keeper's truncates and deletes.
        response_id = event.get("response_id")
        if event.get("type") == "response.cancel" and isinstance(response_id, str):
            self._cancel(response_id)
            return
        self.history_edits.append(event)
        del self.history_edits[: max(0, len(self.history_edits) - _MAX_TRACKED)]
        self.processor.spawn(self._send(event))

    def _cancel(self, response_id: str) -> None:
        if response_id in self.cancels_sent:
            return
        self._note_cancel(response_id)
        self.processor.spawn(self._send({"type": "response.cancel", "response_id": response_id}))

    def _note_cancel(self, response_id: str) -> None:
        self.cancels_sent[response_id] = None
        while len(self.cancels_sent) > _MAX_TRACKED:
            self.cancels_sent.popitem(last=False)

    async def _send(self, event: dict[str, Any]) -> None:
        socket = self._socket()
        if socket is None:
            logger.warning("not connected: %s not sent", event.get("type"))
            return
        try:
            await socket.send_raw(event)
        except Exception as e:  # a closed socket: Pipecat reports it on its own path
            logger.warning("%s not sent: %r", event.get("type"), e)

    def _default_in_progress(self) -> str | None:
        live = [r for r in self.tap.in_progress() if not self.tap.is_out_of_band(r)]
        return live[-1] if live else None

    # ---- the conversation's history ----------------------------------------------------

    def _on_cut(self, response_ids: list[str]) -> None:
        # The transport was cleared holding these replies' audio: each was cut where it
        # stopped playing, so each is killed and its history edited to match.
        for response_id in response_ids:
            self.gate.flag(response_id, DropReason.INTERRUPTED, "cut in the output")

    def _response_of(self, item_id: object) -> str | None:
        if not isinstance(item_id, str):
            return None
        for reply in reversed(self.tap.items.replies()):  # rare: a truncate, newest first
            if item_id in reply.items:
                return reply.response_id
        return None

    async def _report_playout(self, response_id: str) -> None:
        """Once the transport can play no more of a flagged reply, tell the tap what did."""
        playout = self.processor.playout
        deadline = time.monotonic() + self.playout_wait_s
        # Its audio may be queued ahead of live audio (it plays out), or be on its
        # way out with an interruption; then the chunk being written may still count.
        while playout.holds_response(response_id) and time.monotonic() < deadline:
            await asyncio.sleep(_POLL_S)
        in_flight_until = time.monotonic() + self.processor.in_flight_wait()
        while playout.unsettled and time.monotonic() < in_flight_until:
            await asyncio.sleep(_POLL_S)
        playout.settle()
        self.tap.playout_final(response_id, playout.played_samples(response_id), _RATE)


def install_gate(
    service: OpenAIRealtimeLLMService,
    gate: PlaybackGate | None = None,
    *,
    playout_wait_s: float = 2.0,
) -> PipecatGate:
    """Gate a Pipecat OpenAI Realtime service; put ``.processor`` before the output.

    Example::

        llm = OpenAIRealtimeLLMService(api_key=..., settings=...)
        gated = install_gate(llm)
        pipeline = Pipeline([transport.input(), llm, gated.processor, transport.output()])

    Args:
        service: The service, before the pipeline starts.
        gate: The gate; a new 24 kHz one (10 s request deadline) if omitted.
        playout_wait_s: Longest a flagged reply's playout is waited for (see
            :class:`PipecatGate`).

    Returns:
        The installation.

    Raises:
        UnsupportedVersionError: If pipecat-ai is not 1.14.x, or lacks a hook.
        InvalidTypeError: If ``service`` is not an ``OpenAIRealtimeLLMService``.
        StateError: If the service is already connected.
    """
    check_pipecat_version()
    if not isinstance(service, OpenAIRealtimeLLMService):
        raise InvalidTypeError(
            f"install_gate needs an OpenAIRealtimeLLMService, got {type(service).__name__}"
        )
    if gate is None:
        gate = PlaybackGate(audio_format=AudioFormat(sample_rate=_RATE))
    return PipecatGate(gate, service, playout_wait_s=playout_wait_s)
