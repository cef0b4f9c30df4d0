"""The processor that sits just before ``transport.output()``: drop, purge, account."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from pipecat.frames.frames import (
    CancelFrame,
    EndFrame,
    Frame,
    InterruptionFrame,
    OutputAudioRawFrame,
    StartFrame,
    TTSAudioRawFrame,
)
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor
from pipecat.transports.base_output import BaseOutputTransport

from gate import DropReason, PlaybackGate
from integrations.pipecat._playout import PlayoutLedger

__all__ = [
    "IN_FLIGHT_MAX_S",
    "TAG_KEY",
    "AudioTag",
    "GateProcessor",
    "PurgeCounts",
    "frame_view",
    "tag_of",
]

logger = logging.getLogger("playback_gate.pipecat")

TAG_KEY = "playback_gate"
"""Key of the :class:`AudioTag` in an audio frame's ``metadata``."""

_DEADLINE_POLL_S = 0.25  # longest sleep of the deadline watchdog

IN_FLIGHT_MAX_S = 0.5
"""Longest wait for the chunk being written when the transport was cleared (see
:meth:`GateProcessor.in_flight_wait`); it usually shows up within one chunk time."""


@dataclass(frozen=True, slots=True)
class AudioTag:
    """What the gate knows of one audio frame, set when the service pushes it.

    Attributes:
        response_id: The response (generation) the frame belongs to.
        item_id: Its conversation item.
        straggler: It arrived after its response was done: dropped at the output.
    """

    response_id: str
    item_id: str
    straggler: bool = False


def tag_of(frame: Frame) -> AudioTag | None:
    """Return a frame's :class:`AudioTag`.

    Args:
        frame: Any Pipecat frame.

    Returns:
        The tag, or ``None`` if the frame has none.
    """
    tag = frame.metadata.get(TAG_KEY)
    return tag if isinstance(tag, AudioTag) else None


@dataclass(frozen=True, slots=True)
class _FrameView:
    """The three fields :meth:`PlaybackGate.admit` reads, of a Pipecat audio frame."""

    sample_rate: int
    num_channels: int
    samples_per_channel: int


def frame_view(frame: OutputAudioRawFrame) -> _FrameView:
    """Return the gate's view of a Pipecat audio frame (no copy of the audio).

    Args:
        frame: The audio frame.

    Returns:
        Its sample rate, channel count and samples per channel.
    """
    return _FrameView(frame.sample_rate, frame.num_channels, frame.num_frames)


@dataclass
class PurgeCounts:
    """What purges did.

    Attributes:
        purged: Flags that cleared the transport (an ``InterruptionFrame`` downstream).
        kept: Flags whose audio was left to play because live audio was queued
            with it (never clear live audio).
        kept_bytes: Bytes of flagged audio left to play that way.
    """

    purged: int = 0
    kept: int = 0
    kept_bytes: int = 0


