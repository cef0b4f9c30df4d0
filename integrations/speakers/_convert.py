"""Convert a generation's frames to the device format: channels, sample rate, dtype.

Resampling uses LiveKit's ``rtc.AudioResampler`` (libsoxr behind the LiveKit
FFI), a maintained, band-limited resampler; it is stateful, so each generation
gets its own converter and its tail is flushed when the generation ends.
Conversion runs on the writer's thread when audio is queued, never in the
audio callback.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from gate import ConfigurationError, Frame, FrameFormatError

if TYPE_CHECKING:
    from livekit import rtc

__all__ = ["FormatConverter", "frame_samples", "mix_channels", "to_dtype"]

Array = npt.NDArray[Any]


def frame_samples(frame: Frame) -> Array:
    """Return a frame's samples as a ``(frames, channels)`` array, without copying.

    Args:
        frame: A :class:`gate.PcmFrame`, an ``rtc.AudioFrame``, or anything with
            ``data`` (a NumPy array, or a buffer of interleaved int16) and the
            :class:`gate.Frame` fields.

    Returns:
        The samples, ``int16`` or ``float32``.

    Raises:
        FrameFormatError: If the frame has no usable samples or they disagree
            with its declared size.
    """
    try:
        data = frame.data  # type: ignore[attr-defined]
        channels = int(frame.num_channels)
        count = int(frame.samples_per_channel)
    except AttributeError as e:
        raise FrameFormatError(
            f"{type(frame).__name__} has no samples: need .data, .num_channels and "
            f".samples_per_channel ({e})"
        ) from e
    arr = data if isinstance(data, np.ndarray) else np.frombuffer(data, dtype=np.int16)
    if arr.dtype.name not in ("int16", "float32"):
        raise FrameFormatError(f"samples must be int16 or float32, got {arr.dtype.name}")
    if channels < 1 or arr.size != count * channels:
        raise FrameFormatError(f"frame declares {count} x {channels} samples but holds {arr.size}")
    return arr.reshape(count, channels)


def mix_channels(x: Array, channels: int) -> Array:
    """Up- or down-mix ``(frames, c)`` samples to ``channels``, keeping the dtype.

    Mono is copied to every output channel; any layout to mono is the mean of
    its channels; otherwise the first channels map straight across and extra
    output channels are silent.

    Args:
        x: ``(frames, c)`` samples.
        channels: Output channel count.

    Returns:
        ``(frames, channels)`` samples (``x`` itself when ``c == channels``).
    """
    c = x.shape[1]
    if c == channels:
        return x
    if c == 1:
        return np.repeat(x, channels, axis=1)
    if channels == 1:
        mean: Array = x.mean(axis=1, keepdims=True, dtype=np.float64)
        return np.rint(mean).astype(x.dtype) if x.dtype == np.int16 else mean.astype(x.dtype)
    out = np.zeros((x.shape[0], channels), x.dtype)
    k = min(c, channels)
    out[:, :k] = x[:, :k]
    return out


def to_dtype(x: Array, dtype: np.dtype[Any]) -> Array:
    """Convert int16 / float32 samples to ``dtype`` (full scale is 32768 / 1.0).

    Args:
        x: Samples.
        dtype: ``int16`` or ``float32``.

    Returns:
        The samples (``x`` itself when already ``dtype``).
    """
    if x.dtype == dtype:
        return x
    if dtype == np.int16:
        return np.rint(np.clip(x, -1.0, 1.0) * 32767.0).astype(np.int16)
    return (x.astype(np.float32) / np.float32(32768.0)).astype(dtype)


class FormatConverter:
    """Converts one stream of frames to the device's rate, channels and dtype.

    Args:
        src_rate: The frames' sample rate.
        dst_rate: The device's sample rate.
        channels: The device's channel count.
        dtype: The device's sample type, ``"int16"`` or ``"float32"``.
        src_channels: The frames' channel count (the resampler runs on the
            smaller of the two, so an up-mix copies identical channels).
        quality: Resampler quality, an ``rtc.AudioResamplerQuality`` value name.

    Raises:
        ConfigurationError: If resampling is needed and LiveKit is not installed.
    """

    def __init__(
        self,
        src_rate: int,
        dst_rate: int,
        channels: int,
        dtype: str,
        src_channels: int = 1,
        quality: str = "medium",
    ) -> None:
        self.src_rate = src_rate
        self.src_channels = src_channels
        self._work_channels = min(src_channels, channels)
        self.dst_rate = dst_rate
        self.channels = channels
        self.dtype = np.dtype(dtype)
        self._resampler: rtc.AudioResampler | None = None
        if src_rate != dst_rate:
            try:
                from livekit import rtc
            except ImportError as e:
                raise ConfigurationError(
                    f"resampling {src_rate} Hz to {dst_rate} Hz needs LiveKit's resampler: "
                    f"pip install 'playback-gate[livekit]', or open the device at {src_rate} Hz"
                ) from e
            self._resampler = rtc.AudioResampler(
                src_rate,
                dst_rate,
                num_channels=self._work_channels,
                quality=rtc.AudioResamplerQuality(quality),
            )

    @property
    def resampling(self) -> bool:
        """Whether the rates differ (output is then not bit-exact)."""
        return self._resampler is not None

    def convert(self, samples: Array) -> Array:
        """Convert a block of ``(frames, c)`` samples at ``src_rate``.

        A resampler holds back a few milliseconds; :meth:`flush` returns them.

        Args:
            samples: ``int16`` or ``float32`` samples.

        Returns:
            ``(frames', channels)`` samples of the device dtype (may be empty).
        """
        if self._resampler is None:
            return to_dtype(mix_channels(samples, self.channels), self.dtype)
        pcm = to_dtype(mix_channels(samples, self._work_channels), np.dtype(np.int16))
        x = self._collect(self._resampler.push(bytearray(pcm.tobytes())))
        return to_dtype(mix_channels(x, self.channels), self.dtype)

    def flush(self) -> Array:
        """Return what the resampler still holds; call once, when the stream ends, then drop
        the converter.

        Returns:
            ``(frames, channels)`` samples of the device dtype (empty without resampling).
        """
        if self._resampler is None:
            return np.zeros((0, self.channels), self.dtype)
        x = self._collect(self._resampler.flush())
        return to_dtype(mix_channels(x, self.channels), self.dtype)

    def _collect(self, frames: list[rtc.AudioFrame]) -> Array:
        c = self._work_channels
        parts = [np.frombuffer(f.data, np.int16).reshape(-1, c) for f in frames]
        if not parts:
            return np.zeros((0, c), np.int16)
        return parts[0] if len(parts) == 1 else np.concatenate(parts)
