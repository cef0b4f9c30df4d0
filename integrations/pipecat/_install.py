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
  ``response.cancel`` is aimed at the reply in progress, every flagged reply in
  progress gets one targeted cancel, and a ``conversation.item.truncate`` is held
  until the item stopped playing, then sent with what actually played.
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

__all__ = ["PipecatGate", "TruncateRecord", "install_gate"]

logger = logging.getLogger("playback_gate.pipecat")

_RATE = 24_000  # the OpenAI Realtime service's output rate in Pipecat (PCM16 mono)
_MAX_TRACKED = 1024  # items and cancelled responses remembered (oldest forgotten)
_POLL_S = 0.005


@dataclass(frozen=True)
class TruncateRecord:
    """One ``conversation.item.truncate`` the gate sent in Pipecat's place.

    Attributes:
        item_id: The item.
        response_id: Its response, if known.
        requested_ms: ``audio_end_ms`` as Pipecat computed it (arrival time);
            ``None`` when Pipecat sent no truncate for a cut item.
        sent_ms: ``audio_end_ms`` sent: what played, never more than received.
        played_ms: What the output played of the item when it was sent.
        received_ms: Audio of the item received from the server.
    """

    item_id: str
    response_id: str | None
    requested_ms: int | None
    sent_ms: int
    played_ms: int | None
    received_ms: int


@dataclass(eq=False)
class PipecatGate:
    """A gate wired into one Pipecat OpenAI Realtime service; see :func:`install_gate`.

    Attributes:
        gate: The gate.
        service: The service.
        tap: The OpenAI Realtime tap on its events.
        processor: Put it in the pipeline just before ``transport.output()``.
        truncate_wait_s: Longest a truncate is held while the item still plays.
        truncates: Every truncate sent in Pipecat's place.
        cancels_sent: Response ids that got a targeted cancel, oldest first.
    """

    gate: PlaybackGate
    service: OpenAIRealtimeLLMService
    truncate_wait_s: float = 2.0
    tap: RealtimeTap = field(init=False)
    processor: GateProcessor = field(init=False)
    truncates: list[TruncateRecord] = field(default_factory=list)
    cancels_sent: OrderedDict[str, None] = field(default_factory=OrderedDict)
    _items: OrderedDict[str, tuple[str, int]] = field(default_factory=OrderedDict)
    _truncated: OrderedDict[str, None] = field(default_factory=OrderedDict)
    _last_delta: tuple[str, str] | None = None

    def __post_init__(self) -> None:
        self.tap = RealtimeTap(self.gate, send=self._on_tap_cancel, decode_audio=False)
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

    # ---- events from the socket hook ----------------------------------------------

    def _on_server_event(self, event: dict[str, Any]) -> None:
        if event.get("type") in AUDIO_DELTA_TYPES:
            response_id, item_id = event.get("response_id"), event.get("item_id")
            if isinstance(response_id, str) and isinstance(item_id, str):
                self._last_delta = (response_id, item_id)
                _, received = self._items.get(item_id, (response_id, 0))
                self._remember_item(item_id, response_id, received + _b64_len(event.get("delta")))
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
            self._hold_truncate(event)
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

    def _on_tap_cancel(self, cancel: dict[str, Any]) -> None:
        response_id = cancel.get("response_id")
        if isinstance(response_id, str):
            self._cancel(response_id)

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

    # ---- truncate honesty --------------------------------------------------------------

    def _on_cut(self, item_ids: list[str]) -> None:
        # The transport was cleared while holding these items' audio: the user heard
        # part of each. Pipecat truncates only the item it tracks, if any; the
        # server must learn where every other one stopped too.
        for item_id in item_ids:
            if item_id not in self._truncated:
                event = {"type": "conversation.item.truncate", "item_id": item_id}
                self._hold_truncate({**event, "content_index": 0, "audio_end_ms": None})

    def _hold_truncate(self, event: dict[str, Any]) -> None:
        item_id = event.get("item_id")
        known = self._items.get(item_id) if isinstance(item_id, str) else None
        if known is None:
            self.tap.on_client_event(event)
            self.processor.spawn(self._send(event))  # not ours to judge
            return
        if item_id in self._truncated:
            return  # one truncate per item: it went out already, with what played
        self._truncated[str(item_id)] = None
        while len(self._truncated) > _MAX_TRACKED:
            self._truncated.popitem(last=False)
        response_id = known[0]
        self.gate.flag(response_id, DropReason.INTERRUPTED, "Pipecat truncated its item")
        self.processor.spawn(self._send_truncate(event, str(item_id), response_id))

    async def _send_truncate(self, event: dict[str, Any], item_id: str, response_id: str) -> None:
        playout = self.processor.playout
        measured = self.processor.transport is not None
        deadline = time.monotonic() + self.truncate_wait_s
        # Wait until the transport holds nothing of the item (its frames may be
        # queued ahead of live audio), then for the chunk it was writing when it
        # was cleared, if it was writing one.
        while measured and playout.holds_item(item_id) and time.monotonic() < deadline:
            await asyncio.sleep(_POLL_S)
        in_flight_until = time.monotonic() + self.processor.in_flight_wait()
        while measured and playout.unsettled and time.monotonic() < in_flight_until:
            await asyncio.sleep(_POLL_S)
        playout.settle()
        received_ms = self._items.get(item_id, (response_id, 0))[1] * 1000 // (_RATE * 2)
        requested = event.get("audio_end_ms")
        requested_ms = requested if isinstance(requested, int) else None
        played_ms = playout.played_ms(item_id, _RATE) if measured else None
        if played_ms is not None:
            sent_ms = min(played_ms, received_ms)
        else:
            sent_ms = min(requested_ms or 0, received_ms)
        outgoing = {**event, "audio_end_ms": sent_ms}
        self.truncates.append(
            TruncateRecord(item_id, response_id, requested_ms, sent_ms, played_ms, received_ms)
        )
        self.tap.on_client_event(outgoing)
        await self._send(outgoing)

    def _remember_item(self, item_id: str, response_id: str, received: int) -> None:
        self._items[item_id] = (response_id, received)
        self._items.move_to_end(item_id)
        while len(self._items) > _MAX_TRACKED:
            self._items.popitem(last=False)


def _b64_len(delta: object) -> int:
    """Decoded length of a base64 string, without decoding it (0 if not a string)."""
    if not isinstance(delta, str):
        return 0
    n = len(delta)
    return n * 3 // 4 - (delta.endswith("=") + delta.endswith("=="))


def install_gate(
    service: OpenAIRealtimeLLMService,
    gate: PlaybackGate | None = None,
    *,
    truncate_wait_s: float = 2.0,
) -> PipecatGate:
    """Gate a Pipecat OpenAI Realtime service; put ``.processor`` before the output.

    Example::

        llm = OpenAIRealtimeLLMService(api_key=..., settings=...)
        gated = install_gate(llm)
        pipeline = Pipeline([transport.input(), llm, gated.processor, transport.output()])

    Args:
        service: The service, before the pipeline starts.
        gate: The gate; a new 24 kHz one (10 s request deadline) if omitted.
        truncate_wait_s: Longest a truncate is held while the item still plays.

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
    return PipecatGate(gate, service, truncate_wait_s=truncate_wait_s)
