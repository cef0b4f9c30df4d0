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
  ``openai_client_event_queued`` / ``openai_server_event_received`` events, with
  ``send=`` the session's ``send_event`` for targeted cancels; on
  ``session_reconnected`` the requests LiveKit gave up on are flagged, and the
  gate's tombstones outlive LiveKit's discard set, which a reconnect clears.

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
from dataclasses import dataclass, field
from typing import Any

from livekit.agents import AgentSession, llm
from livekit.agents import __version__ as agents_version
from livekit.agents.metrics import RealtimeModelMetrics
from livekit.agents.voice.events import EventTypes, SpeechCreatedEvent
from livekit.agents.voice.speech_handle import SpeechHandle

from gate import DropReason, PlaybackGate, StateError
from integrations.livekit._gated_output import GatedAudioOutput, missing_private_api
from integrations.livekit._history import HistoryBridge
from integrations.livekit._tagging import tag_generation_event
from integrations.openai_realtime._tap import RealtimeTap, UnattributedPolicy

__all__ = ["SUPPORTED_AGENTS_VERSIONS", "GateInstallation", "check_agents_version", "install_gate"]

logger = logging.getLogger("playback_gate.livekit")

SUPPORTED_AGENTS_VERSIONS = ("1.8.",)
"""livekit-agents versions whose event order and chain this module was tested on."""

_SESSION_EVENTS: tuple[EventTypes, ...] = (
    "speech_created",
    "conversation_item_added",
    "agent_state_changed",
)
_HANDOFF_WATCH_S = 10.0
_installed: weakref.WeakKeyDictionary[AgentSession[Any], GateInstallation] = (
    weakref.WeakKeyDictionary()
)


def check_agents_version(version: str = agents_version) -> bool:
    """Return whether ``version`` of livekit-agents is one this module supports; warn if not.

    The installer relies on 1.8.x behaviour: listeners run in registration order
    and the agent reads ``GenerationCreatedEvent.message_stream`` only after
    ``generation_created`` listeners ran. :class:`GatedAudioOutput` also relies on
    two livekit-agents internals (see :func:`missing_private_api`); their absence
    in the installed livekit-agents is reported here too, whatever ``version`` says.

    Args:
        version: A livekit-agents version string.

    Returns:
        ``True`` if supported.
    """
    ok = version.startswith(SUPPORTED_AGENTS_VERSIONS)
    if not ok:
        logger.warning(
            "playback-gate's LiveKit installer was tested on livekit-agents %s, not %s",
            "/".join(v + "x" for v in SUPPORTED_AGENTS_VERSIONS),
            version,
        )
    missing = missing_private_api()
    if missing:
        logger.warning(
            "livekit-agents %s lacks %s, which playback-gate's audio output relies on",
            agents_version,
            ", ".join(missing),
        )
    return ok and not missing


def _openai_session_type() -> type | None:
    try:
        from livekit.plugins.openai.realtime import RealtimeSession
    except ImportError:
        return None
    return RealtimeSession


