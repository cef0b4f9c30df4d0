"""OpenAI conversation history under LiveKit Agents: LiveKit edits first, the gate fills gaps.

LiveKit Agents 1.8.9 already edits the server's history when a speech is
interrupted mid-playout: ``conversation.item.truncate`` at the played position (a
delete when nothing played). It edits nothing for a reply it never plays: one it
discards on a late ``response.created``, or one whose speech is interrupted before
playout starts ("TODO: remove the message from the serverside history" in
``agent_activity.py``). The tap's
:class:`~integrations.openai_realtime._history.HistoryKeeper` covers those.

Its edits go out through the session's ``send_event`` queue, like LiveKit's, and
LiveKit reports an event (``openai_client_event_queued``) only when its send task
takes it off that queue. So the keeper holds a killed reply until LiveKit is done
with it: the reply's speech has ended and :data:`SETTLE_S` more have passed, by
which time any edit LiveKit queued has been seen by the tap. A reply no speech
ever owned (LiveKit discarded it) is not held. Then what played is the audio
that passed the gate at the output: everything forwarded to a speech that was
not interrupted played out, and an interrupted one is LiveKit's to truncate.

A realtime session without a tap gets the same settle rule through a
:class:`~integrations.livekit._chat_ctx.ChatCtxPruner`, told when each reply settles.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field

from livekit.agents.voice.speech_handle import SpeechHandle

from gate import PlaybackGate
from integrations.livekit._chat_ctx import ChatCtxPruner
from integrations.livekit._gated_output import GatedAudioOutput
from integrations.openai_realtime import RealtimeTap

__all__ = ["SETTLE_S", "HistoryBridge"]

logger = logging.getLogger("playback_gate.livekit")

#: Seconds after a speech ends before the gate edits its reply's history.
SETTLE_S = 0.25

_MAX_WATCHED = 256


@dataclass(eq=False)
class HistoryBridge:
    """Holds each tap's history keeper (and tells each pruner) until LiveKit is done with a reply.

    Args:
        gate: The gate.
        output: The gated output (owners of generations, the output rate).
    """

    gate: PlaybackGate
    output: GatedAudioOutput
    _taps: list[RealtimeTap] = field(default_factory=list)
    _pruners: list[ChatCtxPruner] = field(default_factory=list)
    _final: dict[str, bool] = field(default_factory=dict)  # reply -> reported
    _timers: dict[str, asyncio.TimerHandle] = field(default_factory=dict)
    _closed: bool = False

    def attach(self, tap: RealtimeTap) -> None:
        """Hold this tap's keeper for replies LiveKit still plays.

        Args:
            tap: An OpenAI session's tap.
        """
        if tap.history is not None:
            tap.history.hold = self.hold
            self._taps.append(tap)

    def attach_pruner(self, pruner: ChatCtxPruner) -> None:
        """Tell this pruner (of a session no tap edits) when each reply settles.

        Args:
            pruner: The session's pruner.
        """
        self._pruners.append(pruner)

    def detach(self) -> None:
        """Stop: cancel pending reports, release the keepers and close the pruners."""
        self._closed = True
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()
        for tap in self._taps:
            if tap.history is not None:
                tap.history.hold = None
        self._taps.clear()
        for pruner in self._pruners:
            pruner.close()
        self._pruners.clear()

    def hold(self, response_id: str) -> bool:
        """Whether the keeper must wait before editing this reply's history.

        Args:
            response_id: The reply.

        Returns:
            ``True`` while a speech owns it and its report is not in yet.
        """
        if self._final.get(response_id):
            return False
        handle = self.output.owner(response_id)
        if handle is None:
            return False  # no speech ever owned it: LiveKit will not edit its history
        self.watch(response_id, handle)  # no-op if watched already
        return True

    def watch(self, response_id: str, handle: SpeechHandle) -> None:
        """Report the reply when its speech has ended (plus :data:`SETTLE_S`).

        Args:
            response_id: The reply.
            handle: The speech that plays it.
        """
        if response_id in self._final:
            return
        self._final[response_id] = False
        while len(self._final) > _MAX_WATCHED:
            del self._final[next(iter(self._final))]
        loop = asyncio.get_running_loop()

        def ended(_: SpeechHandle) -> None:
            if self._closed:
                return  # the speech outlived the installation
            self._timers[response_id] = loop.call_later(SETTLE_S, self._report, response_id)

        handle.add_done_callback(ended)

    def _report(self, response_id: str) -> None:
        self._timers.pop(response_id, None)
        try:
            self._final[response_id] = True
            info = self.gate.generation(response_id)
            played = info.passed.samples if info is not None else 0
            rate = self.output.sample_rate or 24_000
            for tap in self._taps:
                tap.playout_final(response_id, played, rate)
            for pruner in self._pruners:
                pruner.settled(response_id)
        except Exception:
            logger.exception("playback-gate history report failed for %s", response_id)
