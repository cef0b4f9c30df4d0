"""The end-to-end rig shared by ``tests/test_livekit_agent.py`` and :mod:`bench.leaks`.

An ``AgentSession`` with the real livekit-plugins-openai ``RealtimeModel``
talks to the project's Realtime simulator. Its audio output is LiveKit's own
RoomIO output (its queue, its 50 ms re-chunking, its ``rtc.AudioSource`` with
a 200 ms native queue), run without a room; ``install_gate`` goes on top of
it, or not, for the baseline. What leaves the source is read back through a
``LocalAudioTrack`` and an ``rtc.AudioStream``, and the simulator's audio
names its response and chunk in every sample, so each sample read back is
attributed with :mod:`integrations.openai_realtime.simulator.audio_marker`.

Test and bench scaffolding, never library code: :func:`roomless_output` uses
LiveKit private names, and nothing else here does.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any, cast

import numpy as np
import numpy.typing as npt
from livekit import rtc
from livekit.agents import Agent, AgentSession
from livekit.agents.voice import SpeechHandle, io
from livekit.plugins.openai.realtime import RealtimeModel, RealtimeSession

from gate import PlaybackGate
from integrations.livekit._gated_output import GatedAudioOutput
from integrations.livekit._install import GateInstallation, install_gate
from integrations.openai_realtime.simulator import audio_marker as am
from integrations.openai_realtime.simulator.records import ResponseRecord
from integrations.openai_realtime.simulator.server import RealtimeSimulator

__all__ = [
    "SR",
    "AgentRig",
    "RoomlessOutput",
    "agent_rig",
    "livekit_reply_timeout",
    "playout",
    "poll",
    "roomless_output",
]

SR = 24_000  # the realtime model's rate, and the rig's


@dataclass(frozen=True, slots=True)
class RoomlessOutput:
    """LiveKit's RoomIO audio output, run without a room.

    Attributes:
        output: The ``io.AudioOutput`` a real agent plays into.
        source: Its ``rtc.AudioSource``: read it back through a ``LocalAudioTrack``.
        aclose: Stops its tasks and closes its source.
    """

    output: io.AudioOutput
    source: rtc.AudioSource
    aclose: Callable[[], Awaitable[None]]


def roomless_output(sample_rate: int = SR, *, forward: bool = True) -> RoomlessOutput:
    """Make RoomIO's audio output with no room.

    Args:
        sample_rate: The output's rate.
        forward: Start RoomIO's forwarding task, so frames reach the source (and its track).

    Returns:
        The output, its source and its closer.
    """
    # LiveKit private names, on purpose and only here: RoomIO's output is the sink a real
    # agent plays into, and it has no public way to run without a room. With no room its
    # track is never published, so the rig settles the subscription wait and starts the
    # forwarding task itself, and takes the source to read back what was played.
    from livekit.agents.voice.room_io._output import _ParticipantAudioOutput

    out = _ParticipantAudioOutput(
        cast(Any, None),
        sample_rate=sample_rate,
        num_channels=1,
        track_publish_options=rtc.TrackPublishOptions(),
    )
    out._subscribed_fut.set_result(None)
    if forward:
        out._forwarding_task = asyncio.create_task(out._forward_audio())
    return RoomlessOutput(out, out._audio_source, out.aclose)


class AgentRig:
    """Simulator, model, session, RoomIO output and track read-back; gated or not.

    Make it with :func:`agent_rig`, which starts and closes it.

    Attributes:
        sim: The Realtime simulator the model talks to.
        gated: Whether :meth:`start` installs the gate.
        openai_tap: Passed to ``install_gate``.
        gate: The gate (made either way, installed only when ``gated``).
        model: The livekit-plugins-openai model.
        session: The agent session.
        sink: RoomIO's output, the session's audio output.
        stream: The read-back of the output's track.
        chunks: ``(monotonic time, samples)`` of every frame read back.
        wiring: What ``install_gate`` returned, once started gated.
        closers: Extra closers, awaited by :meth:`aclose` after the model's.
    """

    def __init__(
        self,
        sim: RealtimeSimulator,
        *,
        gated: bool,
        request_timeout: float = 10.0,
        openai_tap: bool = True,
        instructions: str = "test",
    ) -> None:
        """Build the rig (call :meth:`start` next).

        Args:
            sim: A running simulator.
            gated: Install the gate in :meth:`start`.
            request_timeout: The gate's request budget, in seconds.
            openai_tap: Let ``install_gate`` tap the OpenAI event stream.
            instructions: The agent's instructions.
        """
        self.sim = sim
        self.gated = gated
        self.openai_tap = openai_tap
        self._instructions = instructions
        self.gate = PlaybackGate(request_timeout=request_timeout)
        self.model = RealtimeModel(base_url=sim.base_url, api_key="x", modalities=["audio"])
        self.session: AgentSession[Any] = AgentSession(llm=self.model)
        self._room_output = roomless_output(SR)
        self.sink = self._room_output.output
        track = rtc.LocalAudioTrack.create_audio_track("agent", self._room_output.source)
        self.stream = rtc.AudioStream.from_track(track=track, sample_rate=SR, num_channels=1)
        self.chunks: list[tuple[float, npt.NDArray[np.int16]]] = []
        self.wiring: GateInstallation | None = None
        self.closers: list[Callable[[], Awaitable[object]]] = []
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        async for ev in self.stream:
            self.chunks.append((time.monotonic(), np.frombuffer(ev.frame.data, np.int16).copy()))

    async def start(self) -> None:
        """Start the session on RoomIO's output, then install the gate if ``gated``."""
        self.session.output.audio = self.sink
        await self.session.start(Agent(instructions=self._instructions))
        if self.gated:
            self.wiring = install_gate(self.session, self.gate, openai_tap=self.openai_tap)

    @property
    def rt(self) -> RealtimeSession:
        """The current agent's realtime session."""
        return cast(RealtimeSession, self.session.current_agent.realtime_llm_session)

    @property
    def output(self) -> GatedAudioOutput:
        """The gated output ``install_gate`` put in the chain (gated rigs only)."""
        assert self.wiring is not None
        return self.wiring.output

    def played(self, record: ResponseRecord, after: float = 0.0, min_chunk: int = 0) -> int:
        """Count the samples of a response that left the track.

        Args:
            record: The simulator's record of the response.
            after: Only frames read back at or after this ``time.monotonic()``.
            min_chunk: Only the response's chunks from this one on.

        Returns:
            The samples attributed to it.
        """
        pcm = [d for t, d in self.chunks if t >= after]
        if not pcm:
            return 0
        runs = am.identify(np.concatenate(pcm))
        return sum(
            r.length for r in runs if r.response == record.marker_response and r.chunk >= min_chunk
        )

    async def until_played(self, record: ResponseRecord, samples: int, timeout: float = 8) -> int:
        """Wait until ``samples`` of a response have left the track, or ``timeout`` passed.

        Args:
            record: The simulator's record of the response.
            samples: How many to wait for.
            timeout: Seconds to wait at most (no error when it passes).

        Returns:
            The samples of it played by then.
        """
        end = time.monotonic() + timeout
        while self.played(record) < samples and time.monotonic() < end:
            await asyncio.sleep(0.02)
        return self.played(record)

    def context_error_ms(self, record: ResponseRecord) -> float:
        """Audio the server's conversation holds for a reply minus what left the track.

        Args:
            record: The simulator's record of a default-conversation reply.

        Returns:
            Milliseconds; positive when the model remembers audio nobody heard.
        """
        return self.sim.held_ms(record) - self.played(record) * 1000 / SR

    async def settled_context(
        self, records: list[ResponseRecord], timeout: float = 1.5
    ) -> list[float]:
        """Wait until the server holds what played for each reply (or ``timeout``), then say.

        History edits follow the end of playout (the gate waits for LiveKit's own), so
        the server's view settles a little after the audio does.

        Args:
            records: Default-conversation replies.
            timeout: Seconds to wait at most (no error when it passes).

        Returns:
            :meth:`context_error_ms` of each, in order.
        """
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if all(abs(self.context_error_ms(r)) < 1000 / 100 for r in records):
                break
            await asyncio.sleep(0.05)
        return [self.context_error_ms(r) for r in records]

    async def quiet(self, seconds: float = 0.3) -> None:
        """Wait until only silence has left the track for ``seconds`` (8 s at most)."""
        end = time.monotonic() + 8
        while time.monotonic() < end:
            await asyncio.sleep(0.05)
            recent = [d for t, d in self.chunks if t >= time.monotonic() - seconds]
            if not any(d.any() for d in recent):
                return

    async def aclose(self) -> None:
        """Close the session, the model, the extra closers, then the read-back and the output.

        The stream and the source must be closed before the loop ends, or the FFI can
        abort the interpreter at exit.
        """
        with contextlib.suppress(Exception):
            await self.session.aclose()
        await self.model.aclose()
        for close in self.closers:
            await close()
        self._reader.cancel()
        await asyncio.gather(self._reader, return_exceptions=True)
        await self.stream.aclose()
        await self._room_output.aclose()


