"""``install_gate(session)``: gate a running LiveKit ``AgentSession`` in one call.

What it wires, all through public LiveKit Agents 1.8.9 objects (the output's one
private hook aside: see :mod:`integrations.livekit._gated_output`):

- a :class:`GatedAudioOutput` on top of ``session.output.audio`` (after
  ``session.start()``: setting the output before start disables RoomIO's);
- on every realtime session the agent runs (handoffs create new ones; each is
  attached once): a ``generation_created`` listener that tags the frames with
  the ``response_id`` and records the owning ``SpeechHandle``, and a
  ``metrics_collected`` listener that flags responses the model reports
  cancelled (the ``response.done``-style signal every realtime plugin emits);
- for OpenAI Realtime sessions, a :class:`RealtimeTap` on the raw
  ``openai_client_event_queued`` / ``openai_server_event_received`` events; its
  targeted cancels go through a :class:`CancelArbiter`, which sends one only when
  LiveKit sends none for that response (one cancel per response). On
  ``session_reconnected`` the requests LiveKit gave up on are flagged, and the
  gate's tombstones outlive LiveKit's discard set, which a reconnect clears.
- for realtime sessions without a tap whose model allows history edits, a
  :class:`ChatCtxPruner`: a reply the gate killed before any of it played leaves
  the history through ``update_chat_ctx`` once LiveKit is done with it (the tap's
  history keeper does this for OpenAI sessions).

Lifecycle: every listener, timer and sink the installer creates is tied to the
session. The session's ``close`` event runs :meth:`GateInstallation.detach`, which
removes them all (the gate can be reused by the next session) and puts the
output's sink back at the top of the chain. After a handoff to a realtime agent
the installer polls for the new realtime session with loop callbacks, which
``detach`` cancels at once; a handoff to an STT-LLM-TTS agent polls nothing. Its
only tasks are the pruners' history edits, which ``detach`` cancels too.

Unsolicited generations (no request of ours) play, except: a generation that
arrives within ``unsolicited_grace`` seconds after a ``generate_reply`` timed
out is dropped, when the model has no request ids (every non-OpenAI model in
1.8.9: LiveKit cannot tell a late answer from a new turn, and Gemini Live has no
discard at all). OpenAI requests are stamped, so the tap binds their answers
exactly and an unattributed reply is a real server-VAD turn: it plays (pass
``unattributed_policy=UnattributedPolicy.DROP_AFTER_TIMEOUT`` to drop it too).
"""

from __future__ import annotations

import asyncio
import logging
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from livekit import rtc
from livekit.agents import Agent, AgentSession, llm
from livekit.agents.metrics import RealtimeModelMetrics
from livekit.agents.voice.events import EventTypes, SpeechCreatedEvent
from livekit.agents.voice.speech_handle import SpeechHandle

from gate import DropReason, PlaybackGate, StateError
from integrations.livekit._cancels import CancelArbiter
from integrations.livekit._chat_ctx import ChatCtxPruner
from integrations.livekit._gated_output import GatedAudioOutput
from integrations.livekit._history import HistoryBridge
from integrations.livekit._signals import (
    check_agents_version,
    is_reply_timeout,
    openai_session_type,
    runs_realtime_model,
)
from integrations.livekit._tagging import tag_generation_event
from integrations.openai_realtime._tap import RealtimeTap, UnattributedPolicy

__all__ = ["GateInstallation", "install_gate"]

logger = logging.getLogger("playback_gate.livekit")


_SESSION_EVENTS: tuple[EventTypes, ...] = (
    "speech_created",
    "conversation_item_added",
    "agent_state_changed",
)
_HANDOFF_WATCH_S = 10.0  # at most, for a realtime agent whose activity never starts
_HANDOFF_SPINS = 200  # loop turns polled back to back before 5 ms steps
_installed: weakref.WeakKeyDictionary[AgentSession[Any], GateInstallation] = (
    weakref.WeakKeyDictionary()
)


