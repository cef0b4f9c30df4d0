"""Section 3b: cancel-to-silence at the speaker, on the real PortAudio test device.

The device is the project's (``scripts/audio-device.sh start``): a PulseAudio
null sink, paced in real time, behind an ALSA ``type file`` tee that records
every sample the PortAudio callback wrote. One generation per trial, a
constant level, fed in real time with 200 ms queued ahead (the queue RoomIO
keeps in front of a LiveKit track); it is flagged after 100 ms of playback
plus a random delay, so at a random phase of the 10 ms device block.

Two outputs, in alternating blocks of trials on the same device:

- gated: ``SpeakerSink`` with the gate; the flag purges its queue, the next
  device block fades out (5 ms); the producer keeps sending (dropped);
- ungated: the same ``SpeakerSink`` with no gate; at the flag the producer
  stops feeding, and what is already queued plays out.

The last sample of the flagged generation is found in the tee file (what
really left PortAudio), and timed on the stream's own clock (PortAudio's
``outputBufferDacTime``). Figures per flag: cancel-to-silence (flag -> that
sample leaves the device), the device's own buffer at the flag (audio already
handed to the device: the physical minimum) and the flagged audio handed over
*after* the flag, which is what the output stage decides.
"""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.results import Section, Table, Target, fmt
from bench.timing import Tick, percentile
from integrations.testing.device import probe_device

__all__ = ["SpeakerPlan", "run_speaker"]

SR = 48_000
BLOCK = 480  # 10 ms device block
FADE_MS = 5.0
LEVEL = 8_000
LEAD_S = 0.2
PRE_S = 0.1
QUIET_S = 0.06
# The marker the first callback plays: locates the stream's frame 0 in the tee.
MARKER = [((i * 7919) % 20_000 + 1_000) * (1 if i % 2 else -1) for i in range(64)]


@dataclass(frozen=True, slots=True)
class SpeakerPlan:
    """How many flags.

    Attributes:
        trials: Flags per output (gated and ungated each).
        block: Trials per stream; the outputs alternate stream by stream.
        seed: Seed of the random flag delays.
    """

    trials: int
    block: int = 10
    seed: int = 11


@dataclass(slots=True)
class _Flag:
    window: int  # frame index when the trial began
    before: int  # frames handed to the device at the flag
    t_flag: float  # stream clock at the flag
    dac_before: float  # stream time at which frame ``before`` leaves the device


def _wait(predicate: Any, timeout: float = 5.0) -> None:
    end = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > end:
            raise TimeoutError("the device stopped playing")
        time.sleep(0.0005)