@contextlib.asynccontextmanager
async def agent_rig(
    gated: bool,
    *,
    request_timeout: float = 10.0,
    openai_tap: bool = True,
    instructions: str = "test",
) -> AsyncIterator[AgentRig]:
    """Run a simulator and a started :class:`AgentRig` on it; close both on exit.

    Args:
        gated: Install the gate.
        request_timeout: The gate's request budget, in seconds.
        openai_tap: Let ``install_gate`` tap the OpenAI event stream.
        instructions: The agent's instructions.

    Yields:
        The started rig.
    """
    async with RealtimeSimulator() as sim:
        r = AgentRig(
            sim,
            gated=gated,
            request_timeout=request_timeout,
            openai_tap=openai_tap,
            instructions=instructions,
        )
        try:
            await r.start()
            yield r
        finally:
            await r.aclose()


@contextlib.contextmanager
def livekit_reply_timeout(seconds: float) -> Iterator[None]:
    """Shorten LiveKit's hard-coded 10 s ``generate_reply`` timeout (a ``call_later(10.0)``).

    Args:
        seconds: The timeout to use instead, on the running loop, until the block ends.
    """
    loop = asyncio.get_running_loop()
    real = loop.call_later

    def short(delay: float, callback: Callable[..., object], *args: Any, **kw: Any) -> Any:
        return real(seconds if delay == 10.0 else delay, callback, *args, **kw)

    loop.call_later = short  # type: ignore[method-assign, assignment]
    try:
        yield
    finally:
        del loop.call_later  # back to the class's method


async def playout(handle: SpeechHandle, timeout: float = 8.0) -> SpeechHandle:
    """Wait for a reply's playout.

    Args:
        handle: The reply.
        timeout: Seconds to wait at most.

    Returns:
        The same handle.

    Raises:
        TimeoutError: If it did not play out in time.
    """
    await asyncio.wait_for(handle.wait_for_playout(), timeout)
    return handle


async def poll(predicate: Callable[[], bool], timeout: float = 5.0) -> None:
    """Wait until ``predicate()`` is true, checking every 10 ms.

    Args:
        predicate: The condition.
        timeout: Seconds to wait at most.

    Raises:
        TimeoutError: If the condition was not met in time.
    """
    end = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > end:
            raise TimeoutError("condition not met")
        await asyncio.sleep(0.01)
