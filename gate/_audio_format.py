"""What a frame is, as far as the gate cares, and the stream format it must match."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from gate._errors import ConfigurationError, FrameFormatError

__all__ = ["AudioFormat", "Dtype", "Frame", "PcmFrame"]

Dtype = Literal["int16", "float32"]
_DTYPES: tuple[Dtype, ...] = ("int16", "float32")


@runtime_checkable
class Frame(Protocol):
    """A block of audio the gate can count.

    ``livekit.rtc.AudioFrame`` satisfies this protocol as it is (its dtype is
    always ``int16``). :class:`PcmFrame` wraps a NumPy array.
    """

    @property
    def sample_rate(self) -> int: ...

    @property
    def num_channels(self) -> int: ...

    @property
    def samples_per_channel(self) -> int: ...


class PcmFrame:
    """A NumPy block of PCM audio, shape ``(samples,)`` or ``(samples, channels)``.

    The array is kept by reference; nothing is copied.

    Args:
        data: The samples, ``int16`` or ``float32``.
        sample_rate: Samples per second per channel.

    Raises:
        FrameFormatError: If the array has more than two dimensions or an
            unsupported dtype, or ``sample_rate`` is not positive.
    """

    __slots__ = ("data", "dtype", "num_channels", "sample_rate", "samples_per_channel")

    def __init__(self, data: npt.NDArray[np.generic], sample_rate: int) -> None:
        if data.ndim not in (1, 2):
            raise FrameFormatError(f"PCM data must be 1-D or 2-D, got shape {data.shape}")
        if data.dtype.name not in _DTYPES:
            raise FrameFormatError(f"PCM dtype must be one of {_DTYPES}, got {data.dtype.name}")
        if sample_rate <= 0:
            raise FrameFormatError(f"sample rate must be positive, got {sample_rate}")
        self.data = data
        self.sample_rate = sample_rate
        self.samples_per_channel: int = data.shape[0]
        self.num_channels: int = 1 if data.ndim == 1 else data.shape[1]
        # A plain attribute, not a property: the gate's hot path compares it per frame.
        self.dtype: Dtype = "int16" if data.dtype.name == "int16" else "float32"
        """The sample type, ``"int16"`` or ``"float32"``."""

    def __repr__(self) -> str:
        return (
            f"PcmFrame({self.samples_per_channel} x {self.num_channels} {self.dtype} "
            f"@ {self.sample_rate} Hz)"
        )


def frame_dtype(frame: Frame) -> str:
    """Return a frame's sample type; frames without a ``dtype`` are ``int16``.

    Args:
        frame: Any :class:`Frame`.

    Returns:
        The dtype name.
    """
    return str(getattr(frame, "dtype", "int16"))


@dataclass(frozen=True, slots=True)
class AudioFormat:
    """The format every frame of a stream must have.

    Args:
        sample_rate: Samples per second per channel, e.g. 24000 for OpenAI
            Realtime PCM16 or 48000 for a LiveKit track.
        num_channels: 1 for mono, 2 for stereo.
        dtype: ``"int16"`` or ``"float32"``.

    Raises:
        ConfigurationError: If a field is out of range.
    """

    sample_rate: int
    num_channels: int = 1
    dtype: Dtype = "int16"

    def __post_init__(self) -> None:
        if not isinstance(self.sample_rate, int) or not 1_000 <= self.sample_rate <= 384_000:
            raise ConfigurationError(
                f"sample_rate must be an int in 1000..384000, got {self.sample_rate!r}"
            )
        if not isinstance(self.num_channels, int) or not 1 <= self.num_channels <= 8:
            raise ConfigurationError(
                f"num_channels must be an int in 1..8, got {self.num_channels!r}"
            )
        if self.dtype not in _DTYPES:
            raise ConfigurationError(f"dtype must be one of {_DTYPES}, got {self.dtype!r}")

    def check(self, frame: Frame) -> None:
        """Raise if ``frame`` does not match this format.

        Args:
            frame: The frame to check.

        Raises:
            FrameFormatError: Naming the first field that disagrees.
        """
        try:
            rate, channels = frame.sample_rate, frame.num_channels
            samples = frame.samples_per_channel
        except AttributeError as e:
            raise FrameFormatError(f"not an audio frame: {type(frame).__name__} ({e})") from e
        if rate != self.sample_rate:
            raise FrameFormatError(
                f"frame sample rate {rate} Hz disagrees with the stream's {self.sample_rate} Hz"
            )
        if channels != self.num_channels:
            raise FrameFormatError(
                f"frame has {channels} channel(s), the stream has {self.num_channels}"
            )
        dtype = frame_dtype(frame)
        if dtype != self.dtype:
            raise FrameFormatError(f"frame dtype {dtype} disagrees with the stream's {self.dtype}")
        if not isinstance(samples, int) or samples < 0:
            raise FrameFormatError(f"frame has an invalid sample count {samples!r}")
