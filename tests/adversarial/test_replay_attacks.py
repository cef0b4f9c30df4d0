"""``playback-gate replay`` against hostile arguments, traces and signals.

Every refusal must be one line on stderr, exit 2, no traceback, and no file written:
neither an output nor a hidden temp file. The CLI runs in-process through
``gate.cli.main`` (fast enough for hypothesis); signals need a real process.
"""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from gate.cli import main
from integrations.openai_realtime.trace import TraceLimits, TraceRecorder, read_trace
from integrations.openai_realtime.trace.script import TraceScript

REPO = Path(__file__).resolve().parents[2]
_SETTINGS = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def _trace() -> TraceScript:
    s = TraceScript()
    s.response_create(0.0, "req")
    s.response_created(0.1, "resp_1", "req")
    s.audio(0.2, "resp_1", 480)
    s.response_done(0.3, "resp_1")
    return s


def _replay(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    """Run ``playback-gate replay ARGV`` in-process; return the exit code and stderr."""
    try:
        code = main(["replay", *argv])
    except SystemExit as e:  # argparse usage errors
        code = e.code if isinstance(e.code, int) else 2
    err = capsys.readouterr().err
    return code, err


def _files(folder: Path) -> set[str]:
    return {p.name for p in folder.iterdir()}


def _assert_refused(code: int, err: str, *needles: str) -> None:
    assert code == 2, err
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])


# ---- outputs that could only lose data ------------------------------------------------


@pytest.mark.parametrize("flag", ["--out", "--report", "--plot"])
@pytest.mark.parametrize("spelling", ["same", "dot", "symlink", "hardlink"])
def test_an_output_that_is_the_trace_is_refused_and_the_trace_kept(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], flag: str, spelling: str
) -> None:
    trace = _trace().write(tmp_path / "t.jsonl")
    original = trace.read_bytes()
    target = {"same": trace, "dot": tmp_path / "." / "t.jsonl"}.get(spelling)
    if spelling == "symlink":
        target = tmp_path / "link.jsonl"
        target.symlink_to(trace)
    elif spelling == "hardlink":
        target = tmp_path / "hard.jsonl"
        os.link(trace, target)
    assert target is not None
    before = _files(tmp_path)
    code, err = _replay(capsys, str(trace), flag, str(target))
    _assert_refused(code, err, flag, "is the trace being replayed")
    assert trace.read_bytes() == original
    assert _files(tmp_path) == before


def test_out_and_report_naming_one_file_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    trace = _trace().write(tmp_path / "t.jsonl")
    code, err = _replay(
        capsys, str(trace), "--out", str(tmp_path / "x"), "--report", str(tmp_path / "x")
    )
    _assert_refused(code, err, "--out", "--report", "same file")
    assert _files(tmp_path) == {"t.jsonl"}


@pytest.mark.parametrize(
    ("which", "needle"),
    [("dir", "is a directory"), ("missing", "does not exist"), ("device", "not a regular file")],
)
def test_an_unusable_report_is_found_before_the_wav_is_written(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], which: str, needle: str
) -> None:
    trace = _trace().write(tmp_path / "t.jsonl")
    (tmp_path / "dir").mkdir()
    report = {"dir": tmp_path / "dir", "missing": tmp_path / "nope" / "r.json"}.get(
        which, Path(os.devnull)
    )
    code, err = _replay(
        capsys, str(trace), "--out", str(tmp_path / "w.wav"), "--report", str(report)
    )
    _assert_refused(code, err, "--report", str(report), needle)
    assert _files(tmp_path) == {"t.jsonl", "dir"}
    assert Path(os.devnull).exists() and stat.S_ISCHR(os.stat(os.devnull).st_mode)


# ---- traces that once crashed it --------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "needle"),
    [
        (
            '{"t": 0.1, "from": "server", "event": {"type": "response.created", '
            '"response": {"id": "resp_\\ud800"}}}',
            "lone UTF-16 surrogate",
        ),
        ('{"t": 0.1, "from": "server", "event": {"\\udfff": 1, "type": "x"}}', "surrogate"),
        ('{"t": ' + "1" * 400 + ', "from": "server", "event": {"type": "x"}}', "'t' must be"),
        ('{"t": -' + "9" * 400 + ', "from": "server", "event": {"type": "x"}}', "'t' must be"),
        ('{"t": 1e999, "from": "server", "event": {"type": "x"}}', "'t' must be"),
        ('{"t": NaN, "from": "server", "event": {"type": "x"}}', "'t' must be"),
    ],
)
def test_a_hostile_line_is_exit_2_naming_the_line_with_no_output(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], line: str, needle: str
) -> None:
    trace = tmp_path / "t.jsonl"
    trace.write_text(_trace().to_jsonl() + line + "\n")
    bad_line = len(trace.read_text().splitlines())
    out, report = tmp_path / "o.wav", tmp_path / "o.json"
    code, err = _replay(capsys, str(trace), "--out", str(out), "--report", str(report))
    _assert_refused(code, err, f"line {bad_line}:", needle)
    assert _files(tmp_path) == {"t.jsonl"}


