"""The OpenAI Realtime event tap: one group of tests per rule, then a hypothesis fuzz."""

from __future__ import annotations

import base64
import copy
import json
import logging
import warnings
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gate import DropReason, GenerationState, PlaybackGate, VirtualClock
from integrations.openai_realtime._audio_decode import OutputAudioFormat
from integrations.openai_realtime._tap import RealtimeTap, TapAudio, UnattributedPolicy
from integrations.openai_realtime.trace.script import TraceScript, pcm16_delta
from integrations.testing.tap_harness import Harness

with warnings.catch_warnings():  # the stdlib G.711 reference; removed in Python 3.13
    warnings.simplefilter("ignore", DeprecationWarning)
    try:
        import audioop
    except ImportError:  # pragma: no cover
        audioop = None  # type: ignore[assignment]


@pytest.fixture
def h() -> Harness:
    return Harness()


# ---- stamp ----------------------------------------------------------------------


def test_stamp_adds_event_id_and_client_event_id_like_livekit(h: Harness) -> None:
    event = h.tap.stamp({"type": "response.create", "response": {"instructions": "hi"}})
    assert event["event_id"].startswith("response_create_")
    assert event["response"]["metadata"] == {"client_event_id": event["event_id"]}
    assert event["response"]["instructions"] == "hi"


def test_stamp_keeps_existing_ids_and_ignores_other_events(h: Harness) -> None:
    event = {"type": "response.create", "event_id": "e1", "response": {"metadata": {"a": "b"}}}
    assert h.tap.stamp(event)["response"]["metadata"] == {"a": "b", "client_event_id": "e1"}
    kept = {
        "type": "response.create",
        "event_id": "e2",
        "response": {"metadata": {"client_event_id": "x"}},
    }
    assert h.tap.stamp(copy.deepcopy(kept)) == kept
    other = {"type": "session.update", "session": {}}
    assert h.tap.stamp(other) is other and other == {"type": "session.update", "session": {}}


def test_stamp_refuses_full_metadata(h: Harness) -> None:
    full = {f"k{i}": "v" for i in range(16)}
    with pytest.raises(ValueError, match="16 pairs"):
        h.tap.stamp({"type": "response.create", "response": {"metadata": full}})


# ---- response.create / response.created --------------------------------------------


def test_request_is_keyed_by_client_event_id_and_bound_by_metadata(h: Harness) -> None:
    h.script.add(
        0.0,
        "client",
        {
            "type": "response.create",
            "event_id": "evt_1",
            "response": {"metadata": {"client_event_id": "cei_1"}},
        },
    )
    h.run()
    assert h.gate.pending_requests() == ["cei_1"]
    h.script.response_created(0.5, "resp_1", "cei_1")
    h.script.audio(0.6, "resp_1", 480)
    assert h.run() == {"resp_1": [True]}
    info = h.gate.generation("resp_1")
    assert info is not None and info.request_id == "cei_1" and info.state is GenerationState.LIVE
    assert h.sent == []


def test_late_response_created_is_dead_on_arrival_and_gets_a_targeted_cancel(h: Harness) -> None:
    h.script.response_create(0.0, "req")
    h.script.response_created(10.5, "resp", "req")
    h.script.audio(10.6, "resp", 480)
    assert h.run() == {"resp": [False]}
    assert h.state("resp") == (GenerationState.FLAGGED, DropReason.TIMED_OUT)
    assert h.sent == [{"type": "response.cancel", "response_id": "resp"}]
    assert list(h.tap.cancels_sent) == h.sent and h.tap.cancels_sent_count == 1


def _session_created(h: Harness, t: float) -> None:
    h.script.add(t, "server", {"type": "session.created", "session": {"id": f"sess_{t}"}})


