"""``playback-gate voice``: a live voice turn on this machine's speakers and microphone.

The ``openai`` SDK's realtime client, wrapped in
:class:`~integrations.openai_realtime.GatedConnection`, talks to the real OpenAI
Realtime service (``OPENAI_API_KEY``) or, with ``--simulator``, to the project's
simulator. The model greets you; speak to interrupt it (server VAD): the reply is
cut at the speaker within a device block, and the server's history is truncated at
what you heard. The closing table says, per reply, what the server sent, what
played, why it was cut and how the history was edited.

With ``--simulator`` no one needs to speak: the simulated user barges in 0.8 s into
the greeting (``RealtimeSimulator.user_speaks``), and the table adds what the
server's conversation holds of each reply. The microphone is off unless ``--mic``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import math
import os
import sys
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

from gate.cli import Command

__all__ = ["COMMAND", "ReplyRow", "VoiceReport", "add_arguments", "run", "run_voice"]

SESSION_AUDIO: dict[str, Any] = {
    "input": {
        "format": {"type": "audio/pcm", "rate": 24_000},
        "turn_detection": {"type": "server_vad", "silence_duration_ms": 500},
    },
    "output": {"format": {"type": "audio/pcm", "rate": 24_000}},
}
BARGE_IN_AFTER_S = 0.8  # the simulated user speaks this far into the greeting


@dataclass(frozen=True, slots=True)
class ReplyRow:
    """One reply of the session.

    Attributes:
        response_id: The reply.
        sent_ms: Audio the server sent for it.
        played_ms: Audio of it the device played.
        cut: Why the gate cut it (``""`` if it played out).
        edit: The history edit the gate sent (``""`` if none).
        held_ms: What the simulator's conversation holds of it (``None`` live).
    """

    response_id: str
    sent_ms: float
    played_ms: float
    cut: str
    edit: str
    held_ms: int | None


@dataclass
class VoiceReport:
    """What a voice session did.

    Attributes:
        replies: One row per reply, in order.
        errors: ``error`` events the server sent.
    """

    replies: list[ReplyRow] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        """The closing table, one line per reply."""
        out = [f"{'reply':<26} {'sent':>7} {'played':>7}  {'cut':<12} {'history edit':<22} held"]
        for r in self.replies:
            held = "" if r.held_ms is None else f"{r.held_ms} ms"
            out.append(
                f"{r.response_id[:26]:<26} {r.sent_ms:>5.0f}ms {r.played_ms:>5.0f}ms  "
                f"{r.cut or '-':<12} {r.edit or '-':<22} {held}"
            )
        out.extend(f"server error: {e}" for e in self.errors)
        return out


async def run_voice(
    *,
    simulator: bool,
    model: str = "gpt-realtime",
    device: str | int | None = None,
    input_device: str | int | None = None,
    seconds: float = 30.0,
    mic: bool = True,
    instructions: str = "You are a friendly voice assistant. Keep answers short.",
) -> VoiceReport:
    """Run one voice session and report it.

    Args:
        simulator: Talk to the project's simulator instead of the real service.
        model: The realtime model.
        device: Output device (index or name); the default if ``None``.
        input_device: Microphone (index or name); the default if ``None``.
        seconds: How long a live session runs (the simulator's script is shorter).
        mic: Stream the microphone to the server.
        instructions: The session's instructions.

    Returns:
        The report.
    """
    from openai import AsyncOpenAI

    from gate import PlaybackGate
    from integrations.openai_realtime import GatedConnection
    from integrations.speakers._speaker_sink import SpeakerSink

    gate = PlaybackGate()
    report = VoiceReport()
    async with _server(simulator) as (sim, client_kwargs):
        client = AsyncOpenAI(**client_kwargs)
        sink = SpeakerSink(gate, device=device, latency="low")
        try:
            async with client.realtime.connect(model=model) as conn:
                rt = GatedConnection(conn, sink)
                try:
                    await _session(rt, sim, report, mic, input_device, seconds, instructions)
                finally:
                    await rt.aclose()
                _fill(report, rt, sink, sim)
        finally:
            sink.close()
            await client.close()
    return report


@contextlib.asynccontextmanager
async def _server(simulator: bool) -> AsyncIterator[tuple[Any, dict[str, Any]]]:
    if not simulator:
        yield None, {}
        return
    from integrations.openai_realtime.simulator import RealtimeSimulator, ResponsePlan

    async with RealtimeSimulator() as sim:
        greeting = ResponsePlan.for_duration(2.0, audio="tone", transcript="Hello! How can I help?")
        answer = ResponsePlan.for_duration(1.2, audio="tone", transcript="Sure, go ahead.")
        sim.enqueue(greeting, answer)
        yield (
            sim,
            {
                "api_key": "sk-simulator",
                "base_url": sim.base_url,
                "websocket_base_url": f"ws://127.0.0.1:{sim.port}/v1",
            },
        )


async def _session(
    rt: Any,
    sim: Any,
    report: VoiceReport,
    mic: bool,
    input_device: str | int | None,
    seconds: float,
    instructions: str,
) -> None:
    session = {"type": "realtime", "instructions": instructions, "audio": SESSION_AUDIO}
    await rt.send({"type": "session.update", "session": session})
    rt.sink.start()
    done: list[str] = []

    async def read() -> None:
        async for event in rt:
            if event.type == "response.done":
                done.append(event.response.id)
            elif event.type == "error":
                report.errors.append(f"{event.error.code}: {event.error.message}")

    tasks = [asyncio.create_task(read())]
    if mic:
        tasks.append(asyncio.create_task(_stream_mic(rt, input_device)))
    try:
        await rt.send({"type": "response.create", "response": {"instructions": "Greet the user."}})
        if sim is None:
            await asyncio.sleep(seconds)
        else:
            greeting = await sim.wait_for_response(1)
            await _until(lambda: rt.sink.buffer.played(greeting.response_id) > 0)
            await asyncio.sleep(BARGE_IN_AFTER_S)
            await sim.user_speaks(0.3)
            answer = await sim.wait_for_response(2, timeout=10)
            await _until(lambda: answer.response_id in done, timeout=10)
        await asyncio.wait_for(rt.sink.drain(), 10)
        await asyncio.sleep(0.5)  # the history edits of the last cut reach the server
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def _stream_mic(rt: Any, input_device: str | int | None) -> None:
    import base64

    import sounddevice as sd

    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[bytes] = asyncio.Queue(maxsize=100)

    def callback(indata: Any, frames: int, time: Any, status: Any) -> None:
        with contextlib.suppress(asyncio.QueueFull, RuntimeError):
            loop.call_soon_threadsafe(queue.put_nowait, bytes(indata))

    with sd.RawInputStream(
        samplerate=24_000,
        channels=1,
        dtype="int16",
        blocksize=480,
        device=input_device,
        callback=callback,
    ):
        while True:
            chunk = await queue.get()
            audio = base64.b64encode(chunk).decode("ascii")
            await rt.send({"type": "input_audio_buffer.append", "audio": audio})


async def _until(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.01)


def _fill(report: VoiceReport, rt: Any, sink: Any, sim: Any) -> None:
    edits = {e["item_id"]: e for e in (rt.tap.history.sent if rt.tap.history else [])}
    for reply in rt.tap.items.replies():
        info = rt.gate.generation(reply.response_id)
        edit = ""
        for item_id in reply.items:
            e = edits.get(item_id)
            if e is not None:
                edit = e["type"].rsplit(".", 1)[1]
                edit += f" at {e['audio_end_ms']} ms" if "audio_end_ms" in e else ""
        held = None
        if sim is not None:
            with contextlib.suppress(KeyError):
                held = sim.held_ms(sim.response_by_id(reply.response_id))
        report.replies.append(
            ReplyRow(
                reply.response_id,
                reply.samples_sent * 1000 / reply.sample_rate,
                sink.buffer.played(reply.response_id) * 1000 / sink.samplerate,
                info.reason.value if info is not None and info.reason is not None else "",
                edit,
                held,
            )
        )


# ---- the command --------------------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``voice`` options.

    Args:
        parser: The subcommand's parser.
    """
    parser.add_argument(
        "--simulator",
        action="store_true",
        help="talk to the local simulator (a scripted user barges in); no key needed",
    )
    parser.add_argument("--model", default="gpt-realtime", help="realtime model")
    parser.add_argument("--device", "-d", help="output device index or name")
    parser.add_argument("--input-device", help="microphone index or name")
    parser.add_argument(
        "--seconds", type=float, default=30.0, help="length of a live session (default 30)"
    )
    mic = parser.add_mutually_exclusive_group()
    mic.add_argument("--mic", dest="mic", action="store_true", default=None, help="use the mic")
    mic.add_argument("--no-mic", dest="mic", action="store_false", help="do not use the mic")


def _device(value: str | None) -> str | int | None:
    return int(value) if value is not None and value.isdigit() else value


def run(args: argparse.Namespace) -> int:
    """Run a voice session.

    Args:
        args: Parsed arguments.

    Returns:
        0 on success; 2 on a usage problem (no key, bad length); 1 if the session failed.
    """
    if not (math.isfinite(args.seconds) and args.seconds > 0):
        print(f"playback-gate voice: --seconds must be > 0, got {args.seconds}", file=sys.stderr)
        return 2
    if not args.simulator and not os.environ.get("OPENAI_API_KEY"):
        print(
            "playback-gate voice: OPENAI_API_KEY is not set; set it to talk to the real "
            "service, or pass --simulator",
            file=sys.stderr,
        )
        return 2
    mic = args.mic if args.mic is not None else not args.simulator
    try:
        report = asyncio.run(
            run_voice(
                simulator=args.simulator,
                model=args.model,
                device=_device(args.device),
                input_device=_device(args.input_device),
                seconds=args.seconds,
                mic=mic,
            )
        )
    except KeyboardInterrupt:
        return 130
    except Exception as e:  # a device, network or server failure: one line, no traceback
        print(f"playback-gate voice: {type(e).__name__}: {e}", file=sys.stderr)
        return 1
    print("\n".join(report.lines()))
    return 0


COMMAND = Command(
    name="voice",
    help="a live voice turn with the openai SDK on speakers + mic, gated",
    description=__doc__ or "",
    add_arguments=add_arguments,
    run=run,
)