@dataclass(eq=False)
class GateInstallation:
    """What :func:`install_gate` wired; :meth:`detach` unwires it.

    Attributes:
        gate: The gate.
        output: The gated audio output at the top of the session's chain.
        session: The session.
        unattributed_policy: See :func:`install_gate`.
        unsolicited_grace: See :func:`install_gate`.
        openai_tap: See :func:`install_gate`.
        taps: The OpenAI tap of each realtime session attached so far.
    """

    gate: PlaybackGate
    output: GatedAudioOutput
    session: AgentSession[Any]
    unattributed_policy: UnattributedPolicy = UnattributedPolicy.PLAY
    unsolicited_grace: float = 5.0
    openai_tap: bool = True
    taps: dict[llm.RealtimeSession[Any], RealtimeTap] = field(default_factory=dict)
    _rt_sessions: list[llm.RealtimeSession[Any]] = field(default_factory=list)
    _fresh_unsolicited: SpeechHandle | None = None
    _last_reply_timeout: float | None = None
    _handoff_task: asyncio.Task[None] | None = None
    _history: HistoryBridge | None = None  # OpenAI history edits: see _history

    # ---- attaching -----------------------------------------------------------

    def attach_current(self) -> llm.RealtimeSession[Any] | None:
        """Attach to the current agent's realtime session if not yet. Idempotent.

        Returns:
            The realtime session, or ``None`` if the agent runs none.
        """
        try:
            rt = self.session.current_agent.realtime_llm_session
        except RuntimeError:
            return None
        if any(s is rt for s in self._rt_sessions):
            return rt
        self._rt_sessions.append(rt)
        rt.on("generation_created", self._on_generation_created)
        rt.on("metrics_collected", self._on_metrics)
        rt.on("session_reconnected", self._on_reconnected)
        openai_type = _openai_session_type()
        if self.openai_tap and openai_type is not None and isinstance(rt, openai_type):
            tap = RealtimeTap(
                self.gate,
                send=rt.send_event,  # type: ignore[attr-defined]
                decode_audio=False,
                unattributed_policy=self.unattributed_policy,
            )
            self.taps[rt] = tap
            self._history_bridge().attach(tap)
            rt.on("openai_client_event_queued", tap.on_client_event)
            rt.on("openai_server_event_received", tap.on_server_event)
        logger.debug("gate attached to realtime session %r", rt)
        return rt

    def detach(self) -> None:
        """Unhook every listener and take the gated output out of the chain."""
        if self._handoff_task is not None:
            self._handoff_task.cancel()
        for event in _SESSION_EVENTS:
            self.session.off(event, self._on_session_event)
        for rt in self._rt_sessions:
            rt.off("generation_created", self._on_generation_created)
            rt.off("metrics_collected", self._on_metrics)
            rt.off("session_reconnected", self._on_reconnected)
            tap = self.taps.get(rt)
            if tap is not None:
                rt.off("openai_client_event_queued", tap.on_client_event)
                rt.off("openai_server_event_received", tap.on_server_event)
                tap.close()
        if self._history is not None:
            self._history.detach()
        self._rt_sessions.clear()
        self.taps.clear()
        self.gate.remove_sink(self.output)
        if self.session.output.audio is self.output:
            self.session.output.audio = self.output.sink
        _installed.pop(self.session, None)

    def _history_bridge(self) -> HistoryBridge:
        if self._history is None:
            self._history = HistoryBridge(self.gate, self.output)
        return self._history

    # ---- listeners (never raise into LiveKit's emitters) ----------------------

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
        # the handoff item is added before the new activity starts; attach as soon as
        # its realtime session exists, before on_enter can send a response.create
        if self._handoff_task is not None and not self._handoff_task.done():
            self._handoff_task.cancel()
        self._handoff_task = asyncio.get_running_loop().create_task(self._attach_when_running())

    async def _attach_when_running(self) -> None:
        deadline = time.monotonic() + _HANDOFF_WATCH_S
        spins = 0
        while time.monotonic() < deadline:
            before = len(self._rt_sessions)
            rt = self.attach_current()
            if rt is not None and len(self._rt_sessions) > before:
                return
            spins += 1
            await asyncio.sleep(0 if spins < 200 else 0.005)

    def _on_speech_created(self, ev: SpeechCreatedEvent) -> None:
        handle = ev.speech_handle
        if not ev.user_initiated:
            # emitted by the agent's own generation_created listener, which runs just
            # before ours: valid only until the current callback chain ends
            self._fresh_unsolicited = handle
            asyncio.get_running_loop().call_soon(self._forget_fresh, handle)
        elif ev.source == "generate_reply":
            handle.add_done_callback(self._on_reply_done)

    def _forget_fresh(self, handle: SpeechHandle) -> None:
        if self._fresh_unsolicited is handle:
            self._fresh_unsolicited = None

    def _on_reply_done(self, handle: SpeechHandle) -> None:
        try:
            error = handle.exception()
        except Exception:
            return
        if isinstance(error, llm.RealtimeError) and "timed out" in str(error):
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

    def _on_session_event_hooks(self) -> None:
        for event in _SESSION_EVENTS:
            self.session.on(event, self._on_session_event)


def install_gate(
    session: AgentSession[Any],
    gate: PlaybackGate | None = None,
    *,
    unattributed_policy: UnattributedPolicy = UnattributedPolicy.PLAY,
    unsolicited_grace: float = 5.0,
    openai_tap: bool = True,
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
    )
    wiring._on_session_event_hooks()
    wiring.attach_current()
    _installed[session] = wiring
    return wiring
