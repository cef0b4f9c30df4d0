"""The OpenAI Realtime tap against a hostile or buggy server, and a careless client."""

from __future__ import annotations

import base64
import math
import tracemalloc
from typing import Any

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gate import DropReason, GenerationState, PlaybackGate, VirtualClock
from gate.validation import MAX_ID_CHARS
from integrations.openai_realtime import RealtimeTap

_DELTA = base64.b64encode(np.full(240, 1000, np.int16).tobytes()).decode()


def _create(cei: str, event_id: str = "evt") -> dict[str, Any]:
    return {
        "type": "response.create",
        "event_id": event_id,
        "response": {"metadata": {"client_event_id": cei}},
    }


def _created(rid: str, cei: str | None = None) -> dict[str, Any]:
    response: dict[str, Any] = {"id": rid}
    if cei is not None:
        response["metadata"] = {"client_event_id": cei}
    return {"type": "response.created", "response": response}


def _done(rid: str, status: str = "completed") -> dict[str, Any]:
    return {"type": "response.done", "response": {"id": rid, "status": status}}


def _delta(rid: str) -> dict[str, Any]:
    return {"type": "response.output_audio.delta", "response_id": rid, "delta": _DELTA}


def _plays(tap: RealtimeTap, rid: str) -> bool:
    audio = tap.on_server_event(_delta(rid))
    assert audio is not None
    return tap.gate.admit(audio.response_id, audio.frame)


def test_a_reused_client_event_id_still_lets_a_bare_cancel_flag_the_second_reply() -> None:
    gate = PlaybackGate()
    tap = RealtimeTap(gate)
    tap.on_client_event(_create("dup"))
    tap.on_server_event(_created("r1", "dup"))
    tap.on_server_event(_done("r1"))
    tap.on_client_event(_create("dup"))  # the client reuses its id
    tap.on_server_event(_created("r2", "dup"))
    assert tap.in_progress() == ["r2"]
    tap.on_client_event({"type": "response.cancel"})
    assert gate.is_flagged("r2")
    assert not _plays(tap, "r2")
    assert "already used" in tap.malformed_events[0].problem


def test_a_reused_id_sent_before_the_first_reply_binds_both_in_order() -> None:
    clock = VirtualClock()
    gate = PlaybackGate(clock=clock, request_timeout=5.0)
    tap = RealtimeTap(gate)
    tap.on_client_event(_create("dup"))
    tap.on_client_event(_create("dup"))
    tap.on_server_event(_created("r1", "dup"))
    tap.on_server_event(_created("r2", "dup"))
    info1, info2 = gate.generation("r1"), gate.generation("r2")
    assert info1 is not None and info1.request_id == "dup"
    assert info2 is not None and info2.request_id is not None
    assert info2.request_id.startswith("dup#reuse")
    clock.advance(10)  # neither request is left pending to time out
    gate.expire()
    assert gate.stats().requests_timed_out == 0


def test_a_duplicate_response_created_is_still_tracked_for_a_bare_cancel() -> None:
    gate = PlaybackGate()
    tap = RealtimeTap(gate)
    tap.on_client_event(_create("req"))
    tap.on_server_event(_created("r1", "req"))
    tap.on_server_event(_done("r1"))
    tap.on_server_event(_created("r2", "req"))  # the server echoes a used id again
    tap.on_client_event({"type": "response.cancel"})
    assert gate.is_flagged("r2")
    assert any("duplicate response.created" in m.problem for m in tap.malformed_events)


def test_a_response_done_flood_never_releases_a_cancelled_reply() -> None:
    """10,000 response.done for made-up ids, then the cancelled reply's late audio."""
    gate = PlaybackGate()
    tap = RealtimeTap(gate)
    tap.on_client_event(_create("req"))
    tap.on_server_event(_created("victim", "req"))
    tap.on_client_event({"type": "response.cancel", "response_id": "victim"})
    for i in range(10_001):
        tap.on_server_event(_done(f"made_up_{i}"))
    assert not _plays(tap, "victim")
    stats = gate.stats()
    assert stats.tombstones_forgotten >= 1  # the flood is counted
    assert stats.flagged_forgotten == 0


def test_oversized_ids_are_malformed_and_stored_nowhere() -> None:
    gate = PlaybackGate()
    tap = RealtimeTap(gate)
    big = "x" * (MAX_ID_CHARS + 1)
    tap.on_client_event(_create(big))
    tap.on_server_event(_created(big))
    tap.on_server_event(_done(big))
    tap.on_client_event({"type": "response.cancel", "response_id": big})
    assert not _plays(tap, big)
    assert tap.malformed == 4
    assert all(str(MAX_ID_CHARS) in m.problem for m in tap.malformed_events)
    assert gate.footprint()["generations"] == 0 and gate.footprint()["requests"] == 0
    assert tap.in_progress() == []


# ---- fuzzing: random hostile event streams ------------------------------------------

_IDS = st.sampled_from(["r1", "r2", "r3", "", "x" * (MAX_ID_CHARS + 1), "\ud800"])
_CEIS = st.sampled_from(["c1", "c2", "c1", None, "", 7])
_JUNK = st.one_of(
    st.none(),
    st.integers(),
    st.floats(allow_nan=True),
    st.text(max_size=4),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)


