"""Which generation a LiveKit audio frame belongs to.

LiveKit Agents 1.8.9 realtime frames carry no response id, so frames are tagged
on their way out of the model, through public objects only:

- ``rtc.AudioFrame.userdata[GENERATION_KEY]`` holds the generation id. The
  userdata dict never reaches the FFI, but it is lost when a frame is rebuilt
  (``rtc.AudioResampler``, re-chunking), so it is set as early as possible.
- A context variable, set while the tagged stream yields a frame, covers frames
  rebuilt further down the same task (the agent's forwarding task resamples
  and captures in the task that pulls from the stream).
"""

from __future__ import annotations

import contextvars
from collections.abc import AsyncGenerator, AsyncIterable, AsyncIterator
from dataclasses import replace

from livekit import rtc
from livekit.agents import llm

__all__ = [
    "GENERATION_KEY",
    "TaggedMessages",
    "current_generation",
    "generation_of",
    "tag_audio",
    "tag_frame",
    "tag_generation_event",
]

GENERATION_KEY = "playback_gate.generation_id"
"""The ``rtc.AudioFrame.userdata`` key holding the frame's generation id."""

_current: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "playback_gate_generation", default=None
)


def tag_frame(frame: rtc.AudioFrame, generation_id: str) -> rtc.AudioFrame:
    """Tag a frame with its generation, in place.

    Args:
        frame: The frame.
        generation_id: Its generation (e.g. an OpenAI ``response.id``).

    Returns:
        The same frame.
    """
    frame.userdata[GENERATION_KEY] = generation_id
    return frame


def generation_of(frame: rtc.AudioFrame) -> str | None:
    """Return the frame's generation: its tag, else the task's current generation.

    Never raises.

    Args:
        frame: The frame.

    Returns:
        The generation id, or ``None`` for untagged audio.
    """
    try:
        tagged = frame.userdata.get(GENERATION_KEY)
    except Exception:
        tagged = None
    if isinstance(tagged, str) and tagged:
        return tagged
    return _current.get()


def current_generation() -> str | None:
    """Return the generation whose frame this task pulled last, or ``None``."""
    return _current.get()


async def tag_audio(
    frames: AsyncIterable[rtc.AudioFrame], generation_id: str
) -> AsyncIterator[rtc.AudioFrame]:
    """Yield ``frames`` tagged with ``generation_id``.

    While a frame is being handed out, the puller's context also names the
    generation, so frames it rebuilds (e.g. resampled) are still attributed.

    Args:
        frames: The model's audio frames.
        generation_id: Their generation.

    Yields:
        The same frames, tagged.
    """
    async for frame in frames:
        # async generators run in the puller's context: this set is the puller's
        _current.set(generation_id)
        yield tag_frame(frame, generation_id)


def tag_generation_event(event: llm.GenerationCreatedEvent) -> bool:
    """Make every audio frame of a realtime generation carry its ``response_id``.

    Call it from a ``generation_created`` listener; the agent reads
    ``message_stream`` only after the listeners ran, so it reads the tagged one.
    Tagging an event twice is a no-op.

    Args:
        event: The event, changed in place.

    Returns:
        ``True`` if the event was tagged now, ``False`` if it has no
        ``response_id`` or was already tagged.
    """
    generation_id = event.response_id
    if not generation_id or isinstance(event.message_stream, TaggedMessages):
        return False
    event.message_stream = TaggedMessages(event.message_stream, generation_id)
    return True


class TaggedMessages:
    """``message_stream`` with each message's audio tagged; marks an event as tagged.

    It also keeps the id of every message it hands out, and once its consumer is done
    with it, :meth:`all_message_ids` reads the messages nobody pulled (a speech
    interrupted before playout stops reading at once).

    Attributes:
        generation_id: The generation.
        message_ids: The id of every message handed out or read so far, in order.
    """

    __slots__ = ("_iterator", "_source", "generation_id", "message_ids")

    def __init__(self, messages: AsyncIterable[llm.MessageGeneration], generation_id: str) -> None:
        self.generation_id = generation_id
        self.message_ids: list[str] = []
        # one iterator for the consumer and for all_message_ids: the rest is read where
        # the consumer stopped, whatever kind of iterable the model gave
        self._source = aiter(messages)
        self._iterator = self._tag()

    def __aiter__(self) -> AsyncIterator[llm.MessageGeneration]:
        return self._iterator

    async def _tag(self) -> AsyncGenerator[llm.MessageGeneration, None]:
        async for message in self._source:
            self.message_ids.append(message.message_id)
            yield replace(message, audio_stream=tag_audio(message.audio_stream, self.generation_id))

    async def all_message_ids(self) -> list[str]:
        """Close the consumer's side, read the messages it left, and return every id.

        Call it only once the consumer is done with the stream (its messages are taken
        from the model's stream here, unread). It returns when the model ends the
        stream, so bound the wait.

        Returns:
            :attr:`message_ids`, completed.
        """
        await self._iterator.aclose()
        async for message in self._source:
            self.message_ids.append(message.message_id)
        return list(self.message_ids)
