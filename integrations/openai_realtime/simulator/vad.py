"""Server VAD of one simulated connection: speech in the input audio starts and ends user turns.

With ``session.audio.input.turn_detection.type`` ``"server_vad"`` (or
``"semantic_vad"``), the real service watches the input audio buffer. When speech
starts it sends ``input_audio_buffer.speech_started`` (``audio_start_ms``: where in
all the audio appended this session, minus ``prefix_padding_ms``; ``item_id``: the
user item to come) and, with ``interrupt_response``, cancels the default
conversation's response in progress (``response.done`` status ``cancelled``,
reason ``turn_detected``). After ``silence_duration_ms`` of silence it sends
``input_audio_buffer.speech_stopped`` (``audio_end_ms``, same ``item_id``), commits
the buffer (``input_audio_buffer.committed``, ``conversation.item.added`` /
``done`` of the user item) and, with ``create_response``, starts a response of its
own (no ``response.create``, no metadata) unless one is still active.

What counts as speech here: an ``input_audio_buffer.append`` chunk (PCM16) whose
RMS is at least ``threshold * 2000`` (the session's VAD threshold, 0.5 -> 1000,
about -30 dBFS); anything quieter is silence. Tests can also say "the user
speaks now" without audio: :meth:`ServerVad.start_speech` / :meth:`stop_speech`.
"""

from __future__ import annotations

import logging
from typing import Any, Protocol

import numpy as np

from integrations.openai_realtime.simulator.audio_marker import SAMPLE_RATE
from integrations.openai_realtime.simulator.protocol import new_id

__all__ = ["SPEECH_RMS_PER_THRESHOLD", "ServerVad", "VadHost"]

logger = logging.getLogger(__name__)

#: A chunk is speech when its RMS (int16 units) is at least the threshold times this.
SPEECH_RMS_PER_THRESHOLD = 2000.0

_VAD_TYPES = ("server_vad", "semantic_vad")


class VadHost(Protocol):
    """What the VAD needs from its connection."""

    @property
    def session(self) -> dict[str, Any]:
        """The session object."""
        ...

    async def send(self, event: dict[str, Any]) -> None:
        """Send one server event."""
        ...

    async def commit_input(self, item_id: str) -> None:
        """Commit the input buffer as the user item ``item_id``."""
        ...

    def interrupt_default_response(self) -> bool:
        """Cancel the default conversation's response in progress (reason ``turn_detected``)."""
        ...

    def respond_to_turn(self) -> bool:
        """Start a server-initiated response, unless one is active; whether it started."""
        ...


class ServerVad:
    """The VAD state of one connection.

    Args:
        host: The connection.

    Attributes:
        input_ms: Milliseconds of input audio appended this session (the VAD's clock).
        speaking: Whether speech is in progress.
        item_id: The user item the current speech will become.
        turns: User turns detected so far (speech stopped and committed).
    """

    def __init__(self, host: VadHost) -> None:
        self.host = host
        self.input_ms = 0.0
        self.speaking = False
        self.item_id: str | None = None
        self.turns = 0
        self._silence_ms = 0.0

    def settings(self) -> dict[str, Any] | None:
        """The session's turn detection, if it is a server-side VAD.

        Returns:
            The ``turn_detection`` object, or ``None`` when turn detection is off.
        """
        audio = self.host.session.get("audio")
        inp = audio.get("input") if isinstance(audio, dict) else None
        td = inp.get("turn_detection") if isinstance(inp, dict) else None
        if isinstance(td, dict) and td.get("type") in _VAD_TYPES:
            return td
        return None

    async def on_audio(self, pcm: bytes) -> None:
        """Feed one appended chunk (PCM16, 24 kHz mono) to the VAD.

        Args:
            pcm: The decoded chunk.
        """
        ms = len(pcm) / 2 * 1000 / SAMPLE_RATE
        settings = self.settings()
        if settings is None:
            self.input_ms += ms
            return
        samples = np.frombuffer(pcm[: len(pcm) // 2 * 2], dtype=np.int16)
        rms = float(np.sqrt(np.mean(samples.astype(np.float64) ** 2))) if samples.size else 0.0
        threshold = _number(settings.get("threshold"), 0.5)
        if rms >= threshold * SPEECH_RMS_PER_THRESHOLD:
            self._silence_ms = 0.0
            if not self.speaking:
                await self.start_speech()
            self.input_ms += ms
            return
        self.input_ms += ms
        if self.speaking:
            self._silence_ms += ms
            if self._silence_ms >= _number(settings.get("silence_duration_ms"), 500):
                await self.stop_speech()

    async def start_speech(self) -> str:
        """Speech starts now: ``speech_started``, and the playing reply is interrupted.

        Returns:
            The id of the user item the speech will become.
        """
        settings = self.settings() or {}
        if self.speaking and self.item_id is not None:
            return self.item_id
        self.speaking = True
        self._silence_ms = 0.0
        self.item_id = new_id("item")
        padding = _number(settings.get("prefix_padding_ms"), 300)
        await self.host.send(
            {
                "type": "input_audio_buffer.speech_started",
                "audio_start_ms": int(max(0.0, self.input_ms - padding)),
                "item_id": self.item_id,
            }
        )
        if settings.get("interrupt_response", True) is not False:
            self.host.interrupt_default_response()
        return self.item_id

    async def stop_speech(self) -> str | None:
        """Speech stopped: ``speech_stopped``, the user item, and a reply of the server's own.

        Returns:
            The user item's id, or ``None`` if no speech was in progress.
        """
        if not self.speaking or self.item_id is None:
            return None
        settings = self.settings() or {}
        item_id, self.item_id = self.item_id, None
        self.speaking = False
        self._silence_ms = 0.0
        await self.host.send(
            {
                "type": "input_audio_buffer.speech_stopped",
                "audio_end_ms": int(self.input_ms),
                "item_id": item_id,
            }
        )
        await self.host.commit_input(item_id)
        self.turns += 1
        if settings.get("create_response", True) is not False and not self.host.respond_to_turn():
            logger.info("server VAD: a response is still active; no reply to turn %s", item_id)
        return item_id

    def reset(self) -> None:
        """Forget speech in progress (the client committed or cleared the buffer)."""
        self.speaking = False
        self.item_id = None
        self._silence_ms = 0.0


def _number(value: object, default: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return default
    return float(value)
