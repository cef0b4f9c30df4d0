"""Per-response behaviour plans for the Realtime simulator.

A :class:`ResponsePlan` says how one response is streamed and how it misbehaves.
The simulator consumes one plan per ``response.create`` from a queue the test
fills, and falls back to a default plan when the queue is empty.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

from integrations.openai_realtime.simulator.audio_marker import SAMPLE_RATE, AudioMode

__all__ = ["DropMode", "ResponsePlan"]

#: How a connection is dropped: ``"abort"`` kills the TCP connection with no close
#: frame (a network failure); ``"close"`` sends a websocket close frame (code 1011).
DropMode = Literal["abort", "close"]


@dataclass(frozen=True)
class ResponsePlan:
    """How the simulator streams (and misbehaves during) one response.

    Attributes:
        chunks: Number of ``response.output_audio.delta`` events in the normal stream.
        chunk_ms: Duration of each delta, in milliseconds (24 kHz mono PCM16).
        pace: Speed relative to real time (1.0 = one chunk per ``chunk_ms``; 4.0 = four
            times faster). ``None`` streams as fast as the socket allows.
        created_delay_s: Delay between receiving ``response.create`` and sending
            ``response.created``. The livekit client gives up after 10 s.
        first_audio_delay_s: Delay between ``response.created`` and the first delta.
        ignore_cancel: Ignore ``response.cancel``: keep streaming every chunk and end
            with status ``completed``.
        deltas_after_done: Audio deltas (same response and item ids) sent after
            ``response.done``, paced like the rest.
        drop_after_chunks: Drop the websocket after this many deltas of this response
            (0 = right after ``response.created``); ``None`` never drops.
        drop_mode: How the connection is dropped (see :data:`DropMode`).
        audio: ``"marker"`` (decodable, see ``audio_marker``) or ``"tone"`` (audible).
        transcript: Transcript streamed as ``response.output_audio_transcript.delta``
            events, spread over the chunks; ``None`` uses ``"response <number>"``.
    """

    chunks: int = 10
    chunk_ms: int = 20
    pace: float | None = 1.0
    created_delay_s: float = 0.0
    first_audio_delay_s: float = 0.0
    ignore_cancel: bool = False
    deltas_after_done: int = 0
    drop_after_chunks: int | None = None
    drop_mode: DropMode = "abort"
    audio: AudioMode = "marker"
    transcript: str | None = field(default=None)

    def __post_init__(self) -> None:
        """Validate the plan.

        Raises:
            ValueError: If a count, duration or delay is out of range.
        """
        if self.chunks < 0:
            raise ValueError("chunks must be >= 0")
        if self.chunk_ms <= 0:
            raise ValueError("chunk_ms must be > 0")
        if self.pace is not None and not (self.pace > 0 and math.isfinite(self.pace)):
            raise ValueError("pace must be a positive finite number or None")
        if self.created_delay_s < 0 or self.first_audio_delay_s < 0:
            raise ValueError("delays must be >= 0")
        if self.deltas_after_done < 0:
            raise ValueError("deltas_after_done must be >= 0")
        if self.drop_after_chunks is not None and self.drop_after_chunks < 0:
            raise ValueError("drop_after_chunks must be >= 0 or None")
        if self.drop_mode not in ("abort", "close"):
            raise ValueError(f"unknown drop_mode {self.drop_mode!r}")
        if self.audio not in ("marker", "tone"):
            raise ValueError(f"unknown audio mode {self.audio!r}")

    @classmethod
    def for_duration(cls, seconds: float, *, chunk_ms: int = 20, **kwargs: object) -> ResponsePlan:
        """Build a plan whose normal stream lasts about ``seconds`` of audio.

        Args:
            seconds: Audio duration.
            chunk_ms: Chunk duration in milliseconds.
            **kwargs: Any other :class:`ResponsePlan` field.

        Returns:
            The plan, with ``chunks`` rounded up to whole chunks.

        Raises:
            ValueError: If ``seconds`` is negative.
        """
        if seconds < 0:
            raise ValueError("seconds must be >= 0")
        chunks = math.ceil(round(seconds * 1000.0 / chunk_ms, 6))
        return cls(chunks=chunks, chunk_ms=chunk_ms, **kwargs)  # type: ignore[arg-type]

    @property
    def samples_per_chunk(self) -> int:
        """Samples in one delta at 24 kHz."""
        return SAMPLE_RATE * self.chunk_ms // 1000

    @property
    def chunk_interval_s(self) -> float:
        """Wall-clock time between deltas (0 when unpaced)."""
        if self.pace is None:
            return 0.0
        return self.chunk_ms / 1000.0 / self.pace