@dataclass(eq=False)
class GateInstallation:
    """What :func:`install_gate` wired; :meth:`detach` unwires it, and so does the session's close.

    Attributes:
        gate: The gate.
        output: The gated audio output at the top of the session's chain.
        session: The session.
        unattributed_policy: See :func:`install_gate`.
        unsolicited_grace: See :func:`install_gate`.
        openai_tap: See :func:`install_gate`.
        cancel_settle: See :func:`install_gate`.
        taps: The OpenAI tap of each realtime session attached so far.
        arbiters: The cancel arbiter of each tapped realtime session.
        pruners: The history pruner of each realtime session without a tap.
    """

    gate: PlaybackGate
    output: GatedAudioOutput
    session: AgentSession[Any]
    unattributed_policy: UnattributedPolicy = UnattributedPolicy.PLAY
    unsolicited_grace: float = 5.0
    openai_tap: bool = True
    cancel_settle: float = 0.5
    taps: dict[llm.RealtimeSession[Any], RealtimeTap] = field(default_factory=dict)
    arbiters: dict[llm.RealtimeSession[Any], CancelArbiter] = field(default_factory=dict)
    pruners: dict[llm.RealtimeSession[Any], ChatCtxPruner] = field(default_factory=dict)
    _rt_sessions: list[llm.RealtimeSession[Any]] = field(default_factory=list)
    _listeners: list[tuple[rtc.EventEmitter[Any], str, Callable[..., Any]]] = field(
        default_factory=list
    )
    _reply_handles: weakref.WeakSet[SpeechHandle] = field(default_factory=weakref.WeakSet)
    _fresh_unsolicited: SpeechHandle | None = None
    _last_reply_timeout: float | None = None
    _handoff: asyncio.Handle | None = None
    _history: HistoryBridge | None = None  # OpenAI history edits: see _history
    _detached: bool = False

    @property
    def detached(self) -> bool:
        """Whether :meth:`detach` ran (by hand or at the session's close)."""
        return self._detached

    @property
    def listeners(self) -> list[tuple[rtc.EventEmitter[Any], str, Callable[..., Any]]]:
        """Every ``(emitter, event, callback)`` this wiring registered and has not removed."""
        return list(self._listeners)

    # ---- attaching -----------------------------------------------------------

    def attach_current(self) -> llm.RealtimeSession[Any] | None:
        """Attach to the current agent's realtime session if not yet. Idempotent.

        Returns:
            The realtime session, or ``None`` if the agent runs none (or this wiring
            is detached).
        """
        if self._detached:
            return None
        try:
            rt = self.session.current_agent.realtime_llm_session
        except RuntimeError:
            return None
        if any(s is rt for s in self._rt_sessions):
            return rt
        self._rt_sessions.append(rt)
        self._listen(rt, "generation_created", self._on_generation_created)
        self._listen(rt, "metrics_collected", self._on_metrics)
        self._listen(rt, "session_reconnected", self._on_reconnected)
        openai_type = openai_session_type()
        if self.openai_tap and openai_type is not None and isinstance(rt, openai_type):
            self._tap(rt)
        elif ChatCtxPruner.applies_to(rt):
            pruner = ChatCtxPruner(rt, self.gate, self.output.owner)
            self.pruners[rt] = pruner
            self._history_bridge().attach_pruner(pruner)
            # after _on_generation_created, which tags the event and records the owner
            self._listen(rt, "generation_created", pruner.on_generation_created)
        logger.debug("gate attached to realtime session %r", rt)
        return rt

    def _tap(self, rt: llm.RealtimeSession[Any]) -> None:
        def in_progress_default(response_id: str) -> bool:
            return response_id in tap.in_progress() and not tap.is_out_of_band(response_id)

        send = rt.send_event  # type: ignore[attr-defined]
        arbiter = CancelArbiter(send, in_progress_default, settle=self.cancel_settle)
        # every event the tap sends (targeted cancels, history edits) goes through the
        # arbiter, which holds only the cancels, until LiveKit has had its say
        tap = RealtimeTap(
            self.gate,
            send=arbiter.hold,
            decode_audio=False,
            unattributed_policy=self.unattributed_policy,
        )
        self.taps[rt] = tap
        self.arbiters[rt] = arbiter
        self._history_bridge().attach(tap)
        self._listen(rt, "openai_client_event_queued", tap.on_client_event)
        self._listen(rt, "openai_client_event_queued", arbiter.on_client_event)
        self._listen(rt, "openai_server_event_received", tap.on_server_event)
        self._listen(rt, "openai_server_event_received", arbiter.on_server_event)

    def detach(self) -> None:
        """Unhook every listener, timer and sink of this wiring, and take the output out.

        The session's chain gets the output's sink back at its top, and the output stops
        listening to that sink. Idempotent. The session's close does the same, except
        the chain (see :meth:`_on_close`).
        """
        if self._detached:
            return
        self._unwire()
        if self.session.output.audio is self.output:
            self.session.output.audio = self.output.sink
        self.output.detach()  # its listeners on the sink, and its place among the gate's sinks

    def _unwire(self) -> None:
        self._detached = True
        if self._handoff is not None:
            self._handoff.cancel()
            self._handoff = None
        for emitter, event, callback in self._listeners:
            emitter.off(event, callback)
        self._listeners.clear()
        for handle in list(self._reply_handles):
            handle.remove_done_callback(self._on_reply_done)
        self._reply_handles.clear()
        for arbiter in self.arbiters.values():
            arbiter.close()
        for tap in self.taps.values():
            tap.close()
        if self._history is not None:
            self._history.detach()
        self._rt_sessions.clear()
        self.taps.clear()
        self.arbiters.clear()
        self.pruners.clear()  # closed by the history bridge
        self._fresh_unsolicited = None
        if _installed.get(self.session) is self:
            del _installed[self.session]

    def _listen(
        self, emitter: rtc.EventEmitter[Any], event: str, callback: Callable[..., Any]
    ) -> None:
        emitter.on(event, callback)
        self._listeners.append((emitter, event, callback))

    def _hook_session(self) -> None:
        for event in _SESSION_EVENTS:
            self._listen(self.session, event, self._on_session_event)
        self._listen(self.session, "close", self._on_close)

    def _history_bridge(self) -> HistoryBridge:
        if self._history is None:
            self._history = HistoryBridge(self.gate, self.output)
        return self._history

    # ---- listeners (never raise into LiveKit's emitters) ----------------------

    def _on_close(self, _: Any = None) -> None:
        # Everything of ours goes, but the chain is left as the close leaves it (RoomIO
        # takes it apart itself): swapping outputs now would re-run the attach/detach
        # hooks of LiveKit's outputs after their teardown. Out of the gate's sinks, the
        # output is a plain pass-through while it is still in the chain.
        if self._detached:
            return
        try:
            self._unwire()
            self.gate.remove_sink(self.output)
        except Exception:
            logger.exception("playback-gate could not detach at the session's close")

    def _on_session_event(self, ev: Any) -> None:
        try:
            if isinstance(ev, SpeechCreatedEvent):
                self._on_speech_created(ev)
            elif getattr(getattr(ev, "item", None), "type", None) == "agent_handoff":
                self._watch_handoff()
            self.attach_current()
        except Exception:
            logger.exception("playback-gate session listener failed")

    def _watch_handoff(self) -> None:
        # the handoff item is added before the new activity starts; attach as soon as its
        # realtime session exists, before on_enter can send a response.create. Callbacks,
        # not a task: detach cancels them at once, and nothing is left pending.
        if self._handoff is not None:
            self._handoff.cancel()
            self._handoff = None
        try:
            agent = self.session.current_agent
        except RuntimeError:
            return
        if not runs_realtime_model(agent, self.session):
            return  # an STT-LLM-TTS agent: no realtime session will come
        deadline = asyncio.get_running_loop().time() + _HANDOFF_WATCH_S
        self._poll_handoff(agent, deadline, 0)

    def _poll_handoff(self, agent: Agent, deadline: float, spins: int) -> None:
        self._handoff = None
        try:
            if self._detached or self.session.current_agent is not agent:
                return  # closed, or handed off again (that handoff watches for itself)
            if self.attach_current() is not None:
                return
        except Exception:
            logger.exception("playback-gate handoff watch failed")
            return
        loop = asyncio.get_running_loop()
        if loop.time() >= deadline:
            logger.warning("playback-gate: the new agent's realtime session never started")
            return
        if spins < _HANDOFF_SPINS:
            self._handoff = loop.call_soon(self._poll_handoff, agent, deadline, spins + 1)
        else:
            self._handoff = loop.call_later(0.005, self._poll_handoff, agent, deadline, spins + 1)

    def _on_speech_created(self, ev: SpeechCreatedEvent) -> None:
        handle = ev.speech_handle
        if not ev.user_initiated:
            # emitted by the agent's own generation_created listener, which runs just
            # before ours: valid only until the current callback chain ends
            self._fresh_unsolicited = handle
            asyncio.get_running_loop().call_soon(self._forget_fresh, handle)
        elif ev.source == "generate_reply":
            self._reply_handles.add(handle)
            handle.add_done_callback(self._on_reply_done)

    def _forget_fresh(self, handle: SpeechHandle) -> None:
        if self._fresh_unsolicited is handle:
            self._fresh_unsolicited = None

    def _on_reply_done(self, handle: SpeechHandle) -> None:
        self._reply_handles.discard(handle)
        try:
            error = handle.exception()
        except Exception:
            return
        if is_reply_timeout(error):
            self._last_reply_timeout = time.monotonic()

    def _on_generation_created(self, ev: llm.GenerationCreatedEvent) -> None:
        try:
            self._generation_created(ev)
        except Exception:
            logger.exception("playback-gate generation_created listener failed")

    def _generation_created(self, ev: llm.GenerationCreatedEvent) -> None:
        tag_generation_event(ev)
        gid = ev.response_id
        if not gid:
            return
        if ev.user_initiated:
            handle = self.session.current_speech
        else:
            handle, self._fresh_unsolicited = self._fresh_unsolicited, None
        if handle is not None:
            self.output.set_owner(gid, handle)
            self._history_bridge().watch(gid, handle)
        has_tap = any(rt_tap for rt_tap in self.taps.values() if gid in rt_tap.in_progress())
        if (
            not ev.user_initiated
            and not has_tap
            and self._last_reply_timeout is not None
            and time.monotonic() - self._last_reply_timeout <= self.unsolicited_grace
        ):
            self.gate.flag(
                gid,
                DropReason.TIMED_OUT,
                f"unsolicited generation within {self.unsolicited_grace:g} s of a "
                "timed-out generate_reply",
            )
        if self.gate.is_flagged(gid) and handle is not None and not handle.done():
            # dead on arrival: end its speech now, so it completes and records nothing
            handle.interrupt(force=True)

    def _on_metrics(self, metrics: Any) -> None:
        try:
            if (
                isinstance(metrics, RealtimeModelMetrics)
                and metrics.cancelled
                and metrics.request_id
            ):
                self.gate.flag(metrics.request_id, DropReason.CANCELLED, "reported cancelled")
        except Exception:
            logger.exception("playback-gate metrics listener failed")

    def _on_reconnected(self, _: Any = None) -> None:
        try:
            for request_id in self.gate.pending_requests():
                # LiveKit failed these futures and forgot them; a late answer would play
                self.gate.flag_request(
                    request_id, DropReason.CANCELLED, "given up by the client on reconnect"
                )
        except Exception:
            logger.exception("playback-gate reconnect listener failed")