@st.composite
def _server_event(draw: st.DrawFn) -> Any:
    kind = draw(
        st.sampled_from(
            ["response.created", "response.done", "delta", "error", "session.updated", "junk"]
        )
    )
    rid = draw(st.one_of(_IDS, _JUNK))
    if kind == "response.created":
        cei = draw(_CEIS)
        response: Any = {"id": rid}
        if cei is not None:
            response["metadata"] = {"client_event_id": cei}
        if draw(st.booleans()):
            response["conversation_id"] = None
        return {"type": kind, "response": draw(st.sampled_from([response, response, None, 3]))}
    if kind == "response.done":
        status = draw(st.sampled_from(["completed", "cancelled", "failed", "incomplete", "?", 1]))
        return {"type": kind, "response": {"id": rid, "status": status}}
    if kind == "delta":
        delta = draw(st.sampled_from([_DELTA, "", "!!", "AAA", None]))
        return {"type": "response.output_audio.delta", "response_id": rid, "delta": delta}
    if kind == "error":
        return {"type": "error", "error": {"event_id": draw(st.one_of(_CEIS, _JUNK))}}
    if kind == "session.updated":
        return {"type": kind, "session": draw(st.one_of(_JUNK, st.just({"audio": {}})))}
    return draw(st.one_of(_JUNK, st.dictionaries(st.text(max_size=5), _JUNK, max_size=3)))


@st.composite
def _client_event(draw: st.DrawFn) -> Any:
    if draw(st.booleans()):
        event: dict[str, Any] = {"type": "response.create", "event_id": draw(_CEIS)}
        cei = draw(_CEIS)
        if cei is not None:
            event["response"] = {"metadata": {"client_event_id": cei}}
        if draw(st.booleans()):
            event.setdefault("response", {})["conversation"] = "none"
        return event
    cancel: dict[str, Any] = {"type": "response.cancel"}
    if draw(st.booleans()):
        cancel["response_id"] = draw(st.one_of(_IDS, _JUNK))
    return cancel


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(
        st.tuples(
            st.booleans(),
            st.one_of(_server_event(), _client_event()),
            st.floats(0, 3),
        ),
        max_size=40,
    )
)
def test_no_event_stream_breaks_the_tap_or_plays_a_flagged_reply(
    stream: list[tuple[bool, Any, float]],
) -> None:
    clock = VirtualClock()
    gate = PlaybackGate(clock=clock, request_timeout=2.0, max_tombstones=8, max_live=4)
    tap = RealtimeTap(gate, max_tracked=4)
    for from_client, event, dt in stream:
        clock.advance(dt)
        if from_client:
            tap.on_client_event(event)
            continue
        flagged_before = (
            isinstance(event, dict)
            and isinstance(rid := event.get("response_id"), str)
            and gate.is_flagged(rid)
        )
        audio = tap.on_server_event(event)
        if audio is not None:
            admitted = gate.admit(audio.response_id, audio.frame)
            assert not (flagged_before and admitted), "a flagged reply played"
    stats = gate.stats()
    for counts in (stats.passed, stats.dropped, *stats.dropped_by_reason.values()):
        assert counts.frames >= 0 and counts.samples >= 0
        assert not math.isnan(counts.samples)
    assert tap.malformed >= len(tap.malformed_events)
    footprint = gate.footprint()
    assert footprint["live"] <= 4 and footprint["tombstones"] <= 8 and footprint["flagged"] <= 8
    assert len(tap.in_progress()) <= 4
    for info in gate.generations():
        assert len(info.generation_id) <= MAX_ID_CHARS
        assert info.state in (GenerationState.LIVE, GenerationState.FLAGGED, GenerationState.DONE)
        if info.state is GenerationState.FLAGGED:
            assert isinstance(info.reason, DropReason)


def test_malformed_records_stay_small_whatever_the_server_sends() -> None:
    tap = RealtimeTap(PlaybackGate(), max_malformed_kept=10)
    huge = "s" * (1 << 20)
    tap.on_client_event(_create("req"))
    tap.on_server_event(_created("r", "req"))
    for _ in range(20):
        tap.on_server_event(
            {"type": "response.done", "event_id": huge, "response": {"id": "r", "status": huge}}
        )
        tap.on_server_event({"type": huge})
    assert tap.malformed == 40 and len(tap.malformed_events) == 10
    for record in tap.malformed_events:
        assert len(record.problem) <= 300 and len(record.type) <= 100
        assert record.event_id is None or len(record.event_id) <= 100


def test_huge_client_event_ids_are_not_kept() -> None:
    """Each waiting request is remembered; a 1 MiB event_id must not be remembered with it."""
    gate = PlaybackGate()
    tap = RealtimeTap(gate)
    huge = "e" * (1 << 20)
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for i in range(50):
            tap.on_client_event(_create(f"req{i}", event_id=f"{i}{huge}"))
        grown = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert len(gate.pending_requests()) == 50  # all still tracked
    assert grown < 1 << 20, f"{grown} bytes kept for 50 requests"
