"""``playback-gate demo`` end to end: real AgentSession, real OpenAI plugin, the simulator.

The default story (LiveKit's own 10 s deadline) runs once in-process, the gated
audio written to a temporary WAV file (no speakers), its ungated twin alongside.
Figures come from the client's own wire counts, the gate's and the sink's
counters and, as an independent check, the marker audio decoded from the WAV.
"""

from __future__ import annotations

import asyncio
import wave
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from gate.cli import build_parser
from integrations.demo import cli as demo_cli
from integrations.demo.outcome import ReplyOutcome
from integrations.demo.report import format_report, gate_summary, layers
from integrations.demo.runner import DemoOptions, DemoResult, run_demo
from integrations.demo.script import StoryTiming
from integrations.openai_realtime.simulator import audio_marker as am
from integrations.openai_realtime.trace.replay import replay_file

pytestmark = pytest.mark.timeout(90)

SR = am.SAMPLE_RATE
BLOCK_S = 0.01  # the WAV sink pulls 10 ms blocks: the one a cut cannot recall


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[DemoResult, Path]:
    wav = tmp_path_factory.mktemp("demo") / "demo.wav"
    options = DemoOptions(timing=StoryTiming(), wav=str(wav), audio="marker")
    return asyncio.run(run_demo(options)), wav


def by_kind(outcomes: Sequence[ReplyOutcome], kind: str) -> list[ReplyOutcome]:
    return [o for o in outcomes if o.kind == kind]


def test_the_default_story_leaks_seconds_without_the_gate_and_nothing_with_it(
    demo: tuple[DemoResult, Path],
) -> None:
    result, _ = demo
    gated, ungated = result.gated, result.ungated
    assert ungated is not None
    assert [o.kind for o in gated] == [
        "normal",
        "late",
        "interrupt",
        "cancel",
        "reconnect",
        "normal",
    ]
    # the two leaks LiveKit 1.8.9 alone has: seconds of audio after the client gave up
    (cancel,) = by_kind(ungated, "cancel")
    (reconnect,) = by_kind(ungated, "reconnect")
    assert cancel.unwanted > 1.0
    assert reconnect.unwanted == pytest.approx(reconnect.sent, abs=1 / SR) and reconnect.sent > 1
    assert sum(o.unwanted for o in ungated) > 3.0
    # with the gate: nothing of a reply given up on before it arrived, and after a cut at
    # most the block already at the device
    for o in gated:
        if o.kind in ("late", "reconnect"):
            assert o.played == 0 and o.unwanted == 0
        assert o.unwanted <= BLOCK_S + 1 / SR
    # LiveKit alone already copes with these two: its own 10 s discard, its interrupt
    assert by_kind(ungated, "late")[0].played == 0
    assert by_kind(ungated, "interrupt")[0].unwanted <= BLOCK_S + 1 / SR
    for o in by_kind(gated, "normal") + by_kind(ungated, "normal"):
        assert o.played == pytest.approx(o.sent, abs=1 / SR) and o.why == ""


