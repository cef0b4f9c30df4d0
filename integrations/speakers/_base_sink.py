"""What every gated output shares: admission, format conversion, the chunk buffer, timing."""

from __future__ import annotations

import asyncio
import logging
import math
from dataclasses import dataclass
from types import TracebackType
from typing import Any, TypedDict, Unpack

import numpy as np

from gate import ConfigurationError, DropReason, Frame, InvalidTypeError, PlaybackGate
from integrations.speakers._chunk_buffer import BufferStats, ChunkBuffer, Cut
from integrations.speakers._convert import Array, FormatConverter, frame_samples
from integrations.speakers._fade import DEFAULT_FADE_MS, Fade
from integrations.speakers._pull_signal import PullSignal
from integrations.speakers._records import BufferFullError, SinkInactiveError

__all__ = ["BaseSink", "SinkStats"]

logger = logging.getLogger("playback_gate.speakers")

#: Converters (resamplers) kept for generations not yet ended; the oldest is ended first.
MAX_OPEN_CONVERTERS = 32

#: Chunk slots per second of buffer, unless given: one per 10 ms chunk, however interleaved.
SEGMENTS_PER_SECOND = 100

#: A waiting :meth:`BaseSink.awrite` re-checks that the sink still plays at least this often
#: (a stream can stop by itself, with no :meth:`BaseSink.stop` to wake the writer).
RECHECK_SECONDS = 0.25


@dataclass(frozen=True, slots=True)
class SinkStats:
    """Counters of a sink.

    Attributes:
        buffer: The chunk buffer's counters (underruns, frames played per generation...).
        device_underflows: Callbacks the device itself flagged as underflowed.
        callback_errors: Callbacks that raised and played silence instead.
    """

    buffer: BufferStats
    device_underflows: int
    callback_errors: int


#: Channels a sink opens when ``channels`` is not given (voice is mono; the host mixes up).
DEFAULT_CHANNELS = 1


class SinkOptions(TypedDict, total=False):
    """The options every sink takes, as keyword arguments (``SpeakerSink``, ``WavSink``).

    Written once here and passed through as ``**options``, so the sinks never re-list them.

    Attributes:
        channels: Device channels (default 1).
        fade_ms: Fade-out when the sounding generation is cut; 0 for a hard cut
            (default :data:`~integrations.speakers._fade.DEFAULT_FADE_MS`).
        buffer_seconds: Audio the sink can hold, in seconds (default 30).
        resampler_quality: ``rtc.AudioResamplerQuality`` value name (default ``"medium"``).
        register: Register with the gate as a purge sink (default ``True``).
        max_segments: Chunks the buffer holds when generations interleave (a
            generation's consecutive chunks share one); ``None`` (the default) for one
            per 10 ms of ``buffer_seconds``, at least 1024.
    """

    channels: int
    fade_ms: float
    buffer_seconds: float
    resampler_quality: str
    register: bool
    max_segments: int | None


