"""A short fade-out, so a cut generation ends without a click."""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

from gate import ConfigurationError

__all__ = ["DEFAULT_FADE_MS", "Fade"]

DEFAULT_FADE_MS = 5.0
"""Long enough to avoid an audible click, short enough to sound like a cut."""

FloatArray = npt.NDArray[np.float32]


class Fade:
    """A raised-cosine fade-out of a fixed length, precomputed.

    The gains fall strictly from just below 1 to just above 0, so a faded
    signal starts where the unfaded one left off and ends near silence: the
    largest sample-to-sample gain step is ``pi / (2 * (frames + 1))``.

    Args:
        frames: Length of the fade in frames; 0 means a hard cut.
        channels: Channels per frame (the gains are shared by all channels).

    Raises:
        ConfigurationError: If ``frames`` is negative or ``channels`` is not positive.
    """

    __slots__ = ("_gains", "_index", "_scratch", "_short", "channels", "frames")

    def __init__(self, frames: int, channels: int = 1) -> None:
        if frames < 0:
            raise ConfigurationError(f"fade length must be >= 0 frames, got {frames}")
        if channels < 1:
            raise ConfigurationError(f"channels must be >= 1, got {channels}")
        self.frames = frames
        self.channels = channels
        self._gains: FloatArray = gains(frames)[:, None]
        # Work space for apply(): the faded block before it is cast to the output dtype.
        self._scratch: FloatArray = np.zeros((max(frames, 1), channels), np.float32)
        self._index: FloatArray = np.arange(1, frames + 1, dtype=np.float32)
        self._short: FloatArray = np.zeros(frames, np.float32)

    @classmethod
    def from_ms(cls, ms: float, samplerate: int, channels: int = 1) -> Fade:
        """Build a fade of ``ms`` milliseconds at ``samplerate``.

        Args:
            ms: Length in milliseconds; 0 means a hard cut.
            samplerate: Frames per second.
            channels: Channels per frame.

        Returns:
            The fade.

        Raises:
            ConfigurationError: If ``ms`` is negative or not finite.
        """
        if not math.isfinite(ms) or ms < 0:
            raise ConfigurationError(f"fade length must be a finite number of ms >= 0, got {ms!r}")
        return cls(round(ms * samplerate / 1000.0), channels)

    def apply(self, src: npt.NDArray[np.generic], dst: npt.NDArray[np.generic]) -> None:
        """Write ``src`` faded out into ``dst``, without allocating array data.

        When ``src`` is shorter than the fade (the generation has less audio
        queued than the fade needs), the fade is squeezed into ``len(src)``
        frames so it still ends near zero.

        Args:
            src: ``(n, channels)`` frames to fade, ``n <= frames``.
            dst: ``(n, channels)`` destination, any dtype (cast, truncating).
        """
        n = src.shape[0]
        if n == 0:
            return
        scratch = self._scratch[:n]
        g = self._gains if n == self.frames else self._squeezed(n)
        np.copyto(scratch, src, casting="unsafe")  # cast first: no ufunc cast buffer
        np.multiply(scratch, g, out=scratch)
        np.copyto(dst, scratch, casting="unsafe")

    def _squeezed(self, n: int) -> FloatArray:
        # Rare (less audio queued than the fade): the same curve over n frames,
        # computed in place in preallocated space.
        g = self._short[:n]
        np.multiply(self._index[:n], np.pi / (n + 1), out=g)
        np.cos(g, out=g)
        np.multiply(g, 0.5, out=g)
        np.add(g, 0.5, out=g)
        return g[:, None]


def gains(frames: int) -> FloatArray:
    """Raised-cosine gains for a fade-out of ``frames`` frames.

    ``g[i] = (1 + cos(pi * (i + 1) / (frames + 1))) / 2``: strictly decreasing,
    strictly between 0 and 1, symmetric around one half.

    Args:
        frames: Number of gains.

    Returns:
        A float32 array of length ``frames``.
    """
    i = np.arange(1, frames + 1, dtype=np.float64)
    return (0.5 * (1.0 + np.cos(np.pi * i / (frames + 1)))).astype(np.float32)