def test_every_counter_agrees_with_the_table(demo: tuple[DemoResult, Path]) -> None:
    result, _ = demo
    gated = result.gated
    # the layers add up to the table's dropped audio
    stopped = layers(gated)
    assert sum(seconds for _, seconds, _ in stopped) == pytest.approx(
        sum(o.dropped for o in gated), abs=1e-9
    )
    # the gate's own counters are the figures the lines print
    assert sum(o.output_frames for o in gated) == result.stats.dropped.frames
    assert sum(o.at_output for o in gated) == pytest.approx(result.stats.dropped.samples / SR)
    assert sum(1 for o in gated if o.why) == result.stats.generations_flagged
    for o in gated:
        # what reached the output was played, dropped there, or purged: the rest never came
        if o.response_id is not None and o.killed_early:
            assert o.before_output == pytest.approx(o.sent - o.reached_output, abs=0.02)
    (late,) = by_kind(gated, "late")
    assert late.killed_early and late.targeted_cancels == 1 and late.why.startswith("timed_out")
    (cancel,) = by_kind(gated, "cancel")
    assert cancel.purged_by_gate > 1.0  # the queued audio, purged by the gate
    text = format_report(gated, result.ungated, notes=result.notes)
    total = next(line for line in text.splitlines() if line.lstrip().startswith("total"))
    leaked_without = sum(o.unwanted for o in result.ungated or [])
    assert total.rstrip().endswith(f"{leaked_without:5.2f}s")
    assert f"{sum(o.unwanted for o in gated):5.2f}s" in total.split("│")[1]
    summary = gate_summary(gated)
    assert f"({result.stats.dropped.frames} frames) at the output" in summary
    assert f"{sum(o.purged_by_gate for o in gated):.2f} s in the queue" in summary
    assert f"Of the {sum(o.dropped for o in gated):.2f} s dropped" in summary
    for label, seconds, _ in stopped:
        assert f"{seconds:5.2f} s  {label}" in text
    # the notes say which real server behaviour each row is
    notes = " ".join(" ".join(result.notes).split())  # the notes are wrapped
    for phrase in ("#6222", "faster than real time", "resumes"):
        assert phrase in notes


def test_wav_holds_exactly_what_the_table_says(demo: tuple[DemoResult, Path]) -> None:
    result, wav = demo
    with wave.open(str(wav)) as f:
        assert (f.getframerate(), f.getnchannels(), f.getsampwidth()) == (SR, 1, 2)
        pcm = np.frombuffer(f.readframes(f.getnframes()), np.int16)
    heard = am.samples_per_response(pcm)
    played = round(sum(o.played for o in result.gated) * SR)
    # a cut's fade is not a constant marker, so the decoder skips it (but for a sample or two)
    assert 0 <= sum(heard.values()) - played <= 2 * len(result.gated)


def test_a_stricter_gate_deadline_drops_a_late_reply_livekit_plays(tmp_path: Path) -> None:
    options = DemoOptions(
        timing=StoryTiming.fast(), wav=str(tmp_path / "d.wav"), audio="marker", only=("late",)
    )
    result = asyncio.run(run_demo(options))
    assert result.ungated is not None
    (gated,), (ungated,) = result.gated, result.ungated
    assert gated.played == 0 and gated.sent > 0
    assert ungated.played == pytest.approx(ungated.sent, abs=1 / SR) == ungated.unwanted
    assert "stricter than LiveKit's fixed 10 s" in " ".join(" ".join(result.notes).split())


def test_demo_records_its_wire_traffic_and_draws_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    trace, png = tmp_path / "demo.jsonl", tmp_path / "demo.png"
    args = build_parser([demo_cli.COMMAND]).parse_args(
        [
            *("demo", "--fast", "--only", "cancel", "--no-baseline", "--audio", "marker"),
            *("--wav", str(tmp_path / "d.wav"), "--trace", str(trace), "--plot", str(png)),
        ]
    )
    assert args.handler(args) == 0
    out = capsys.readouterr().out
    assert f"timeline -> {png}" in out
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # the trace replays to the same story: the reply cancelled, its queue purged
    (outcome,) = replay_file(trace).responses
    assert (outcome.final_state, outcome.reason) == ("flagged", "cancelled")
    assert outcome.samples_purged > 0 and outcome.samples_played < outcome.samples_received


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--deadline", "-1"], "argument --deadline: must be between 0.01 and 3600, got '-1'"),
        (["--only", "nope"], "--only: unknown kind 'nope'"),
    ],
)
def test_cli_rejects_bad_arguments(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    parser = build_parser([demo_cli.COMMAND])
    try:
        args = parser.parse_args(["demo", "--fast", "--wav", "x.wav", *argv])
    except SystemExit as stop:  # refused while parsing, before any work
        code = stop.code
    else:
        code = args.handler(args)
    assert code == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and message in err
