"""Replay a trace through the tap and the gate into a simulated real-time speaker.

Time is virtual: each line's ``t`` sets the gate's clock and advances the
:class:`~integrations.openai_realtime.trace.playout.SimulatedPlayout` to that instant
before the event is handled, so a flag purges exactly the audio still queued
then. The result says, per response, how many samples arrived, played and were
dropped; ``samples_played`` counts the very samples written to the WAV.

Memory is bounded in bytes: one trace line at a time (``TraceLimits.max_line_bytes``),
the gate's and tap's own bounds, the first 1,000 malformed events, and one counter
per response id of at most 256 characters (longer ids are dropped as malformed and
kept nowhere), so at most a few hundred bytes per response the trace announces.
"""

from __future__ import annotations

import contextlib
import json
import math
import wave
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from gate import DEFAULT_REQUEST_TIMEOUT, ConfigurationError, PlaybackGate, VirtualClock
from gate.validation import MAX_ID_CHARS
from integrations.openai_realtime._events import MalformedEvent
from integrations.openai_realtime._tap import RealtimeTap, UnattributedPolicy
from integrations.openai_realtime.trace.outputs import AtomicOutput, check_outputs, naming_dest
from integrations.openai_realtime.trace.playout import Samples, SimulatedPlayout
from integrations.openai_realtime.trace.reader import (
    DEFAULT_LIMITS,
    TraceEntry,
    TraceError,
    TraceLimits,
    iter_trace,
)
from integrations.openai_realtime.trace.result import ReplayResult, ResponseOutcome

__all__ = ["ReplayResult", "Replayer", "ResponseOutcome", "replay_entries", "replay_file"]

_MAX_MALFORMED_LISTED = 1000
_WAV_MAX_SAMPLES = (0xFFFF_FFFF - 36) // 2  # mono PCM16: the RIFF size field is 32-bit