def test_a_reconnect_gives_up_the_requests_sent_on_the_lost_socket(h: Harness) -> None:
    _session_created(h, 0.0)
    h.script.response_create(0.5, "req_old")
    _session_created(h, 1.0)  # a second session.created: the socket was reconnected
    h.script.response_create(1.5, "req_new")
    # a server that resumes sessions answers the old request on the new socket
    h.script.response_created(2.0, "resp_old", "req_old")
    h.script.audio(2.1, "resp_old", 480)
    h.script.response_created(3.0, "resp_new", "req_new")
    h.script.audio(3.1, "resp_new", 480)
    assert h.run() == {"resp_old": [False], "resp_new": [True]}
    assert h.state("resp_old") == (GenerationState.FLAGGED, DropReason.CANCELLED)
    assert h.sent == [{"type": "response.cancel", "response_id": "resp_old"}]


def test_a_socket_first_session_created_gives_up_nothing(h: Harness) -> None:
    # LiveKit queues response.create before the socket's first event arrives
    h.script.response_create(0.0, "req")
    _session_created(h, 0.1)
    h.script.response_created(0.5, "resp", "req")
    h.script.audio(0.6, "resp", 480)
    assert h.run() == {"resp": [True]}
    assert h.sent == []


def test_tap_expires_requests_on_every_event(h: Harness) -> None:
    h.script.response_create(0.0, "req")
    h.script.add(10.0, "server", {"type": "rate_limits.updated", "rate_limits": []})
    h.run()
    assert h.gate.stats().requests_timed_out == 1 and h.gate.pending_requests() == []
    assert h.gate.last_timeout_at == 10.0


def test_send_that_raises_does_not_reach_the_caller() -> None:
    clock = VirtualClock()
    gate = PlaybackGate(clock=clock)

    def broken_send(_: dict[str, Any]) -> None:
        raise ConnectionError("socket closed")

    tap = RealtimeTap(gate, send=broken_send)
    tap.on_client_event(
        {
            "type": "response.create",
            "event_id": "r",
            "response": {"metadata": {"client_event_id": "r"}},
        }
    )
    clock.set(11.0)
    s = TraceScript()
    tap.on_server_event(s.response_created(11.0, "resp", "r"))
    assert gate.is_flagged("resp") and tap.cancels_sent_count == 1 and tap.malformed == 0


def test_unstamped_requests_bind_in_order(h: Harness) -> None:
    h.script.response_create(0.0, "a", stamped=False)
    h.script.response_create(0.1, "b", stamped=False)
    h.script.response_created(0.2, "resp_a")
    h.script.response_created(0.3, "resp_b")
    h.run()
    assert [h.gate.generation(r).request_id for r in ("resp_a", "resp_b")] == ["a", "b"]  # type: ignore[union-attr]


def test_unstamped_late_response_is_dead_on_arrival(h: Harness) -> None:
    h.script.response_create(0.0, "a", stamped=False)
    h.script.response_created(11.0, "resp_a")
    h.run()
    assert h.state("resp_a") == (GenerationState.FLAGGED, DropReason.TIMED_OUT)
    assert h.sent == [{"type": "response.cancel", "response_id": "resp_a"}]


def test_server_error_for_a_request_finishes_it(h: Harness) -> None:
    h.script.response_create(0.0, "a", stamped=False)
    error = {
        "type": "error",
        "error": {"code": "conversation_already_has_active_response", "event_id": "a"},
    }
    h.script.add(0.1, "server", error)
    h.script.response_created(1.0, "vad_reply")  # must not be taken for a's answer
    h.run()
    assert h.gate.pending_requests() == [] and h.gate.stats().requests_timed_out == 0
    assert h.state("vad_reply") == (GenerationState.LIVE, None)


# ---- unattributed responses --------------------------------------------------------


def test_unattributed_response_plays_by_default(h: Harness) -> None:
    h.script.response_create(0.0, "req")
    h.script.response_created(10.5, "vad", None)  # just after a timeout: still plays
    h.script.audio(10.6, "vad", 480)
    assert h.run() == {"vad": [True]}
    assert h.sent == []


def test_unattributed_response_flagged_before_it_arrives_stays_dead(h: Harness) -> None:
    h.script.cancel(0.0, "vad")
    h.script.response_created(0.1, "vad", None)
    h.script.audio(0.2, "vad", 480)
    assert h.run() == {"vad": [False]}


