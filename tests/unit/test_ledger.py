"""Unit tests for the gate's rules, one group per rule."""

from __future__ import annotations

import logging
import threading

import numpy as np
import pytest

from gate import (
    AlreadyBoundError,
    AudioFormat,
    DropReason,
    FrameFormatError,
    GateError,
    GenerationState,
    InvalidIdError,
    PcmFrame,
    PlaybackGate,
    UnknownRequestError,
    VirtualClock,
)

RATE = 24_000


def frame(
    samples: int = 240, rate: int = RATE, channels: int = 1, dtype: str = "int16"
) -> PcmFrame:
    shape = (samples,) if channels == 1 else (samples, channels)
    return PcmFrame(np.zeros(shape, dtype=dtype), rate)


class RecordingSink:
    def __init__(self) -> None:
        self.purged: list[tuple[str, DropReason]] = []

    def purge(self, generation_id: str, reason: DropReason) -> None:
        self.purged.append((generation_id, reason))


@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock()


@pytest.fixture
def gate(clock: VirtualClock) -> PlaybackGate:
    return PlaybackGate(audio_format=AudioFormat(RATE), clock=clock, request_timeout=10.0)


# ---- expect / bind ----------------------------------------------------------


def test_bound_generation_is_live_and_passes(gate: PlaybackGate) -> None:
    gate.expect("req")
    binding = gate.bind("req", "resp")
    assert binding.live and not binding.dead_on_arrival and binding.reason is None
    assert gate.admit("resp", frame())
    info = gate.generation("resp")
    assert info is not None and info.request_id == "req" and info.passed.samples == 240


def test_expect_returns_deadline_on_injected_clock(gate: PlaybackGate, clock: VirtualClock) -> None:
    clock.set(5.0)
    assert gate.expect("a") == 15.0
    assert gate.expect("b", timeout=0.5) == 5.5
    assert gate.next_deadline() == 5.5


def test_cancelled_request_makes_generation_dead_on_arrival(gate: PlaybackGate) -> None:
    sink = RecordingSink()
    gate.add_sink(sink)
    gate.expect("req")
    assert gate.flag_request("req", DropReason.CANCELLED, "user gave up") is None
    binding = gate.bind("req", "resp")
    assert binding.dead_on_arrival and binding.reason is DropReason.CANCELLED
    assert not gate.admit("resp", frame())
    assert sink.purged == [("resp", DropReason.CANCELLED)]
    info = gate.generation("resp")
    assert info is not None and info.detail == "user gave up"


def test_bind_after_deadline_is_timed_out_even_without_expire(
    gate: PlaybackGate, clock: VirtualClock
) -> None:
    gate.expect("req", timeout=2.0)
    clock.advance(2.0)
    binding = gate.bind("req", "late")
    assert binding.dead_on_arrival and binding.reason is DropReason.TIMED_OUT
    assert not gate.admit("late", frame())
    assert gate.stats().requests_timed_out == 1


def test_bind_just_before_deadline_is_live(gate: PlaybackGate, clock: VirtualClock) -> None:
    gate.expect("req", timeout=2.0)
    clock.advance(1.999)
    assert gate.bind("req", "resp").live


def test_bind_unknown_request_raises(gate: PlaybackGate) -> None:
    with pytest.raises(UnknownRequestError, match="never expected"):
        gate.bind("nope", "resp")


def test_bind_twice_raises(gate: PlaybackGate) -> None:
    gate.expect("req")
    gate.bind("req", "resp")
    with pytest.raises(AlreadyBoundError, match="already bound to 'resp'"):
        gate.bind("req", "other")


def test_bind_generation_owned_by_other_request_raises(gate: PlaybackGate) -> None:
    gate.expect("a")
    gate.expect("b")
    gate.bind("a", "resp")
    with pytest.raises(AlreadyBoundError, match="generation 'resp'"):
        gate.bind("b", "resp")


def test_expect_same_request_twice_raises(gate: PlaybackGate) -> None:
    gate.expect("req")
    with pytest.raises(AlreadyBoundError):
        gate.expect("req")


