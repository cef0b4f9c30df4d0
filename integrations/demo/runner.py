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
from integrations.demo.outcome import ReplyOutcome
from integrations.demo.script import NEEDS_SIMULATOR, STEPS, Step, StoryTiming
from integrations.demo.story import Story
from integrations.openai_realtime.simulator.audio_marker import SAMPLE_RATE, AudioMode
from integrations.openai_realtime.simulator.server import RealtimeSimulator
from integrations.openai_realtime.trace.recorder import TraceRecorder
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
        only: Play only the replies of these kinds (see :data:`KINDS`); all if empty.
        trace: Record the gated session's wire traffic to this JSON Lines file.
    """

    timing: StoryTiming = field(default_factory=StoryTiming)
    wav: str | None = None
    device: int | str | None = None
    audio: AudioMode = "tone"
    baseline: bool = True
    openai: bool = False
    only: tuple[str, ...] = ()
    trace: str | None = None

    def steps(self) -> tuple[Step, ...]:
        """The replies this run plays.

        Returns:
            The story's steps, filtered by :attr:`only` and by what the service can do.
        """
        return tuple(
            s
            for s in STEPS
            if (not self.only or s.kind in self.only)
            and not (self.openai and s.kind in NEEDS_SIMULATOR)
        )


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
    options: DemoOptions,
    sink: BaseSink,
    gate: PlaybackGate | None,
    audio: AudioMode,
    name: str,
    trace: TraceRecorder | None = None,
) -> AsyncIterator[Story]:
    sim = None if options.openai else RealtimeSimulator()
    model: object = None
    story: Story | None = None
    try:
        if sim is not None:
            await sim.start()
            sim.enqueue(*options.timing.plans(options.steps(), audio))
        model = _model(sim.base_url if sim is not None else None)
        story = Story(
            model,
            sink,
            options.timing,
            gate=gate,
            steps=options.steps(),
            sim=sim,
            audio=audio,
            late_deadline=OPENAI_LATE_DEADLINE if options.openai else None,
            trace=trace,
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


def _row_note(number: int, kind: str, t: StoryTiming, openai: bool) -> str | None:
    """Which real server behaviour a reply plays, and what LiveKit 1.8.9 alone does with it."""
    if kind == "late" and openai:
        return (
            f"reply {number}: the real service answers in time, so the gate's deadline is made "
            f"{OPENAI_LATE_DEADLINE * 1000:.0f} ms for this reply: a stand-in for a late answer."
        )
    if kind == "late" and t.livekit_times_out:
        return (
            f"reply {number} (LiveKit #6222): the gate gives up after {t.deadline:g} s, as "
            f"LiveKit's generate_reply does (fixed 10 s); the server answers {t.late_by:g} s "
            "later, ignores the cancel and streams on, as reported in #6222. LiveKit 1.8.9 "
            "discards a response.created that arrives after its own timeout, so without the "
            "gate this one is dropped too (--fast shows a late reply LiveKit plays)."
        )
    if kind == "late":
        return (
            f"reply {number} (LiveKit #6222): the gate's deadline is {t.deadline:g} s, stricter "
            f"than LiveKit's fixed 10 s; the server answers {t.late_by:g} s after it, ignores the "
            "cancel and streams on. Without the gate LiveKit is still waiting and plays it."
        )
    if kind == "interrupt":
        return (
            f"reply {number}: the user barges in; the server ignores the cancel and keeps "
            "streaming. LiveKit's own interrupt clears its output, so nothing leaks either way."
        )
    if kind == "cancel":
        return (
            f"reply {number}: the app cancels the reply {t.cancel_after_s:g} s into playback "
            "(a targeted response.cancel, as a guardrail would). The server honours it "
            "(response.done, status cancelled), but it streamed the reply faster than real time, "
            f"as the OpenAI service does ({t.cancel_pace:g}x here), so seconds of it were already "
            "queued. LiveKit 1.8.9 plays what it queued: only its own interrupt clears the output."
        )
    if kind == "reconnect":
        return (
            f"reply {number}: the socket drops while the request waits; LiveKit reconnects, "
            "fails that generate_reply and forgets it. The server answers the request on the "
            "new connection anyway, as a server that resumes sessions does (xAI's Realtime API "
            "resumes in-flight output on a new socket; OpenAI's own service starts a fresh "
            "session, so there this row cannot happen). LiveKit 1.8.9 plays it."
        )
    return None


def _notes(options: DemoOptions, fallback: str | None) -> list[str]:
    notes = [] if fallback is None else [fallback]
    for number, step in enumerate(options.steps(), 1):
        note = _row_note(number, step.kind, options.timing, options.openai)
        if note is not None:
            notes.append(note)
    if options.openai:
        notes.append(
            "real OpenAI Realtime service: no ungated run (it would cost a second session), "
            "and no reconnect reply (the service does not answer across a reconnect)."
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
        ConfigurationError: If ``options.openai`` is set without ``OPENAI_API_KEY``,
            or no reply is left to play.
        OSError: If the trace file cannot be written.
    """
    if options.openai and not os.environ.get("OPENAI_API_KEY"):
        raise ConfigurationError("--openai needs OPENAI_API_KEY in the environment")
    if not options.steps():
        raise ConfigurationError("no reply to play (--only names none this service can play)")
    t0 = time.monotonic()
    gate = PlaybackGate(request_timeout=options.timing.deadline)
    sink, description, fallback = open_output(options.wav, options.device)
    if on_ready is not None:
        on_ready(description)
    async with contextlib.AsyncExitStack() as stack:
        recorder = None
        if options.trace is not None:
            recorder = TraceRecorder(options.trace)
            stack.callback(recorder.close)
        gated = await stack.enter_async_context(
            _story(options, sink, gate, options.audio, "gate", recorder)
        )
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
