"""``playback-gate replay TRACE --plot FILE.png``: the shipped traces, drawn and checked.

Each shipped trace under ``docs/traces/`` was recorded by ``playback-gate demo
--trace`` (a real AgentSession, the real LiveKit OpenAI client, the simulator).
The CLI writes a PNG for each; the test reads the file back (signature, size)
and checks the figure built by the same function: one axes per response, the
bars and lines each lane must have.
"""

from __future__ import annotations

import struct
import sys
from pathlib import Path

import pytest

from gate.cli import build_parser
from integrations.openai_realtime.trace import cli as replay_cli
from integrations.openai_realtime.trace.plot import (
    MAX_LANES,
    Lane,
    build_timeline,
    timeline_figure,
)
from integrations.openai_realtime.trace.reader import read_trace
from integrations.openai_realtime.trace.script import TraceScript

TRACES = Path(__file__).resolve().parents[2] / "docs" / "traces"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

#: trace -> (final state and reason of each response, in order)
SHIPPED: dict[str, list[tuple[str, str | None]]] = {
    "6222-late-reply.jsonl": [("done", None), ("flagged", "timed_out"), ("done", None)],
    "server-cancel.jsonl": [("flagged", "cancelled")],
    "reconnect.jsonl": [("flagged", "cancelled")],
}


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE, "not a PNG"
    assert data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def replay(*argv: str) -> int:
    args = build_parser([replay_cli.COMMAND]).parse_args(["replay", *argv])
    code: int = args.handler(args)
    return code


def test_every_shipped_trace_is_listed() -> None:
    assert sorted(p.name for p in TRACES.glob("*.jsonl")) == sorted(SHIPPED)
    for path in TRACES.glob("*.jsonl"):
        assert path.stat().st_size < 400_000  # small enough for the repository