def install_gate(
    session: AgentSession[Any],
    gate: PlaybackGate | None = None,
    *,
    unattributed_policy: UnattributedPolicy = UnattributedPolicy.PLAY,
    unsolicited_grace: float = 5.0,
    openai_tap: bool = True,
    cancel_settle: float = 0.5,
) -> GateInstallation:
    """Gate a started ``AgentSession``'s audio output. Calling it again returns the same wiring.

    Example::

        await session.start(agent, room=ctx.room)
        wiring = install_gate(session, PlaybackGate(request_timeout=8.0))

    Args:
        session: A started session with an audio output.
        gate: The gate; a new one (10 s request timeout) if ``None``.
        unattributed_policy: The OpenAI tap's policy for replies no request of
            ours asked for.
        unsolicited_grace: Seconds after a timed-out ``generate_reply`` during
            which an unsolicited generation of a model without request ids is
            dropped; ``0`` turns this off.
        openai_tap: Attach the OpenAI tap to OpenAI Realtime sessions; with
            ``False`` they get only the model-agnostic wiring.
        cancel_settle: Seconds the tap's targeted cancel of a dead reply waits for
            LiveKit's own cancel of it before it is sent (one cancel per response;
            see :mod:`integrations.livekit._cancels`).

    Returns:
        The wiring.

    Raises:
        StateError: If the session has no audio output (not started, or audio
            output disabled).
    """
    existing = _installed.get(session)
    if existing is not None:
        existing.attach_current()
        return existing
    check_agents_version()
    if session.output.audio is None:
        raise StateError(
            "the session has no audio output: call install_gate after `await session.start()`"
        )
    gate = gate if gate is not None else PlaybackGate()
    output = GatedAudioOutput(
        gate, next_in_chain=session.output.audio, current_speech=lambda: session.current_speech
    )
    session.output.audio = output
    wiring = GateInstallation(
        gate=gate,
        output=output,
        session=session,
        unattributed_policy=unattributed_policy,
        unsolicited_grace=unsolicited_grace,
        openai_tap=openai_tap,
        cancel_settle=cancel_settle,
    )
    wiring._hook_session()
    wiring.attach_current()
    _installed[session] = wiring
    return wiring