@pytest.mark.parametrize(("arrival", "dropped"), [(11.9, True), (12.0, True), (12.1, False)])
def test_drop_after_timeout_policy_uses_the_grace_window(arrival: float, dropped: bool) -> None:
    h = Harness(unattributed_policy=UnattributedPolicy.DROP_AFTER_TIMEOUT, unattributed_grace=2.0)
    h.script.response_create(0.0, "req")  # times out at 10.0
    h.script.response_created(arrival, "vad", None)
    h.script.audio(arrival + 0.01, "vad", 480)
    assert h.run() == {"vad": [not dropped]}
    if dropped:
        assert h.state("vad") == (GenerationState.FLAGGED, DropReason.TIMED_OUT)
        assert h.sent == [{"type": "response.cancel", "response_id": "vad"}]
    else:
        assert h.sent == []


def test_drop_after_timeout_plays_when_nothing_timed_out() -> None:
    h = Harness(unattributed_policy=UnattributedPolicy.DROP_AFTER_TIMEOUT)
    h.script.response_created(0.5, "vad", None)
    h.script.audio(0.6, "vad", 480)
    assert h.run() == {"vad": [True]}


# ---- response.cancel ----------------------------------------------------------------


def _two_in_progress(h: Harness) -> None:
    h.script.response_create(0.0, "main")
    h.script.response_create(0.0, "oob", out_of_band=True)
    h.script.response_created(0.1, "resp_main", "main")
    h.script.response_created(0.1, "resp_oob", "oob", out_of_band=True)
    h.script.audio(0.2, "resp_main", 480)
    h.script.audio(0.2, "resp_oob", 480)


def test_targeted_cancel_flags_only_that_response(h: Harness) -> None:
    _two_in_progress(h)
    h.script.cancel(0.3, "resp_oob")
    h.script.audio(0.4, "resp_main", 480)
    h.script.audio(0.4, "resp_oob", 480)
    assert h.run() == {"resp_main": [True, True], "resp_oob": [True, False]}
    assert h.state("resp_oob") == (GenerationState.FLAGGED, DropReason.CANCELLED)


def test_bare_cancel_flags_the_default_conversation_never_out_of_band(h: Harness) -> None:
    _two_in_progress(h)
    h.script.cancel(0.3)
    h.script.audio(0.4, "resp_main", 480)
    h.script.audio(0.4, "resp_oob", 480)
    assert h.run() == {"resp_main": [True, False], "resp_oob": [True, True]}
    assert h.state("resp_main") == (GenerationState.FLAGGED, DropReason.CANCELLED)
    assert h.tap.is_out_of_band("resp_oob") and not h.tap.is_out_of_band("resp_main")


def test_bare_cancel_out_of_band_detected_from_server_conversation_id(h: Harness) -> None:
    h.script.response_create(0.0, "oob", out_of_band=False)  # the client did not say
    h.script.response_created(0.1, "resp_oob", "oob", out_of_band=True)  # conversation_id null
    h.script.cancel(0.2)
    h.script.audio(0.3, "resp_oob", 480)
    assert h.run() == {"resp_oob": [True]}


