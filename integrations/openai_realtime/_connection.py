"""The ``openai`` SDK's realtime connection, with the gate between the server and your speakers.

Wrap the connection the SDK gives you (``AsyncOpenAI().realtime.connect(...)``)::

    async with AsyncOpenAI().realtime.connect(model="gpt-realtime") as conn:
        async with SpeakerSink(gate) as speaker:
            rt = GatedConnection(conn, speaker)
            await rt.send({"type": "response.create"})
            async for event in rt:              # the SDK's event objects
                ...

- Every event sent through :meth:`GatedConnection.send` and every event received
  drives a :class:`~integrations.openai_realtime.RealtimeTap` (``response.create``
  is stamped so its reply binds exactly).
- Audio deltas are written to the sink through the gate: a flagged reply never
  plays, and its queued audio is purged.
- Server-VAD barge-in: ``input_audio_buffer.speech_started`` flags the replies
  still playing (the sink purges them at the device's next block).
- The server's history: a killed reply's items are deleted (nothing played) or
  truncated at what the listener heard: the frames of it the device callback
  consumed, counted once the cut is over and the device's latency has passed,
  so none of it is still in the device's own buffer. Exact to one device block
  and never more than the server sent
  (:mod:`~integrations.openai_realtime._history`).

Nothing here imports ``sounddevice``: the sink is any object with the
:class:`GatedSink` interface (``integrations.speakers.SpeakerSink`` or ``WavSink``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator, Mapping
from typing import Any, Protocol

from gate import ConfigurationError, DropReason, Frame, PlaybackGate
from integrations.openai_realtime._tap import RealtimeTap

__all__ = ["GatedConnection", "GatedSink"]

logger = logging.getLogger("playback_gate.openai")


class _Cut(Protocol):
    generation_id: str
    silent_frame: int | None
    faded_frames: int


class _Buffer(Protocol):
    def queued(self, generation_id: str) -> int: ...

    def played(self, generation_id: str) -> int: ...


class GatedSink(Protocol):
    """What the connection needs of a gated output (``SpeakerSink``, ``WavSink``)."""

    gate: PlaybackGate | None
    samplerate: int

    async def awrite(self, generation_id: str, frame: Frame, timeout: float | None = None) -> bool:
        """Admit through the gate and queue; ``False`` if dropped."""
        ...

    def end(self, generation_id: str) -> None:
        """The generation's stream is complete."""
        ...

    def cuts(self) -> list[Any]:
        """Recent purges."""
        ...

    @property
    def buffer(self) -> Any:
        """The chunk buffer (``queued`` / ``played`` per generation)."""
        ...


