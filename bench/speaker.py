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
from bench.speaker_floor import SteadyResult
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
        trials: Flags per output (gated and ungated each, per setting).
        block: Trials per stream; the outputs alternate stream by stream.
        settings: Which device settings: ``"default"`` (10 ms blocks) and
            ``"low_latency"`` (``SpeakerSink.low_latency``).
        floor_settings: ``(block frames at 48 kHz, PortAudio latency in blocks)`` tried for
            the device's floor, largest buffer first.
        floor_seconds: Seconds each of them plays.
        steady_seconds: Seconds the low-latency mode plays steadily, counting underruns.
        seed: Seed of the random flag delays.
    """

    trials: int
    block: int = 10
    settings: tuple[str, ...] = ("default", "low_latency")
    floor_settings: tuple[tuple[int, int], ...] = (
        (480, 2),
        (240, 2),
        (120, 3),
        (120, 2),
        (96, 2),
        (64, 2),
        (48, 2),
    )
    floor_seconds: float = 5.0
    steady_seconds: float = 60.0
    seed: int = 11


@dataclass(frozen=True, slots=True)
class Setting:
    """How the device is driven.

    Attributes:
        label: For the table.
        blocksize: Frames per callback.
        latency: PortAudio's latency (``"low"`` or seconds).
        fade_ms: The sink's fade-out of a cut generation.
    """

    label: str
    blocksize: int
    latency: str | float
    fade_ms: float


def settings() -> dict[str, Setting]:
    """The settings measured: the sink's defaults, and its low-latency mode."""
    from integrations.speakers import (
        LOW_LATENCY_BLOCK_MS,
        LOW_LATENCY_BUFFER_BLOCKS,
        LOW_LATENCY_FADE_MS,
    )

    low = round(SR * LOW_LATENCY_BLOCK_MS / 1000)
    return {
        "default": Setting("default: block 480, latency 'low', fade 5 ms", BLOCK, "low", FADE_MS),
        "low_latency": Setting(
            f"low-latency: block {low} x {LOW_LATENCY_BUFFER_BLOCKS}, "
            f"fade {LOW_LATENCY_FADE_MS:g} ms",
            low,
            LOW_LATENCY_BUFFER_BLOCKS * low / SR,
            LOW_LATENCY_FADE_MS,
        ),
    }


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
    device: str, tee: Path, setting: Setting, gated: bool, k0: int, n: int, rng: random.Random
) -> tuple[list[_Flag], Any, int]:
    """Play ``n`` trials on one stream; return the flags, the tee and the marker's index."""
    import numpy as np

    from gate import DropReason, PcmFrame, PlaybackGate
    from integrations.speakers import SpeakerSink

    gate = PlaybackGate() if gated else None
    sink = SpeakerSink(
        gate,
        device=device,
        samplerate=SR,
        blocksize=setting.blocksize,
        latency=setting.latency,
        fade_ms=setting.fade_ms,
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
        _wait(lambda: buf.frames_out >= len(MARKER))  # no trial's window holds the marker
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
                    flag_at = now + rng.uniform(0.0, setting.blocksize / SR)
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
    flags: list[_Flag], pcm: Any, origin: int, setting: Setting
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
                "phase_ms": (-in_flight * 1e3) % (setting.blocksize / SR * 1e3),
            }
        )
    return trials, invalid


def _stats(values: list[float]) -> dict[str, float]:
    return {"p50": percentile(values, 50), "p95": percentile(values, 95), "max": max(values)}


def _skip(section: Section, plan: SpeakerPlan, reason: str, tick: Tick | None) -> Section:
    section.notes.append(f"not measured: {reason}")
    for name, limit in _goals(plan):
        section.targets.append(Target(name, limit, f"not measured: {reason}", None))
    section.data = {"skipped": reason}
    if tick is not None:
        tick(steps(plan))
    return section


def _goals(plan: SpeakerPlan) -> list[tuple[str, str]]:
    goals = []
    if "default" in plan.settings:
        goals.append((DEFAULT_GOAL, f"<= {BLOCK / SR * 1e3 + FADE_MS:.0f} ms"))
    if "low_latency" in plan.settings:
        goals += [(LOW_GOAL, f"<= {LOW_TARGET_MS:.0f} ms"), (STEADY_GOAL, "0")]
    return goals


DEFAULT_GOAL = "speaker: cancel-to-silence beyond the device's own buffer, gated, p95"
LOW_GOAL = "speaker, low-latency mode: cancel-to-silence incl. the device buffer, gated, p95"
STEADY_GOAL = "speaker, low-latency mode: underruns in steady playback"
LOW_TARGET_MS = 20.0