def test_a_valid_surrogate_pair_is_text_and_plays(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    trace = tmp_path / "t.jsonl"
    trace.write_text(_trace().to_jsonl().replace("resp_1", "resp_\\ud83d\\ude00"))
    code, _ = _replay(capsys, str(trace), "--report", str(tmp_path / "r.json"))
    assert code == 0
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["responses"][0]["response_id"] == "resp_\U0001f600"


def test_outputs_honour_the_umask(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    trace = _trace().write(tmp_path / "t.jsonl")
    old = os.umask(0o027)
    try:
        code, _ = _replay(
            capsys,
            str(trace),
            "--out",
            str(tmp_path / "w.wav"),
            "--report",
            str(tmp_path / "r.json"),
        )
    finally:
        os.umask(old)
    assert code == 0
    for name in ("w.wav", "r.json"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o640


def test_an_error_names_the_users_path_not_the_temp_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    trace = _trace().write(tmp_path / "t.jsonl")
    out_dir = tmp_path / "full"
    out_dir.mkdir()
    # Fill the name space the temp file needs: a WAV path whose temp name is too long.
    long_name = "w" * 250 + ".wav"
    code, err = _replay(capsys, str(trace), "--out", str(out_dir / long_name))
    _assert_refused(code, err, long_name)
    assert ".tmp" not in err
    assert _files(out_dir) == set()


# ---- signals ----------------------------------------------------------------------------


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGHUP, signal.SIGTERM])
def test_a_signal_mid_replay_exits_cleanly_and_leaves_no_temp_file(
    tmp_path: Path, sig: signal.Signals
) -> None:
    """The trace is a FIFO the test holds open, so the replay is mid-way, its WAV half written."""
    fifo = tmp_path / "t.fifo"
    os.mkfifo(fifo)
    proc = subprocess.Popen(
        [sys.executable, "-m", "gate.cli", "replay", str(fifo), "--out", str(tmp_path / "p.wav")],
        cwd=REPO,
        stderr=subprocess.PIPE,
        text=True,
    )
    writer = os.open(fifo, os.O_RDWR)  # never blocks; keeps the replay waiting for more
    try:
        s = TraceScript()
        s.audio(0.0, "r", 480)
        s.add(1.0, "server", {"type": "rate_limits.updated"})
        os.write(writer, s.to_jsonl().encode())
        deadline = time.monotonic() + 20
        while not any(p.stat().st_size for p in tmp_path.glob(".p.wav.*.tmp")):
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.01)
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=20)
    finally:
        os.close(writer)
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 128 + sig, err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert _files(tmp_path) == {"t.fifo"}


# ---- fuzzing ----------------------------------------------------------------------------

_PATHS = st.sampled_from(["t.jsonl", "./t.jsonl", "o.wav", "o.json", "dir", "nope/x", "", "-"])
_OPTIONS = st.lists(
    st.one_of(
        st.tuples(st.sampled_from(["--out", "--report"]), _PATHS),
        st.tuples(
            st.sampled_from(["--timeout", "--max-duration", "--max-line-bytes"]),
            st.sampled_from(["-1", "0", "nan", "inf", "1e999", "x", "10", "3.5", "9" * 30]),
        ),
        st.tuples(st.sampled_from(["--unattributed"]), st.sampled_from(["play", "nope", ""])),
    ),
    max_size=4,
)


@_SETTINGS
@given(_OPTIONS)
def test_no_argument_combination_gives_a_traceback_or_clobbers_the_trace(
    tmp_path_factory: pytest.TempPathFactory,
    capsys: pytest.CaptureFixture[str],
    options: list[tuple[str, str]],
) -> None:
    folder = tmp_path_factory.mktemp("args")
    trace = _trace().write(folder / "t.jsonl")
    original = trace.read_bytes()
    (folder / "dir").mkdir()
    argv = [str(trace)]
    for flag, value in options:
        argv += [flag, str(folder / value) if flag in ("--out", "--report") and value else value]
    cwd = os.getcwd()
    os.chdir(folder)
    try:
        code, err = _replay(capsys, *argv)
    finally:
        os.chdir(cwd)
    assert code in (0, 2), err
    assert "Traceback" not in err
    assert trace.read_bytes() == original
    assert not [p for p in folder.iterdir() if p.name.endswith(".tmp")]
    if code == 2:
        assert err.strip(), "a refusal must say why"


