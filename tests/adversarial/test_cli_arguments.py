"""Hostile command-line arguments: exit 0 or 2, a one-line error, never a traceback.

The named defects first, through the real commands (each is refused before any work, so
nothing long runs). Then hypothesis throws generated argument lists at ``main([...])`` for
``speakers``, ``demo``, ``simulator`` and ``bench`` with each command's work replaced by a
no-op: what is fuzzed is the parsing and the checks that run before the work.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import gate.cli as host
from gate.cli import main
from integrations.speakers import _devices as devices

FAKE_DEVICES = [
    {"index": 0, "name": "speaker A", "max_output_channels": 2, "hostapi": 0},
    {"index": 1, "name": "speaker B", "max_output_channels": 2, "hostapi": 0},
]


@pytest.fixture(autouse=True)
def fake_devices(monkeypatch: pytest.MonkeyPatch) -> None:
    """Two output devices, whatever this machine has (``--device`` checks are deterministic)."""
    listed = [{**d, "default_samplerate": 48_000.0} for d in FAKE_DEVICES]
    monkeypatch.setattr(devices, "_query", lambda sd: listed)


def run_main(argv: list[str]) -> tuple[int, str, str]:
    """Run ``main(argv)`` in process; return the exit status, stdout and stderr."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(argv)
        except SystemExit as stop:
            code = stop.code if isinstance(stop.code, int) else 1
    return code, out.getvalue(), err.getvalue()


def assert_usage_error(code: int, err: str, *words: str) -> None:
    assert code == 2, err
    assert "Traceback" not in err
    lines = err.splitlines()
    assert len(lines) == 1, err
    for word in words:
        assert word in lines[0], (word, lines[0])


NAMED_DEFECTS = [
    (["speakers", "--fade-ms", "-5"], ["--fade-ms", "'-5'"]),
    (["speakers", "--fade-ms", "nan"], ["--fade-ms", "'nan'"]),
    (["speakers", "--samplerate", "-1"], ["--samplerate", "'-1'"]),
    (["speakers", "--samplerate", "0"], ["--samplerate", "'0'"]),
    (["speakers", "--wav", "/nonexistent/x.wav"], ["--wav", "/nonexistent"]),
    (["speakers", "--device", "typo"], ["'typo'", "0: speaker A", "1: speaker B"]),
    (["demo", "--wav", "/nonexistent/x.wav"], ["--wav", "/nonexistent"]),
    (["demo", "--device", "typo"], ["'typo'", "0: speaker A"]),
    (["simulator", "--port", "70000"], ["--port", "'70000'"]),
    (["simulator", "--port", "-1"], ["--port", "'-1'"]),
    (["bench", "--json", "/nonexistent/x.json"], ["--json", "/nonexistent"]),
    (["bench", "--plot", "/nonexistent/x.png"], ["--plot", "/nonexistent"]),
    (["bench", "--only", "nope"], ["--only", "'nope'"]),
]


@pytest.mark.parametrize(
    ("argv", "words"), NAMED_DEFECTS, ids=[" ".join(a) for a, _ in NAMED_DEFECTS]
)
def test_named_defects_are_one_line_errors(argv: list[str], words: list[str]) -> None:
    started = time.monotonic()
    code, out, err = run_main(argv)
    assert_usage_error(code, err, *words)
    assert out == ""  # refused before any work: nothing measured, played or served
    assert time.monotonic() - started < 30  # not minutes of benchmark first


def test_an_explicit_device_is_never_swapped_for_a_wav(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    code, _, err = run_main(["speakers", "--device", "7"])
    assert_usage_error(code, err, "index 7")
    assert list(tmp_path.iterdir()) == []


# ---- fuzzing the parsing and checks ---------------------------------------------------

OPTIONS: dict[str, list[str]] = {
    "speakers": ["--device", "-d", "--fade-ms", "--samplerate", "--wav"],
    "demo": ["--wav", "--device", "--deadline", "--audio"],
    "simulator": ["--port", "--chunks", "--chunk-ms", "--audio"],
    "bench": ["--json", "--plot", "--only"],
}
FLAGS: dict[str, list[str]] = {
    "speakers": ["--list"],
    "demo": ["--fast", "--no-baseline"],
    "simulator": [],
    "bench": ["--quick", "--no-progress"],
}


@contextlib.contextmanager
def work_replaced() -> Iterator[list[Any]]:
    """Every command's ``run`` replaced by a no-op that records its arguments."""
    calls: list[Any] = []

    def no_op(args: Any) -> int:
        calls.append(args)
        return 0

    stubs = [dataclasses.replace(c, run=no_op) for c in host.load_commands()]
    saved = host.load_commands
    host.load_commands = lambda: stubs
    try:
        yield calls
    finally:
        host.load_commands = saved


def values(tmp: Path) -> st.SearchStrategy[str]:
    numbers = st.one_of(
        st.integers(-(10**20), 10**20).map(str),
        st.floats(allow_nan=True, allow_infinity=True).map(repr),
        st.sampled_from(["0", "-0", "1e309", "0x10", "  5 ", "", "-", "--", "1_000"]),
    )
    paths = st.sampled_from(
        [
            "/nonexistent/x.wav",
            str(tmp),
            str(tmp / "out.wav"),
            str(tmp / "missing" / "x.json"),
            "/proc/x.json",
            "x" * 5000,
            "a\0b",
            "",
        ]
    )
    names = st.sampled_from(["speaker A", "speaker", "0", "1", "9", "typo", "overhead,leaks"])
    return st.one_of(numbers, paths, names, st.text(max_size=40))


@pytest.mark.parametrize("command", sorted(OPTIONS))
@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_fuzzed_arguments_exit_0_or_2_without_a_traceback(
    command: str, data: st.DataObject, tmp_path: Path
) -> None:
    option = st.tuples(st.sampled_from(OPTIONS[command]), values(tmp_path)).map(list)
    flag = st.sampled_from(FLAGS[command]).map(lambda f: [f]) if FLAGS[command] else st.nothing()
    parts = data.draw(st.lists(st.one_of(option, flag), max_size=4))
    argv = [command, *(word for part in parts for word in part)]
    with work_replaced() as calls:
        code, _, err = run_main(argv)
    assert code in (0, 2), (argv, code, err)
    assert "Traceback" not in err
    if code == 2:
        assert len(err.splitlines()) == 1, err
        assert calls == []  # refused before the work
    else:
        assert len(calls) == 1
