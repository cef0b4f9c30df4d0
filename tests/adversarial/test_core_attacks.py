"""The core against hostile input: ids, frames, floods and faulty sinks."""

from __future__ import annotations

import asyncio
import logging
import math
import tracemalloc
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gate import (
    AudioFormat,
    DropReason,
    InvalidIdError,
    PcmFrame,
    PlaybackGate,
)
from gate.validation import MAX_ID_CHARS


def _pcm(n: int = 240, dtype: str = "int16") -> PcmFrame:
    return PcmFrame(np.zeros(n, dtype=dtype), 24_000)


class _FakeFrame:
    """A frame whose fields an attacker chose."""

    def __init__(self, samples: Any, rate: Any = 24_000, channels: Any = 1) -> None:
        self.samples_per_channel = samples
        self.sample_rate = rate
        self.num_channels = channels


# ---- ids --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "call",
    [
        lambda g, i: g.expect(i),
        lambda g, i: g.flag(i, DropReason.CANCELLED),
        lambda g, i: g.flag_request(i, DropReason.CANCELLED),
        lambda g, i: g.announce(i),
        lambda g, i: g.retire(i),
    ],
)
def test_an_oversized_id_is_refused_naming_the_limit(call: Any) -> None:
    gate = PlaybackGate()
    with pytest.raises(InvalidIdError, match=str(MAX_ID_CHARS)):
        call(gate, "x" * (MAX_ID_CHARS + 1))
    assert gate.footprint()["generations"] == 0
    assert gate.footprint()["requests"] == 0


def test_an_id_at_the_limit_is_accepted() -> None:
    gate = PlaybackGate()
    gate.flag("x" * MAX_ID_CHARS, DropReason.CANCELLED)
    assert gate.is_flagged("x" * MAX_ID_CHARS)


def test_admit_drops_an_oversized_id_as_malformed_and_stores_nothing() -> None:
    gate = PlaybackGate()
    assert gate.admit("x" * (1 << 20), _pcm()) is False
    stats = gate.stats()
    assert stats.dropped_by_reason[DropReason.MALFORMED].frames == 1
    assert stats.passed.frames == 0
    assert gate.footprint()["generations"] == 0


def test_400_flagged_mebibyte_ids_cost_no_memory() -> None:
    """The issue's repro: 400 flagged 1 MiB ids added 403 MB."""
    gate = PlaybackGate()
    big = "y" * (1 << 20)
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for i in range(400):
            with pytest.raises(InvalidIdError):
                gate.flag(f"{i}{big}", DropReason.CANCELLED)
        grown = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert grown < 1 << 20  # nothing of the ids is kept


def test_flag_detail_is_bounded() -> None:
    gate = PlaybackGate()
    gate.flag("r", DropReason.FAILED, "d" * (1 << 20))
    info = gate.generation("r")
    assert info is not None and len(info.detail) <= 1024


# ---- frames -----------------------------------------------------------------------


def test_float32_frame_through_an_int16_gate_is_dropped_as_malformed() -> None:
    gate = PlaybackGate(audio_format=AudioFormat(24_000, dtype="int16"))
    assert gate.admit("r", _pcm(dtype="float32")) is False
    assert gate.admit_buffered("r", _pcm(dtype="float32")) is False
    assert gate.admit("r", _pcm()) is True
    stats = gate.stats()
    assert stats.dropped_by_reason[DropReason.MALFORMED].frames == 2
    assert stats.passed.frames == 1


@pytest.mark.parametrize("samples", [-240, math.nan, math.inf, "240", 2.5, None, True, [1]])
@pytest.mark.parametrize("buffered", [False, True])
def test_a_bad_sample_count_is_counted_once_as_malformed(samples: Any, buffered: bool) -> None:
    gate = PlaybackGate()
    admit = gate.admit_buffered if buffered else gate.admit
    assert admit("r", _FakeFrame(samples)) is False
    stats = gate.stats()
    assert stats.passed == type(stats.passed)(0, 0)
    malformed = stats.dropped_by_reason[DropReason.MALFORMED]
    assert malformed.frames == 1
    assert malformed.samples == 0
    assert stats.dropped.frames == 1


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["a", "b", "c"]),
            st.one_of(
                st.integers(-(10**6), 10**6),
                st.floats(allow_nan=True),
                st.text(max_size=3),
                st.none(),
                st.booleans(),
            ),
            st.sampled_from([24_000, 48_000, -1, 0]),
        ),
        max_size=40,
    ),
    st.booleans(),
)
def test_stats_never_go_negative_or_nan(
    frames: list[tuple[str, Any, Any]], with_format: bool
) -> None:
    gate = PlaybackGate(audio_format=AudioFormat(24_000) if with_format else None)
    admitted = 0
    for gid, samples, rate in frames:
        if gate.admit(gid, _FakeFrame(samples, rate)):
            admitted += 1
    stats = gate.stats()
    assert stats.passed.frames == admitted
    for counts in (stats.passed, stats.dropped, *stats.dropped_by_reason.values()):
        assert isinstance(counts.samples, int) and counts.samples >= 0
        assert isinstance(counts.frames, int) and counts.frames >= 0
    assert stats.passed.frames + stats.dropped.frames == len(frames)


# ---- floods -----------------------------------------------------------------------


