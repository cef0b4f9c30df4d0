"""Replay: the simulated real-time speaker, the report, the CLI, and a live LiveKit round trip."""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import wave
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from gate import DropReason, PlaybackGate
from gate.cli import build_parser
from integrations.openai_realtime._tap import RealtimeTap
from integrations.openai_realtime.simulator import ResponseRecord
from integrations.openai_realtime.trace import TraceError, TraceLimits, TraceRecorder
from integrations.openai_realtime.trace import cli as replay_cli
from integrations.openai_realtime.trace.playout import SimulatedPlayout
from integrations.openai_realtime.trace.replay import (
    Replayer,
    ReplayResult,
    replay_entries,
    replay_file,
)
from integrations.openai_realtime.trace.script import TraceScript

RATE = 24_000


def read_wav(path: Path) -> tuple[int, np.ndarray]:
    with wave.open(str(path), "rb") as w:
        assert (w.getnchannels(), w.getsampwidth()) == (1, 2)
        return w.getframerate(), np.frombuffer(w.readframes(w.getnframes()), dtype="<i2")


def run_cli(*argv: str) -> int:
    parser = build_parser([replay_cli.COMMAND])
    args = parser.parse_args(["replay", *argv])
    code: int = args.handler(args)
    return code


def story_6222() -> TraceScript:
    """LiveKit #6222: timeout, late response.created, deltas keep coming after the cancel."""
    s = TraceScript()
    s.response_create(0.0, "req_A")
    s.response_created(12.0, "resp_A", "req_A")  # 2 s after the 10 s deadline
    s.cancel(12.01, "resp_A")  # the targeted cancel, as a live tap would have sent it
    end = s.audio_stream(12.05, "resp_A", 50, pace=2, value=111)  # the server ignores it
    s.response_done(end, "resp_A")
    s.audio(end + 0.01, "resp_A", 480, value=111)  # and a straggler after done
    s.response_create(14.0, "req_B")
    s.response_created(14.2, "resp_B", "req_B")
    end = s.audio_stream(14.3, "resp_B", 50, pace=4, value=222)
    s.response_done(end, "resp_B")
    return s


# ---- the #6222 story through the CLI ---------------------------------------------------------


def test_6222_timed_out_response_plays_nothing_and_the_next_plays_everything(
    tmp_path: Path,
) -> None:
    trace = story_6222().write(tmp_path / "t.jsonl")
    out, report = tmp_path / "played.wav", tmp_path / "report.json"
    assert run_cli(str(trace), "--out", str(out), "--report", str(report)) == 0
    data = json.loads(report.read_text())
    a, b = data["responses"]
    assert (a["response_id"], a["request_id"], a["final_state"], a["reason"]) == (
        "resp_A",
        "req_A",
        "flagged",
        "timed_out",
    )
    assert a["samples_received"] == 50 * 480 + 480 and a["samples_played"] == 0
    assert a["samples_dropped"] == a["samples_received"]
    assert (b["final_state"], b["reason"], b["samples_received"]) == ("done", None, 50 * 480)
    assert b["samples_played"] == b["samples_received"] and b["samples_dropped"] == 0
    assert (
        data["cancels_sent"][0]["response_id"] == "resp_A" and data["cancels_sent"][0]["t"] == 12.0
    )
    assert data["totals"]["requests_timed_out"] == 1 and data["malformed"] == []
    rate, pcm = read_wav(out)
    assert rate == RATE and len(pcm) == data["totals"]["wav_samples"]
    assert int(np.sum(pcm == 111)) == 0 and int(np.sum(pcm == 222)) == b["samples_played"]
    assert int(np.sum(pcm != 0)) == data["totals"]["samples_played"]
    # B starts playing the instant its first delta arrives: the queue had run dry
    first = int(np.argmax(pcm != 0))
    assert first == round(14.3 * RATE) and np.all(pcm[first : first + b["samples_played"]] == 222)


