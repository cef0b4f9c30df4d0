"""A real Pipecat pipeline against the project's simulator, for tests and benchmarks.

``PipecatRig`` runs ``[llm, (gate,) RecordingOutput]`` with the real
``OpenAIRealtimeLLMService`` pointed at a :class:`RealtimeSimulator`, and a
device-free output transport paced at 1x that records every chunk it wrote and
when. Audio is the simulator's marker audio, so played samples map back to their
response and chunk.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
from pipecat.frames.frames import (
    EndFrame,
    Frame,
    InputAudioRawFrame,
    InterruptionFrame,
    LLMContextFrame,
    OutputAudioRawFrame,
    StartFrame,
    UserStoppedSpeakingFrame,
)
from pipecat.pipeline.pipeline import Pipeline
from pipecat.pipeline.runner import WorkerRunner
from pipecat.pipeline.task import PipelineParams
from pipecat.pipeline.worker import PipelineWorker
from pipecat.processors.aggregators.llm_context import LLMContext
from pipecat.processors.aggregators.llm_response_universal import LLMContextAggregatorPair
from pipecat.processors.frame_processor import FrameProcessor
from pipecat.services.openai.realtime import events
from pipecat.services.openai.realtime.llm import OpenAIRealtimeLLMService
from pipecat.transports.base_output import BaseOutputTransport
from pipecat.transports.base_transport import TransportParams

from gate import DEFAULT_REQUEST_TIMEOUT, AudioFormat, PlaybackGate
from integrations.openai_realtime.simulator import RealtimeSimulator
from integrations.openai_realtime.simulator.audio_marker import identify
from integrations.pipecat import PipecatGate, install_gate

__all__ = ["PipecatRig", "RecordingOutput", "pipecat_rig"]

RATE = 24_000
_START_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class Written:
    """One chunk the output wrote: when its write started, and its samples."""

    t: float
    samples: npt.NDArray[np.int16]


class RecordingOutput(BaseOutputTransport):
    """A device-free output transport that plays at 1x and records what it played.

    Each write is paced to real time from the start of a run of audio (a gap
    longer than the audio written so far starts a new run), the way a device or
    a network peer consumes it.
    """

    def __init__(self, sample_rate: int = RATE) -> None:
        super().__init__(
            TransportParams(
                audio_out_enabled=True,
                audio_out_sample_rate=sample_rate,
                audio_out_end_silence_secs=0,
            )
        )
        self.written: list[Written] = []
        self._run_start = 0.0
        self._run_samples = 0

    async def start(self, frame: StartFrame) -> None:
        """Start, and create the media sender."""
        await super().start(frame)
        await self.set_transport_ready(frame)

    async def write_audio_frame(self, frame: OutputAudioRawFrame) -> bool:
        """Record one chunk and take as long as it lasts.

        Returns:
            Always ``True``.
        """
        now = time.monotonic()
        rate = self.sample_rate
        if now > self._run_start + self._run_samples / rate:
            self._run_start, self._run_samples = now, 0
        samples = np.frombuffer(frame.audio, dtype=np.int16).copy()
        self.written.append(Written(now, samples))
        self._run_samples += samples.size
        await asyncio.sleep(max(0.0, self._run_start + self._run_samples / rate - time.monotonic()))
        return True

    def samples(self, since: float = 0.0) -> npt.NDArray[np.int16]:
        """All samples whose write started at or after ``since`` (monotonic)."""
        parts = [w.samples for w in self.written if w.t >= since]
        return np.concatenate(parts) if parts else np.zeros(0, np.int16)

    def per_response(self, since: float = 0.0) -> dict[int, int]:
        """Samples played per simulator response number, since ``since``, at 24 kHz.

        At another output rate, counts are scaled back to 24 kHz (rounded down).
        """
        counts: dict[int, int] = {}
        for run in identify(self.samples(since)):
            counts[run.response] = counts.get(run.response, 0) + run.length
        rate = self._params.audio_out_sample_rate or RATE
        return {r: n * RATE // rate for r, n in counts.items()}

    def chunks_of(self, response: int) -> dict[int, int]:
        """Samples played per chunk number of one response."""
        counts: dict[int, int] = {}
        for run in identify(self.samples()):
            if run.response == response:
                counts[run.chunk] = counts.get(run.chunk, 0) + run.length
        return counts


@dataclass
class PipecatRig:
    """A running pipeline; see :func:`pipecat_rig`.

    Attributes:
        sim: The simulator.
        llm: The real Pipecat service.
        output: The recording output transport.
        gated: The gate installation, or ``None`` for Pipecat alone.
        worker: The pipeline worker.
    """

    sim: RealtimeSimulator
    llm: OpenAIRealtimeLLMService
    output: RecordingOutput
    gated: PipecatGate | None
    worker: PipelineWorker
    context: LLMContext = field(default_factory=LLMContext)

    async def queue(self, frame: Frame) -> None:
        """Push a frame into the pipeline from its start."""
        await self.worker.queue_frame(frame)

    async def user_turn(self, speech_s: float = 0.2) -> None:
        """A user turn in manual turn mode: speech appended, then the turn ends.

        Pipecat commits the input buffer and sends ``response.create``.
        """
        chunk = bytes(RATE * 2 // 50)  # 20 ms of silence: the simulator only counts bytes
        for _ in range(round(speech_s * 50)):
            await self.queue(InputAudioRawFrame(audio=chunk, sample_rate=RATE, num_channels=1))
        await self.queue(UserStoppedSpeakingFrame())

    async def interrupt(self) -> float:
        """Interrupt the bot as Pipecat does; returns the monotonic time of the cut."""
        t = time.monotonic()
        await self.queue(InterruptionFrame())
        return t


@contextlib.asynccontextmanager
async def pipecat_rig(
    sim: RealtimeSimulator,
    *,
    gated: bool,
    server_vad: bool = False,
    request_timeout: float = DEFAULT_REQUEST_TIMEOUT,
    output_rate: int = RATE,
) -> AsyncIterator[PipecatRig]:
    """Run a real Pipecat pipeline against ``sim``; the first reply is asked for at start.

    Args:
        sim: A started simulator.
        gated: Install the gate (``[llm, gate, output]``) or not (``[llm, output]``).
        server_vad: Leave the server's turn detection on (Pipecat's default), with
            the context aggregators; ``False`` is manual turn mode
            (``turn_detection=False``).
        request_timeout: The gate's ``response.create`` deadline.
        output_rate: The output transport's rate (Pipecat resamples to it).

    Yields:
        The rig, once the pipeline started and the session is configured.
    """
    audio = (
        None
        if server_vad
        else events.AudioConfiguration(input=events.AudioInput(turn_detection=False))
    )
    llm = OpenAIRealtimeLLMService(
        api_key="sim",
        base_url=sim.url,
        settings=OpenAIRealtimeLLMService.Settings(
            session_properties=events.SessionProperties(audio=audio)
        ),
    )
    output = RecordingOutput(output_rate)
    gate = PlaybackGate(audio_format=AudioFormat(RATE), request_timeout=request_timeout)
    installation = install_gate(llm, gate) if gated else None
    context = LLMContext()
    # With server VAD, the context aggregators turn the service's proposed user turns
    # into interruptions, as in Pipecat's realtime-openai example.
    pair = LLMContextAggregatorPair(context) if server_vad else None
    chain: list[FrameProcessor] = [llm] if pair is None else [pair.user(), llm]
    if installation is not None:
        chain.append(installation.processor)
    chain.append(output)
    if pair is not None:
        chain.append(pair.assistant())
    worker = PipelineWorker(
        Pipeline(chain),
        params=PipelineParams(audio_out_sample_rate=output_rate),
        enable_rtvi=False,
        idle_timeout_secs=None,
        check_dangling_tasks=True,
    )
    started = asyncio.Event()

    async def _started(_worker: PipelineWorker, _frame: Frame) -> None:
        started.set()

    worker.add_event_handler("on_pipeline_started", _started)

    runner = WorkerRunner(handle_sigint=False)
    await runner.add_workers(worker)
    run = asyncio.create_task(runner.run())
    rig = PipecatRig(sim, llm, output, installation, worker, context)
    try:
        await asyncio.wait_for(started.wait(), _START_TIMEOUT_S)
        await rig.queue(LLMContextFrame(rig.context))
        yield rig
    finally:
        with contextlib.suppress(Exception):
            await worker.queue_frame(EndFrame())
            await asyncio.wait_for(asyncio.shield(run), 5.0)
        if not run.done():
            run.cancel()
            await asyncio.gather(run, return_exceptions=True)
