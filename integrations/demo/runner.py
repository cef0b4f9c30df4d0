"""Runs the demo: the gated story on the speakers (or a WAV file), its ungated twin alongside.

Each run has its own simulator, model, session and sink, so the two run at once
and the demo takes as long as one story. The ungated twin plays into a WAV file
that is thrown away: it is only counted.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import sys
import tempfile
import textwrap
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from gate import ConfigurationError, GateStats, PlaybackGate
from integrations.demo.script import StoryTiming
from integrations.demo.story import ReplyOutcome, Story
from integrations.openai_realtime.simulator.audio_marker import SAMPLE_RATE, AudioMode
from integrations.openai_realtime.simulator.server import RealtimeSimulator
from integrations.speakers import BaseSink, SpeakerError, SpeakerSink, WavSink

__all__ = ["DemoOptions", "DemoResult", "open_output", "run_demo"]

DEFAULT_WAV = "demo.wav"
OPENAI_LATE_DEADLINE = 0.05
"""Seconds; with the real service the late reply is played by a gate deadline this strict."""


@dataclass(frozen=True, slots=True)
class DemoOptions:
    """What to run.

    Attributes:
        timing: The story's timing (see :class:`StoryTiming`).
        wav: Write the gated output here instead of playing it; ``None`` tries
            the speakers first and falls back to ``demo.wav``.
        device: Speaker device index or name (``None``: the default one).
        audio: Simulator audio: ``"tone"`` (audible) or ``"marker"`` (decodable).
        baseline: Also run the story without the gate.
        openai: Use the real OpenAI Realtime service (needs ``OPENAI_API_KEY``).
    """

    timing: StoryTiming = field(default_factory=StoryTiming)
    wav: str | None = None
    device: int | str | None = None
    audio: AudioMode = "tone"
    baseline: bool = True
    openai: bool = False


@dataclass(frozen=True, slots=True)
class DemoResult:
    """What the demo measured.

    Attributes:
        gated: Outcomes through the gate, one per reply.
        ungated: The same story without the gate (``None`` if not run).
        output: Where the gated audio went (a device or a file).
        stats: The gate's totals.
        elapsed: Wall-clock seconds.
        notes: Lines about how the run was set up.
    """

    gated: list[ReplyOutcome]
    ungated: list[ReplyOutcome] | None
    output: str
    stats: GateStats
    elapsed: float
    notes: list[str]


def open_output(wav: str | None, device: int | str | None) -> tuple[BaseSink, str, str | None]:
    """Open the speakers, or a WAV file when asked to or when there are none.

    Args:
        wav: A WAV path to write instead of playing; ``None`` to try the speakers.
        device: Speaker device index or name.

    Returns:
        The sink (not started), a description, and why the speakers were not
        used (``None`` if they were, or were not wanted).
    """
    fallback = None
    if wav is None:
        try:
            speaker = SpeakerSink(None, device=device)
            return speaker, f"speakers: {speaker.device.name}", None
        except SpeakerError as e:
            if device is not None:
                raise  # a device named by the user is never swapped for a file
            fallback = f"no speakers: {e}"
            wav = DEFAULT_WAV
    return WavSink(None, path=wav, samplerate=SAMPLE_RATE, paced=True), f"file: {wav}", fallback


def _model(base_url: str | None) -> object:
    from livekit.plugins.openai.realtime import RealtimeModel

    if base_url is None:
        return RealtimeModel(modalities=["audio"])  # OPENAI_API_KEY from the environment
    return RealtimeModel(base_url=base_url, api_key="x", modalities=["audio"])


@contextlib.asynccontextmanager
async def _story(
    options: DemoOptions, sink: BaseSink, gate: PlaybackGate | None, audio: AudioMode, name: str
) -> AsyncIterator[Story]:
    sim = None if options.openai else RealtimeSimulator()
    model: object = None
    story: Story | None = None
    try:
        if sim is not None:
            await sim.start()
            sim.enqueue(*options.timing.plans(audio))
        model = _model(sim.base_url if sim is not None else None)
        story = Story(
            model,
            sink,
            options.timing,
            gate=gate,
            late_deadline=OPENAI_LATE_DEADLINE if options.openai else None,
            name=name,
        )
        sink.start()
        await story.start()
        yield story
    finally:
        if story is not None:
            await story.aclose()
        if model is not None:
            await model.aclose()  # type: ignore[attr-defined]
        sink.close()
        if sim is not None:
            await sim.aclose()


async def _progress(stories: list[tuple[str, Story]], out: TextIO, t0: float) -> None:
    tty = out.isatty()
    last = ""
    while True:
        status = "  │  ".join(f"{name}: {story.status}" for name, story in stories)
        line = f"{time.monotonic() - t0:5.1f}s  {status}"
        if tty:
            width = max(40, shutil.get_terminal_size().columns - 1)
            out.write("\r" + line[:width].ljust(width))
        elif status != last:
            out.write(line + "\n")
        last = status
        out.flush()
        await asyncio.sleep(0.2)


def _notes(options: DemoOptions, fallback: str | None) -> list[str]:
    t = options.timing
    notes = [] if fallback is None else [fallback]
    if options.openai:
        notes.append(
            f"real OpenAI Realtime service: it answers in time, so reply 2 is made late by a "
            f"{OPENAI_LATE_DEADLINE * 1000:.0f} ms gate deadline; no ungated run (it would "
            "cost a second session)."
        )
    elif t.livekit_times_out:
        notes.append(
            f"reply 2: the gate gives up after {t.deadline:g} s, as LiveKit's generate_reply "
            f"does (fixed 10 s); the server answers {t.late_by:g} s later, ignores the cancel and "
            "streams on. LiveKit 1.8.9 discards an OpenAI response.created that arrives after "
            "its own timeout, so its no-gate run drops this one too; --fast shows a late "
            "reply it plays."
        )
    else:
        notes.append(
            f"reply 2: the gate's deadline is {t.deadline:g} s, stricter than LiveKit's fixed "
            f"10 s generate_reply timeout; the server answers {t.late_by:g} s after it, ignores "
            "the cancel and streams on. Without the gate LiveKit is still waiting and plays it."
        )
    return [line for note in notes for line in textwrap.wrap(note, 99, subsequent_indent="  ")]


async def run_demo(
    options: DemoOptions,
    *,
    progress: TextIO | None = None,
    on_ready: Callable[[str], None] | None = None,
) -> DemoResult:
    """Run the story through the gate (and without it, at the same time).

    Args:
        options: What to run.
        progress: Where to write the progress line (``None``: nowhere).
        on_ready: Called with the output's description once it is open.

    Returns:
        What was measured.

    Raises:
        RuntimeError: If ``options.openai`` is set without ``OPENAI_API_KEY``.
    """
    if options.openai and not os.environ.get("OPENAI_API_KEY"):
        raise ConfigurationError("--openai needs OPENAI_API_KEY in the environment")
    t0 = time.monotonic()
    gate = PlaybackGate(request_timeout=options.timing.deadline)
    sink, description, fallback = open_output(options.wav, options.device)
    if on_ready is not None:
        on_ready(description)
    async with contextlib.AsyncExitStack() as stack:
        gated = await stack.enter_async_context(_story(options, sink, gate, options.audio, "gate"))
        stories = [("gate", gated)]
        if options.baseline and not options.openai:
            scratch = Path(tempfile.mkdtemp(prefix="playback-gate-demo-")) / "no-gate.wav"
            stack.callback(scratch.parent.rmdir)
            stack.callback(scratch.unlink, missing_ok=True)
            baseline_sink = WavSink(None, path=scratch, samplerate=SAMPLE_RATE, paced=True)
            ungated_story = await stack.enter_async_context(
                _story(options, baseline_sink, None, "marker", "no gate")
            )
            stories.append(("no gate", ungated_story))
        ticker = (
            asyncio.create_task(_progress(stories, progress, t0)) if progress is not None else None
        )
        try:
            runs = await asyncio.gather(*(story.play() for _, story in stories))
        finally:
            if ticker is not None:
                ticker.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await ticker
                assert progress is not None
                progress.write("\n" if progress.isatty() else "")
        if isinstance(sink, SpeakerSink):
            with contextlib.suppress(TimeoutError):
                await sink.drain(timeout=2.0)
    return DemoResult(
        gated=runs[0],
        ungated=runs[1] if len(runs) > 1 else None,
        output=description,
        stats=gate.stats(),
        elapsed=time.monotonic() - t0,
        notes=_notes(options, fallback),
    )


if __name__ == "__main__":  # pragma: no cover - manual smoke run
    r = asyncio.run(run_demo(DemoOptions(timing=StoryTiming.fast()), progress=sys.stderr))
    print(r)