def test_bind_a_generation_already_flagged_by_id(gate: PlaybackGate) -> None:
    gate.flag("resp", DropReason.CANCELLED)
    gate.expect("req")
    binding = gate.bind("req", "resp")
    assert binding.dead_on_arrival and binding.reason is DropReason.CANCELLED


@pytest.mark.parametrize("bad", ["", None, 3, b"id"])
def test_bad_ids_raise_naming_the_problem(gate: PlaybackGate, bad: object) -> None:
    with pytest.raises(InvalidIdError, match="request id"):
        gate.expect(bad)  # type: ignore[arg-type]
    with pytest.raises(InvalidIdError, match="generation id"):
        gate.flag(bad, DropReason.CANCELLED)  # type: ignore[arg-type]
    with pytest.raises(InvalidIdError, match="generation id"):
        gate.retire(bad)  # type: ignore[arg-type]
    with pytest.raises(InvalidIdError):
        gate.announce(bad)  # type: ignore[arg-type]


@pytest.mark.parametrize("bad", [-1.0, float("nan"), float("inf")])
def test_negative_or_infinite_deadline_raises(gate: PlaybackGate, bad: float) -> None:
    with pytest.raises(ValueError, match="timeout"):
        gate.expect("req", timeout=bad)
    with pytest.raises(ValueError, match="timeout"):
        PlaybackGate(request_timeout=bad)


def test_pending_requests_are_capped(clock: VirtualClock) -> None:
    gate = PlaybackGate(clock=clock, max_pending=2)
    gate.expect("a")
    gate.expect("b")
    with pytest.raises(GateError, match="too many pending"):
        gate.expect("c")
    gate.bind("a", "ra")
    gate.expect("c")


# ---- flag -------------------------------------------------------------------


def test_flag_drops_later_frames_and_purges_every_sink(gate: PlaybackGate) -> None:
    first, second = RecordingSink(), RecordingSink()
    gate.add_sink(first)
    gate.add_sink(second)
    gate.add_sink(first)  # twice is a no-op
    gate.expect("req")
    gate.bind("req", "resp")
    assert gate.admit("resp", frame())
    assert gate.flag("resp", DropReason.INTERRUPTED)
    assert not gate.flag("resp", DropReason.CANCELLED)  # already flagged: no second purge
    assert not gate.admit("resp", frame())
    assert first.purged == second.purged == [("resp", DropReason.INTERRUPTED)]
    info = gate.generation("resp")
    assert info is not None and info.state is GenerationState.FLAGGED
    assert info.reason is DropReason.INTERRUPTED


def test_flag_request_after_bind_flags_its_generation(gate: PlaybackGate) -> None:
    gate.expect("req")
    gate.bind("req", "resp")
    assert gate.flag_request("req", DropReason.CANCELLED) == "resp"
    assert not gate.admit("resp", frame())


def test_flag_request_never_expected_is_remembered(gate: PlaybackGate) -> None:
    gate.flag_request("ghost", DropReason.CANCELLED)
    assert gate.bind("ghost", "resp").dead_on_arrival


def test_expect_after_a_pre_emptive_flag_keeps_the_flag(gate: PlaybackGate) -> None:
    gate.flag_request("early", DropReason.CANCELLED)
    gate.expect("early")  # the create is seen after the cancel: no error, still flagged
    assert gate.pending_requests() == []
    binding = gate.bind("early", "resp")
    assert binding.dead_on_arrival and binding.reason is DropReason.CANCELLED


def test_flag_rejects_non_flag_reasons(gate: PlaybackGate) -> None:
    for reason in (DropReason.RETIRED, DropReason.MALFORMED, "cancelled"):
        with pytest.raises(ValueError, match="not a flag reason"):
            gate.flag("resp", reason)  # type: ignore[arg-type]


def test_flag_after_retire_still_purges(gate: PlaybackGate) -> None:
    sink = RecordingSink()
    gate.add_sink(sink)
    gate.announce("resp")
    gate.retire("resp")
    assert gate.flag("resp", DropReason.INTERRUPTED)
    assert sink.purged == [("resp", DropReason.INTERRUPTED)]