def test_a_retire_flood_never_evicts_a_flagged_tombstone() -> None:
    """10,000 response.done for made-up ids must not release a cancelled reply."""
    gate = PlaybackGate(max_tombstones=100)
    gate.flag("resp_cancelled", DropReason.CANCELLED)
    for i in range(10_000):
        gate.retire(f"made_up_{i}")
    assert gate.admit("resp_cancelled", _pcm()) is False
    stats = gate.stats()
    assert stats.tombstones_forgotten == 10_000 - 100
    assert stats.flagged_forgotten == 0


def test_a_flag_flood_is_bounded_and_counted() -> None:
    gate = PlaybackGate(max_tombstones=100, max_flagged=50)
    for i in range(1_000):
        gate.flag(f"f{i}", DropReason.CANCELLED)
    assert gate.footprint()["flagged"] == 50
    assert gate.stats().flagged_forgotten == 950
    assert gate.is_flagged("f999")


def test_retired_then_flagged_moves_to_the_flagged_fifo() -> None:
    gate = PlaybackGate(max_tombstones=10)
    gate.retire("r")
    gate.flag("r", DropReason.CANCELLED)
    for i in range(100):
        gate.retire(f"x{i}")
    assert gate.is_flagged("r")


# ---- sink faults ------------------------------------------------------------------


class _Sink:
    def __init__(self, exc: BaseException | None = None) -> None:
        self.exc = exc
        self.purged: list[str] = []

    def purge(self, generation_id: str, reason: DropReason) -> None:
        self.purged.append(generation_id)
        if self.exc is not None:
            raise self.exc


@pytest.mark.parametrize(
    "exc", [asyncio.CancelledError(), KeyboardInterrupt(), SystemExit(3), GeneratorExit()]
)
def test_a_sink_raising_a_base_exception_does_not_stop_the_others(exc: BaseException) -> None:
    gate = PlaybackGate()
    first, bad, last, also_bad = _Sink(), _Sink(exc), _Sink(), _Sink(KeyboardInterrupt())
    for sink in (first, bad, last, also_bad):
        gate.add_sink(sink)
    with pytest.raises(type(exc)) as raised:
        gate.flag("r", DropReason.INTERRUPTED)
    assert raised.value is exc  # the first one, re-raised as is
    assert [s.purged for s in (first, bad, last, also_bad)] == [["r"]] * 4
    assert gate.is_flagged("r")


def test_a_sink_raising_an_exception_is_logged_and_swallowed(
    caplog: pytest.LogCaptureFixture,
) -> None:
    gate = PlaybackGate()
    bad, good = _Sink(RuntimeError("boom")), _Sink()
    gate.add_sink(bad)
    gate.add_sink(good)
    assert gate.flag("r", DropReason.INTERRUPTED) is True
    assert good.purged == ["r"]
    assert "boom" in caplog.text


@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.sampled_from([None, RuntimeError, ValueError, KeyboardInterrupt, SystemExit]),
        min_size=1,
        max_size=6,
    )
)
def test_every_sink_is_purged_whatever_the_others_raise(
    faults: list[type[BaseException] | None],
) -> None:
    gate = PlaybackGate()
    sinks = [_Sink(f() if f is not None else None) for f in faults]
    for sink in sinks:
        gate.add_sink(sink)
    fatal = [f for f in faults if f is not None and not issubclass(f, Exception)]
    if fatal:
        with pytest.raises(fatal[0]):
            gate.flag("r", DropReason.CANCELLED)
    else:
        gate.flag("r", DropReason.CANCELLED)
    assert all(s.purged == ["r"] for s in sinks)


def test_a_flood_of_longest_ids_stays_within_a_byte_bound(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Ids at the limit, every kind of record filled past its cap: memory is capped in bytes.

    The documented bound is a few hundred bytes per record plus its id; with these caps
    (8 live, 200 retired, 200 flagged, 64 pending, 200 finished requests) that is well
    under 1 MB, whatever the number of ids thrown at it.
    """
    gate = PlaybackGate(max_live=8, max_tombstones=200, max_flagged=200, max_pending=64)
    frame = _pcm()
    n = 0

    def fresh() -> str:
        nonlocal n
        n += 1
        return f"{n:08d}".ljust(MAX_ID_CHARS, "z")

    def flood() -> None:
        for _ in range(500):
            gate.admit(fresh(), frame)
            gate.retire(fresh())
            gate.flag(fresh(), DropReason.CANCELLED, "d" * 4096)
            request = fresh()
            gate.expect(request)
            gate.bind(request, fresh())

    caplog.set_level(logging.ERROR, "playback_gate")  # captured warnings would count too
    tracemalloc.start()  # before anything is held, so replaced records count as freed
    try:
        flood()  # fill every cap first
        before = tracemalloc.get_traced_memory()[0]
        flood()
        flood()
        grown = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    footprint = gate.footprint()
    assert footprint["generations"] <= 8 + 200 + 200
    assert footprint["requests"] <= 200 + 64
    assert grown < 64 << 10, f"the ledger grew by {grown} bytes after its caps were full"


def test_a_malformed_frame_log_line_stays_short(caplog: pytest.LogCaptureFixture) -> None:
    gate = PlaybackGate()
    gate.admit("x" * (1 << 20), _pcm())
    assert "dropped malformed frame #1" in caplog.text
    assert len(caplog.text) < 1000
