"""The tap's item book and the history keeper: killed replies leave the server's history honest."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest

from gate import DropReason
from integrations.openai_realtime._items import base64_samples
from integrations.openai_realtime.trace.script import pcm16_delta
from integrations.testing.tap_harness import Harness


def edits(h: Harness) -> list[dict[str, Any]]:
    return [e for e in h.sent if e["type"] != "response.cancel"]


def late_reply(h: Harness, *, out_of_band: bool = False) -> None:
    """A request that times out (10 s), then its reply arrives and streams 200 ms."""
    h.script.response_create(0.0, "req_1", out_of_band=out_of_band)
    h.script.response_created(11.0, "resp_1", "req_1", out_of_band=out_of_band)
    h.script.audio_stream(11.1, "resp_1", 10)


def streamed(h: Harness) -> None:
    """A request answered at once: resp_1 streams 200 ms of audio from t = 0.2 s."""
    h.script.response_create(0.0, "req_1")
    h.script.response_created(0.1, "resp_1", "req_1")
    h.script.audio_stream(0.2, "resp_1", 10)


def completed_and_played(played: int) -> Harness:
    """resp_1 completes (not killed) and ``played`` of its samples played."""
    h = Harness()
    streamed(h)
    h.script.response_done(0.5, "resp_1")
    h.run()
    h.tap.playout_final("resp_1", played, 24_000)
    return h


def test_base64_samples_counts_without_decoding() -> None:
    for n in (0, 1, 2, 3, 480, 481):
        assert base64_samples(pcm16_delta(n), 2) == n
        assert base64_samples(pcm16_delta(n), 1) == 2 * n
    assert base64_samples(None, 2) == 0 and base64_samples("", 2) == 0


def test_book_tracks_items_and_audio_per_reply() -> None:
    h = Harness()
    h.script.response_create(0.0, "req_1")
    h.script.response_created(0.1, "resp_1", "req_1")
    h.script.add(
        0.1,
        "server",
        {
            "type": "response.output_item.added",
            "response_id": "resp_1",
            "output_index": 0,
            "item": {"id": "item_resp_1", "type": "message"},
        },
    )
    h.script.audio_stream(0.2, "resp_1", 5)
    h.script.response_done(0.4, "resp_1")
    h.script.audio(0.5, "resp_1", 480)  # after done: joins no item
    h.run()
    reply = h.tap.items.reply("resp_1")
    assert reply is not None and reply.done and not reply.out_of_band
    assert list(reply.items) == ["item_resp_1"] and reply.samples_sent == 5 * 480
    assert edits(h) == []  # a completed reply is nobody's business


def test_dead_on_arrival_reply_is_deleted_once_done() -> None:
    h = Harness()
    late_reply(h)
    h.run()
    assert [e["type"] for e in h.sent] == ["response.cancel"]  # not done yet: no edit
    h.script.response_done(11.4, "resp_1")
    h.run()
    assert edits(h) == [{"type": "conversation.item.delete", "item_id": "item_resp_1"}]
    assert h.tap.history is not None and h.tap.history.sent == edits(h)
    h.script.response_done(11.5, "resp_1")  # a duplicate done changes nothing
    h.run()
    assert len(edits(h)) == 1


def test_out_of_band_reply_is_left_alone() -> None:
    h = Harness()
    late_reply(h, out_of_band=True)
    h.script.response_done(11.4, "resp_1")
    h.run()
    assert h.gate.is_flagged("resp_1") and edits(h) == []


def test_partly_played_reply_is_truncated_at_what_played() -> None:
    h = Harness()
    streamed(h)
    h.script.cancel(0.3, "resp_1")
    h.script.response_done(0.5, "resp_1", "cancelled", "client_cancelled")
    h.run()
    assert edits(h) == []  # frames passed the gate: wait for the output stage
    h.tap.playout_final("resp_1", 4410 + 5, 44_100)  # 100.1 ms at the device's rate
    assert edits(h) == [
        {
            "type": "conversation.item.truncate",
            "item_id": "item_resp_1",
            "content_index": 0,
            "audio_end_ms": 100,
        }
    ]


@pytest.mark.parametrize(
    ("played", "expected"),
    [(0, "conversation.item.delete"), (4800, None), (9600, None)],
    ids=["nothing", "all", "more than sent"],
)
def test_played_in_full_or_not_at_all(played: int, expected: str | None) -> None:
    h = Harness()
    streamed(h)
    h.script.response_done(0.5, "resp_1", "cancelled", "client_cancelled")
    h.run()
    h.tap.playout_final("resp_1", played, 24_000)
    assert [e["type"] for e in edits(h)] == ([expected] if expected else [])


def test_never_a_second_edit_after_the_clients_own() -> None:
    h = Harness()
    streamed(h)
    h.script.add(
        0.3,
        "client",
        {"type": "conversation.item.truncate", "item_id": "item_resp_1", "audio_end_ms": 60},
    )
    h.script.cancel(0.3, "resp_1")
    h.script.response_done(0.5, "resp_1", "cancelled", "client_cancelled")
    h.run()
    h.tap.playout_final("resp_1", 1440, 24_000)
    assert edits(h) == []


def test_flag_after_done_and_playout_report() -> None:
    """A flag from anywhere (here: the app's own barge-in) reaches the keeper."""
    h = completed_and_played(2400)
    assert edits(h) == []  # not killed
    h.gate.flag("resp_1", DropReason.INTERRUPTED)
    assert [e["audio_end_ms"] for e in edits(h)] == [100]


def test_keep_history_off_sends_nothing() -> None:
    h = Harness(keep_history=False)
    late_reply(h)
    h.script.response_done(11.4, "resp_1")
    h.run()
    assert edits(h) == [] and h.tap.history is None
    h.tap.playout_final("resp_1", 0, 24_000)  # harmless
    h.tap.close()


def test_a_closed_tap_stops_editing() -> None:
    h = completed_and_played(0)
    h.tap.close()
    h.gate.flag("resp_1", DropReason.INTERRUPTED)
    assert edits(h) == []


async def test_a_flag_from_another_thread_is_handled_on_the_loop() -> None:
    h = completed_and_played(1200)  # made on the loop: the keeper sends from it
    senders: list[int] = []
    assert h.tap.history is not None
    h.tap.history.send = lambda event: senders.append(threading.get_ident())
    flagger = threading.Thread(target=h.gate.flag, args=("resp_1", DropReason.INTERRUPTED))
    flagger.start()
    flagger.join()
    for _ in range(100):
        if senders:
            break
        await asyncio.sleep(0.01)
    assert senders == [threading.get_ident()]