class GateProcessor(FrameProcessor):
    """Drops flagged generations just before the output transport and purges it.

    Put it right before ``transport.output()``. On ``StartFrame`` it hooks the
    next processor, if it is a :class:`BaseOutputTransport`, through the public
    ``on_before_push_frame`` event: the transport pushes each chunk it wrote, and
    each ``InterruptionFrame`` that cleared it, which keeps the
    :class:`PlayoutLedger` in step. It also runs the request-deadline watchdog.

    Args:
        gate: The gate.
        on_interruption: Called when an ``InterruptionFrame`` passes downstream.
        on_cut: Called with the responses whose audio the transport was holding
            when it was cleared (by an interruption passing, or by a purge).
        name: Processor name.
    """

    def __init__(
        self,
        gate: PlaybackGate,
        *,
        on_interruption: Callable[[], None] | None = None,
        on_cut: Callable[[list[str]], None] | None = None,
        name: str | None = None,
    ) -> None:
        super().__init__(name=name or "PlaybackGate")
        self.gate = gate
        self.on_interruption = on_interruption
        self.on_cut = on_cut
        self.playout = PlayoutLedger()
        self.purges = PurgeCounts()
        self.transport: BaseOutputTransport | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._watchdog: asyncio.Task[None] | None = None
        self._last_chunk_at = float("-inf")
        self._interrupted_at = float("-inf")

    # ---- frames ---------------------------------------------------------------

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        """Drop flagged audio, note forwarded audio and interruptions, pass the rest.

        Args:
            frame: The frame.
            direction: Its direction.
        """
        await super().process_frame(frame, direction)
        if isinstance(frame, StartFrame):
            self._start()
        elif isinstance(frame, (EndFrame, CancelFrame)):
            await self._stop()
        if direction == FrameDirection.DOWNSTREAM:
            if isinstance(frame, OutputAudioRawFrame):
                tag = tag_of(frame)
                if tag is not None:
                    if tag.straggler or not self.gate.admit_buffered(
                        tag.response_id, frame_view(frame)
                    ):
                        return
                    self.playout.forwarded(
                        tag.response_id, tag.item_id, frame.audio, frame.sample_rate
                    )
            elif isinstance(frame, InterruptionFrame):
                if self.on_interruption is not None:
                    self.on_interruption()
                self._clearing()
        await self.push_frame(frame, direction)

    async def cleanup(self) -> None:
        """End the watchdog and every task this processor started."""
        await self._stop()
        await super().cleanup()  # type: ignore[no-untyped-call]  # untyped in Pipecat

    def chunk_seconds(self) -> float:
        """Duration of one chunk the transport writes (0.04 s if unknown)."""
        transport = self.transport
        if transport is None or not transport.sample_rate:
            return 0.04
        return transport.audio_chunk_size / (2 * transport.sample_rate)

    # ---- purge (the gate's sink) ---------------------------------------------------

    def purge(self, generation_id: str, reason: DropReason) -> None:
        """Purge ``generation_id`` from the transport, if it holds only flagged audio.

        Args:
            generation_id: The flagged generation.
            reason: Why it was flagged.
        """
        self.spawn(self._purge(generation_id, reason))

    async def _purge(self, generation_id: str, reason: DropReason) -> None:
        held = self.playout.holds()
        if generation_id not in held:
            return
        if all(self.gate.is_flagged(gid) for gid in held):
            self.purges.purged += 1
            logger.info("clearing the transport for %s (%s)", generation_id, reason.value)
            self._clearing()
            await self.push_frame(InterruptionFrame())
        else:
            kept = self.playout.held_bytes(generation_id)
            self.purges.kept += 1
            self.purges.kept_bytes += kept
            logger.info(
                "not clearing the transport for %s: live audio is queued with it; "
                "%d bytes of it will play",
                generation_id,
                kept,
            )

    def _clearing(self) -> None:
        """An interruption is on its way to the transport: what it holds is cut."""
        cut = self.playout.responses_held()
        self.playout.barrier()
        if cut and self.on_cut is not None:
            self.on_cut(cut)

    # ---- tasks --------------------------------------------------------------------

    def spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        """Run ``coro`` on the pipeline's loop as a task this processor ends at cleanup.

        Args:
            coro: The coroutine.
        """
        loop = self._loop
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is not None and (loop is None or running is loop):
            self._track(running.create_task(coro))
        elif loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(lambda: self._track(loop.create_task(coro)))
        else:
            coro.close()

    def on_loop(self, fn: Callable[[], None]) -> None:
        """Call ``fn`` now if on the pipeline's loop (or before it started), else soon on it.

        Args:
            fn: The call.
        """
        loop = self._loop
        try:
            running: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if loop is None or running is loop or loop.is_closed():
            fn()
        else:
            loop.call_soon_threadsafe(fn)

    def _track(self, task: asyncio.Task[None]) -> None:
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _start(self) -> None:
        self._loop = asyncio.get_running_loop()
        nxt = self.next
        if isinstance(nxt, BaseOutputTransport) and self.transport is None:
            self.transport = nxt
            nxt.add_event_handler("on_before_push_frame", self._on_transport_push)
        elif self.transport is None:
            logger.warning(
                "%s is not followed by an output transport (%s): truncates can't be "
                "measured against what played",
                self,
                type(nxt).__name__,
            )
        if self._watchdog is None:
            self._watchdog = self._loop.create_task(self._watch_deadlines())

    async def _stop(self) -> None:
        tasks = [t for t in (self._watchdog, *self._tasks) if t is not None and not t.done()]
        self._watchdog = None
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=1.0)

    async def _watch_deadlines(self) -> None:
        # Pipecat has no response.create deadline; the gate's is checked here even
        # when the server sends nothing at all.
        clock = self.gate.clock
        while True:
            self.gate.expire()
            deadline = self.gate.next_deadline()
            delay = _DEADLINE_POLL_S if deadline is None else deadline - clock.now()
            await asyncio.sleep(min(max(delay, 0.005), _DEADLINE_POLL_S))

    def _on_transport_push(self, _transport: BaseOutputTransport, frame: Frame) -> None:
        if isinstance(frame, TTSAudioRawFrame):
            self.playout.played(frame.audio, frame.sample_rate)
            self._last_chunk_at = time.monotonic()
        elif isinstance(frame, InterruptionFrame):
            self.playout.interrupted()
            self._interrupted_at = time.monotonic()

    def in_flight_wait(self) -> float:
        """Seconds to wait for the chunk the transport may have been writing when cleared.

        None if it had been idle (no chunk written for two chunk times before the
        interruption); else up to :data:`IN_FLIGHT_MAX_S`, which a busy loop needs.

        Returns:
            How long to wait at most, from now.
        """
        if self._interrupted_at - self._last_chunk_at > 2 * self.chunk_seconds():
            return 0.0
        return max(0.0, self._interrupted_at + IN_FLIGHT_MAX_S - time.monotonic())