def test_a_failing_sink_does_not_stop_the_others(
    gate: PlaybackGate, caplog: pytest.LogCaptureFixture
) -> None:
    class Broken:
        def purge(self, generation_id: str, reason: DropReason) -> None:
            raise RuntimeError("boom")

    ok = RecordingSink()
    gate.add_sink(Broken())
    gate.add_sink(ok)
    with caplog.at_level(logging.ERROR, logger="playback_gate"):
        gate.flag("resp", DropReason.CANCELLED)
    assert ok.purged == [("resp", DropReason.CANCELLED)]
    assert "failed to purge" in caplog.text


def test_add_sink_rejects_non_sinks(gate: PlaybackGate) -> None:
    with pytest.raises(TypeError, match="not a PurgeSink"):
        gate.add_sink(object())  # type: ignore[arg-type]


def test_remove_sink(gate: PlaybackGate) -> None:
    sink = RecordingSink()
    gate.add_sink(sink)
    gate.remove_sink(sink)
    gate.flag("resp", DropReason.CANCELLED)
    assert sink.purged == []


# ---- expire -----------------------------------------------------------------


def test_expire_times_out_only_due_requests(gate: PlaybackGate, clock: VirtualClock) -> None:
    gate.expect("soon", timeout=1.0)
    gate.expect("later", timeout=5.0)
    gate.expect("bound", timeout=1.0)
    gate.bind("bound", "resp")
    clock.advance(1.0)
    assert gate.expire() == ["soon"]
    assert gate.expire() == []
    assert gate.pending_requests() == ["later"]
    assert gate.last_timeout_at == 1.0
    assert gate.expire(now=100.0) == ["later"]
    assert gate.next_deadline() is None


def test_timed_out_request_that_gets_cancelled_keeps_timeout_reason(
    gate: PlaybackGate, clock: VirtualClock
) -> None:
    gate.expect("req", timeout=1.0)
    clock.advance(1.5)
    gate.expire()
    gate.flag_request("req", DropReason.CANCELLED)
    assert gate.bind("req", "resp").reason is DropReason.TIMED_OUT


def test_stale_deadlines_do_not_accumulate(gate: PlaybackGate) -> None:
    for i in range(5_000):
        gate.expect(f"r{i}")
        gate.bind(f"r{i}", f"g{i}")
        gate.retire(f"g{i}")
    assert gate.footprint()["deadlines"] <= 2 * gate.footprint()["pending"] + 65


# ---- admit ------------------------------------------------------------------


def test_unknown_generation_passes_and_is_tracked(gate: PlaybackGate) -> None:
    assert gate.admit("server-vad", frame(480))
    info = gate.generation("server-vad")
    assert info is not None and info.request_id is None and info.passed.samples == 480


def test_unknown_generation_flagged_first_is_dropped(gate: PlaybackGate) -> None:
    gate.flag("server-vad", DropReason.CANCELLED)
    assert not gate.admit("server-vad", frame())


def test_admit_does_not_copy_or_keep_the_frame(gate: PlaybackGate) -> None:
    data = np.arange(240, dtype=np.int16)
    f = PcmFrame(data, RATE)
    assert gate.admit("g", f)
    assert f.data is data and np.array_equal(data, np.arange(240, dtype=np.int16))


@pytest.mark.parametrize(
    ("bad", "what"),
    [
        (frame(rate=48_000), "rate"),
        (frame(channels=2), "channels"),
        (object(), "not a frame"),
    ],
)
def test_admit_drops_and_counts_malformed_frames_without_raising(
    gate: PlaybackGate, bad: PcmFrame, what: str
) -> None:
    gate.announce("healthy")
    assert not gate.admit("healthy", bad)
    assert gate.admit("healthy", frame())  # the healthy generation is untouched
    stats = gate.stats()
    assert stats.dropped_by_reason[DropReason.MALFORMED].frames == 1
    info = gate.generation("healthy")
    assert info is not None and info.state is GenerationState.LIVE and info.dropped.frames == 0


@pytest.mark.parametrize("bad_id", ["", None, 7, ["x"]])
def test_admit_drops_bad_ids_without_raising(gate: PlaybackGate, bad_id: object) -> None:
    assert not gate.admit(bad_id, frame())  # type: ignore[arg-type]
    assert gate.stats().dropped_by_reason[DropReason.MALFORMED].frames == 1