def steps(plan: SpeakerPlan) -> int:
    """Progress steps of the section: one per trial, floor setting and steady second."""
    return (
        2 * plan.trials * len(plan.settings)
        + len(plan.floor_settings)
        + int(plan.steady_seconds) * ("low_latency" in plan.settings)
    )


def _trials(
    device: str, tee: Path, setting: Setting, plan: SpeakerPlan, tick: Tick | None
) -> dict[str, dict[str, Any]]:
    rng = random.Random(plan.seed)
    results: dict[str, dict[str, Any]] = {
        "gated": {"trials": [], "invalid": 0, "streams": 0},
        "ungated": {"trials": [], "invalid": 0, "streams": 0},
    }
    done = {"gated": 0, "ungated": 0}
    turn = 0
    while min(done.values()) < plan.trials:
        kind = ("gated", "ungated")[turn % 2]
        turn += 1
        n = min(plan.block, plan.trials - done[kind])
        if n <= 0:
            continue
        flags, pcm, origin = _stream(device, tee, setting, kind == "gated", done[kind], n, rng)
        r = results[kind]
        r["streams"] += 1
        if origin < 0:
            r["invalid"] += n
        else:
            trials, invalid = _measure(flags, pcm, origin, setting)
            r["trials"] += trials
            r["invalid"] += invalid
        done[kind] += n
        if tick is not None:
            tick(n)
    for r in results.values():
        r["n"] = len(r["trials"])
        for key in ("cancel_to_silence_ms", "in_flight_ms", "after_flag_ms"):
            if r["trials"]:
                r[key] = _stats([t[key] for t in r["trials"]])
    return results


def run_speaker(plan: SpeakerPlan, tick: Tick | None = None) -> Section:
    """Measure cancel-to-silence at the speaker, gated and ungated, if the device is there.

    Per setting (the sink's defaults, its low-latency mode): gated and ungated
    trials; then the device's floor (the smallest stable buffer) and the
    low-latency mode's underruns in steady playback.

    Args:
        plan: Trials per output, settings, floor and steady sizes.
        tick: Progress callback, called once per trial, floor setting and steady second.

    Returns:
        The section; "not measured: <reason>" when there is no device.
    """
    from bench.speaker_floor import floor_of, steady

    section = Section(
        key="speaker",
        title="Cancel-to-silence at the speaker (real PortAudio device, read from the tee file)",
    )
    found = probe_device()
    if isinstance(found, str):
        return _skip(section, plan, found, tick)
    device, tee = found
    chosen = {k: v for k, v in settings().items() if k in plan.settings}
    outputs: dict[str, dict[str, Any]] = {}
    try:
        for key, setting in chosen.items():
            for kind, r in _trials(device, tee, setting, plan, tick).items():
                outputs[kind if key == "default" else f"{kind}_low"] = r | {"setting": key}
        sweep = []
        for block_x in plan.floor_settings:
            sweep.append(steady(device, plan.floor_seconds, block_x))
            if tick is not None:
                tick(1)
        held = None
        if "low_latency" in chosen:
            held = steady(device, plan.steady_seconds)
            if tick is not None:
                tick(int(plan.steady_seconds))
    except Exception as exc:  # a device that vanished mid-run: report, never crash the bench
        return _skip(section, plan, f"the device failed mid-run: {exc!r}", None)

    table = Table(
        f"flag -> last flagged sample that left the device, ms ({plan.trials} flags per output, "
        f"random block phases; 48 kHz, {LEAD_S * 1e3:.0f} ms queued ahead)",
        [
            "output",
            "cancel-to-silence p50/p95/max",
            "device buffer at flag p50",
            "after flag p50/p95/max",
            "valid",
        ],
    )
    for name, r in outputs.items():
        if not r["n"]:
            continue
        c, i, a = r["cancel_to_silence_ms"], r["in_flight_ms"], r["after_flag_ms"]
        how = "gated (flag purges, fades)" if name.startswith("gated") else "ungated (stop feeding)"
        table.rows.append(
            [
                f"{how}, {chosen[r['setting']].label}",
                f"{c['p50']:.1f}/{c['p95']:.1f}/{c['max']:.1f}",
                fmt(i["p50"], 1),
                f"{a['p50']:.1f}/{a['p95']:.1f}/{a['max']:.1f}",
                f"{r['n']}/{r['n'] + r['invalid']}",
            ]
        )
    section.tables.append(table)
    floor = floor_of(sweep)
    sweep_table = Table(
        f"the device's floor: each setting plays {plan.floor_seconds:g} s steadily (gated "
        "SpeakerSink)",
        [
            "block x latency in blocks",
            "PortAudio latency ms",
            "device buffer p50 ms",
            "underflows (device+sink)",
        ],
    )
    for one in sweep:
        mark = "  <- floor" if one is floor else ""
        sweep_table.rows.append(
            [
                f"{one.blocksize} x {one.buffer_blocks} ({one.blocksize / SR * 1e3:.2f} ms "
                f"blocks){mark}",
                fmt(one.latency_ms, 1),
                fmt(one.in_flight_ms, 1),
                f"{one.underruns} ({one.device_underflows}+{one.sink_underruns})",
            ]
        )
    section.tables.append(sweep_table)
    if held is not None:
        section.tables.append(
            Table(
                "low-latency mode, steady playback",
                ["seconds", "block", "PortAudio latency ms", "device underflows", "sink underruns"],
                [
                    [
                        f"{held.seconds:g}",
                        str(held.blocksize),
                        fmt(held.latency_ms, 1),
                        str(held.device_underflows),
                        str(held.sink_underruns),
                    ]
                ],
            )
        )
    section.data = {
        "outputs": outputs,
        "settings": {
            k: {"blocksize": v.blocksize, "latency": v.latency, "fade_ms": v.fade_ms}
            for k, v in chosen.items()
        },
        "block_ms": BLOCK / SR * 1e3,
        "fade_ms": FADE_MS,
        "floor_sweep": [r.to_json() for r in sweep],
        "floor": None if floor is None else floor.to_json(),
        "steady": None if held is None else held.to_json(),
        "target_ms": LOW_TARGET_MS,
    }
    section.notes += [
        "cancel-to-silence = DAC time of the sample after the flagged generation's last "
        "non-zero sample in the tee - stream time of the flag; device buffer = audio already "
        "handed to PortAudio/PulseAudio at the flag, as PortAudio reports it (no output stage "
        "can recall it); after flag = flagged audio the output handed over after the flag.",
        "a trial is valid if its window in the tee holds its audio, bit-exact before the flag "
        "(another process writing to the shared tee would spoil it).",
        "floor = the smallest buffer that played with no underflow (underflows at larger ones "
        "are a busy moment of the shared machine, shown, not counted against it); its device "
        "buffer is the least any output stage can take to silence this device.",
    ]
    _targets(section, outputs, floor, held)
    return section