def test_cli_prints_a_table_and_keeps_stderr_for_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    s = story_6222()
    s.response_create(20.0, "unstamped", stamped=False)  # the tap warns about it when verbose
    trace = s.write(tmp_path / "t.jsonl")
    level = logging.getLogger("playback_gate").level
    assert run_cli(str(trace)) == 0
    captured = capsys.readouterr()
    assert "resp_A" in captured.out and "timed_out" in captured.out
    assert "1 request(s) timed out" in captured.out and captured.err == ""
    assert list(tmp_path.iterdir()) == [trace]
    assert logging.getLogger("playback_gate").level == level


# ---- the simulated speaker ---------------------------------------------------------------


def test_barge_in_purges_exactly_the_unplayed_audio(tmp_path: Path) -> None:
    s = TraceScript()
    s.response_create(0.0, "req_1")
    s.response_created(0.9, "r1", "req_1")
    s.audio_stream(1.0, "r1", 50, pace=4, value=7)  # 1 s of audio queued within 0.25 s
    s.cancel(1.5, None)  # barge-in after 0.5 s of playback
    s.response_done(1.6, "r1", "cancelled", reason="client_cancelled")
    s.response_create(1.9, "req_2")
    s.response_created(2.0, "r2", "req_2")
    s.audio_stream(2.0, "r2", 10, pace=4, value=9)
    s.response_done(2.1, "r2")
    chunks: list[np.ndarray] = []
    result = replay_entries(
        s.ordered(), write_audio=lambda rate, block: chunks.append(block.copy())
    )
    pcm = np.concatenate(chunks)
    r1, r2 = result.outcome("r1"), result.outcome("r2")
    assert (r1.final_state, r1.reason) == ("flagged", "cancelled")
    assert r1.samples_played == int(0.5 * RATE) and r1.samples_purged == RATE - int(0.5 * RATE)
    assert r1.samples_dropped == r1.samples_purged  # every delta was admitted, then purged
    assert r2.samples_played == r2.samples_received == 10 * 480
    assert int(np.sum(pcm == 7)) == r1.samples_played and int(np.sum(pcm == 9)) == r2.samples_played
    # silence from the purge (1.5 s) until r2's first delta (2.0 s)
    assert np.all(pcm[int(1.5 * RATE) : int(2.0 * RATE)] == 0) and pcm[int(2.0 * RATE)] == 9
    assert len(pcm) == result.output_samples == int(2.0 * RATE) + r2.samples_played


def test_purge_closes_the_gap_for_audio_queued_behind() -> None:
    playout = SimulatedPlayout(1000)
    playout.enqueue("a", np.full(100, 1, np.int16))
    playout.enqueue("b", np.full(50, 2, np.int16))
    playout.enqueue("a", np.full(100, 1, np.int16))
    playout.enqueue("c", np.full(50, 3, np.int16))
    playout.advance_to(0.04)  # 40 samples of a played
    playout.purge("a", DropReason.INTERRUPTED)
    playout.purge("zzz", DropReason.INTERRUPTED)  # unknown: nothing happens
    assert playout.purged == {"a": 160} and playout.queued == 100
    playout.advance_to(0.09)
    playout.drain()
    assert playout.played == {"a": 40, "b": 50, "c": 50} and playout.silence == 0
    assert playout.position == 140


def test_out_of_band_audio_survives_a_bare_cancel_of_the_default_response() -> None:
    s = TraceScript()
    s.response_create(0.0, "main")
    s.response_create(0.0, "side", out_of_band=True)
    s.response_created(0.1, "r_main", "main")
    s.response_created(0.1, "r_side", "side", out_of_band=True)
    s.audio_stream(0.2, "r_main", 25, pace=4, value=1)
    s.audio_stream(0.21, "r_side", 25, pace=4, value=2)
    s.cancel(0.4)
    s.response_done(0.5, "r_side")
    result = replay_entries(s.ordered())
    main, side = result.outcome("r_main"), result.outcome("r_side")
    assert side.samples_played == side.samples_received == 25 * 480
    assert main.reason == "cancelled" and 0 < main.samples_played < main.samples_received
    assert main.samples_played + main.samples_purged == main.samples_received