def test_bare_cancel_before_response_created_flags_the_pending_default_requests(
    h: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    h.script.response_create(0.0, "main")
    h.script.response_create(0.0, "oob", out_of_band=True)
    h.script.cancel(0.1)
    h.script.response_create(0.2, "next")  # sent after the cancel: a new turn
    h.script.response_created(0.5, "resp_main", "main")
    h.script.response_created(0.5, "resp_oob", "oob", out_of_band=True)
    h.script.response_created(0.6, "resp_next", "next")
    for rid in ("resp_main", "resp_oob", "resp_next"):
        h.script.audio(0.7, rid, 480)
    with caplog.at_level(logging.INFO, logger="playback_gate.tap"):
        decisions = h.run()
    assert decisions == {"resp_main": [False], "resp_oob": [True], "resp_next": [True]}
    assert h.state("resp_main") == (GenerationState.FLAGGED, DropReason.CANCELLED)
    assert h.sent == [{"type": "response.cancel", "response_id": "resp_main"}]
    assert "before response.created flagged request(s) ['main']" in caplog.text


def test_bare_cancel_with_a_response_in_progress_leaves_pending_requests(h: Harness) -> None:
    h.script.response_create(0.0, "first")
    h.script.response_created(0.1, "resp_first", "first")
    h.script.response_create(0.2, "queued")
    h.script.cancel(0.3)
    h.script.response_created(0.4, "resp_queued", "queued")
    h.run()
    assert h.state("resp_first")[0] is GenerationState.FLAGGED
    assert h.state("resp_queued") == (GenerationState.LIVE, None)


# ---- response.done ----------------------------------------------------------------------


def test_completed_retires_and_stragglers_are_dropped_and_counted(h: Harness) -> None:
    h.script.response_create(0.0, "req")
    h.script.response_created(0.1, "resp", "req")
    h.script.audio(0.2, "resp", 480)
    h.script.response_done(0.3, "resp")
    h.script.audio(0.4, "resp", 240)
    assert h.run() == {"resp": [True, False]}
    info = h.gate.generation("resp")
    assert info is not None and info.state is GenerationState.DONE
    assert info.stragglers.samples == 240 and info.passed.samples == 480
    assert h.tap.in_progress() == []


@pytest.mark.parametrize(
    ("status", "reason"),
    [
        ("cancelled", DropReason.CANCELLED),
        ("failed", DropReason.FAILED),
        ("incomplete", DropReason.INCOMPLETE),
    ],
)
def test_unsuccessful_done_flags_with_its_reason(
    h: Harness, status: str, reason: DropReason
) -> None:
    h.script.response_create(0.0, "req")
    h.script.response_created(0.1, "resp", "req")
    h.script.response_done(0.3, "resp", status, reason="turn_detected")
    h.script.audio(0.4, "resp", 240)
    assert h.run() == {"resp": [False]}
    info = h.gate.generation("resp")
    assert info is not None and (info.state, info.reason) == (GenerationState.FLAGGED, reason)
    assert info.detail == f"response.done status {status}: turn_detected"


# ---- audio ---------------------------------------------------------------------------


def _delta(kind: str, rid: str, payload: str) -> dict[str, Any]:
    return {"type": kind, "event_id": "ev", "response_id": rid, "delta": payload}


@pytest.mark.parametrize("kind", ["response.output_audio.delta", "response.audio.delta"])
def test_audio_deltas_decode_ga_and_beta_names(h: Harness, kind: str) -> None:
    pcm = np.array([0, 1, -1, 32767, -32768], dtype="<i2")
    audio = h.tap.on_server_event(_delta(kind, "r", base64.b64encode(pcm.tobytes()).decode()))
    assert isinstance(audio, TapAudio) and audio.response_id == "r"
    assert audio.frame.sample_rate == 24_000 and audio.frame.num_channels == 1
    assert audio.frame.data.tolist() == pcm.tolist()


def test_decode_audio_false_returns_nothing() -> None:
    tap = RealtimeTap(PlaybackGate(), decode_audio=False)
    assert tap.on_server_event(_delta("response.output_audio.delta", "r", pcm16_delta(10))) is None
    assert tap.malformed == 0


def test_ga_session_rate_is_honoured(h: Harness) -> None:
    h.tap.on_server_event(
        {
            "type": "session.created",
            "session": {"audio": {"output": {"format": {"type": "audio/pcm", "rate": 16000}}}},
        }
    )
    audio = h.tap.on_server_event(_delta("response.output_audio.delta", "r", pcm16_delta(160)))
    assert audio is not None and audio.frame.sample_rate == 16_000
    assert h.tap.output_format == OutputAudioFormat("pcm16", 16_000)


@pytest.mark.skipif(audioop is None, reason="audioop (the G.711 reference) is gone")
@pytest.mark.parametrize(
    ("session", "law"),
    [
        ({"output_audio_format": "g711_ulaw"}, "ulaw"),
        ({"output_audio_format": "g711_alaw"}, "alaw"),
        ({"audio": {"output": {"format": {"type": "audio/pcmu"}}}}, "ulaw"),
        ({"audio": {"output": {"format": {"type": "audio/pcma"}}}}, "alaw"),
    ],
)
def test_g711_output_is_decoded(h: Harness, session: dict[str, Any], law: str) -> None:
    decoder = audioop.ulaw2lin if law == "ulaw" else audioop.alaw2lin
    h.tap.on_server_event({"type": "session.updated", "session": session})
    raw = bytes(range(256))
    audio = h.tap.on_server_event(
        _delta("response.audio.delta", "r", base64.b64encode(raw).decode())
    )
    assert audio is not None and audio.frame.sample_rate == 8_000
    assert audio.frame.data.tolist() == np.frombuffer(decoder(raw, 2), "<i2").tolist()


def test_unsupported_session_format_is_malformed_and_keeps_the_old_one(h: Harness) -> None:
    h.tap.on_server_event({"type": "session.updated", "session": {"output_audio_format": "opus"}})
    assert (
        h.tap.malformed == 1
        and "unsupported output_audio_format 'opus'" in h.tap.malformed_events[0].problem
    )
    assert h.tap.output_format == OutputAudioFormat()


def test_session_without_format_keeps_the_current_one(h: Harness) -> None:
    h.tap.on_server_event(
        {"type": "session.updated", "session": {"output_audio_format": "g711_ulaw"}}
    )
    h.tap.on_server_event({"type": "session.updated", "session": {"instructions": "x"}})
    assert h.tap.output_format.encoding == "g711_ulaw" and h.tap.malformed == 0


def test_out_of_band_responses_interleave_each_gated_by_its_own_id(h: Harness) -> None:
    h.script.response_create(0.0, "main")
    h.script.response_create(0.0, "oob1", out_of_band=True)
    h.script.response_create(0.0, "oob2", out_of_band=True)
    for rid, req in (("r_main", "main"), ("r_oob1", "oob1"), ("r_oob2", "oob2")):
        h.script.response_created(0.1, rid, req, out_of_band=rid != "r_main")
    for i in range(6):
        for rid in ("r_main", "r_oob1", "r_oob2"):
            h.script.audio(0.2 + i * 0.02, rid, 480)
    h.script.cancel(0.25, "r_oob1")
    h.script.response_done(0.29, "r_oob2", "failed")
    decisions = h.run()
    assert decisions["r_main"] == [True] * 6
    assert decisions["r_oob1"] == [True, True, True, False, False, False]
    assert decisions["r_oob2"] == [True] * 5 + [False]


# ---- malformed events ---------------------------------------------------------------------

MALFORMED: list[tuple[str, object, str]] = [
    ("server", ["not", "a", "dict"], "not a JSON object"),
    ("server", {"event_id": "e1"}, "'type' must be a non-empty string"),
    ("server", {"type": "response.teleport", "event_id": "e2"}, "unknown server event type"),
    ("client", {"type": "response.teleport", "event_id": "e3"}, "unknown client event type"),
    ("server", {"type": "response.created", "event_id": "e4"}, "'response' must be an object"),
    ("server", {"type": "response.created", "event_id": "e5", "response": {}}, "'id' must be"),
    ("server", {"type": "response.done", "event_id": "e6", "response": {"id": 7}}, "'id' must be"),
    ("server", _delta("response.output_audio.delta", "r", "!!notbase64"), "not valid base64"),
    (
        "server",
        _delta("response.output_audio.delta", "r", base64.b64encode(b"abc").decode()),
        "odd byte count",
    ),
    ("server", _delta("response.output_audio.delta", "r", ""), "empty"),
    (
        "server",
        {"type": "response.output_audio.delta", "event_id": "e9", "delta": "AAAA"},
        "'response_id'",
    ),
    (
        "server",
        {"type": "response.output_audio.delta", "response_id": "r", "delta": 5},
        "base64 string",
    ),
    (
        "client",
        {"type": "response.create", "event_id": "e10", "response": "x"},
        "'response' must be",
    ),
    ("client", {"type": "response.cancel", "response_id": 42}, "'response_id' must be"),
    (
        "server",
        {"type": "response.done", "response": {"id": "r", "status": "weird"}},
        "unknown status",
    ),
]


@pytest.mark.parametrize(("direction", "event", "problem"), MALFORMED)
def test_malformed_events_are_counted_logged_and_never_raise(
    h: Harness, direction: str, event: object, problem: str, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="playback_gate.tap"):
        if direction == "client":
            h.tap.on_client_event(event)  # type: ignore[arg-type]
        else:
            assert h.tap.on_server_event(event) is None  # type: ignore[arg-type]
    assert h.tap.malformed == 1
    record = h.tap.malformed_events[0]
    assert problem in record.problem and record.direction == direction
    assert f"malformed {direction} event #1" in caplog.text and record.type in caplog.text
    if isinstance(event, dict) and "event_id" in event:
        assert record.event_id == event["event_id"] and str(event["event_id"]) in caplog.text


def test_duplicate_request_id_and_duplicate_created_are_malformed(h: Harness) -> None:
    h.script.response_create(0.0, "req")
    h.script.response_create(0.1, "req")
    h.script.response_created(0.2, "resp", "req")
    h.script.response_created(0.3, "resp", "req")
    h.run()
    assert h.tap.malformed == 2
    assert "already used" in h.tap.malformed_events[0].problem
    assert h.state("resp") == (GenerationState.LIVE, None)


def test_a_gigantic_delta_is_malformed_not_decoded() -> None:
    tap = RealtimeTap(PlaybackGate(), max_delta_chars=1000)
    assert (
        tap.on_server_event(_delta("response.output_audio.delta", "r", pcm16_delta(2000))) is None
    )
    assert "exceeds 1000" in tap.malformed_events[0].problem


def test_known_events_without_gate_meaning_are_ignored(h: Harness) -> None:
    for kind in (
        "conversation.item.added",
        "response.output_audio_transcript.delta",
        "response.audio.done",
    ):
        h.tap.on_server_event({"type": kind})
    h.tap.on_client_event({"type": "input_audio_buffer.append", "audio": ""})
    assert h.tap.malformed == 0


# ---- fuzz: malformed and reordered events never touch healthy responses --------------------

_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)
_types = st.sampled_from(
    [
        "response.create",
        "response.created",
        "response.done",
        "response.cancel",
        "response.output_audio.delta",
        "response.audio.delta",
        "session.updated",
        "error",
        "bogus.type",
    ]
)
_victims = st.sampled_from(["v1", "v2", "v3"])


