"""History honesty for realtime sessions no tap edits: unheard killed replies leave the history.

The OpenAI tap edits the server's history itself (see :mod:`integrations.livekit._history`).
A realtime model without one (a model without request ids, or ``openai_tap=False``) gets
the same rule through LiveKit's public, model-agnostic API: when the gate kills a reply
and none of it played, its messages are removed with
``RealtimeSession.update_chat_ctx(history_without_them)``; each plugin maps that to its
own protocol (the OpenAI plugin to ``conversation.item.delete``).

When: once LiveKit is done with the reply, by :class:`HistoryBridge`'s settle rule (its
speech ended and ``SETTLE_S`` more passed), or at once if no speech ever owned it. By
then any edit LiveKit made of its own (a truncate or a delete after an interrupted
playout) has removed the message or been left alone: a message no longer in the
session's history is not touched, a reply part of which played is LiveKit's to truncate,
and no message is edited twice.

Which messages: the ids come from the generation's tagged ``message_stream``
(:class:`~integrations.livekit._tagging.TaggedMessages`), completed with the messages
LiveKit never pulled (a speech interrupted before playout stops reading at once), so
the edit waits for the model to end that stream.

``update_chat_ctx`` takes the whole history wanted. The current history minus the
unheard messages is built and handed over in one step, with no await in between, so
nothing added meanwhile is dropped; another ``update_chat_ctx`` still in flight at that
moment (the plugin queues ours behind it) is the one case this cannot see.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from livekit.agents import llm
from livekit.agents.voice.speech_handle import SpeechHandle

from gate import PlaybackGate
from integrations.livekit._tagging import TaggedMessages

__all__ = ["READ_REST_S", "ChatCtxPruner", "EditableHistory"]

logger = logging.getLogger("playback_gate.livekit")

#: Seconds to wait at most for the model to end a killed reply's message stream.
READ_REST_S = 30.0

_MAX_REPLIES = 256
_MAX_EDITED = 1024


class EditableHistory(Protocol):
    """What the pruner uses of an ``llm.RealtimeSession``."""

    @property
    def chat_ctx(self) -> llm.ChatContext:
        """The session's history as the model holds it."""
        ...

    async def update_chat_ctx(self, chat_ctx: llm.ChatContext) -> None:
        """Make the model's history ``chat_ctx``."""
        ...


@dataclass(eq=False)
class ChatCtxPruner:
    """Removes killed replies nobody heard from one realtime session's history.

    Args:
        rt: The realtime session (its model must allow ``update_chat_ctx``).
        gate: The gate (which replies it killed, and what of them passed).
        owner: The speech that plays a reply, if any (``GatedAudioOutput.owner``).
    """

    rt: EditableHistory
    gate: PlaybackGate
    owner: Callable[[str], SpeechHandle | None]
    _replies: dict[str, TaggedMessages] = field(default_factory=dict)
    _edited: dict[str, None] = field(default_factory=dict)  # message ids, insertion-ordered
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)
    _closed: bool = False

    @staticmethod
    def applies_to(rt: llm.RealtimeSession[Any]) -> bool:
        """Whether ``rt``'s model lets its history be edited mid-session.

        Args:
            rt: A realtime session.

        Returns:
            Its ``capabilities.mutable_chat_context`` (``False`` if unreadable).
        """
        try:
            return bool(rt.realtime_model.capabilities.mutable_chat_context)
        except Exception:
            return False

    def on_generation_created(self, ev: llm.GenerationCreatedEvent) -> None:
        """Keep the reply's messages; a reply no speech owns is settled now.

        Register it after the installation's own listener (which tags the event and
        records the owner). Never raises.

        Args:
            ev: The event.
        """
        try:
            messages = ev.message_stream
            if self._closed or not ev.response_id or not isinstance(messages, TaggedMessages):
                return
            self._replies[ev.response_id] = messages
            while len(self._replies) > _MAX_REPLIES:
                del self._replies[next(iter(self._replies))]
            if self.owner(ev.response_id) is None:
                self.settled(ev.response_id)  # no speech: LiveKit will neither play nor edit it
        except Exception:
            logger.exception("playback-gate history pruner failed on generation_created")

    def settled(self, response_id: str) -> None:
        """LiveKit is done with this reply: remove its messages if it was killed unheard.

        Never raises; replies of other sessions are ignored.

        Args:
            response_id: The reply.
        """
        messages = self._replies.pop(response_id, None)
        if messages is None or self._closed or not self._killed_unheard(response_id):
            return
        try:
            task = asyncio.get_running_loop().create_task(
                self._prune(response_id, messages), name=f"playback-gate prune {response_id}"
            )
        except Exception:
            logger.exception("playback-gate could not start the history edit of %s", response_id)
            return
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def close(self) -> None:
        """Stop: cancel every edit in progress and forget every reply. Idempotent."""
        self._closed = True
        for task in self._tasks:
            task.cancel()
        self._tasks.clear()
        self._replies.clear()

    def _killed_unheard(self, response_id: str) -> bool:
        if not self.gate.is_flagged(response_id):
            return False  # live, or ended unflagged: not the gate's to edit
        info = self.gate.generation(response_id)
        # part of it played: LiveKit's interrupt path truncates it; unknown: leave it
        return info is not None and info.passed.samples == 0

    async def _prune(self, response_id: str, messages: TaggedMessages) -> None:
        try:
            ids = await asyncio.wait_for(messages.all_message_ids(), READ_REST_S)
        except TimeoutError:
            logger.warning(
                "playback-gate: %s's messages did not end within %g s; its history is left",
                response_id,
                READ_REST_S,
            )
            return
        except Exception:
            logger.exception("playback-gate could not read %s's messages", response_id)
            return
        history = self.rt.chat_ctx
        # gone already (LiveKit deleted it) or edited by us before: never a second edit
        unheard = {i for i in ids if i not in self._edited and history.get_by_id(i) is not None}
        if not unheard:
            return
        for message_id in unheard:
            self._edited[message_id] = None
        while len(self._edited) > _MAX_EDITED:
            del self._edited[next(iter(self._edited))]
        wanted = llm.ChatContext([item for item in history.items if item.id not in unheard])
        try:
            await self.rt.update_chat_ctx(wanted)  # built and handed over in one step
        except Exception as exc:  # llm.RealtimeError on a timeout, or the plugin's own
            logger.warning(
                "playback-gate could not remove %s's unheard messages %s from the history: %s",
                response_id,
                sorted(unheard),
                exc,
            )
        else:
            logger.debug("playback-gate removed %s's unheard messages %s", response_id, unheard)
