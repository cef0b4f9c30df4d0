"""The gated speaker: a PortAudio output stream (python-sounddevice callback API)."""

from __future__ import annotations

from typing import Any, Unpack

from gate import PlaybackGate
from integrations.speakers._base_sink import DEFAULT_CHANNELS, BaseSink, SinkOptions
from integrations.speakers._devices import (
    DeviceInfo,
    DeviceSpec,
    SpeakerError,
    import_sounddevice,
    resolve_device,
)

__all__ = ["SpeakerSink"]


class SpeakerSink(BaseSink):
    """Plays gated audio on a local output device, purging flagged generations at the callback.

    The device's callback pulls one block at a time from the sink's
    :class:`~integrations.speakers._chunk_buffer.ChunkBuffer`, re-checking
    ``gate.is_flagged`` for every generation it is about to play. A purge
    reaches the next callback, so only the block already at the device can
    still sound, plus the fade. Cut timings come from the stream's own clock
    (``outputBufferDacTime``).

    The stream is opened here and started by :meth:`start` (or ``with`` /
    ``async with``), like ``sounddevice.OutputStream``.

    Example::

        async with SpeakerSink(gate, device="pulse") as sink:   # drains on exit
            sink.write("resp_1", frame)
            gate.flag("resp_1", DropReason.INTERRUPTED)         # purged, faded out

    Args:
        gate: The gate; this sink registers itself as a purge sink.
        device: Output device index or name; ``None`` for the default.
        samplerate: Device rate; the device's default if ``None``.
        dtype: ``"int16"`` or ``"float32"``.
        blocksize: Frames per callback; ``None`` for 10 ms. Smaller means a
            faster cut and more callbacks.
        latency: PortAudio latency hint, ``"low"``, ``"high"`` or seconds.
        **options: The options every sink takes (channels, fade, buffer size,
            resampler quality, registration): see :class:`SinkOptions`.

    Raises:
        PortAudioMissingError: If sounddevice or libportaudio is missing.
        NoOutputDeviceError: If there is no such output device.
        SpeakerError: If PortAudio cannot open the stream.
    """

    def __init__(
        self,
        gate: PlaybackGate | None = None,
        *,
        device: DeviceSpec = None,
        samplerate: int | None = None,
        dtype: str = "int16",
        blocksize: int | None = None,
        latency: str | float = "low",
        **options: Unpack[SinkOptions],
    ) -> None:
        channels = options.get("channels", DEFAULT_CHANNELS)
        sd = import_sounddevice()
        info = resolve_device(device)
        rate = int(samplerate or info.default_samplerate)
        self.device: DeviceInfo = info
        self.blocksize = int(blocksize if blocksize is not None else rate // 100)
        try:
            stream = sd.OutputStream(
                device=info.index,
                samplerate=rate,
                channels=channels,
                dtype=dtype,
                blocksize=self.blocksize,
                latency=latency,
                callback=self._callback,
            )
        except Exception as e:  # sd.PortAudioError, ValueError
            raise SpeakerError(
                f"cannot open output device {info.index} {info.name!r} at {rate} Hz, "
                f"{channels} channel(s), {dtype}: {e}; pick another with --device, "
                "or write to a WAV file instead (--wav)"
            ) from e
        self._stream: Any = stream
        super().__init__(gate, samplerate=rate, dtype=dtype, **options)
        self.latency = float(stream.latency)
        self._closed = False

    def _callback(self, outdata: Any, frames: int, time: Any, status: Any) -> None:
        # The audio thread. Never raises, never blocks on the loop (see ChunkBuffer).
        if status.output_underflow:
            self._device_underflows += 1
        dac = time.outputBufferDacTime
        if dac <= 0.0:  # a host API that does not report it
            dac = time.currentTime + self.latency
        self._pull(outdata, dac)

    # ---- lifecycle (python-sounddevice's vocabulary) ----------------------------------

    def start(self) -> None:
        """Start the stream; queued audio starts playing."""
        if not self._stream.active:
            self._stream.start()

    def stop(self) -> None:
        """Stop the stream after the device plays what it already holds; the queue stays.

        To play the queue out first, ``await drain()``.
        """
        if not self._stream.stopped:
            self._stream.stop()
        self._pulled.notify()  # a waiting awrite sees the stop now

    def abort(self) -> None:
        """Stop the stream at once and drop everything queued."""
        if not self._stream.stopped:
            self._stream.abort()
        self._buffer.reset()
        self._pulled.notify()

    def close(self) -> None:
        """Abort and close the stream, and unregister from the gate. Idempotent."""
        if self._closed:
            return
        self._closed = True
        try:
            self.abort()
            self._stream.close()
        finally:
            super().close()

    @property
    def active(self) -> bool:
        """Whether the stream is running (``False`` once closed)."""
        return not self._closed and bool(self._stream.active)

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called."""
        return self._closed

    def _now(self) -> float | None:
        if self._closed or not self._stream.active:
            return None
        return float(self._stream.time)

    async def _wait_block(self) -> None:
        import asyncio

        await asyncio.sleep(self.blocksize / self.samplerate / 2)

    def __repr__(self) -> str:
        return (
            f"SpeakerSink(device={self.device.index} {self.device.name!r}, {self.samplerate} Hz, "
            f"{self.channels} ch, {self.dtype}, block {self.blocksize}, fade {self.fade.frames})"
        )