def test_stragglers_and_malformed_events_are_reported_with_line_numbers(tmp_path: Path) -> None:
    s = TraceScript()
    s.response_create(0.0, "req")
    s.response_created(0.1, "r", "req")
    s.audio(0.2, "r", 480, value=5)
    s.add(
        0.25, "server", {"type": "response.output_audio.delta", "response_id": "r", "delta": "%%%"}
    )
    s.add(0.26, "server", {"type": "response.teleport", "event_id": "ev_x"})
    s.audio(0.3, "r", 480, value=5)
    s.response_done(0.4, "r")
    s.audio(0.5, "r", 240, value=5)
    trace = s.write(tmp_path / "t.jsonl")
    report = tmp_path / "r.json"
    assert run_cli(str(trace), "--report", str(report)) == 0
    data = json.loads(report.read_text())
    (r,) = data["responses"]
    assert (r["samples_received"], r["samples_played"], r["samples_dropped"]) == (1200, 960, 240)
    assert [(m["line"], m["type"]) for m in data["malformed"]] == [
        (4, "response.output_audio.delta"),
        (5, "response.teleport"),
    ]
    assert data["malformed"][1]["event_id"] == "ev_x" and data["totals"]["malformed_events"] == 2


def test_drop_after_timeout_option(tmp_path: Path) -> None:
    s = TraceScript()
    s.response_create(0.0, "req")
    s.response_created(10.5, "vad")  # unattributed, 0.5 s after the timeout
    s.audio(10.6, "vad", 480)
    trace = s.write(tmp_path / "t.jsonl")
    played = {}
    for policy in ("play", "drop_after_timeout"):
        report = tmp_path / f"{policy}.json"
        assert run_cli(str(trace), "--unattributed", policy, "--report", str(report)) == 0
        played[policy] = json.loads(report.read_text())["responses"][0]["samples_played"]
    assert played == {"play": 480, "drop_after_timeout": 0}


def test_timeout_option_changes_the_outcome(tmp_path: Path) -> None:
    trace = story_6222().write(tmp_path / "t.jsonl")
    report = tmp_path / "r.json"
    assert run_cli(str(trace), "--timeout", "30", "--report", str(report)) == 0
    a = json.loads(report.read_text())["responses"][0]
    assert a["final_state"] == "flagged" and a["reason"] == "cancelled"  # only the client cancel
    assert a["samples_played"] == 0  # purged at the cancel 10 ms after it was created


def test_g711_trace_writes_an_8khz_wav(tmp_path: Path) -> None:
    s = TraceScript()
    s.session(0.0, "g711_ulaw")
    s.response_create(0.0, "req")
    s.response_created(0.1, "r", "req")
    s.add(0.2, "server", {"type": "response.audio.delta", "response_id": "r", "delta": "AAAAAAAA"})
    trace = s.write(tmp_path / "t.jsonl")
    out = tmp_path / "o.wav"
    assert run_cli(str(trace), "--out", str(out)) == 0
    rate, pcm = read_wav(out)
    assert rate == 8000 and len(pcm) == int(0.2 * 8000) + 6  # 6 bytes of mu-law
    assert np.all(pcm[-6:] == -32124)  # mu-law 0x00


