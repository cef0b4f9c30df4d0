"""A scripted #6222 story on a virtual clock: what the gate passes and drops.

Used by ``playback-gate demo`` until the full LiveKit demo lands, and by tests.
Four replies stream 20 ms frames; the server misbehaves as in LiveKit Agents
issue #6222: a reply whose request timed out arrives late and keeps streaming
after the targeted cancel.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gate.audio_format import AudioFormat, PcmFrame
from gate.clock import VirtualClock
from gate.playback_gate import PlaybackGate
from gate.reasons import DropReason

__all__ = ["StoryRow", "run_story"]

RATE = 24_000
FRAME_SAMPLES = 480  # 20 ms


@dataclass(frozen=True, slots=True)
class StoryRow:
    """One reply of the story.

    Attributes:
        reply: What happened to it.
        generation_id: The server's response id.
        sent: Samples the server sent.
        played: Samples the gate admitted.
        dropped: Samples the gate dropped.
        reason: Why they were dropped, or ``""``.
        leaked_without_gate: Unwanted samples a plain output would have played.
    """

    reply: str
    generation_id: str
    sent: int
    played: int
    dropped: int
    reason: str
    leaked_without_gate: int


def run_story(timeout: float = 10.0) -> list[StoryRow]:
    """Play the story through a fresh gate.

    Args:
        timeout: The request timeout, seconds.

    Returns:
        One row per reply.
    """
    clock = VirtualClock()
    gate = PlaybackGate(audio_format=AudioFormat(RATE), clock=clock, request_timeout=timeout)
    frame = PcmFrame(np.zeros(FRAME_SAMPLES, np.int16), RATE)
    rows: list[StoryRow] = []

    def stream(generation_id: str, frames: int, flag_after: int | None = None) -> tuple[int, int]:
        played = 0
        for i in range(frames):
            if flag_after is not None and i == flag_after:
                gate.flag(generation_id, DropReason.INTERRUPTED, "user barged in")
            played += FRAME_SAMPLES if gate.admit(generation_id, frame) else 0
            clock.advance(FRAME_SAMPLES / RATE)
        gate.retire(generation_id)
        return frames * FRAME_SAMPLES, played

    def row(reply: str, gid: str, sent: int, played: int, unwanted: int) -> None:
        info = gate.generation(gid)
        reason = info.reason.value if info and info.reason else ""
        rows.append(StoryRow(reply, gid, sent, played, sent - played, reason, unwanted))

    gate.expect("req_1")
    gate.bind("req_1", "resp_1")
    sent, played = stream("resp_1", 50)
    row("normal reply", "resp_1", sent, played, 0)

    gate.expect("req_2")
    clock.advance(timeout + 2.0)  # generate_reply gives up; the server is late
    binding = gate.bind("req_2", "resp_2")  # -> send response.cancel for resp_2
    assert binding.dead_on_arrival
    sent, played = stream("resp_2", 75)  # the server ignores the cancel
    row("timed out, server kept streaming", "resp_2", sent, played, sent)

    gate.expect("req_3")
    gate.bind("req_3", "resp_3")
    sent, played = stream("resp_3", 60, flag_after=20)
    row("interrupted mid-word", "resp_3", sent, played, sent - 20 * FRAME_SAMPLES)

    gate.expect("req_4")
    gate.bind("req_4", "resp_4")
    sent, played = stream("resp_4", 50)
    row("final normal reply", "resp_4", sent, played, 0)
    return rows


def format_story(rows: list[StoryRow]) -> str:
    """Render rows as a plain-text table (seconds at 24 kHz).

    Args:
        rows: The story's rows.

    Returns:
        The table.
    """
    head = f"{'reply':<34} {'sent':>7} {'played':>7} {'dropped':>8}  {'why':<12} {'no gate':>8}"
    lines = [head, "-" * len(head)]
    for r in rows:
        lines.append(
            f"{r.reply:<34} {r.sent / RATE:>6.2f}s {r.played / RATE:>6.2f}s "
            f"{r.dropped / RATE:>7.2f}s  {r.reason:<12} {r.leaked_without_gate / RATE:>7.2f}s"
        )
    lines.append("no gate: unwanted audio that an ungated output would have played")
    return "\n".join(lines)