class BaseSink:
    """A gated output: frames in by generation, device blocks out.

    Subclasses own the clock and the device: :class:`SpeakerSink` (PortAudio)
    and :class:`WavSink` (a file). Both are :class:`gate.PurgeSink`s.

    Threads: :meth:`write`, :meth:`end` and the lifecycle calls belong to one
    thread (the event loop); :meth:`purge` may come from any thread; the
    device pulls on its own.

    Args:
        gate: The gate that admits frames and purges this sink; ``None`` to
            queue everything written.
        samplerate: Device sample rate, in Hz.
        dtype: Device sample type, ``"int16"`` or ``"float32"``.
        **options: See :class:`SinkOptions`.

    Raises:
        InvalidTypeError: If ``gate`` is not a :class:`gate.PlaybackGate` or ``None``.
        ConfigurationError: If a setting is out of range.
    """

    def __init__(
        self,
        gate: PlaybackGate | None = None,
        *,
        samplerate: int,
        dtype: str = "int16",
        **options: Unpack[SinkOptions],
    ) -> None:
        channels = options.get("channels", DEFAULT_CHANNELS)
        fade_ms = options.get("fade_ms", DEFAULT_FADE_MS)
        buffer_seconds = options.get("buffer_seconds", 30.0)
        max_segments = options.get("max_segments")
        if gate is not None and not isinstance(gate, PlaybackGate):
            raise InvalidTypeError(f"gate must be a PlaybackGate or None, got {gate!r}")
        if dtype not in ("int16", "float32"):
            raise ConfigurationError(f"dtype must be 'int16' or 'float32', got {dtype!r}")
        if not math.isfinite(buffer_seconds) or buffer_seconds <= 0:
            raise ConfigurationError(f"buffer_seconds must be > 0, got {buffer_seconds!r}")
        self.gate = gate
        self.samplerate = int(samplerate)
        self.channels = int(channels)
        self.dtype = dtype
        self.fade = Fade.from_ms(fade_ms, self.samplerate, self.channels)
        self._buffer = ChunkBuffer(
            max(1, round(buffer_seconds * self.samplerate)),
            self.channels,
            dtype,
            fade=self.fade,
            max_segments=(
                max_segments
                if max_segments is not None
                else max(1024, math.ceil(buffer_seconds * SEGMENTS_PER_SECOND) + 2)
            ),
        )
        self._quality = options.get("resampler_quality", "medium")
        self._direct = FormatConverter(self.samplerate, self.samplerate, self.channels, dtype)
        self._converters: dict[str, FormatConverter] = {}
        self._drop = gate.is_flagged if gate is not None else None
        # (frame index, stream time at which that frame leaves the device), per pull.
        self._anchor: tuple[int, float] | None = None
        self._device_underflows = 0
        self._callback_errors = 0
        self._pulled = PullSignal(RECHECK_SECONDS)  # wakes an awrite waiting for room
        register = options.get("register", True)
        self._registered = gate is not None and register
        if gate is not None and register:
            gate.add_sink(self)

    # ---- writer side ----------------------------------------------------------------------

    def write(self, generation_id: str, frame: Frame) -> bool:
        """Admit ``frame`` through the gate and queue it for playback, without waiting.

        Args:
            generation_id: The frame's generation (the model's response id).
            frame: A :class:`gate.PcmFrame` or ``rtc.AudioFrame``, any rate and
                channel count.

        Returns:
            ``True`` if queued, ``False`` if the gate dropped it.

        Raises:
            FrameFormatError: If the frame has no usable samples.
            BufferFullError: If the buffer has no room now, in frames or chunk
                slots (:meth:`awrite` waits instead).
        """
        out = self._admit(generation_id, frame)
        if out is None:
            return False
        self._buffer.push(generation_id, out)
        return True

    async def awrite(self, generation_id: str, frame: Frame, timeout: float | None = None) -> bool:
        """Like :meth:`write`, but wait (asynchronously) for room instead of raising.

        Room means free frames and a free chunk slot; each pull of the device
        wakes the wait. A frame that fits is queued at once, even before
        :meth:`start`.

        Args:
            generation_id: The frame's generation.
            frame: The frame.
            timeout: Seconds to wait for room at most; ``None`` waits as long
                as the sink plays.

        Returns:
            ``True`` if queued; ``False`` if the gate dropped it, or flagged its
            generation while it waited.

        Raises:
            FrameFormatError: If the frame has no usable samples.
            BufferFullError: If the frame alone is larger than the buffer.
            SinkInactiveError: If it must wait but the sink is not playing (not
                started, stopped or closed), so room would never come.
            TimeoutError: If there was no room within ``timeout``.
        """
        out = self._admit(generation_id, frame)
        if out is None:
            return False
        n = out.shape[0]
        buffer = self._buffer
        if not buffer.fits(n):
            if n > buffer.capacity:
                raise BufferFullError(
                    f"a chunk of {n} frames cannot fit a speaker buffer of {buffer.capacity}; "
                    "write smaller frames or raise buffer_seconds"
                )
            async with asyncio.timeout(timeout):
                while not buffer.fits(n):
                    if self._drop is not None and self._drop(generation_id):
                        return False  # flagged while waiting: purged, like what it queued
                    if not self.active:
                        raise SinkInactiveError(
                            f"awrite() must wait for room for {n} frames ({buffer.free_frames} "
                            f"frames and {buffer.free_segments} chunk slots free), but {self!r} "
                            "is not playing, so no room would come: start() it first"
                        )
                    await self._wait_pull()
            if self._drop is not None and self._drop(generation_id):
                return False
        buffer.push(generation_id, out)
        return True

    def end(self, generation_id: str) -> None:
        """Say a generation's stream is complete: flush its resampler tail.

        After this, running dry is idle time, not an underrun.

        Args:
            generation_id: The generation.
        """
        converter = self._converters.pop(generation_id, None)
        if converter is not None:
            tail = converter.flush()
            if len(tail) and not (self.gate is not None and self.gate.is_flagged(generation_id)):
                self._buffer.push(generation_id, np.ascontiguousarray(tail))
        self._buffer.end(generation_id)

    # ---- dropping -------------------------------------------------------------------------

    def purge(self, generation_id: str, reason: DropReason = DropReason.CANCELLED) -> None:
        """Drop every queued frame of ``generation_id`` (the :class:`gate.PurgeSink` call).

        O(1) and non-blocking. If it is sounding, the next device block fades
        it out; the block already at the device is the only audio that can
        still sound.

        Args:
            generation_id: The flagged generation.
            reason: Why (for the log).
        """
        flagged_at = self._now()
        self._converters.pop(generation_id, None)
        cut = self._buffer.purge(generation_id)
        self._stamp(cut, flagged_at)
        self._pulled.notify()  # an awrite of this generation stops waiting
        logger.debug(
            "purged %s (%s): %d frames dropped", generation_id, reason.value, cut.dropped_frames
        )

    def clear(self) -> None:
        """Drop everything queued, of every generation (the sounding one fades out)."""
        flagged_at = self._now()
        self._converters.clear()
        for cut in self._buffer.clear():
            self._stamp(cut, flagged_at)

    # ---- inspection -----------------------------------------------------------------------

    @property
    def buffer(self) -> ChunkBuffer:
        """The chunk buffer (read-only use)."""
        return self._buffer

    def cuts(self) -> list[Cut]:
        """Recent purges with their measured cancel-to-silence, oldest first.

        Returns:
            The cuts.
        """
        return self._buffer.cuts()

    def stats(self) -> SinkStats:
        """A snapshot of the counters.

        Returns:
            The stats.
        """
        return SinkStats(self._buffer.stats(), self._device_underflows, self._callback_errors)

    # ---- lifecycle ------------------------------------------------------------------------

    def start(self) -> None:
        """Start pulling audio."""
        raise NotImplementedError

    def stop(self) -> None:
        """Stop pulling; queued audio stays queued."""
        raise NotImplementedError

    def abort(self) -> None:
        """Stop at once and drop everything queued."""
        raise NotImplementedError

    def close(self) -> None:
        """Release the device or file, unregister from the gate. Queued audio is dropped."""
        if self._registered and self.gate is not None:
            self.gate.remove_sink(self)
            self._registered = False

    @property
    def active(self) -> bool:
        """Whether the sink is pulling audio."""
        raise NotImplementedError

    async def drain(self, timeout: float | None = None, margin: float = 0.02) -> None:
        """Play out everything queued, then stop.

        Ends every open generation (flushing resampler tails), waits until the
        buffer is empty and the last frame has left the device (plus
        ``margin``), then calls :meth:`stop`.

        Args:
            timeout: Seconds to wait at most; ``None`` waits as long as it takes.
            margin: Extra seconds to keep the device running after the last frame.

        Raises:
            TimeoutError: If draining took longer than ``timeout``.
        """
        for gid in list(self._converters):
            self.end(gid)
        self._buffer.end_all()
        if not self.active:
            if self._buffer.empty:
                return
            self.start()
        async with asyncio.timeout(timeout):
            while not self._buffer.empty:
                await self._wait_block()
            done = self.frame_time(self._buffer.last_audio_end)
            while done is not None and (self._now() or 0.0) < done + margin:
                await self._wait_block()
        self.stop()

    def frame_time(self, frame: int) -> float | None:
        """Stream time at which output frame ``frame`` leaves the device.

        Args:
            frame: Output frame index.

        Returns:
            Seconds on the stream clock, or ``None`` before the first block.
        """
        anchor = self._anchor
        if anchor is None:
            return None
        return anchor[1] + (frame - anchor[0]) / self.samplerate

    def __enter__(self) -> BaseSink:
        self.start()
        return self

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    async def __aenter__(self) -> BaseSink:
        self.start()
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        """Drain on a clean exit, abort on an exception; then close."""
        try:
            if et is None:
                await self.drain()
            else:
                self.abort()
        finally:
            self.close()

    # ---- for subclasses -------------------------------------------------------------------

    def _now(self) -> float | None:
        """The stream clock now, in seconds, or ``None`` if it is not running."""
        raise NotImplementedError

    async def _wait_block(self) -> None:
        await asyncio.sleep(0.005)

    async def _wait_pull(self) -> None:
        """Wait until the next pull may have freed room."""
        await self._pulled.wait()

    def _admit(self, generation_id: str, frame: Frame) -> Array | None:
        """Admit and convert ``frame``; its device-format samples, or ``None`` if dropped."""
        if self.gate is not None and not self.gate.admit(generation_id, frame):
            return None
        samples = frame_samples(frame)
        rate = int(frame.sample_rate)
        converter = self._direct
        if rate != self.samplerate:
            converter = self._resampler(generation_id, rate, samples.shape[1])
        return np.ascontiguousarray(converter.convert(samples))

    def _pull(self, out: Any, stream_time: float) -> None:
        """Fill one device block; never raises. ``stream_time``: when ``out[0]`` plays."""
        try:
            start = self._buffer.frames_out
            self._anchor = (start, stream_time)
            self._buffer.pull(out, self._drop)
            for cut in self._buffer.resolved:
                offset = (cut.silent_frame or start) - start
                cut.silent_at = stream_time + offset / self.samplerate
        except Exception:
            out.fill(0)
            self._callback_errors += 1
        if self._pulled.waiting:
            self._pulled.notify()

    def _stamp(self, cut: Cut, flagged_at: float | None) -> None:
        cut.flagged_at = flagged_at
        if cut.silent_frame is not None:
            cut.silent_at = self.frame_time(cut.silent_frame)

    def _resampler(self, generation_id: str, rate: int, channels: int) -> FormatConverter:
        converter = self._converters.get(generation_id)
        if converter is not None and (converter.src_rate, converter.src_channels) == (
            rate,
            channels,
        ):
            return converter
        if converter is not None:  # the format changed mid-stream: finish the old one
            self.end(generation_id)
        while len(self._converters) >= MAX_OPEN_CONVERTERS:
            self.end(next(iter(self._converters)))
        converter = FormatConverter(
            rate, self.samplerate, self.channels, self.dtype, channels, quality=self._quality
        )
        self._converters[generation_id] = converter
        return converter
