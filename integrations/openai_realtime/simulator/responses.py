"""Streaming one simulated response, following its :class:`ResponsePlan`.

Event order for a response (as the GA server sends it)::

    response.created
    response.output_item.added
    conversation.item.added            (default conversation only)
    response.content_part.added
    ( response.output_audio_transcript.delta? response.output_audio.delta ) * chunks
    response.output_audio.done
    response.output_audio_transcript.done
    response.content_part.done
    response.output_item.done
    conversation.item.done             (default conversation only)
    response.done
    response.output_audio.delta * deltas_after_done   (misbehaviour)
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import time
from typing import Any

from integrations.openai_realtime.simulator.audio_marker import chunk_samples
from integrations.openai_realtime.simulator.ports import ConnectionGone, ResponseHost
from integrations.openai_realtime.simulator.protocol import assistant_item, response_object
from integrations.openai_realtime.simulator.records import ResponseRecord, ResponseStatus

__all__ = ["mark_dropped", "run_response"]


def mark_dropped(record: ResponseRecord) -> None:
    """Mark an unfinished response as ended by a lost connection.

    Args:
        record: The response.
    """
    record.status = "dropped"
    if record.done_at is None:
        record.done_at = time.monotonic()
    record.done.set()


def _transcript_schedule(text: str, chunks: int) -> list[list[str]]:
    """Spread the transcript's words over ``chunks`` slots (one extra slot at the end)."""
    words = text.split(" ")
    deltas = [w + " " for w in words[:-1]] + [words[-1]] if text else []
    slots: list[list[str]] = [[] for _ in range(chunks + 1)]
    for i, delta in enumerate(deltas):
        slots[i * chunks // len(deltas) if chunks else 0].append(delta)
    return slots


async def _wait_until(deadline: float, cancel: asyncio.Event | None) -> bool:
    """Sleep until ``deadline`` (monotonic) or until ``cancel`` is set.

    Returns:
        Whether ``cancel`` is set.
    """
    if cancel is not None and cancel.is_set():
        return True
    delay = deadline - time.monotonic()
    if delay <= 0:
        await asyncio.sleep(0)
    elif cancel is None:
        await asyncio.sleep(delay)
    else:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(cancel.wait(), delay)
    return cancel is not None and cancel.is_set()


class _Streamer:
    """Sends one response's events on one connection and keeps its record up to date."""

    def __init__(self, conn: ResponseHost, record: ResponseRecord) -> None:
        self.conn = conn
        self.record = record
        self.plan = record.plan
        self.base: dict[str, Any] = {
            "response_id": record.response_id,
            "item_id": record.item_id,
            "output_index": 0,
            "content_index": 0,
        }

    @property
    def conversation_id(self) -> str | None:
        return self.conn.conversation_id if self.record.conversation == "auto" else None

    @property
    def voice(self) -> str:
        output = self.conn.conversation.session.get("audio", {}).get("output", {})
        voice = output.get("voice") if isinstance(output, dict) else None
        return voice if isinstance(voice, str) else "alloy"

    async def send_audio(self) -> None:
        record = self.record
        pcm = chunk_samples(
            record.number, record.chunks_sent, self.plan.samples_per_chunk, mode=self.plan.audio
        )
        delta = base64.b64encode(pcm.tobytes()).decode("ascii")
        if record.status == "in_progress":  # deltas after response.done join no item
            self.conn.conversation.audio.add_audio(record.item_id, pcm.size)
        await self.conn.send({"type": "response.output_audio.delta", **self.base, "delta": delta})
        now = time.monotonic()
        if record.first_audio_at is None:
            record.first_audio_at = now
        record.chunks_sent += 1
        record.samples_sent += pcm.size
        if record.status != "in_progress":
            record.chunks_after_done += 1
        elif record.cancel_requested_at is not None:
            record.chunks_after_cancel += 1
        else:
            record.chunks_before_cancel = record.chunks_sent
        if record.chunks_sent == self.plan.drop_after_chunks:
            raise _Drop

    async def send_transcript(self, deltas: list[str]) -> None:
        for text in deltas:
            await self.conn.send(
                {"type": "response.output_audio_transcript.delta", **self.base, "delta": text}
            )
            self.record.transcript += text

    async def start(self) -> None:
        record = self.record
        if self.plan.created_delay_s > 0:
            await asyncio.sleep(self.plan.created_delay_s)
        record.status = "in_progress"
        record.created_at = time.monotonic()
        response = response_object(
            record, status="in_progress", conversation_id=self.conversation_id, voice=self.voice
        )
        await self.conn.send({"type": "response.created", "response": response})
        record.created.set()
        self.conn.hub.notify()
        if self.plan.drop_after_chunks == 0:
            raise _Drop
        item = assistant_item(record.item_id, "in_progress", None)
        await self.conn.send(
            {
                "type": "response.output_item.added",
                "response_id": record.response_id,
                "output_index": 0,
                "item": item,
            }
        )
        if record.conversation == "auto":
            previous = (
                self.conn.conversation.items[-1]["id"] if self.conn.conversation.items else None
            )
            self.conn.conversation.items.append(item)
            self.conn.conversation.audio.add_item(record.item_id, record.response_id)
            await self.conn.send(
                {"type": "conversation.item.added", "item": item, "previous_item_id": previous}
            )
        await self.conn.send(
            {"type": "response.content_part.added", **self.base, "part": _part("")}
        )

    async def stream(self, cancel: asyncio.Event | None) -> bool:
        """Send the planned chunks; return whether a cancel stopped the stream."""
        text = self.plan.transcript
        if text is None:
            text = f"response {self.record.number}"
        slots = _transcript_schedule(text, self.plan.chunks)
        t0 = time.monotonic() + self.plan.first_audio_delay_s
        interval = self.plan.chunk_interval_s
        for k in range(self.plan.chunks):
            if await _wait_until(t0 + k * interval, cancel):
                return True
            await self.send_transcript(slots[k])
            await self.send_audio()
        if cancel is not None and cancel.is_set():
            return True
        await self.send_transcript(slots[-1])
        return False

    async def finish(self, cancelled: bool) -> None:
        record = self.record
        status: ResponseStatus = "cancelled" if cancelled else "completed"
        item_status = "incomplete" if cancelled else "completed"
        transcript = record.transcript
        await self.conn.send({"type": "response.output_audio.done", **self.base})
        await self.conn.send(
            {"type": "response.output_audio_transcript.done", **self.base, "transcript": transcript}
        )
        await self.conn.send(
            {"type": "response.content_part.done", **self.base, "part": _part(transcript)}
        )
        item = assistant_item(record.item_id, item_status, transcript)
        await self.conn.send(
            {
                "type": "response.output_item.done",
                "response_id": record.response_id,
                "output_index": 0,
                "item": item,
            }
        )
        if record.conversation == "auto":
            index = self.conn.conversation.item_index(record.item_id)
            previous = None
            if index is not None:
                self.conn.conversation.items[index] = item
                previous = self.conn.conversation.items[index - 1]["id"] if index > 0 else None
            await self.conn.send(
                {"type": "conversation.item.done", "item": item, "previous_item_id": previous}
            )
        reason = (record.cancel_reason or "client_cancelled") if cancelled else None
        response = response_object(
            record,
            status=status,
            conversation_id=self.conversation_id,
            voice=self.voice,
            output=[item],
            reason=reason,
        )
        record.status = status
        record.status_reason = reason
        record.done_at = time.monotonic()
        await self.conn.send({"type": "response.done", "response": response})
        record.done.set()
        self.conn.hub.notify()

    async def trailing(self) -> None:
        """Misbehave: keep sending deltas after ``response.done``."""
        interval = self.plan.chunk_interval_s
        t0 = time.monotonic()
        for k in range(self.plan.deltas_after_done):
            await _wait_until(t0 + (k + 1) * interval, None)
            await self.send_audio()


class _Drop(Exception):
    """The plan says: drop the connection now."""


def _part(transcript: str) -> dict[str, Any]:
    return {"type": "audio", "transcript": transcript}


async def run_response(
    conn: ResponseHost, record: ResponseRecord, cancel_event: asyncio.Event
) -> None:
    """Stream one response on a connection, following ``record.plan``.

    Args:
        conn: The connection.
        record: The response (status ``pending``).
        cancel_event: Set by the connection when a ``response.cancel`` is honoured.
    """

    streamer = _Streamer(conn, record)
    cancel = None if record.plan.ignore_cancel else cancel_event
    try:
        await streamer.start()
        cancelled = await streamer.stream(cancel)
        await streamer.finish(cancelled)
        await streamer.trailing()
    except _Drop:
        if record.is_active:
            mark_dropped(record)
        conn.hub.notify()
        await conn.drop(record.plan.drop_mode)
    except ConnectionGone:
        if record.is_active:
            mark_dropped(record)
        conn.hub.notify()
    except asyncio.CancelledError:
        if record.is_active:
            mark_dropped(record)
        raise