def test_trace_without_audio_writes_an_empty_wav(tmp_path: Path) -> None:
    s = TraceScript()
    s.response_create(0.0, "req")
    trace = s.write(tmp_path / "t.jsonl")
    out, report = tmp_path / "o.wav", tmp_path / "r.json"
    assert run_cli(str(trace), "--out", str(out), "--report", str(report)) == 0
    rate, samples = read_wav(out)
    assert rate == RATE and samples.size == 0
    assert json.loads(report.read_text())["responses"] == []


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("{broken", "line 3: invalid JSON"),
        ('{"t": 9, "from": "server", "event": {"delta": "AAAA"}}', "line 3: event has no 'type'"),
    ],
)
def test_bad_trace_exits_2_with_the_line_and_leaves_no_output(
    tmp_path: Path, line: str, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    good = story_6222().to_jsonl().splitlines()
    trace = tmp_path / "t.jsonl"
    trace.write_text("\n".join([*good[:2], line, *good[2:]]) + "\n")
    out, report = tmp_path / "o.wav", tmp_path / "r.json"
    report.write_text("an older report")
    assert run_cli(str(trace), "--out", str(out), "--report", str(report)) == 2
    assert message in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.json", "t.jsonl"]
    assert report.read_text() == "an older report"


def test_missing_trace_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run_cli(str(tmp_path / "nope.jsonl")) == 2
    assert "nope.jsonl" in capsys.readouterr().err


def test_a_huge_gap_in_t_exits_2_before_writing_any_silence(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    s = TraceScript()
    s.response_created(0.0, "r", None)
    s.audio(0.0, "r", 480)
    s.add(1e9, "server", {"type": "rate_limits.updated"})  # 30 years: 48 TB of silence
    trace = s.write(tmp_path / "t.jsonl")
    out, report = tmp_path / "o.wav", tmp_path / "r.json"
    assert run_cli(str(trace), "--out", str(out), "--report", str(report)) == 2
    err = capsys.readouterr().err
    assert "line 3: 't' = 1e+09 s is past the replay limit of 14400 s (--max-duration)" in err
    assert [p.name for p in tmp_path.iterdir()] == ["t.jsonl"]
    # the limit is an option: a 10 s trace passes at 10 s and fails at 9
    s = TraceScript()
    s.audio(0.0, "r", 480)
    s.add(10.0, "server", {"type": "rate_limits.updated"})
    trace = s.write(tmp_path / "t.jsonl")
    assert run_cli(str(trace), "--out", str(out), "--max-duration", "10") == 0
    assert read_wav(out)[1].size == 10 * RATE
    out.unlink()
    assert run_cli(str(trace), "--out", str(out), "--max-duration", "9") == 2
    assert "line 2: 't' = 10 s is past the replay limit of 9 s" in capsys.readouterr().err
    assert [p.name for p in tmp_path.iterdir()] == ["t.jsonl"]
    assert run_cli(str(trace), "--max-duration", "inf") == 2


def test_queued_audio_past_the_limit_is_refused_at_its_line() -> None:
    s = TraceScript()
    s.response_created(0.0, "r", None)
    s.audio(0.5, "r", RATE)  # 1 s queued at 0.5 s: plays until 1.5 s
    s.audio(0.6, "r", RATE)  # would play until 2.5 s
    blocks: list[int] = []
    with pytest.raises(
        TraceError, match=r"^line 3: replay would run to 2\.5 s, past its limit of 2 s"
    ):
        replay_entries(
            s.ordered(),
            limits=TraceLimits(max_duration_s=2.0),
            write_audio=lambda rate, block: blocks.append(len(block)),
        )
    assert sum(blocks) == int(0.6 * RATE)  # nothing past the refused line was made


def test_output_is_capped_at_what_a_wav_holds_at_the_trace_rate() -> None:
    s = TraceScript(sample_rate=384_000)  # 4 GiB of mono PCM16 is 5592 s at 384 kHz
    s.session(0.0, {"type": "audio/pcm", "rate": 384_000})
    s.audio(0.0, "r", 480)
    s.add(6000.0, "server", {"type": "rate_limits.updated"})  # within the 4 h default
    with pytest.raises(TraceError, match=r"^line 3: .*the most a 4 GiB WAV holds at 384000 Hz"):
        replay_entries(s.ordered())


def test_replay_file_returns_the_same_result_it_reports(tmp_path: Path) -> None:
    trace = story_6222().write(tmp_path / "t.jsonl")
    report = tmp_path / "r.json"
    result = replay_file(trace, report=report)
    assert isinstance(result, ReplayResult)
    assert json.loads(report.read_text())["responses"] == [r.to_dict() for r in result.responses]


# ---- live: the real livekit-plugins-openai client against the simulator ------------------------


async def test_live_tap_and_recorded_trace_replay_to_the_same_outcome(tmp_path: Path) -> None:
    """A late reply (past a 0.5 s gate timeout) the server streams despite the targeted cancel,
    then a normal reply and a server-initiated one: the live tap and the replayed trace agree."""
    from livekit.plugins.openai.realtime import RealtimeModel

    from integrations.openai_realtime.simulator.plans import ResponsePlan
    from integrations.openai_realtime.simulator.server import RealtimeSimulator

    timeout = 0.5
    gate = PlaybackGate(request_timeout=timeout)
    received: dict[str, int] = {}
    passed: dict[str, int] = {}
    trace_path = tmp_path / "live.jsonl"

    async with RealtimeSimulator(port=0) as sim:
        model = RealtimeModel(
            base_url=sim.base_url, api_key="sk-test-0123456789abcdef", modalities=["audio"]
        )
        session = model.session()
        tap = RealtimeTap(gate, send=session.send_event)

        def on_server(event: dict[str, Any]) -> None:
            audio = tap.on_server_event(event)
            if audio is not None:
                rid = audio.response_id
                received[rid] = received.get(rid, 0) + audio.frame.samples_per_channel
                if gate.admit(rid, audio.frame):
                    passed[rid] = passed.get(rid, 0) + audio.frame.samples_per_channel

        recorder = TraceRecorder(trace_path)
        recorder.attach(session)
        session.on("openai_client_event_queued", tap.on_client_event)
        session.on("openai_server_event_received", on_server)
        try:
            sim.enqueue(
                ResponsePlan(chunks=6, pace=None),
                ResponsePlan(
                    chunks=8,
                    pace=None,
                    created_delay_s=1.0,
                    ignore_cancel=True,
                    deltas_after_done=2,
                ),
                ResponsePlan(chunks=5, pace=None),
            )
            for n in (1, 2, 3):
                fut = session.generate_reply()
                record = await sim.wait_for_response(n)
                await sim.wait_done(record, timeout=5)
                await until(functools.partial(_all_received, received, record))
                await asyncio.wait_for(fut, 5)
            vad = await sim.start_server_response(ResponsePlan(chunks=3, pace=None))
            await sim.wait_done(vad, timeout=5)
            await until(lambda: received.get(vad.response_id, 0) == vad.samples_sent)
        finally:
            recorder.close()
            await session.aclose()
            await model.aclose()

    late = sim.responses[1]
    assert late.cancel_requests >= 1 and late.chunks_after_done == 2
    assert tap.cancels_sent_count == 1 and tap.cancels_sent[0]["response_id"] == late.response_id
    assert "sk-test" not in trace_path.read_text()

    replayer = Replayer(timeout=timeout)
    result = replay_entries_with(replayer, trace_path)
    ids = [r.response_id for r in sim.responses]
    assert [r.response_id for r in result.responses] == ids
    for rid in ids:
        live, replayed = gate.generation(rid), replayer.gate.generation(rid)
        assert live is not None and replayed is not None
        outcome = result.outcome(rid)
        assert (outcome.request_id, outcome.final_state, outcome.reason) == (
            live.request_id,
            live.state.value,
            live.reason.value if live.reason else None,
        ), rid
        assert outcome.samples_received == received[rid]
        assert replayed.passed.samples == passed.get(rid, 0), rid
    assert result.outcome(late.response_id).reason == DropReason.TIMED_OUT.value
    assert result.outcome(late.response_id).samples_played == 0
    assert result.outcome(ids[2]).samples_played == sim.responses[2].samples_sent
    assert result.outcome(vad.response_id).request_id is None
    assert result.outcome(vad.response_id).samples_played == vad.samples_sent


def _all_received(received: dict[str, int], record: ResponseRecord) -> bool:
    return received.get(record.response_id, 0) == record.samples_sent


async def until(predicate: Callable[[], bool], timeout: float = 5.0) -> None:
    """Poll ``predicate`` (client-side state changes wake nothing up)."""
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.01)


def replay_entries_with(replayer: Replayer, path: Path) -> ReplayResult:
    from integrations.openai_realtime.trace.reader import read_trace

    for entry in read_trace(path):
        replayer.feed(entry)
    return replayer.finish()