@st.composite
def _garbage(draw: st.DrawFn) -> tuple[str, Any]:
    """A malformed, reordered or foreign event that must not affect healthy responses."""
    kind = draw(_types)
    victim = draw(_victims)
    base: dict[str, Any] = {
        "type": kind,
        "event_id": draw(st.text(max_size=6) | st.none()),
        "response_id": victim,
        "response": {
            "id": victim,
            "status": draw(st.sampled_from(["completed", "cancelled", "weird", None])),
            "metadata": draw(
                st.sampled_from([None, {"client_event_id": victim}, {"client_event_id": 3}])
            ),
            "conversation": draw(st.sampled_from(["auto", "none", None])),
        },
        "delta": draw(
            st.sampled_from([pcm16_delta(3), "%%", base64.b64encode(b"odd").decode(), ""])
        ),
        "session": draw(_json),
        "error": {"event_id": victim},
    }
    for key in draw(st.lists(st.sampled_from(sorted(base)), max_size=4)):
        base.pop(key, None)
    for key in draw(
        st.lists(st.sampled_from(["response", "response_id", "delta", "type"]), max_size=2)
    ):
        base[key] = draw(_json)
    event: Any = base if draw(st.integers(0, 9)) else draw(_json)
    if (
        isinstance(event, dict)
        and event.get("type") == "response.cancel"
        and not isinstance(event.get("response_id"), str)
    ):
        event["response_id"] = {"bad": True}  # a bare cancel is an instruction, not garbage
    return draw(st.sampled_from(["client", "server"])), event