_JSON_VALUES: Any = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(),
        st.floats(allow_nan=True),
        st.text(max_size=6),
        st.sampled_from(["response.created", "response.done", "response.output_audio.delta"]),
    ),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3)
    ),
    max_leaves=8,
)


_IDS = st.sampled_from(["r1", "r2", "req", "", "x" * 300])
_EVENTS = st.one_of(
    st.builds(
        lambda cei: {"type": "response.create", "response": {"metadata": {"client_event_id": cei}}},
        _IDS,
    ),
    st.builds(
        lambda rid, cei: {
            "type": "response.created",
            "response": {"id": rid, "metadata": {"client_event_id": cei}},
        },
        _IDS,
        _IDS,
    ),
    st.builds(
        lambda rid, status: {"type": "response.done", "response": {"id": rid, "status": status}},
        _IDS,
        st.sampled_from(["completed", "cancelled", "failed", "odd", 3]),
    ),
    st.builds(
        lambda rid, delta: {
            "type": "response.output_audio.delta",
            "response_id": rid,
            "delta": delta,
        },
        _IDS,
        st.sampled_from(["AAAA" * 60, "", "!!", "AQID", None]),
    ),
    st.builds(lambda rid: {"type": "response.cancel", "response_id": rid}, _IDS),
    st.builds(lambda session: {"type": "session.updated", "session": session}, _JSON_VALUES),
    st.fixed_dictionaries({"type": st.text(max_size=8)}, optional={"response": _JSON_VALUES}),
)


@st.composite
def _trace_text(draw: st.DrawFn) -> str:
    """A plausible trace (time moving forward), half the time with one hostile line in it."""
    n = draw(st.integers(1, 12))
    hostile_at = draw(st.integers(0, 2 * n - 1))  # >= n: none
    hostile = draw(st.sampled_from(["junk t", "bad from", "raw", "mangled", "backwards"]))
    lines, t = [], 0.0
    for i in range(n):
        t += draw(st.floats(0, 2))
        kind = hostile if i == hostile_at else "entry"
        if kind == "raw":
            lines.append(draw(st.text(max_size=30)))
            continue
        entry = {
            "t": t,
            "from": draw(st.sampled_from(["client", "server", "server"])),
            "event": draw(_EVENTS),
        }
        if kind == "junk t":
            entry["t"] = draw(st.one_of(st.integers(-3, 10**30), _JSON_VALUES))
        elif kind == "bad from":
            entry["from"] = draw(st.sampled_from(["x", "", None, 1]))
        elif kind == "backwards":
            entry["t"] = -draw(st.floats(0.001, 5)) + t
        text = json.dumps(entry)
        if kind == "mangled":
            cut = draw(st.integers(0, len(text)))
            bad = draw(st.sampled_from(["\\ud800", "\\u0000", "[", "}", "\x00"]))
            text = text[:cut] + bad + text[cut:]
        lines.append(text)
    return "\n".join(lines) + "\n"


@_SETTINGS
@given(_trace_text())
def test_no_trace_gives_a_traceback_or_a_partial_output(
    tmp_path_factory: pytest.TempPathFactory,
    capsys: pytest.CaptureFixture[str],
    text: str,
) -> None:
    folder = tmp_path_factory.mktemp("trace")
    trace = folder / "t.jsonl"
    trace.write_text(text, encoding="utf-8", errors="surrogatepass")
    out, report = folder / "o.wav", folder / "o.json"
    code, err = _replay(capsys, str(trace), "--out", str(out), "--report", str(report))
    event("replayed" if code == 0 else "refused")
    assert "Traceback" not in err
    if code == 0:
        assert out.exists() and report.exists()
        for outcome in json.loads(report.read_text())["responses"]:
            assert 0 <= outcome["samples_played"] <= outcome["samples_received"]
            assert len(outcome["response_id"]) <= 256
    else:
        assert code == 2 and err.startswith("playback-gate replay: ")
        assert _files(folder) == {"t.jsonl"}, "a refused trace writes nothing"


def test_the_recorder_leaves_out_what_the_reader_would_refuse(tmp_path: Path) -> None:
    """A recorded trace always replays: an oversized event is skipped, not written."""
    path = tmp_path / "t.jsonl"
    limits = TraceLimits(max_line_bytes=4096, max_containers=50)
    with TraceRecorder(path, limits=limits) as rec:
        assert rec.record_server({"type": "rate_limits.updated"})
        assert not rec.record_server({"type": "x", "blob": "b" * 5000})
        assert not rec.record_server({"type": "x", "list": [[] for _ in range(60)]})
        assert not rec.record_server({"type": "x", "id": "resp_\ud800"})  # not UTF-8
    assert rec.written == 1 and rec.skipped == 3
    assert len(read_trace(path, limits)) == 1