class Replayer:
    """Feeds trace entries through a tap and a gate on a virtual clock.

    Args:
        timeout: Request timeout in seconds.
        unattributed_policy: The tap's policy for unattributed responses.
        write_audio: Receives ``(sample_rate, block)`` for every output block.
        limits: ``limits.max_duration_s`` bounds ``t`` and the output's length.

    Raises:
        ConfigurationError: If ``limits.max_duration_s`` is not positive and finite.
    """

    def __init__(
        self,
        *,
        timeout: float = DEFAULT_REQUEST_TIMEOUT,
        unattributed_policy: UnattributedPolicy = UnattributedPolicy.PLAY,
        write_audio: Callable[[int, Samples], None] | None = None,
        limits: TraceLimits = DEFAULT_LIMITS,
    ) -> None:
        if not 0 < limits.max_duration_s < math.inf:
            raise ConfigurationError(
                f"max_duration_s must be positive and finite, got {limits.max_duration_s}"
            )
        self.clock = VirtualClock()
        self.gate = PlaybackGate(clock=self.clock, request_timeout=timeout)
        self.tap = RealtimeTap(
            self.gate,
            send=self._on_cancel,
            unattributed_policy=unattributed_policy,
            on_malformed=self._on_malformed,
            keep_history=False,  # a replay reports the cancels; it edits no conversation
        )
        self.playout: SimulatedPlayout | None = None
        self._write_audio = write_audio
        self._max_duration_s = limits.max_duration_s
        self._max_samples = 0  # output cap, set with the output rate
        self._line = 0
        self._received: dict[str, int] = {}
        self._cancels: list[dict[str, Any]] = []
        self._malformed: list[dict[str, Any]] = []
        self._malformed_count = 0

    def feed(self, entry: TraceEntry) -> None:
        """Handle one entry at its time.

        Raises:
            TraceError: If ``entry.t`` is earlier than the previous entry's, or
                the output would run past ``max_duration_s`` (or what a WAV holds).
        """
        if entry.t < self.clock.now():
            raise TraceError(entry.line, f"'t' goes back in time ({entry.t} < {self.clock.now()})")
        if entry.t > self._max_duration_s:
            raise TraceError(
                entry.line,
                f"'t' = {entry.t:g} s is past the replay limit of {self._max_duration_s:g} s "
                "(--max-duration)",
            )
        if self.playout is not None:
            self._check_output(entry.line, entry.t * self.playout.sample_rate)
        self.clock.set(entry.t)
        self._line = entry.line
        if self.playout is not None:
            self.playout.advance_to(entry.t)
        event = entry.event
        if entry.direction == "client":
            self.tap.on_client_event(event)
            return
        self._note_response(event)
        audio = self.tap.on_server_event(event)
        if audio is None:
            return
        rid, frame = audio.response_id, audio.frame
        if len(rid) > MAX_ID_CHARS:  # the gate drops it as malformed; keep nothing of it
            self.gate.admit(rid, frame)
            return
        self._received[rid] = self._received.get(rid, 0) + frame.samples_per_channel
        if self.playout is None:
            self.playout = SimulatedPlayout(frame.sample_rate, self._write_block)
            self._max_samples = min(
                int(self._max_duration_s * frame.sample_rate + 1e-6), _WAV_MAX_SAMPLES
            )
            self._check_output(entry.line, entry.t * frame.sample_rate)
            self.gate.add_sink(self.playout)
            self.playout.advance_to(entry.t)
        if frame.sample_rate != self.playout.sample_rate:
            self._add_malformed(
                {
                    "from": "server",
                    "type": event["type"],
                    "event_id": event.get("event_id"),
                    "problem": f"output rate changed mid-trace from {self.playout.sample_rate} "
                    f"to {frame.sample_rate} Hz; not played",
                }
            )
            return
        if self.gate.admit(rid, frame):
            n = frame.samples_per_channel
            self._check_output(entry.line, self.playout.position + self.playout.queued + n)
            self.playout.enqueue(rid, frame.data)  # type: ignore[arg-type]

    def finish(self) -> ReplayResult:
        """Play out what is still queued and return the result."""
        playout = self.playout
        if playout is None:
            playout = SimulatedPlayout(self.tap.output_format.sample_rate)
        playout.drain()
        responses = []
        for rid, received in self._received.items():
            info = self.gate.generation(rid)
            played = playout.played.get(rid, 0)
            responses.append(
                ResponseOutcome(
                    response_id=rid,
                    request_id=info.request_id if info else None,
                    final_state=info.state.value if info else "unknown",
                    reason=info.reason.value if info and info.reason else None,
                    detail=info.detail if info else "",
                    samples_received=received,
                    samples_played=played,
                    samples_dropped=received - played,
                    samples_purged=playout.purged.get(rid, 0),
                )
            )
        return ReplayResult(
            sample_rate=playout.sample_rate,
            responses=responses,
            output_samples=playout.position,
            silence_samples=playout.silence,
            requests_timed_out=self.gate.stats().requests_timed_out,
            cancels_sent=self._cancels,
            malformed_count=self._malformed_count,
            malformed=self._malformed,
        )

    def _check_output(self, line: int, end: float) -> None:
        """Refuse output that would run to sample ``end``, before any of it is made."""
        if self.playout is None or end <= self._max_samples + 1e-6:
            return
        rate = self.playout.sample_rate
        limit_s = self._max_samples / rate
        bound = (
            "(--max-duration)"
            if limit_s >= self._max_duration_s - 1 / rate
            else f"(the most a 4 GiB WAV holds at {rate} Hz)"
        )
        raise TraceError(
            line, f"replay would run to {end / rate:g} s, past its limit of {limit_s:g} s {bound}"
        )

    def _note_response(self, event: Mapping[str, Any]) -> None:
        kind = event.get("type")
        if kind in ("response.created", "response.done"):
            response = event.get("response")
            rid = response.get("id") if isinstance(response, Mapping) else None
            if isinstance(rid, str) and 0 < len(rid) <= MAX_ID_CHARS:
                self._received.setdefault(rid, 0)

    def _write_block(self, block: Samples) -> None:
        if self._write_audio is not None and self.playout is not None:
            self._write_audio(self.playout.sample_rate, block)

    def _on_cancel(self, cancel: dict[str, Any]) -> None:
        self._cancels.append({"t": self.clock.now(), "line": self._line, **cancel})

    def _on_malformed(self, record: MalformedEvent) -> None:
        self._add_malformed(record.to_dict())

    def _add_malformed(self, record: dict[str, Any]) -> None:
        self._malformed_count += 1
        if len(self._malformed) < _MAX_MALFORMED_LISTED:
            self._malformed.append({"line": self._line, **record})


