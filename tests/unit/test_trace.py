"""Trace format, recorder (secret scrubbing, LiveKit attach) and the bounded reader."""

from __future__ import annotations

import io
import json
import tracemalloc
from pathlib import Path
from typing import Any

import pytest
from livekit.rtc import EventEmitter

from integrations.openai_realtime.trace import (
    REDACTED,
    TraceError,
    TraceLimits,
    TraceRecorder,
    iter_trace,
    read_trace,
    scrub,
)
from integrations.openai_realtime.trace.reader import parse_line
from integrations.openai_realtime.trace.script import pcm16_delta


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


# ---- recorder -------------------------------------------------------------------------


def test_recorder_writes_the_documented_format(tmp_path: Path) -> None:
    clock = FakeClock()
    path = tmp_path / "t.jsonl"
    with TraceRecorder(path, clock=clock) as rec:
        clock.now = 100.25
        rec.record_client({"type": "response.create", "event_id": "e1"})
        clock.now = 101.5
        rec.record_server({"type": "response.created", "response": {"id": "r1"}})
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert lines == [
        {"t": 0.25, "from": "client", "event": {"type": "response.create", "event_id": "e1"}},
        {
            "t": 1.5,
            "from": "server",
            "event": {"type": "response.created", "response": {"id": "r1"}},
        },
    ]
    entries = read_trace(path)
    assert [(e.t, e.direction, e.line) for e in entries] == [
        (0.25, "client", 1),
        (1.5, "server", 2),
    ]
    assert rec.written == 2


def test_recorder_leaves_out_microphone_audio_and_unusable_events() -> None:
    out = io.StringIO()
    rec = TraceRecorder(out)
    assert not rec.record_client({"type": "input_audio_buffer.append", "audio": "AAAA"})
    assert not rec.record_client(["not", "an", "event"])  # type: ignore[arg-type]
    assert not rec.record_server({"no": "type"})
    assert not rec.record_server({"type": "x", "bad": object()})
    assert rec.record_server({"type": "session.created", "session": {}})
    assert out.getvalue().count("\n") == 1 and rec.skipped == 4
    rec.close()
    assert not out.closed  # a stream the recorder did not open is left open


def test_recorder_can_keep_microphone_audio_when_asked() -> None:
    out = io.StringIO()
    rec = TraceRecorder(out, exclude_types=())
    assert rec.record_client({"type": "input_audio_buffer.append", "audio": "AAAA"})


SECRETS = ["sk-proj-abcdefgh12345678", "ek_68af1234567890abcdef", "Bearer eyJhbGciOi.secret"]


def test_scrub_removes_keys_headers_and_tokens_recursively() -> None:
    event = {
        "type": "session.created",
        "session": {
            "client_secret": {"value": "ek_68af1234567890abcdef", "expires_at": 1},
            "headers": {"Authorization": "Bearer eyJhbGciOi.secret", "X-Api-Key": "k"},
            "tools": [{"name": "t", "api_key": "sk-proj-abcdefgh12345678"}],
            "instructions": "use key sk-proj-abcdefgh12345678 and Bearer eyJhbGciOi.secret",
            "usage": {"input_tokens": 5, "output_tokens": 7},
            "openai_api_key": "x",
            "access_token": "y",
        },
    }
    original = json.loads(json.dumps(event))
    clean = scrub(event)
    text = json.dumps(clean)
    for secret in ["sk-proj", "ek_68af", "eyJhbGciOi", '"k"', '"x"', '"y"']:
        assert secret not in text
    session = clean["session"]
    assert session["client_secret"] == REDACTED and session["headers"]["Authorization"] == REDACTED
    assert (
        session["headers"]["X-Api-Key"] == REDACTED and session["tools"][0]["api_key"] == REDACTED
    )
    assert session["instructions"] == f"use key {REDACTED} and Bearer {REDACTED}"
    assert session["usage"] == {"input_tokens": 5, "output_tokens": 7}  # not secrets
    assert event == original  # the caller's event is untouched


