"""``playback-gate demo`` end to end: real AgentSession, real OpenAI plugin, the simulator.

The fast story runs in-process with the gated audio written to a temporary WAV
file (no speakers) and the ungated twin alongside. Figures come from the
client's own wire counts, the sink's per-generation play counts and, as an
independent check, the marker audio decoded from the WAV file.
"""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np
import pytest

from gate.cli import build_parser
from integrations.demo import cli as demo_cli
from integrations.demo.report import format_report
from integrations.demo.runner import DemoOptions, DemoResult, run_demo
from integrations.demo.script import StoryTiming
from integrations.openai_realtime.simulator import audio_marker as am

pytestmark = pytest.mark.timeout(60)

SR = am.SAMPLE_RATE
BLOCK_S = 0.01  # the WAV sink pulls 10 ms blocks


@pytest.fixture(scope="module")
def timing() -> StoryTiming:
    return StoryTiming.fast()


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory, timing: StoryTiming) -> tuple[DemoResult, Path]:
    import asyncio

    wav = tmp_path_factory.mktemp("demo") / "demo.wav"
    options = DemoOptions(timing=timing, wav=str(wav), audio="marker")
    return asyncio.run(run_demo(options)), wav


def test_gated_story(demo: tuple[DemoResult, Path], timing: StoryTiming) -> None:
    result, _ = demo
    normal, late, cut, final = result.gated
    # every reply was sent in full: the late one and the interrupted one ignore cancels
    for outcome, seconds in zip(
        result.gated,
        (timing.normal_s, timing.late_s, timing.interrupted_s, timing.final_s),
        strict=True,
    ):
        assert outcome.response_id is not None
        assert outcome.sent == pytest.approx(seconds, abs=1 / SR)
    # normal replies play in full
    for outcome in (normal, final):
        assert outcome.played == pytest.approx(outcome.sent, abs=1 / SR)
        assert outcome.why == "" and outcome.unwanted == 0
    # the timed-out reply: all of it arrived after the deadline, none of it played
    assert late.sent_after_give_up == pytest.approx(late.sent, abs=1 / SR)
    assert late.played == 0
    assert late.why.startswith("timed_out")
    # the interrupted reply plays only up to the interruption (the block at the sink at most)
    assert cut.played_at_give_up >= timing.interrupt_after_s
    assert cut.played <= cut.played_at_give_up + BLOCK_S
    assert cut.sent_after_give_up > 0 and cut.dropped >= cut.sent_after_give_up
    assert result.stats.generations_flagged == 2


def test_ungated_twin_shows_the_leak(demo: tuple[DemoResult, Path], timing: StoryTiming) -> None:
    result, _ = demo
    assert result.ungated is not None
    normal, late, cut, final = result.ungated
    # LiveKit's own 10 s timeout has not fired: the reply past the gate's deadline plays in full
    assert late.sent == pytest.approx(timing.late_s, abs=1 / SR)
    assert late.played == pytest.approx(late.sent, abs=1 / SR)
    assert late.unwanted == late.played > 0
    # LiveKit clears its output on an interrupt, so the cut itself holds without the gate too
    assert cut.played <= cut.played_at_give_up + BLOCK_S
    for outcome in (normal, final):
        assert outcome.played == pytest.approx(outcome.sent, abs=1 / SR)
    assert sum(o.unwanted for o in result.gated) == 0
    assert sum(o.unwanted for o in result.ungated) == pytest.approx(late.played)


def test_wav_holds_exactly_what_the_table_says(demo: tuple[DemoResult, Path]) -> None:
    result, wav = demo
    with wave.open(str(wav)) as f:
        assert (f.getframerate(), f.getnchannels(), f.getsampwidth()) == (SR, 1, 2)
        pcm = np.frombuffer(f.readframes(f.getnframes()), np.int16)
    heard = am.samples_per_response(pcm)
    # simulator response numbers 1..4 are the story's replies, in order
    assert 2 not in heard
    for number, outcome in enumerate(result.gated, 1):
        if outcome.kind == "late":
            continue
        # the cut's fade is not a constant marker, so the decoder skips it, except its
        # first sample or two, whose gain is still within the decoder's +-7 tolerance
        assert 0 <= heard[number] - round(outcome.played * SR) <= 2


def test_report_lists_every_reply(demo: tuple[DemoResult, Path]) -> None:
    result, _ = demo
    text = format_report(result.gated, result.ungated, notes=result.notes)
    for outcome in result.gated:
        assert outcome.label in text
    assert "timed_out" in text
    assert f"With the gate: {0:.2f}s" in text
    leaked = sum(o.unwanted for o in result.ungated or [])
    assert text.splitlines()[8].rstrip().endswith(f"{leaked:5.2f}s")  # the total row
    assert "stricter than LiveKit's fixed 10 s" in " ".join(result.notes)


def test_cli_rejects_a_bad_deadline(capsys: pytest.CaptureFixture[str]) -> None:
    parser = build_parser([demo_cli.COMMAND])
    with pytest.raises(SystemExit) as stop:  # refused while parsing, before any work
        parser.parse_args(["demo", "--fast", "--deadline", "-1", "--wav", "x.wav"])
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert err.splitlines() == [
        "playback-gate demo: error: argument --deadline: must be between 0.01 and 3600, got '-1'"
    ]