def _stream(
    device: str, tee: Path, gated: bool, k0: int, n: int, rng: random.Random
) -> tuple[list[_Flag], Any, int]:
    """Play ``n`` trials on one stream; return the flags, the tee and the marker's index."""
    import numpy as np

    from gate import DropReason, PcmFrame, PlaybackGate
    from integrations.speakers import SpeakerSink

    gate = PlaybackGate() if gated else None
    sink = SpeakerSink(
        gate, device=device, samplerate=SR, blocksize=BLOCK, latency="low", fade_ms=FADE_MS
    )
    buf = sink.buffer
    frame = PcmFrame(np.full(BLOCK, LEVEL, np.int16), SR)
    flags: list[_Flag] = []
    with open(tee, "ab") as f:
        f.truncate(0)
    try:
        sink.write("marker", PcmFrame(np.array(MARKER, np.int16), SR))
        sink.end("marker")
        sink.start()
        for k in range(k0, k0 + n):
            gid = f"resp_speaker{k:05d}"
            window = buf.frames_out
            flag_at: float | None = None
            flag: _Flag | None = None
            written = 0
            while flag is None:
                while buf.queued(gid) < LEAD_S * SR and written < 100:
                    sink.write(gid, frame)
                    written += 1
                now = time.monotonic()
                if flag_at is None and buf.played(gid) >= PRE_S * SR:
                    flag_at = now + rng.uniform(0.0, BLOCK / SR)
                if flag_at is not None and now >= flag_at:
                    before = buf.frames_out
                    t_flag = sink._now()  # the stream clock (python-sounddevice's stream.time)
                    if gate is not None:
                        gate.flag(gid, DropReason.INTERRUPTED)
                    dac = sink.frame_time(before)
                    assert t_flag is not None and dac is not None
                    flag = _Flag(window, before, t_flag, dac)
                time.sleep(0.0005)
            if gate is not None:
                for _ in range(5):  # the server keeps sending: dropped
                    sink.write(gid, frame)
            sink.end(gid)
            _wait(lambda: buf.empty)
            _wait(lambda end=buf.last_audio_end + int(QUIET_S * SR): buf.frames_out >= end)
            flags.append(flag)
        asyncio.run(sink.drain(timeout=5))
    finally:
        sink.close()
    with open(tee, "rb") as f:
        raw = f.read()
    pcm = np.frombuffer(raw[: len(raw) // 2 * 2], "<i2")
    needle = np.array(MARKER, "<i2").tobytes()
    pos = raw.find(needle)
    while pos != -1 and pos % 2:
        pos = raw.find(needle, pos + 1)
    return flags, pcm, -1 if pos == -1 else pos // 2


def _measure(
    flags: list[_Flag], pcm: Any, origin: int, gated: bool
) -> tuple[list[dict[str, float]], int]:
    import numpy as np

    trials: list[dict[str, float]] = []
    invalid = 0
    for i, fl in enumerate(flags):
        a = origin + fl.window
        b = origin + flags[i + 1].window if i + 1 < len(flags) else len(pcm)
        window = pcm[a:b]
        nz = np.flatnonzero(window)
        head = window[nz[0] : fl.before - fl.window] if len(nz) else window[:0]
        # valid: audio there, none negative (another stream in the tee), bit-exact up to the flag
        if not len(nz) or (window < 0).any() or not (head == LEVEL).all():
            invalid += 1
            continue
        silent = fl.window + int(nz[-1]) + 1  # frame index after the last sample that left
        after = (silent - fl.before) / SR
        in_flight = fl.dac_before - fl.t_flag
        trials.append(
            {
                "cancel_to_silence_ms": (in_flight + after) * 1e3,
                "in_flight_ms": in_flight * 1e3,
                "after_flag_ms": after * 1e3,
                "phase_ms": (-in_flight * 1e3) % (BLOCK / SR * 1e3),
            }
        )
    return trials, invalid


def _stats(values: list[float]) -> dict[str, float]:
    return {"p50": percentile(values, 50), "p95": percentile(values, 95), "max": max(values)}


def run_speaker(plan: SpeakerPlan, tick: Tick | None = None) -> Section:
    """Measure cancel-to-silence at the speaker, gated and ungated, if the device is there.

    Args:
        plan: Trials per output.
        tick: Progress callback, called once per trial.

    Returns:
        The section; "not measured: <reason>" when there is no device.
    """
    section = Section(
        key="speaker",
        title="Cancel-to-silence at the speaker (real PortAudio device, read from the tee file)",
    )
    limit = f"<= {BLOCK / SR * 1e3 + FADE_MS:.0f} ms"
    name = "speaker: cancel-to-silence beyond the device's own buffer, gated, p95"
    found = probe_device()
    if isinstance(found, str):
        section.notes.append(f"not measured: {found}")
        section.targets.append(Target(name, limit, f"not measured: {found}", None))
        section.data = {"skipped": found}
        if tick is not None:
            tick(2 * plan.trials)
        return section
    device, tee = found
    rng = random.Random(plan.seed)
    results: dict[str, dict[str, Any]] = {
        "gated": {"trials": [], "invalid": 0, "streams": 0},
        "ungated": {"trials": [], "invalid": 0, "streams": 0},
    }
    done = {"gated": 0, "ungated": 0}
    turn = 0
    try:
        while min(done.values()) < plan.trials:
            kind = ("gated", "ungated")[turn % 2]
            turn += 1
            n = min(plan.block, plan.trials - done[kind])
            if n <= 0:
                continue
            flags, pcm, origin = _stream(device, tee, kind == "gated", done[kind], n, rng)
            r = results[kind]
            r["streams"] += 1
            if origin < 0:
                r["invalid"] += n
            else:
                trials, invalid = _measure(flags, pcm, origin, kind == "gated")
                r["trials"] += trials
                r["invalid"] += invalid
            done[kind] += n
            if tick is not None:
                tick(n)
    except Exception as exc:  # a device that vanished mid-run: report, never crash the bench
        section.notes.append(f"not measured: the device failed mid-run: {exc!r}")
        section.targets.append(Target(name, limit, "not measured: device failed", None))
        section.data = {"skipped": repr(exc)}
        return section

    table = Table(
        f"flag -> last flagged sample that left the device, ms ({plan.trials} flags per output, "
        f"random block phases; 48 kHz, block {BLOCK}, latency='low', fade {FADE_MS:.0f} ms, "
        f"{LEAD_S * 1e3:.0f} ms queued ahead)",
        [
            "output",
            "cancel-to-silence p50/p95/max",
            "device buffer at flag p50",
            "after flag p50/p95/max",
            "valid",
        ],
    )
    for kind, r in results.items():
        trials = r["trials"]
        r["n"] = len(trials)
        if not trials:
            continue
        for key in ("cancel_to_silence_ms", "in_flight_ms", "after_flag_ms"):
            r[key] = _stats([t[key] for t in trials])
        c, i, a = r["cancel_to_silence_ms"], r["in_flight_ms"], r["after_flag_ms"]
        label = (
            "gated SpeakerSink (flag purges, 5 ms fade)"
            if kind == "gated"
            else "ungated SpeakerSink (stop feeding at the flag)"
        )
        table.rows.append(
            [
                label,
                f"{c['p50']:.1f}/{c['p95']:.1f}/{c['max']:.1f}",
                fmt(i["p50"], 1),
                f"{a['p50']:.1f}/{a['p95']:.1f}/{a['max']:.1f}",
                f"{len(trials)}/{len(trials) + r['invalid']}",
            ]
        )
    section.tables.append(table)
    section.data = {"outputs": results, "block_ms": BLOCK / SR * 1e3, "fade_ms": FADE_MS}
    g, u = results["gated"], results["ungated"]
    if g["n"] and u["n"]:
        section.data["ratio_p50_ungated_to_gated"] = (
            u["cancel_to_silence_ms"]["p50"] / g["cancel_to_silence_ms"]["p50"]
        )
    section.notes += [
        "cancel-to-silence = DAC time of the sample after the flagged generation's last "
        "non-zero sample in the tee - stream time of the flag; device buffer = audio already "
        "handed to PortAudio/PulseAudio at the flag (the physical minimum, no output stage can "
        "recall it); after flag = flagged audio the output handed over after the flag.",
        "a trial is valid if its window in the tee holds its audio, bit-exact before the flag "
        "(another process writing to the shared tee would spoil it).",
    ]
    if g["n"]:
        p95 = g["after_flag_ms"]["p95"]
        section.targets.append(
            Target(
                name,
                limit,
                f"{p95:.1f} ms (total {g['cancel_to_silence_ms']['p95']:.1f} ms with the device's)",
                p95 <= BLOCK / SR * 1e3 + FADE_MS,
            )
        )
    else:
        section.targets.append(Target(name, limit, "not measured: no valid trial", None))
    return section