def _targets(
    section: Section,
    outputs: dict[str, dict[str, Any]],
    floor: SteadyResult | None,
    held: SteadyResult | None,
) -> None:
    g = outputs.get("gated")
    if g is not None:
        limit = BLOCK / SR * 1e3 + FADE_MS
        if g["n"]:
            p95 = g["after_flag_ms"]["p95"]
            total = g["cancel_to_silence_ms"]["p95"]
            measured = f"{p95:.1f} ms (total {total:.1f} ms with the device's)"
            section.targets.append(
                Target(DEFAULT_GOAL, f"<= {limit:.0f} ms", measured, p95 <= limit)
            )
        else:
            section.targets.append(
                Target(DEFAULT_GOAL, f"<= {limit:.0f} ms", "no valid trial", None)
            )
    g, u = outputs.get("gated_low"), outputs.get("ungated_low")
    if g is None:
        return
    limit_s = f"<= {LOW_TARGET_MS:.0f} ms"
    if not g["n"]:
        section.targets.append(Target(LOW_GOAL, limit_s, "no valid trial", None))
    else:
        total = g["cancel_to_silence_ms"]["p95"]
        words = [f"{total:.1f} ms"]
        if u is not None and u["n"]:
            words.append(
                f"vs ungated {u['cancel_to_silence_ms']['p95']:.1f} ms at the same settings"
            )
        if floor is not None:
            words.append(
                f"floor (device buffer) {floor.in_flight_ms:.1f} ms at {floor.blocksize} x "
                f"{floor.buffer_blocks}: "
                f"gate +{total - floor.in_flight_ms:.1f} ms"
            )
        section.targets.append(Target(LOW_GOAL, limit_s, "; ".join(words), total <= LOW_TARGET_MS))
    if held is not None:
        section.targets.append(
            Target(
                STEADY_GOAL,
                "0",
                f"{held.underruns} in {held.seconds:g} s ({held.device_underflows} device, "
                f"{held.sink_underruns} sink)",
                held.underruns == 0,
            )
        )
