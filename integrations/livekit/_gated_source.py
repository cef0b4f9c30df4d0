"""A gated ``rtc.AudioSource``: the room track's queue, keyed by generation.

``rtc.AudioSource`` keeps a native queue (``queue_size_ms``) that
``clear_queue()`` empties all at once; nothing tells which samples in it have
played. So this adapter **refuses to mix generations** in that queue: a frame of
a different generation waits until the queue has played out (the source's own
``wait_for_playout()``), then goes in. A purge of the queued generation is then a
plain ``clear_queue()`` that can never take a live generation's audio with it.

Why not re-queue? Re-queueing would need to know what already left the queue,
and the FFI does not say: a Python-side estimate is off by up to a 10 ms pacing
frame at the cut, so a live generation would lose or repeat audio at every
purge, and the re-captured audio would race the producer's next frame. Refusing
to mix costs nothing in order (the queue is FIFO, so the next generation could
not play earlier anyway) and at most one pacing frame of silence at a switch.

With ``queue_size_ms=0`` there is no native queue: frames leave at once, so
there is nothing to purge and generations never wait for each other.
"""

from __future__ import annotations

import asyncio
import logging

from livekit import rtc

from gate import ConfigurationError, DropReason, InvalidTypeError, PlaybackGate, StateError
from integrations.livekit._tagging import generation_of

__all__ = ["GatedAudioSource"]

logger = logging.getLogger("playback_gate.livekit")

_UNSET = object()


class GatedAudioSource:
    """An ``rtc.AudioSource`` that drops flagged generations and purges its queue.

    It is a :class:`gate.PurgeSink`, registered with the gate on construction.
    Captures are serialised (one producer at a time, as ``rtc.AudioSource``
    expects); backpressure is the source's own: :meth:`capture_frame` awaits
    ``rtc.AudioSource.capture_frame``.

    Example::

        source = rtc.AudioSource(48000, 1)
        gated = GatedAudioSource(source, gate)
        track = rtc.LocalAudioTrack.create_audio_track("agent", source)
        await gated.capture_frame(frame, "resp_7")   # drops it if resp_7 is flagged

    Args:
        source: The source the track publishes. Its queue is this adapter's to
            manage: capture only through the adapter.
        gate: The gate deciding which generations play.
        queue_size_ms: The ``queue_size_ms`` the source was created with (the
            FFI does not report it); ``0`` means no native queue.
        register: Add this adapter to ``gate``'s sinks.
    """

    def __init__(
        self,
        source: rtc.AudioSource,
        gate: PlaybackGate,
        *,
        queue_size_ms: int = 1000,
        register: bool = True,
    ) -> None:
        if not isinstance(source, rtc.AudioSource):
            raise InvalidTypeError(
                f"source must be an rtc.AudioSource, got {type(source).__name__}"
            )
        if not isinstance(queue_size_ms, int) or queue_size_ms < 0:
            raise ConfigurationError(f"queue_size_ms must be an int >= 0, got {queue_size_ms!r}")
        self._source = source
        self._gate = gate
        self._queued = queue_size_ms > 0
        self._lock = asyncio.Lock()
        self._queued_key: object = _UNSET  # generation (or None: untagged) in the native queue
        self._closed = False
        self.purges = 0
        """Purges that cleared the native queue."""
        self.purged_seconds = 0.0
        """Audio cleared from the native queue by purges (the source's own estimate)."""
        self.switch_waits = 0
        """Times a generation waited for another's queued audio to play out."""
        if register:
            gate.add_sink(self)

    @property
    def source(self) -> rtc.AudioSource:
        """The wrapped source."""
        return self._source

    @property
    def sample_rate(self) -> int:
        """The source's sample rate, Hz."""
        return self._source.sample_rate

    @property
    def num_channels(self) -> int:
        """The source's channel count."""
        return self._source.num_channels

    @property
    def queued_duration(self) -> float:
        """Seconds of audio the source estimates are still queued."""
        return self._source.queued_duration

    @property
    def queued_generation(self) -> str | None:
        """The generation the native queue holds (or held last), or ``None``."""
        key = self._queued_key
        return key if isinstance(key, str) else None

    async def capture_frame(self, frame: rtc.AudioFrame, generation_id: str | None = None) -> bool:
        """Queue one frame unless its generation is flagged.

        A frame of another generation than the one queued waits until the queue
        has played out. Untagged frames (no id given, no tag) are not gated but
        are kept apart from tagged ones the same way. A retired generation's
        frames still play: they waited in a buffer (see
        :meth:`gate.PlaybackGate.admit_buffered`).

        Args:
            frame: The frame, in the source's format.
            generation_id: Its generation; ``None`` reads the frame's tag
                (see :func:`integrations.livekit._tagging.generation_of`).

        Returns:
            ``True`` if the frame was queued, ``False`` if it was dropped.

        Raises:
            StateError: If the adapter is closed.
            Exception: What ``rtc.AudioSource.capture_frame`` raises.
        """
        if self._closed:
            raise StateError("GatedAudioSource is closed")
        gen = generation_id if generation_id is not None else generation_of(frame)
        if not self._queued:  # no native queue: nothing to keep apart, nothing to purge
            if gen is not None and not self._gate.admit_buffered(gen, frame):
                return False
            await self._source.capture_frame(frame)
            return True
        if gen is not None and self._gate.is_flagged(gen):
            return self._gate.admit(gen, frame)  # False, and counted
        async with self._lock:
            if self._must_wait_for(gen):
                self.switch_waits += 1
                await self._source.wait_for_playout()
            if gen is not None and not self._gate.admit_buffered(gen, frame):
                return False
            self._queued_key = gen
            await self._source.capture_frame(frame)
            if gen is not None and self._gate.is_flagged(gen):
                # flagged while the capture waited for room: the frame may have gone
                # in after the purge's clear, and the queue holds only this generation
                self._clear(gen)
            return True

    def purge(self, generation_id: str, reason: DropReason) -> None:
        """Clear the native queue if it holds ``generation_id``. Never blocks.

        Args:
            generation_id: The flagged generation.
            reason: Why it was flagged.
        """
        if self._queued and self._queued_key == generation_id:
            self._clear(generation_id)
            logger.debug("purged %s (%s) from the track queue", generation_id, reason.value)

    def clear_queue(self) -> None:
        """Drop everything queued, whatever its generation (e.g. on a user barge-in)."""
        self._source.clear_queue()
        self._queued_key = _UNSET

    async def wait_for_playout(self) -> None:
        """Wait until the queued audio has played out (the source's own estimate)."""
        await self._source.wait_for_playout()

    async def aclose(self, *, close_source: bool = True) -> None:
        """Unregister from the gate and, by default, close the source.

        Args:
            close_source: Also ``await source.aclose()``.
        """
        self._closed = True
        self._gate.remove_sink(self)
        if close_source:
            await self._source.aclose()

    def _must_wait_for(self, key: str | None) -> bool:
        # another generation's audio is still in the native queue
        return (
            self._queued
            and self._queued_key is not _UNSET
            and self._queued_key != key
            and self._source.queued_duration > 0
        )

    def _clear(self, generation_id: str) -> None:
        queued = self._source.queued_duration
        self._source.clear_queue()
        self._queued_key = _UNSET
        self.purges += 1
        self.purged_seconds += queued
