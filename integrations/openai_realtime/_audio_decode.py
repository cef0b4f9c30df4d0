"""Decode Realtime output audio deltas (base64) into frames.

The output format comes from the session: GA ``session.audio.output.format``
(``{"type": "audio/pcm", "rate": 24000}``, ``{"type": "audio/pcmu"}``,
``{"type": "audio/pcma"}``) or beta ``session.output_audio_format``
(``"pcm16"``, ``"g711_ulaw"``, ``"g711_alaw"``). PCM16 is little-endian mono;
G.711 is 8 kHz mono and is expanded to int16 with 256-entry NumPy tables.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from gate import PcmFrame
from integrations.openai_realtime._events import MalformedEventError

__all__ = [
    "DEFAULT_OUTPUT_FORMAT",
    "Encoding",
    "OutputAudioFormat",
    "decode_delta",
    "output_format_from_session",
]

Encoding = Literal["pcm16", "g711_ulaw", "g711_alaw"]

_PCM16 = np.dtype("<i2")


@dataclass(frozen=True, slots=True)
class OutputAudioFormat:
    """How the server encodes output audio deltas.

    Attributes:
        encoding: ``"pcm16"``, ``"g711_ulaw"`` or ``"g711_alaw"``.
        sample_rate: Samples per second (mono).
    """

    encoding: Encoding = "pcm16"
    sample_rate: int = 24_000

    @property
    def bytes_per_sample(self) -> int:
        """2 for PCM16, 1 for G.711."""
        return 2 if self.encoding == "pcm16" else 1


DEFAULT_OUTPUT_FORMAT = OutputAudioFormat()
"""The Realtime API's default: PCM16 mono at 24 kHz."""

_GA_TYPES: dict[str, Encoding] = {
    "audio/pcm": "pcm16",
    "audio/pcmu": "g711_ulaw",
    "audio/pcma": "g711_alaw",
}
_BETA_NAMES: dict[str, Encoding] = {
    "pcm16": "pcm16",
    "g711_ulaw": "g711_ulaw",
    "g711_alaw": "g711_alaw",
}


def output_format_from_session(session: Mapping[str, Any]) -> OutputAudioFormat | None:
    """Read the output audio format from a ``session`` object, GA or beta shape.

    Args:
        session: The ``session`` of a ``session.created`` / ``session.updated`` event.

    Returns:
        The format, or ``None`` if the session does not say.

    Raises:
        MalformedEventError: If the format is given but not one the tap can decode.
    """
    audio = session.get("audio")
    output = audio.get("output") if isinstance(audio, Mapping) else None
    fmt = output.get("format") if isinstance(output, Mapping) else None
    if fmt is not None:
        if not isinstance(fmt, Mapping) or fmt.get("type") not in _GA_TYPES:
            raise MalformedEventError(f"unsupported session.audio.output.format {fmt!r}")
        encoding = _GA_TYPES[fmt["type"]]
        if encoding != "pcm16":
            return OutputAudioFormat(encoding, 8_000)
        rate = fmt.get("rate", 24_000)
        if isinstance(rate, bool) or not isinstance(rate, int) or not 1_000 <= rate <= 384_000:
            raise MalformedEventError(f"unsupported output audio rate {rate!r}")
        return OutputAudioFormat("pcm16", rate)
    beta = session.get("output_audio_format")
    if beta is None:
        return None
    if beta not in _BETA_NAMES:
        raise MalformedEventError(f"unsupported output_audio_format {beta!r}")
    encoding = _BETA_NAMES[beta]
    return OutputAudioFormat(encoding, 24_000 if encoding == "pcm16" else 8_000)


def _ulaw_table() -> npt.NDArray[np.int16]:
    u = ~np.arange(256, dtype=np.int32) & 0xFF
    exponent = (u >> 4) & 0x07
    magnitude = (((u & 0x0F) << 3) + 0x84) << exponent
    magnitude -= 0x84
    return np.where(u & 0x80, -magnitude, magnitude).astype(np.int16)


def _alaw_table() -> npt.NDArray[np.int16]:
    a = np.arange(256, dtype=np.int32) ^ 0x55
    exponent = (a >> 4) & 0x07
    mantissa = a & 0x0F
    magnitude = np.where(
        exponent == 0, (mantissa << 4) + 8, ((mantissa << 4) + 0x108) << np.maximum(exponent - 1, 0)
    )
    return np.where(a & 0x80, magnitude, -magnitude).astype(np.int16)


_TABLES: dict[str, npt.NDArray[np.int16]] = {
    "g711_ulaw": _ulaw_table(),
    "g711_alaw": _alaw_table(),
}


def decode_delta(delta: object, fmt: OutputAudioFormat, max_chars: int) -> PcmFrame:
    """Decode one base64 audio delta into a mono int16 frame.

    Args:
        delta: The event's ``delta`` field.
        fmt: The session's output format.
        max_chars: Longest base64 text accepted.

    Returns:
        A frame at ``fmt.sample_rate`` that views the decoded bytes (PCM16) or
        a fresh array (G.711).

    Raises:
        MalformedEventError: If the delta is not a string, too long, empty, not
            base64, or (PCM16) an odd number of bytes.
    """
    if not isinstance(delta, str):
        raise MalformedEventError(f"'delta' must be a base64 string, got {type(delta).__name__}")
    if len(delta) > max_chars:
        raise MalformedEventError(f"audio delta of {len(delta)} chars exceeds {max_chars}")
    try:
        raw = base64.b64decode(delta, validate=True)
    except (binascii.Error, ValueError) as e:
        raise MalformedEventError(f"audio delta is not valid base64 ({e})") from None
    if not raw:
        raise MalformedEventError("audio delta is empty")
    if fmt.encoding == "pcm16":
        if len(raw) % 2:
            raise MalformedEventError(f"PCM16 audio delta has an odd byte count ({len(raw)})")
        data = np.frombuffer(raw, dtype=_PCM16)
        if data.dtype != np.int16:  # big-endian host
            data = data.astype(np.int16)
        return PcmFrame(data, fmt.sample_rate)
    table = _TABLES[fmt.encoding]
    return PcmFrame(table[np.frombuffer(raw, dtype=np.uint8)], fmt.sample_rate)
