"""The no-device fallback: the same gated sink, writing what would have played to a WAV file."""

from __future__ import annotations

import asyncio
import threading
import time
import wave
from pathlib import Path
from typing import Any, Unpack

import numpy as np

from gate import PlaybackGate, StateError
from integrations.speakers._base_sink import BaseSink, SinkOptions

__all__ = ["WavSink"]


class WavSink(BaseSink):
    """Writes gated audio to a 16-bit WAV file, block by block, like a device would play it.

    Paced, a thread pulls one block per block period on the monotonic clock,
    so purges land mid-playback as they would on a speaker. Unpaced, nothing
    plays until :meth:`advance` (or :meth:`drain`) pulls blocks, and the
    stream clock is virtual: frames written divided by the rate.

    The constructor mirrors :class:`SpeakerSink`: ``WavSink(gate, path=...)``
    for ``SpeakerSink(gate, device=...)``.

    Args:
        gate: The gate; this sink registers itself as a purge sink.
        path: The WAV file to write (overwritten).
        samplerate: Rate of the file, in Hz.
        blocksize: Frames per pull; ``None`` for 10 ms.
        paced: Pull in real time on a thread (``True``) or on demand.
        **options: The options every sink takes (channels, fade, buffer size,
            resampler quality, registration): see :class:`SinkOptions`.

    Raises:
        InvalidTypeError: If ``gate`` is not a :class:`gate.PlaybackGate` or ``None``.
        ConfigurationError: If a setting is out of range.
        OSError: If the file cannot be created.
    """

    def __init__(
        self,
        gate: PlaybackGate | None = None,
        *,
        path: str | Path,
        samplerate: int = 48_000,
        blocksize: int | None = None,
        paced: bool = True,
        **options: Unpack[SinkOptions],
    ) -> None:
        super().__init__(gate, samplerate=samplerate, dtype="int16", **options)
        channels = self.channels
        self.path = Path(path)
        self.paced = paced
        self.blocksize = int(blocksize if blocksize is not None else samplerate // 100)
        self._block = np.zeros((self.blocksize, channels), np.int16)
        self._wav: Any = wave.open(str(self.path), "wb")  # noqa: SIM115 - closed by close()
        self._wav.setnchannels(channels)
        self._wav.setsampwidth(2)
        self._wav.setframerate(samplerate)
        self._file_lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._running = threading.Event()
        self._t0 = 0.0  # monotonic time of frame 0 (paced)
        self._closed = False

    def advance(self, frames: int) -> None:
        """Play ``frames`` frames (rounded up to whole blocks) now. Unpaced use.

        Args:
            frames: Frames to write.

        Raises:
            StateError: If the sink is paced and running, or closed.
        """
        if self._closed or (self.paced and self._running.is_set()):
            raise StateError("advance() is for an unpaced, open WavSink")
        for _ in range(-(-frames // self.blocksize)):
            self._play_block(self._buffer.frames_out / self.samplerate)

    @property
    def frames_written(self) -> int:
        """Frames written to the file so far."""
        return self._buffer.frames_out

    # ---- lifecycle ----------------------------------------------------------------------

    def start(self) -> None:
        """Start playing (paced: start the pacing thread)."""
        if self._closed:
            raise StateError("WavSink is closed")
        if self._running.is_set():
            return
        self._running.set()
        if self.paced:
            self._t0 = time.monotonic() - self._buffer.frames_out / self.samplerate
            self._thread = threading.Thread(target=self._run, name="wav-sink", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        """Stop playing; queued audio stays queued."""
        self._running.clear()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        self._pulled.notify()  # a waiting awrite sees the stop now

    def abort(self) -> None:
        """Stop and drop everything queued."""
        self.stop()
        self._buffer.reset()

    def close(self) -> None:
        """Stop, drop what is queued, finish the file, unregister from the gate. Idempotent."""
        if self._closed:
            return
        self.abort()
        self._closed = True
        with self._file_lock:
            self._wav.close()
        super().close()

    @property
    def active(self) -> bool:
        """Whether blocks are being pulled."""
        return self._running.is_set()

    async def _wait_block(self) -> None:
        if self.paced:
            await asyncio.sleep(self.blocksize / self.samplerate / 2)
        else:
            self.advance(self.blocksize)

    async def _wait_pull(self) -> None:
        if self.paced:
            await super()._wait_pull()
        else:  # unpaced, waiting is playing: the virtual clock moves one block
            self.advance(self.blocksize)
            await asyncio.sleep(0)

    def _now(self) -> float | None:
        if not self.paced:
            return self._buffer.frames_out / self.samplerate
        return time.monotonic() if self._running.is_set() else None

    def __repr__(self) -> str:
        pace = "paced" if self.paced else "unpaced"
        return (
            f"WavSink({str(self.path)!r}, {self.samplerate} Hz, {self.channels} ch, {pace}, "
            f"block {self.blocksize}, fade {self.fade.frames})"
        )

    # ---- the pulling side -----------------------------------------------------------------

    def _run(self) -> None:
        period = self.blocksize / self.samplerate
        while self._running.is_set():
            due = self._t0 + self._buffer.frames_out / self.samplerate
            delay = due - time.monotonic()
            if delay > 0:
                time.sleep(min(delay, period))
                continue
            self._play_block(due)

    def _play_block(self, when: float) -> None:
        self._pull(self._block, when)
        with self._file_lock:
            if not self._closed:
                self._wav.writeframes(self._block.tobytes())