@st.composite
def _victim_event(draw: st.DrawFn) -> tuple[str, Any]:
    """A well-formed event about another response, in any order (before created, after done)."""
    s = TraceScript()
    victim = draw(_victims)
    oob = draw(st.booleans())
    choice = draw(st.integers(0, 5))
    if choice == 0:
        event = s.response_create(0, victim, out_of_band=oob, stamped=draw(st.booleans()))
    elif choice == 1:
        event = s.response_created(
            0, victim, draw(st.sampled_from([victim, None])), out_of_band=oob
        )
    elif choice == 2:
        event = s.audio(0, victim, draw(st.integers(1, 480)), beta=draw(st.booleans()))
    elif choice == 3:
        status = draw(st.sampled_from(["completed", "cancelled", "failed", "incomplete"]))
        event = s.response_done(0, victim, status)
    elif choice == 4:
        event = s.cancel(0, victim)
    else:
        event = {"type": "error", "error": {"code": "x", "event_id": victim}}
    return s.entries[0].direction if s.entries else "server", event


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    garbage=st.lists(st.tuples(st.integers(0, 40), _garbage() | _victim_event()), max_size=25),
    oob=st.booleans(),
)
def test_fuzz_garbage_never_affects_healthy_responses(
    garbage: list[tuple[int, tuple[str, Any]]], oob: bool
) -> None:
    h = Harness()
    healthy: list[tuple[str, dict[str, Any]]] = []
    s = TraceScript()
    for n in range(2):
        s.response_create(0.0, f"hreq-{n}", out_of_band=oob and n == 1)
        s.response_created(0.1, f"hresp-{n}", f"hreq-{n}", out_of_band=oob and n == 1)
    for i in range(8):
        for n in range(2):
            s.audio(0.2 + i * 0.01, f"hresp-{n}", 240)
    for n in range(2):
        s.response_done(0.3, f"hresp-{n}")
    healthy = [(e.direction, e.event) for e in s.ordered()]
    stream = list(healthy)
    for position, (direction, event) in sorted(garbage, key=lambda g: -g[0]):
        if "hre" in json.dumps(event, default=str):
            continue
        stream.insert(min(position, len(stream)), (direction, event))
    passed = {f"hresp-{n}": 0 for n in range(2)}
    for direction, event in stream:
        h.clock.advance(0.001)
        if direction == "client":
            h.tap.on_client_event(event)
            continue
        audio = h.tap.on_server_event(event)
        if audio is None:
            continue
        ok = h.gate.admit(audio.response_id, audio.frame)
        if audio.response_id in passed:
            assert ok, f"healthy frame of {audio.response_id} dropped"
            passed[audio.response_id] += 1
    assert passed == {"hresp-0": 8, "hresp-1": 8}
    for n in range(2):
        info = h.gate.generation(f"hresp-{n}")
        assert info is not None and info.state is GenerationState.DONE
        assert info.request_id == f"hreq-{n}" and info.dropped.frames == 0
    # What the tap sends (targeted cancels, and history edits of killed replies) never names a
    # healthy reply; their items are only made by the server events above, which name them.
    assert all(
        c["type"] in {"response.cancel", "conversation.item.delete", "conversation.item.truncate"}
        for c in h.sent
    )
    assert not [c for c in h.sent if "hre" in json.dumps(c, default=str)]


# ---- constructor settings ---------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"max_tracked": -1}, "max_tracked must be a positive int"),
        ({"max_delta_chars": 0}, "max_delta_chars must be a positive int"),
        ({"max_malformed_kept": 0}, "max_malformed_kept must be a positive int"),
        ({"unattributed_grace": float("nan")}, "unattributed_grace must be a finite number"),
        ({"unattributed_grace": -1.0}, "unattributed_grace must be a finite number"),
        ({"unattributed_policy": "play"}, "unattributed_policy must be an UnattributedPolicy"),
    ],
)
def test_bad_settings_are_refused_naming_the_setting(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        RealtimeTap(PlaybackGate(), **kwargs)


def test_a_gate_is_required() -> None:
    with pytest.raises(TypeError, match="gate must be a PlaybackGate"):
        RealtimeTap(object())  # type: ignore[arg-type]