def test_check_frame_names_the_mismatch(gate: PlaybackGate) -> None:
    with pytest.raises(FrameFormatError, match="48000 Hz disagrees with the stream's 24000 Hz"):
        gate.check_frame(frame(rate=48_000))
    with pytest.raises(FrameFormatError, match="2 channel"):
        gate.check_frame(frame(channels=2))
    with pytest.raises(FrameFormatError, match="dtype float32"):
        gate.check_frame(frame(dtype="float32"))
    with pytest.raises(FrameFormatError, match="not an audio frame"):
        gate.check_frame(object())  # type: ignore[arg-type]
    gate.check_frame(frame())


def test_pcm_frame_rejects_bad_arrays() -> None:
    with pytest.raises(FrameFormatError, match="dtype"):
        PcmFrame(np.zeros(4, np.int32), RATE)
    with pytest.raises(FrameFormatError, match="1-D or 2-D"):
        PcmFrame(np.zeros((2, 2, 2), np.int16), RATE)
    with pytest.raises(FrameFormatError, match="sample rate"):
        PcmFrame(np.zeros(4, np.int16), 0)


def test_audio_format_validates_itself() -> None:
    with pytest.raises(ValueError, match="sample_rate"):
        AudioFormat(0)
    with pytest.raises(ValueError, match="num_channels"):
        AudioFormat(RATE, 0)
    with pytest.raises(ValueError, match="dtype"):
        AudioFormat(RATE, 1, "int8")  # type: ignore[arg-type]


def test_gate_without_format_accepts_any_rate() -> None:
    gate = PlaybackGate()
    assert gate.admit("g", frame(rate=48_000, channels=2))


# ---- retire -----------------------------------------------------------------


def test_retire_turns_later_frames_into_counted_stragglers(gate: PlaybackGate) -> None:
    gate.expect("req")
    gate.bind("req", "resp")
    gate.admit("resp", frame(100))
    assert gate.retire("resp") is GenerationState.DONE
    assert not gate.admit("resp", frame(50))
    info = gate.generation("resp")
    assert info is not None
    assert info.stragglers.samples == 50 and info.dropped.samples == 50
    assert gate.stats().dropped_by_reason[DropReason.RETIRED].samples == 50


def test_retire_keeps_a_flag(gate: PlaybackGate) -> None:
    gate.flag("resp", DropReason.CANCELLED)
    assert gate.retire("resp") is GenerationState.FLAGGED


def test_retire_unknown_generation_makes_a_tombstone(gate: PlaybackGate) -> None:
    gate.retire("never-seen")
    assert not gate.admit("never-seen", frame())


# ---- memory -----------------------------------------------------------------


def test_tombstones_are_capped_fifo(clock: VirtualClock) -> None:
    gate = PlaybackGate(clock=clock, max_tombstones=3)
    for i in range(10):
        gate.flag(f"g{i}", DropReason.CANCELLED)
    footprint = gate.footprint()
    assert footprint["flagged"] == 3 and footprint["generations"] == 3
    assert [g.generation_id for g in gate.generations()] == ["g7", "g8", "g9"]
    assert gate.stats().generations_flagged == 10
    assert gate.stats().flagged_forgotten == 7


def test_retired_tombstones_are_capped_fifo_apart_from_flagged_ones(clock: VirtualClock) -> None:
    gate = PlaybackGate(clock=clock, max_tombstones=3)
    gate.flag("flagged", DropReason.CANCELLED)
    for i in range(10):
        gate.retire(f"g{i}")
    footprint = gate.footprint()
    assert footprint["tombstones"] == 3 and footprint["flagged"] == 1
    assert gate.is_flagged("flagged")
    assert gate.stats().tombstones_forgotten == 7


def test_live_generations_are_capped_without_dropping_their_frames() -> None:
    gate = PlaybackGate(max_live=2)
    for gid in ("a", "b", "c"):
        assert gate.admit(gid, frame())
    assert gate.footprint()["live"] == 2
    assert gate.admit("a", frame())  # forgotten, then seen again: still passes