@pytest.mark.parametrize("name", sorted(SHIPPED))
def test_replay_plot_writes_a_png_of_one_lane_per_response(
    name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "timeline.png"
    assert replay(str(TRACES / name), "--plot", str(out)) == 0
    assert f"timeline -> {out}" in capsys.readouterr().out
    lanes = len(SHIPPED[name])
    width, height = png_size(out)
    # 12 in wide at 100 dpi; 1.9 in plus 1.15 in per lane high
    assert width == 1200 and height == round(100 * (1.9 + 1.15 * lanes))
    assert out.stat().st_mode & 0o644 == 0o644  # readable like any file the user writes


@pytest.mark.parametrize("name", sorted(SHIPPED))
def test_the_figure_has_the_lanes_and_artists_of_the_replay(name: str) -> None:
    timeline = build_timeline(read_trace(TRACES / name))
    assert [(lane.state, lane.reason) for lane in timeline.lanes] == SHIPPED[name]
    fig = timeline_figure(timeline, title=name)
    assert len(fig.axes) == len(timeline.lanes)
    for ax, lane in zip(fig.axes, timeline.lanes, strict=True):
        bars = (1 if lane.sent else 0) + (1 if lane.played else 0)
        bars += len({(reason, purged) for _, _, reason, purged in lane.dropped})
        assert len(ax.collections) == bars
        kinds = [kind for _, kind in lane.markers]
        vertical = kinds.count("flag") + kinds.count("deadline") + len(timeline.reconnects)
        dots = len(kinds) - kinds.count("flag") - kinds.count("deadline")
        assert len(ax.lines) == vertical + dots
        assert ax.get_title(loc="right").startswith(f"sent {lane.sent_s:.2f} s")
        # every sample the server sent is accounted for: played or dropped
        assert lane.sent_s == pytest.approx(lane.played_s + lane.dropped_s, abs=1e-6)


def test_the_6222_lanes_tell_the_story() -> None:
    timeline = build_timeline(read_trace(TRACES / "6222-late-reply.jsonl"))
    first, late, final = timeline.lanes
    assert first.played_s == pytest.approx(first.sent_s) and final.played_s > 0
    assert late.played_s == 0 and late.sent_s > 0
    assert late.dropped_s == pytest.approx(late.sent_s)
    kinds = [kind for _, kind in late.markers]
    for kind in ("create", "deadline", "created", "flag", "targeted", "done"):
        assert kind in kinds
    deadline = next(t for t, k in late.markers if k == "deadline")
    created = next(t for t, k in late.markers if k == "created")
    assert deadline < created  # the answer came after the deadline: dead on arrival


def test_the_cancel_lane_shows_the_purge_and_the_reconnect_lane_the_reconnect() -> None:
    cancel = build_timeline(read_trace(TRACES / "server-cancel.jsonl"))
    (lane,) = cancel.lanes
    purged = [seconds for _, seconds, _, was_purged in lane.dropped if was_purged]
    assert sum(purged) > 1.0  # seconds of queued audio removed at the cancel
    reconnect = build_timeline(read_trace(TRACES / "reconnect.jsonl"))
    assert len(reconnect.reconnects) == 1
    (answer,) = reconnect.lanes
    assert answer.played_s == 0 and reconnect.reconnects[0] < answer.markers[-1][0]


def test_a_request_never_answered_gets_its_own_lane() -> None:
    s = TraceScript()
    s.response_create(0.0, "req_lost")
    s.response_create(1.0, "req_ok")
    s.response_created(1.1, "resp_ok", "req_ok")
    s.response_done(s.audio_stream(1.2, "resp_ok", 10), "resp_ok")
    s.add(11.0, "server", {"type": "session.updated", "session": {}})
    timeline = build_timeline(s.ordered())
    lost, ok = timeline.lanes
    assert lost.response_id is None and lost.request_id == "req_lost"
    assert [k for _, k in lost.markers] == ["create", "deadline"]
    assert isinstance(ok, Lane) and ok.response_id == "resp_ok"
    assert ok.played_s == pytest.approx(0.2)
    assert len(timeline_figure(timeline).axes) == 2


def test_a_long_trace_draws_the_first_lanes_and_says_so() -> None:
    s = TraceScript()
    for i in range(MAX_LANES + 5):
        s.response_create(i * 0.5, f"req_{i}")
        s.response_created(i * 0.5 + 0.1, f"resp_{i}", f"req_{i}")
        s.response_done(s.audio_stream(i * 0.5 + 0.2, f"resp_{i}", 5, pace=4), f"resp_{i}")
    timeline = build_timeline(s.ordered())
    assert len(timeline.lanes) == MAX_LANES + 5
    fig = timeline_figure(timeline)
    assert len(fig.axes) == MAX_LANES
    assert f"the first {MAX_LANES} of {MAX_LANES + 5} lanes drawn" in fig.get_suptitle()
    assert all(lane.played_s == pytest.approx(0.1) for lane in timeline.lanes)


def test_without_matplotlib_plot_is_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib -> ImportError
    out = tmp_path / "t.png"
    assert replay(str(TRACES / "server-cancel.jsonl"), "--plot", str(out)) == 2
    err = capsys.readouterr().err
    assert err.startswith("playback-gate replay: --plot needs matplotlib")
    assert err.count("\n") == 1 and not out.exists()


def test_an_unwritable_plot_path_is_refused_before_anything_is_written(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    wav = tmp_path / "played.wav"
    missing = tmp_path / "no-such-folder" / "t.png"
    trace = str(TRACES / "server-cancel.jsonl")
    assert replay(trace, "--out", str(wav), "--plot", str(missing)) == 2
    assert capsys.readouterr().err == (
        f"playback-gate replay: cannot write {missing}: no folder {missing.parent}\n"
    )
    assert not wav.exists() and list(tmp_path.iterdir()) == []
    assert replay(trace, "--plot", str(tmp_path)) == 2
    assert "it is a folder" in capsys.readouterr().err