class GatedConnection:
    """An SDK realtime connection whose audio plays through the gate (see the module doc).

    Args:
        connection: The SDK's ``AsyncRealtimeConnection`` (anything with ``send``,
            ``recv_bytes`` and ``parse_event``).
        sink: Where admitted audio plays; its gate is used. ``None``: no playback
            (the tap and the gate still run; audio is only admitted and counted).
        gate: The gate when ``sink`` is ``None`` (a new one if both are ``None``).
        barge_in: Flag the playing replies on ``input_audio_buffer.speech_started``.
        latency: Seconds the device holds after its callback (PortAudio's output
            latency); the sink's ``latency`` attribute when it has one.
        settle_timeout: Seconds to wait at most for a cut to finish before reporting
            what played.

    Raises:
        ConfigurationError: If ``sink`` has no gate.
    """

    def __init__(
        self,
        connection: Any,
        sink: GatedSink | None = None,
        *,
        gate: PlaybackGate | None = None,
        barge_in: bool = True,
        latency: float | None = None,
        settle_timeout: float = 2.0,
    ) -> None:
        if sink is not None and sink.gate is None:
            raise ConfigurationError("the sink has no gate: make it with SpeakerSink(gate, ...)")
        self.connection = connection
        self.sink = sink
        self.gate: PlaybackGate = (
            sink.gate if sink is not None and sink.gate is not None else gate or PlaybackGate()
        )
        self.barge_in = barge_in
        self.latency = latency if latency is not None else float(getattr(sink, "latency", 0.0))
        self.settle_timeout = settle_timeout
        self.tap = RealtimeTap(self.gate, send=self._send_soon)
        self.interrupted: list[str] = []
        """Replies flagged by server-VAD barge-in, in order."""
        self._outbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._tasks: set[asyncio.Task[None]] = set()
        self._sender = asyncio.get_running_loop().create_task(self._send_loop())
        self._written: dict[str, None] = {}  # replies with audio at the sink, oldest first
        self._loop = asyncio.get_running_loop()
        self._closed = False
        self.gate.add_sink(self)

    # ---- sending and receiving --------------------------------------------------------

    async def send(self, event: Mapping[str, Any] | Any) -> None:
        """Send a client event (a dict or an SDK model); the tap sees it first.

        Args:
            event: The event.
        """
        data = dict(event) if isinstance(event, Mapping) else event.to_dict()
        self.tap.stamp(data)
        self.tap.on_client_event(data)
        await self.connection.send(data)

    async def recv(self) -> Any:
        """Receive one server event: drive the tap, play its audio, return the SDK's object.

        Returns:
            The parsed ``RealtimeServerEvent``.
        """
        raw = await self.connection.recv_bytes()
        try:
            data = json.loads(raw)
        except ValueError:
            data = None
        await self._on_server_event(data)
        return self.connection.parse_event(raw)

    async def __aiter__(self) -> AsyncIterator[Any]:
        """Receive events until the connection closes normally."""
        from websockets.exceptions import ConnectionClosedOK

        while True:
            try:
                yield await self.recv()
            except ConnectionClosedOK:
                return

    async def aclose(self) -> None:
        """Stop the sender and the pending reports; leave the gate. Idempotent."""
        if self._closed:
            return
        self._closed = True
        self.gate.remove_sink(self)
        self.tap.close()
        tasks = [self._sender, *self._tasks]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    # ---- the gate's purge sink -----------------------------------------------------------

    def purge(self, generation_id: str, reason: DropReason) -> None:
        """A reply was flagged: report what of it played once its cut is over.

        Args:
            generation_id: The reply.
            reason: Why.
        """
        if not self._closed:
            self._loop.call_soon_threadsafe(self._spawn, generation_id)

    # ---- internals -------------------------------------------------------------------------

    async def _on_server_event(self, data: Any) -> None:
        audio = self.tap.on_server_event(data)
        if not isinstance(data, dict):
            return
        kind = data.get("type")
        if audio is not None:
            if self.sink is None:
                self.gate.admit(audio.response_id, audio.frame)
            elif await self.sink.awrite(audio.response_id, audio.frame):
                self._written[audio.response_id] = None
                while len(self._written) > 64:
                    del self._written[next(iter(self._written))]
        elif kind == "input_audio_buffer.speech_started" and self.barge_in:
            self._interrupt()
        elif kind == "response.done" and self.sink is not None:
            response = data.get("response")
            rid = response.get("id") if isinstance(response, dict) else None
            if isinstance(rid, str):
                self.sink.end(rid)  # flush its resampler tail: running dry is not an underrun

    def _interrupt(self) -> None:
        """The user speaks: flag every default-conversation reply still playing or coming."""
        playing = [rid for rid in self._written if self._still_playing(rid)]
        for rid in dict.fromkeys([*playing, *self.tap.in_progress()]):
            reply = self.tap.items.reply(rid)  # outlives response.done, unlike in_progress
            out_of_band = reply.out_of_band if reply is not None else self.tap.is_out_of_band(rid)
            if out_of_band or self.gate.is_flagged(rid):
                continue
            self.gate.flag(rid, DropReason.INTERRUPTED, "server VAD: speech started")
            self.interrupted.append(rid)

    def _still_playing(self, response_id: str) -> bool:
        return self.sink is not None and self.sink.buffer.queued(response_id) > 0

    def _send_soon(self, event: dict[str, Any]) -> None:
        """The tap's ``send``: targeted cancels and history edits, in order."""
        self._outbox.put_nowait(event)

    async def _send_loop(self) -> None:
        while True:
            event = await self._outbox.get()
            self.tap.on_client_event(event)  # the tap sees every event sent, its own too
            try:
                await self.connection.send(event)
            except Exception:
                logger.exception("could not send %s", event.get("type"))

    def _spawn(self, response_id: str) -> None:
        if self._closed:
            return
        task = self._loop.create_task(self._report(response_id))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _report(self, response_id: str) -> None:
        """Wait for the cut to finish and the device to play what it took, then report."""
        sink = self.sink
        if sink is None:  # nothing plays
            self.tap.playout_final(response_id, 0, self.tap.output_format.sample_rate)
            return
        loop = self._loop
        deadline = loop.time() + self.settle_timeout
        cut: _Cut | None = None
        while loop.time() < deadline:
            cut = next((c for c in reversed(sink.cuts()) if c.generation_id == response_id), None)
            if sink.buffer.queued(response_id) == 0 and (
                cut is None or cut.silent_frame is not None
            ):
                break
            await asyncio.sleep(0.005)
        # what the callback consumed is still in the device for about its latency
        await asyncio.sleep(self.latency + 0.01)
        heard = sink.buffer.played(response_id) + (cut.faded_frames if cut is not None else 0)
        with contextlib.suppress(Exception):
            self.tap.playout_final(response_id, heard, sink.samplerate)