def test_forgotten_generations_still_count_in_totals() -> None:
    gate = PlaybackGate(max_tombstones=1)
    for i in range(5):
        gid = f"g{i}"
        gate.admit(gid, frame(10))
        gate.flag(gid, DropReason.CANCELLED)
        gate.admit(gid, frame(7))
    stats = gate.stats()
    assert stats.passed.samples == 50
    assert stats.dropped_by_reason[DropReason.CANCELLED].samples == 35


def test_a_million_generations_stay_within_the_cap() -> None:
    gate = PlaybackGate(max_tombstones=1_000, max_live=16)
    f = frame()
    for i in range(1_000_000):
        gid = f"g{i}"
        gate.admit(gid, f)
        if i % 2:
            gate.flag(gid, DropReason.CANCELLED)
        else:
            gate.retire(gid)
    footprint = gate.footprint()
    assert footprint["generations"] <= 2_016  # 16 live, 1,000 retired, 1,000 flagged
    assert footprint["tombstones"] <= 1_000 and footprint["flagged"] <= 1_000
    assert gate.stats().passed.frames == 1_000_000


# ---- stats ------------------------------------------------------------------


def test_stats_totals_and_reasons(gate: PlaybackGate, clock: VirtualClock) -> None:
    gate.expect("a", timeout=1)
    clock.advance(2)
    gate.bind("a", "late")
    gate.admit("late", frame(240))
    gate.admit("ok", frame(480))
    gate.flag("ok", DropReason.INTERRUPTED)
    gate.admit("ok", frame(480))
    stats = gate.stats()
    assert stats.passed.frames == 1 and stats.passed.samples == 480
    assert stats.dropped.frames == 2 and stats.dropped.samples == 720
    assert stats.dropped_by_reason[DropReason.TIMED_OUT].samples == 240
    assert stats.dropped_by_reason[DropReason.INTERRUPTED].samples == 480
    assert "dropped 2 frames" in stats.summary()


def test_flag_is_logged(gate: PlaybackGate, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="playback_gate"):
        gate.flag("resp", DropReason.CANCELLED, "barge-in")
    assert "generation resp flagged (cancelled: barge-in)" in caplog.text


# ---- threads ----------------------------------------------------------------


def test_admit_on_another_thread_sees_flags_as_soon_as_flag_returns() -> None:
    gate = PlaybackGate()
    gate.announce("resp")
    flagged = threading.Event()
    leaked: list[int] = []
    stop = threading.Event()
    f = frame()

    def audio_thread() -> None:
        i = 0
        while not stop.is_set():
            was_flagged = flagged.is_set()  # read before admit: a flag done by now must hold
            if gate.admit("resp", f) and was_flagged:
                leaked.append(i)
            gate.admit(f"other{i % 50}", f)
            i += 1

    worker = threading.Thread(target=audio_thread)
    worker.start()
    for i in range(2_000):
        gate.flag(f"noise{i}", DropReason.CANCELLED)
    gate.flag("resp", DropReason.CANCELLED)
    flagged.set()
    for i in range(2_000):
        gate.retire(f"other{i % 50}x")
    stop.set()
    worker.join(5)
    assert not worker.is_alive()
    assert leaked == []


# ---- admit_buffered (output stages behind a buffer) -------------------------


def test_admit_buffered_lets_a_retired_tail_play_and_counts_it(gate: PlaybackGate) -> None:
    gate.announce("resp")
    gate.retire("resp")
    assert not gate.admit("resp", frame(10))  # at the network: a straggler
    assert gate.admit_buffered("resp", frame(20))  # at the output: a buffered tail
    info = gate.generation("resp")
    assert info is not None and info.passed.samples == 20 and info.stragglers.samples == 10


def test_admit_buffered_drops_flagged_and_malformed(gate: PlaybackGate) -> None:
    gate.flag("resp", DropReason.INTERRUPTED)
    assert not gate.admit_buffered("resp", frame())
    assert not gate.admit_buffered("ok", frame(rate=48_000))
    assert gate.admit_buffered("ok", frame())
    stats = gate.stats()
    assert stats.dropped_by_reason[DropReason.INTERRUPTED].frames == 1
    assert stats.dropped_by_reason[DropReason.MALFORMED].frames == 1