def replay_entries(
    entries: Iterable[TraceEntry],
    *,
    timeout: float = DEFAULT_REQUEST_TIMEOUT,
    unattributed_policy: UnattributedPolicy = UnattributedPolicy.PLAY,
    write_audio: Callable[[int, Samples], None] | None = None,
    limits: TraceLimits = DEFAULT_LIMITS,
) -> ReplayResult:
    """Replay entries and return the result.

    Args:
        entries: Trace entries in time order.
        timeout: Request timeout in seconds.
        unattributed_policy: The tap's policy for unattributed responses.
        write_audio: Receives ``(sample_rate, block)`` for every output block.
        limits: ``limits.max_duration_s`` bounds ``t`` and the output's length.

    Returns:
        The per-response outcomes and totals.

    Raises:
        TraceError: If the entries are bad (see :func:`iter_trace`).
    """
    replayer = Replayer(
        timeout=timeout,
        unattributed_policy=unattributed_policy,
        write_audio=write_audio,
        limits=limits,
    )
    for entry in entries:
        replayer.feed(entry)
    return replayer.finish()


class _WavOut:
    """A mono PCM16 WAV written through an :class:`AtomicOutput`."""

    def __init__(self, path: Path) -> None:
        self.out = AtomicOutput(path)
        self._wav: wave.Wave_write | None = None

    def write(self, rate: int, block: Samples) -> None:
        if self._wav is None:
            self._open(rate)
        assert self._wav is not None
        with naming_dest(self.out.dest):
            self._wav.writeframesraw(block.astype("<i2", copy=False).tobytes())

    def commit(self, rate: int) -> None:
        if self._wav is None:
            self._open(rate)
        assert self._wav is not None
        with naming_dest(self.out.dest):
            self._wav.close()  # patches the header; the file stays open (we opened it)
        self.out.commit()

    def _open(self, rate: int) -> None:
        with naming_dest(self.out.dest):
            self._wav = wave.open(self.out.file, "wb")  # noqa: SIM115
            self._wav.setnchannels(1)
            self._wav.setsampwidth(2)
            self._wav.setframerate(rate)

    def abort(self) -> None:
        with contextlib.suppress(Exception):
            if self._wav is not None:
                self._wav.close()
        self.out.abort()


def replay_file(
    trace: str | Path,
    *,
    timeout: float = DEFAULT_REQUEST_TIMEOUT,
    out_wav: str | Path | None = None,
    report: str | Path | None = None,
    unattributed_policy: UnattributedPolicy = UnattributedPolicy.PLAY,
    limits: TraceLimits = DEFAULT_LIMITS,
) -> ReplayResult:
    """Replay a trace file; write the WAV and the JSON report only if it all succeeds.

    The outputs are checked first (:func:`~.outputs.check_outputs`):
    nothing is read or written if one is the trace, both are one file, or one is a
    directory or sits in a missing folder. They go to temp files beside their
    destinations (the umask applies) and are renamed into place at the end, so a
    bad trace, an error or a signal leaves no output and no temp file.

    Args:
        trace: The ``.jsonl`` trace.
        timeout: Request timeout in seconds.
        out_wav: Where to write what the listener heard, or ``None``.
        report: Where to write the JSON report, or ``None``.
        unattributed_policy: The tap's policy for unattributed responses.
        limits: Bounds on what is read.

    Returns:
        The result.

    Raises:
        OutputPathError: If an output path is unusable (before anything is written).
        TraceError: If the trace is bad (with its line number).
        OSError: If a file cannot be read or written; it names the user's path.
    """
    check_outputs(trace, {"--out": out_wav, "--report": report})
    wav: _WavOut | None = None
    report_out: AtomicOutput | None = None
    try:
        with open(trace, "rb") as f:
            wav = _WavOut(Path(out_wav)) if out_wav is not None else None
            result = replay_entries(
                iter_trace(f, limits),
                timeout=timeout,
                unattributed_policy=unattributed_policy,
                write_audio=wav.write if wav is not None else None,
                limits=limits,
            )
        if report is not None:
            report_out = AtomicOutput(report)
            text = json.dumps({"trace": str(trace), **result.to_report()}, indent=2)
            report_out.write(text.encode("utf-8") + b"\n")
        if wav is not None:
            wav.commit(result.sample_rate)
        if report_out is not None:
            report_out.commit()
        return result
    except BaseException:
        if wav is not None:
            wav.abort()
        if report_out is not None:
            report_out.abort()
        raise