def test_recorder_never_writes_secrets(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    with TraceRecorder(path) as rec:
        for secret in SECRETS:
            rec.record_server({"type": "error", "error": {"message": f"bad key {secret}"}})
            rec.record_client({"type": "session.update", "session": {"api_key": secret}})
    text = path.read_text()
    assert rec.written == 6
    for secret in SECRETS:
        assert secret.split()[-1] not in text


def test_scrub_bounds_nesting() -> None:
    deep: Any = "leaf"
    for _ in range(200):
        deep = [deep]
    clean = scrub(deep)
    depth = 0
    while isinstance(clean, list):
        clean, depth = clean[0], depth + 1
    assert clean == REDACTED and depth <= 66


def test_recorder_attaches_to_a_livekit_event_emitter_and_detaches() -> None:
    """RealtimeSession is a livekit EventEmitter; the recorder uses only on/off."""
    session: EventEmitter[str] = EventEmitter()
    out = io.StringIO()
    rec = TraceRecorder(out)
    rec.attach(session)
    session.emit("openai_client_event_queued", {"type": "response.create", "event_id": "e"})
    session.emit(
        "openai_server_event_received", {"type": "response.created", "response": {"id": "r"}}
    )
    session.emit("generation_created", {"type": "ignored"})
    rec.detach()
    session.emit("openai_server_event_received", {"type": "response.done"})
    rows = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [(r["from"], r["event"]["type"]) for r in rows] == [
        ("client", "response.create"),
        ("server", "response.created"),
    ]


# ---- reader ------------------------------------------------------------------------------


def _write(tmp_path: Path, *lines: str | bytes) -> Path:
    path = tmp_path / "trace.jsonl"
    path.write_bytes(b"".join((x.encode() if isinstance(x, str) else x) + b"\n" for x in lines))
    return path


GOOD = '{"t": 0.0, "from": "client", "event": {"type": "response.create"}}'


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ("{not json", "invalid JSON"),
        ('{"t": 1, "from": "server", "event": {"response": {}}}', "event has no 'type'"),
        ('{"t": 1, "from": "server", "event": {"type": ""}}', "event has no 'type'"),
        ('{"t": 1, "from": "server", "event": []}', "'event' must be a JSON object"),
        ('{"t": -1, "from": "server", "event": {"type": "x"}}', "'t' must be a finite number"),
        ('{"t": NaN, "from": "server", "event": {"type": "x"}}', "'t' must be a finite number"),
        ('{"t": true, "from": "server", "event": {"type": "x"}}', "'t' must be a finite number"),
        ('{"t": 1, "from": "model", "event": {"type": "x"}}', "'from' must be"),
        ("[1, 2]", "expected a JSON object"),
        (
            '{"t": 1, "from": "server", "event": {"type": "x", "a": ' + "[" * 40 + "]" * 40 + "}}",
            "nested deeper",
        ),
        ("[" * 100_000 + "]" * 100_000, "nested deeper"),
        ('{"t": 0.0, "from": "server", "event": {"type": "x"}}', "goes back in time"),
    ],
)
def test_bad_lines_give_a_clear_error_with_the_line_number(
    tmp_path: Path, bad: str, message: str
) -> None:
    later = '{"t": 5.0, "from": "client", "event": {"type": "response.create"}}'
    path = _write(tmp_path, GOOD, later, bad)
    with pytest.raises(TraceError, match=f"^line 3: .*{message}") as info:
        read_trace(path)
    assert info.value.line == 3


def test_non_utf8_line(tmp_path: Path) -> None:
    with pytest.raises(TraceError, match="line 2: not UTF-8"):
        read_trace(_write(tmp_path, GOOD, b'{"t": 1, "from": "server", "event": {"type": "\xff"}}'))


def test_blank_lines_are_skipped_and_line_numbers_still_count(tmp_path: Path) -> None:
    entries = read_trace(_write(tmp_path, GOOD, "", "   ", GOOD.replace("0.0", "1.0")))
    assert [e.line for e in entries] == [1, 4]


def test_a_huge_line_is_refused_without_reading_it_whole(tmp_path: Path) -> None:
    limit = 64 * 1024
    delta = pcm16_delta(5_000_000)  # ~13 MB of base64 on one line
    line = json.dumps(
        {
            "t": 1,
            "from": "server",
            "event": {"type": "response.output_audio.delta", "response_id": "r", "delta": delta},
        }
    )
    path = _write(tmp_path, GOOD, line)
    del delta, line
    tracemalloc.start()
    try:
        with pytest.raises(TraceError, match=f"line 2: line is longer than {limit} bytes"):
            read_trace(path, TraceLimits(max_line_bytes=limit))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 1_000_000  # the 13 MB line was never held in memory


def test_a_line_exactly_at_the_limit_is_accepted() -> None:
    line = GOOD.encode()
    entries = list(
        iter_trace(io.BytesIO(line + b"\n" + line), TraceLimits(max_line_bytes=len(line)))
    )
    assert len(entries) == 2
    with pytest.raises(TraceError, match="line 1: line is longer"):
        list(iter_trace(io.BytesIO(line + b"\n"), TraceLimits(max_line_bytes=len(line) - 1)))


def test_a_line_of_many_small_containers_is_refused_before_parsing(tmp_path: Path) -> None:
    n = (8 << 20) // 3 - 100  # inside the 8 MiB line limit; parsed, it took 393 MiB
    bomb = b'{"t": 1, "from": "server", "event": {"type": "x", "a": [' + b"{}," * n + b"{}]}}"
    tracemalloc.start()
    try:
        with pytest.raises(TraceError, match=r"^line 2: line holds 2796\d{3} '\{' / '\[' bytes"):
            parse_line(bomb, 2)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 100_000  # counted in place: nothing was built
    with pytest.raises(TraceError, match="more than 100000"):
        read_trace(_write(tmp_path, GOOD, bomb))
    del bomb


def test_the_container_bound_is_a_limit() -> None:
    line = b'{"t": 1, "from": "server", "event": {"type": "x", "a": [{}, {}]}}'  # 5 containers
    assert parse_line(line, 1, TraceLimits(max_containers=5)) is not None
    with pytest.raises(TraceError, match=r"line 1: line holds 5 .* more than 4"):
        parse_line(line, 1, TraceLimits(max_containers=4))
    audio = GOOD.replace('"response.create"', '"x", "delta": "' + pcm16_delta(100_000) + '"')
    assert (
        parse_line(audio.encode(), 1, TraceLimits(max_containers=2)) is not None
    )  # no '{' in base64
