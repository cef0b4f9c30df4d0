"""Section 3a: cancel-to-silence at the LiveKit track.

A chain (an ``rtc.AudioSource`` and what feeds it) plays one generation, a
constant marker value distinct per trial, read back through
``LocalAudioTrack`` -> ``rtc.AudioStream``. Once its audio is flowing, the
flag comes at a random phase of the 10 ms frame clock; the figure is the time
from the flag to the arrival of the last read-back frame holding the marker
(0 when none arrived after the flag), and how much marker audio left after it.

The baseline chain is LiveKit's own path: the RoomIO source setting
(``queue_size_ms=200``), a producer that stops at the flag and
``clear_queue()``. The gated chain is ``GatedAudioSource`` on the same source
setting, flagged through the gate (which purges the source). Both run in the
same process, trial by trial in alternating order, with the same random flag
delay; more chains plug in as :class:`Chain`. LiveKit Agents' own
``clear_buffer()`` path and the gated ``io.AudioOutput`` on RoomIO's output
run alongside (:mod:`bench.roomio_chains`).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import random
import time
from dataclasses import dataclass
from typing import Any, Protocol

from bench.adapter import gated_source_class
from bench.results import Section, Table, Target, fmt
from bench.timing import MeanCI, Spread, Tick, bootstrap_mean, percentile

__all__ = ["Chain", "ClearQueueChain", "GatedSourceChain", "TrackPlan", "run_track"]

RATE = 48_000
FRAME = 480  # 10 ms
TARGET_P95_MS = 10.0
TARGET_ADDED_MS = 0.1  # the gate adds no event-loop hop: its mean added cut is below this
MIN_TRIALS_CI = 100  # fewer paired trials give an interval too rough to judge (e.g. all zeros)
STALL_MS = 12.0  # above one 10 ms frame in flight + 2 ms: the process stalled, not the chain

#: (gated chain, LiveKit's own chain it is compared with), paired trial by trial.
PAIRS = (
    (
        "gate flag(), GatedAudioSource(queue_size_ms=200)",
        "LiveKit clear_queue(), AudioSource(queue_size_ms=200)",
    ),
    ("gate flag(), GatedAudioOutput -> RoomIO output", "LiveKit clear_buffer(), RoomIO output"),
)


@dataclass(frozen=True, slots=True)
class TrackPlan:
    """How many flags.

    Attributes:
        trials: Flags per chain, at least.
        max_trials: Flags per chain at most: more are run, in batches, until every
            paired difference's confidence interval is narrower than ``ci_width_ms``.
        batch: Flags per chain between two checks of the intervals.
        ci_width_ms: The interval width aimed at.
        seed: Seed of the random flag phases.
    """

    trials: int
    max_trials: int = 0
    batch: int = 40
    ci_width_ms: float = 0.1
    seed: int = 7


class Chain(Protocol):
    """What feeds a track and how it reacts to a flag."""

    name: str
    gated: bool
    source: Any  # rtc.AudioSource

    def start(self, generation_id: str) -> None:
        """A new generation begins."""

    async def play(self, generation_id: str, frame: Any) -> None:
        """Push one frame of ``generation_id`` (may wait, for pacing)."""

    def flag(self, generation_id: str) -> None:
        """Cancel ``generation_id``: nothing more of it may play."""

    async def aclose(self) -> None:
        """Close what the chain opened."""


class ClearQueueChain:
    """LiveKit's own path: stop forwarding and ``clear_queue()`` on the source.

    Args:
        queue_size_ms: The source's native queue; 200 is what RoomIO uses.
    """

    def __init__(self, queue_size_ms: int = 200) -> None:
        from livekit import rtc

        self.name = f"LiveKit clear_queue(), AudioSource(queue_size_ms={queue_size_ms})"
        self.gated = False
        self.source = rtc.AudioSource(RATE, 1, queue_size_ms=queue_size_ms)
        self._stopped: set[str] = set()

    def start(self, generation_id: str) -> None:
        self._stopped.discard(generation_id)

    async def play(self, generation_id: str, frame: Any) -> None:
        if generation_id not in self._stopped:
            await self.source.capture_frame(frame)

    def flag(self, generation_id: str) -> None:
        self._stopped.add(generation_id)
        self.source.clear_queue()

    async def aclose(self) -> None:
        await self.source.aclose()


class GatedSourceChain:
    """The gate's path: ``GatedAudioSource`` drops the flagged generation and purges the queue.

    Args:
        queue_size_ms: The source's native queue, as for the baseline.
    """

    def __init__(self, queue_size_ms: int = 200) -> None:
        from livekit import rtc

        from gate import AudioFormat, PlaybackGate
        from integrations.livekit._gated_source import GatedAudioSource

        self.name = f"gate flag(), GatedAudioSource(queue_size_ms={queue_size_ms})"
        self.gated = True
        self.gate = PlaybackGate(audio_format=AudioFormat(RATE))
        self.source = rtc.AudioSource(RATE, 1, queue_size_ms=queue_size_ms)
        self._gated = GatedAudioSource(self.source, self.gate, queue_size_ms=queue_size_ms)

    def start(self, generation_id: str) -> None:
        self.gate.announce(generation_id)

    async def play(self, generation_id: str, frame: Any) -> None:
        await self._gated.capture_frame(frame, generation_id)

    def flag(self, generation_id: str) -> None:
        from gate import DropReason

        self.gate.flag(generation_id, DropReason.INTERRUPTED)

    async def aclose(self) -> None:
        await self._gated.aclose()


@dataclass(slots=True)
class _Trial:
    latency_ms: float
    leaked_ms: float
    phase_ms: float


class _Rig:
    """A chain with its track, its read-back stream and the reader logging arrivals."""

    def __init__(self, chain: Chain) -> None:
        from livekit import rtc

        self.chain = chain
        self.trials: list[_Trial] = []
        self.arrivals: list[tuple[float, Any]] = []
        self._track = rtc.LocalAudioTrack.create_audio_track("bench", chain.source)
        self._stream = rtc.AudioStream.from_track(
            track=self._track, sample_rate=RATE, num_channels=1
        )
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        import numpy as np

        async for event in self._stream:
            self.arrivals.append((time.perf_counter(), np.frombuffer(event.frame.data, np.int16)))

    async def trial(self, k: int, delay: float) -> None:
        """Play generation ``k``; flag it ``delay`` s after its first frame is read back."""
        import numpy as np
        from livekit import rtc

        chain = self.chain
        marker = 1_000 + k  # distinct per trial, so nothing earlier is mistaken for it
        gid = f"resp_track{k:06d}"
        frame = rtc.AudioFrame(np.full(FRAME, marker, np.int16).tobytes(), RATE, 1, FRAME)
        self.arrivals.clear()
        chain.start(gid)

        async def produce() -> None:
            for _ in range(100):  # 1 s of audio, far more than the trial plays
                await chain.play(gid, frame)
                # frames arrive one by one (network deltas), never as one burst: a chain that
                # returns at once (dropped or stopped) must not hold the loop for 100 frames
                await asyncio.sleep(0)

        producer = asyncio.create_task(produce())
        while not any((a == marker).any() for _, a in self.arrivals):
            await asyncio.sleep(0.001)
        first = next(t for t, a in self.arrivals if (a == marker).any())
        await asyncio.sleep(delay)
        t_flag = time.perf_counter()
        chain.flag(gid)
        await asyncio.wait_for(producer, 2.0)
        await asyncio.sleep(0.05)  # anything in flight arrives within 1 ms of the flag
        finish = getattr(chain, "finish", None)
        if finish is not None:  # chains with a segment to end (see bench.roomio_chains)
            await finish(gid)
        leaked = [
            (t, n) for t, a in self.arrivals if t >= t_flag and (n := int((a == marker).sum()))
        ]
        last = max((t for t, _ in leaked), default=t_flag)
        self.trials.append(
            _Trial(
                latency_ms=(last - t_flag) * 1e3,
                leaked_ms=sum(n for _, n in leaked) / RATE * 1e3,
                phase_ms=((t_flag - first) * 1e3) % 10.0,
            )
        )

    async def aclose(self) -> None:
        await self._stream.aclose()
        self._reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._reader
        await self.chain.aclose()


def _summary(trials: list[_Trial]) -> dict[str, Any]:
    lat = [t.latency_ms for t in trials]
    leak = [t.leaked_ms for t in trials]
    return {
        "trials": len(trials),
        "latency_ms": {
            "p50": percentile(lat, 50),
            "p95": percentile(lat, 95),
            "max": max(lat),
            "spread": Spread.of(lat).to_json(),
        },
        "leaked_ms": {"p50": percentile(leak, 50), "p95": percentile(leak, 95), "max": max(leak)},
        "flags_with_leak": sum(1 for x in leak if x > 0),
        "raw": [
            {"latency_ms": t.latency_ms, "leaked_ms": t.leaked_ms, "phase_ms": t.phase_ms}
            for t in trials
        ],
    }


def paired_differences(results: dict[str, Any], stall_ms: float | None = None) -> dict[str, MeanCI]:
    """Return, per adapter, the mean gated - LiveKit cut latency over paired trials.

    Args:
        results: Per chain, its summary with ``raw`` trials in trial order.
        stall_ms: Leave out the pairs where either latency exceeds this (a stalled
            process, not a chain); ``None`` keeps every pair.

    Returns:
        Per gated chain present with its LiveKit twin, the bootstrap interval of the mean
        difference, in ms.
    """
    out: dict[str, MeanCI] = {}
    for gated, own in PAIRS:
        if gated in results and own in results:
            pairs = zip(results[gated]["raw"], results[own]["raw"], strict=True)
            diffs = [
                x["latency_ms"] - y["latency_ms"]
                for x, y in pairs
                if stall_ms is None or max(x["latency_ms"], y["latency_ms"]) <= stall_ms
            ]
            if diffs:
                out[gated] = bootstrap_mean(diffs)
    return out


async def _run_all(chains: list[Chain], plan: TrackPlan, tick: Tick | None) -> dict[str, Any]:
    rigs = [_Rig(chain) for chain in chains]
    rng = random.Random(plan.seed)
    k = 0
    gc.disable()  # a collection mid-trial stalls the reader, in whichever chain it hits
    try:
        while True:
            gc.collect()  # between batches instead
            if k >= plan.trials:
                if k >= plan.max_trials:
                    break
                partial = {rig.chain.name: _summary(rig.trials) for rig in rigs}
                cis = paired_differences(partial).values()
                if all(ci.width < plan.ci_width_ms for ci in cis):
                    break
            for _ in range(plan.batch if k >= plan.trials else plan.trials):
                delay = 0.02 + rng.uniform(0.0, 0.01)  # a random phase of the 10 ms frame clock
                order = rigs if k % 2 == 0 else rigs[::-1]
                for rig in order:  # the same phase for every chain, alternating who goes first
                    await rig.trial(k, delay)
                k += 1
                if tick is not None:
                    tick(1)
    finally:
        gc.enable()
        for rig in rigs:
            await rig.aclose()
    return {rig.chain.name: _summary(rig.trials) for rig in rigs}


def run_track(plan: TrackPlan, tick: Tick | None = None) -> Section:
    """Measure cancel-to-silence at the track for each chain available.

    Args:
        plan: Trials per chain.
        tick: Progress callback, called once per trial (of every chain).

    Returns:
        The section.
    """

    async def main() -> dict[str, Any]:
        from bench.output_adapter import gated_output_class
        from bench.roomio_chains import ClearBufferChain, GatedOutputChain

        chains: list[Chain] = [ClearQueueChain(200)]
        if gated_source_class() is not None:
            chains.append(GatedSourceChain(200))
        if gated_output_class() is not None:
            chains += [ClearBufferChain(), GatedOutputChain()]
        return await _run_all(chains, plan, tick)

    results = asyncio.run(main())
    n_trials = min(r["trials"] for r in results.values())
    section = Section(
        key="track",
        title="Cancel-to-silence at the LiveKit track (read back through rtc.AudioStream)",
        data={"chains": results},
    )
    table = Table(
        f"flag -> last flagged sample read back, ms ({n_trials} flags per chain at random "
        "frame phases)",
        ["chain", "p50", "p95", "max", "leaked ms p50/p95/max", "flags that leaked"],
    )
    for name, r in results.items():
        lat, leak = r["latency_ms"], r["leaked_ms"]
        table.rows.append(
            [
                name,
                fmt(lat["p50"], 2),
                fmt(lat["p95"], 2),
                fmt(lat["max"], 2),
                f"{leak['p50']:.0f}/{leak['p95']:.0f}/{leak['max']:.0f}",
                f"{r['flags_with_leak']}/{r['trials']}",
            ]
        )
    section.tables.append(table)
    gated_names = [n for n in results if n.startswith("gate ")]
    if not gated_names:
        section.targets.append(
            Target("cancel-to-silence at the track, gated, p95", "<= 10 ms", "not measured", None)
        )
        section.notes.append(
            "not measured: no gated chain imports (integrations/livekit); only LiveKit's own "
            "clear_queue() baseline is."
        )
    for gated_name in gated_names:
        p95 = results[gated_name]["latency_ms"]["p95"]
        via = gated_name.split(", ", 1)[1].split("(")[0].split(" -> ")[0]
        section.targets.append(
            Target(
                f"cancel-to-silence at the track, {via}, p95",
                f"<= {TARGET_P95_MS:.0f} ms",
                f"{p95:.2f} ms",
                p95 <= TARGET_P95_MS,
            )
        )
    section.notes.append(
        "latency = arrival of the last read-back frame holding the trial's marker - flag time "
        "(0 if none arrived after the flag); leaked = marker audio read back after the flag."
    )
    _added(section, results, plan)
    return section


def _added(section: Section, results: dict[str, Any], plan: TrackPlan) -> None:
    """The gate's added cut latency over LiveKit's own clear, per adapter, with its interval."""
    cis = paired_differences(results)
    calm = paired_differences(results, STALL_MS)
    table = Table(
        "gate's added cut latency over LiveKit's own clear, ms: mean of paired differences "
        "(same trial, same flag phase), bootstrap 95 % CI",
        ["gated chain - LiveKit's chain", "trials", "mean", "95 % CI", "CI width"],
    )
    own = dict(PAIRS)
    for gated, ci in cis.items():
        label = f"{gated.split(', ', 1)[1]} - {own[gated].split(' ', 1)[1]}"
        for words, one in (
            (label, ci),
            (f"  same, without stalls (> {STALL_MS:g} ms)", calm.get(gated)),
        ):
            if one is not None:
                table.rows.append(
                    [
                        words,
                        str(one.n),
                        f"{one.mean:+.3f}",
                        f"[{one.lo:+.3f}, {one.hi:+.3f}]",
                        fmt(one.width, 3),
                    ]
                )
        via = gated.split(", ", 1)[1].split("(")[0].split(" -> ")[0]
        met: bool | None = ci.width < plan.ci_width_ms and ci.hi <= TARGET_ADDED_MS
        words = f"{ci.mean:+.3f} ms [{ci.lo:+.3f}, {ci.hi:+.3f}], width {ci.width:.3f} ms, "
        if ci.n < MIN_TRIALS_CI:
            met, words = None, words + f"only {ci.n} trials (< {MIN_TRIALS_CI}): not judged"
        else:
            words += f"{ci.n} trials"
        section.targets.append(
            Target(
                f"added cut latency at the track vs LiveKit's own clear, {via}, mean (95 % CI)",
                f"CI < {plan.ci_width_ms:g} ms wide, within/below +{TARGET_ADDED_MS:g} ms",
                words,
                met,
            )
        )
    section.tables.append(table)
    section.data["added_ms"] = {k: v.to_json() for k, v in cis.items()}
    section.data["added_ms_without_stalls"] = {k: v.to_json() for k, v in calm.items()}
    section.notes.append(
        "trials run in batches until both intervals are narrower than "
        f"{plan.ci_width_ms:g} ms (at most {plan.max_trials} per chain); the chains take "
        "turns trial by trial, in alternating order, at the same flag phase. The verdict is "
        "on every pair; the row without stalls leaves out pairs where either chain took over "
        f"{STALL_MS:g} ms (the 10 ms frame in flight plus a stalled process: another program "
        "on the shared CPUs, not a chain), shown for what the gate itself adds."
    )
