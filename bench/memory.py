"""Section 5: memory and scale.

- Bytes per tombstone (``tracemalloc``), against the floor of remembering the
  same ids at all: a bare ``dict`` of them, built in the same run.
- One long session of a million generations (expect, bind, admit, then retire
  or flag), with process RSS (``psutil``) and the cost of ``admit`` against a
  do-nothing call sampled as the session grows; the same loop without the gate
  runs first, as the RSS baseline.
"""

from __future__ import annotations

import gc
import statistics
import time
import tracemalloc
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bench.results import Section, Table, fmt
from bench.timing import Probe, Tick

__all__ = ["MemoryPlan", "run_memory"]

UNROLL = 8


@dataclass(frozen=True, slots=True)
class MemoryPlan:
    """How big to go.

    Attributes:
        tombstones: Records built for the bytes-per-tombstone figure.
        generations: Generations in the long session.
        checkpoints: Points along the session where RSS and admit cost are sampled.
        repeats: Timing repeats per checkpoint (median taken).
        number: Loop iterations (of 8 calls) per timing repeat.
    """

    tombstones: int
    generations: int
    checkpoints: int
    repeats: int
    number: int


class _Noop:
    __slots__ = ()

    def admit(self, generation_id: str, frame: object) -> bool:
        return True


def _traced_bytes(build: Callable[[], object]) -> int:
    """Bytes still allocated after ``build()``, with what it returns kept alive."""
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        kept = build()
        gc.collect()
        after = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    del kept
    return after - before


def _per_record(n: int) -> dict[str, float]:
    from gate import PlaybackGate

    def ids_only() -> object:
        return {f"resp_{i:022d}": None for i in range(n)}

    def tombstones() -> object:
        gate = PlaybackGate(max_tombstones=n)
        for i in range(n):
            gate.retire(f"resp_{i:022d}")
        return gate

    def lifecycles() -> object:
        gate = PlaybackGate(max_tombstones=n)
        for i in range(n):
            gate.expect(f"evt_{i:022d}")
            gate.bind(f"evt_{i:022d}", f"resp_{i:022d}")
            gate.retire(f"resp_{i:022d}")
        return gate

    floor = _traced_bytes(ids_only) / n
    tomb = _traced_bytes(tombstones) / n
    life = _traced_bytes(lifecycles) / n
    return {
        "records": n,
        "dict_of_ids_bytes": floor,
        "tombstone_bytes": tomb,
        "tombstone_with_request_bytes": life,
        "tombstone_ratio_to_dict": tomb / floor,
        "with_request_ratio_to_dict": life / floor,
    }


def _checkpoints(total: int, count: int) -> list[int]:
    """Log-spaced session positions from 1,000 to ``total`` (and 0)."""
    points = {0, total}
    lo, ratio = 1_000, (total / 1_000) ** (1 / max(1, count - 2))
    for i in range(count - 1):
        points.add(min(total, round(lo * ratio**i)))
    return sorted(points)


def _admit_ns(
    admit: Any, noop: Any, gid: str, frame: object, plan: MemoryPlan
) -> tuple[float, ...]:
    stmt = "; ".join(["admit(g, f)"] * UNROLL)
    probes = [
        Probe("gate", stmt, {"admit": admit, "g": gid, "f": frame}, UNROLL),
        Probe("noop", stmt, {"admit": noop, "g": gid, "f": frame}, UNROLL),
        Probe("loop", "pass", {}, UNROLL),
    ]
    gate_ns, noop_ns = [], []
    for _ in range(plan.repeats):  # interleaved: gate, noop, loop
        g, n, lo = (p.time_ns(plan.number) for p in probes)
        gate_ns.append(g - lo)
        noop_ns.append(n - lo)
    return statistics.median(gate_ns), statistics.median(noop_ns)


def _session(plan: MemoryPlan, tick: Tick | None) -> dict[str, Any]:
    import numpy as np
    import psutil  # type: ignore[import-untyped]

    from gate import AudioFormat, DropReason, PcmFrame, PlaybackGate

    proc = psutil.Process()
    frame = PcmFrame(np.zeros(480, dtype=np.int16), 24_000)
    noop = _Noop().admit
    total = plan.generations
    marks = _checkpoints(total, plan.checkpoints)
    step = max(1, total // 100)

    # Baseline: the same loop (ids, frames, calls) with a do-nothing gate.
    gc.collect()
    rss0 = proc.memory_info().rss
    peak_base = rss0
    for i in range(total):
        gid = f"resp_{i:022d}"
        noop(f"evt_{i:022d}", frame)
        noop(gid, frame)
        noop(gid, frame)
        if i % 65_536 == 0:
            peak_base = max(peak_base, proc.memory_info().rss)
    peak_base = max(peak_base, proc.memory_info().rss)

    gc.collect()
    gate = PlaybackGate(audio_format=AudioFormat(24_000))  # default bounds
    rss1 = proc.memory_info().rss
    curve: list[dict[str, float]] = []
    peak = rss1
    started = time.perf_counter()
    control_s = 0.0
    next_mark = 0
    for i in range(total + 1):
        if i == marks[next_mark]:
            control_s += time.perf_counter() - started
            rss = proc.memory_info().rss
            peak = max(peak, rss)
            probe = f"resp_probe{i:017d}"
            gate.announce(probe)
            admit_ns, noop_ns = _admit_ns(gate.admit, noop, probe, frame, plan)
            gate.retire(probe)
            curve.append(
                {
                    "generations": i,
                    "admit_ns": admit_ns,
                    "noop_ns": noop_ns,
                    "rss_mb": rss / 2**20,
                    "tombstones": gate.footprint()["tombstones"],
                }
            )
            next_mark = min(next_mark + 1, len(marks) - 1)
            started = time.perf_counter()
        if i == total:
            break
        req, gid = f"evt_{i:022d}", f"resp_{i:022d}"
        gate.expect(req)
        gate.bind(req, gid)
        gate.admit(gid, frame)
        gate.admit(gid, frame)
        if i % 5 == 0:  # every fifth reply is interrupted, and one more frame arrives
            gate.flag(gid, DropReason.INTERRUPTED)
            gate.admit(gid, frame)
        else:
            gate.retire(gid)
        if i % 65_536 == 0:
            peak = max(peak, proc.memory_info().rss)
        if tick is not None and i % step == step - 1:
            tick(1)
    peak = max(peak, proc.memory_info().rss)
    return {
        "generations": total,
        "rss_start_mb": rss1 / 2**20,
        "rss_peak_mb": peak / 2**20,
        "rss_growth_mb": (peak - rss1) / 2**20,
        "baseline_rss_growth_mb": (peak_base - rss0) / 2**20,
        "control_us_per_generation": control_s / total * 1e6,
        "footprint_end": gate.footprint(),
        "curve": curve,
    }


def _held(footprint: dict[str, int]) -> str:
    return ", ".join(f"{v:,} {k}" for k, v in footprint.items() if k != "generations")


def run_memory(plan: MemoryPlan, tick: Tick | None = None) -> Section:
    """Measure memory per record and the long session.

    Args:
        plan: Sizes.
        tick: Progress callback; called 1 + 100 times.

    Returns:
        The section.
    """
    records = _per_record(plan.tombstones)
    if tick is not None:
        tick(1)
    session = _session(plan, tick)
    section = Section(
        key="memory",
        title="Memory and scale",
        data={"records": records, "session": session},
    )
    section.tables.append(
        Table(
            f"Bytes per record (tracemalloc, {records['records']:,} records, ids included)",
            ["record", "bytes", "x dict of ids"],
            [
                ["bare dict {id: None} (floor)", fmt(records["dict_of_ids_bytes"], 0), "1.00"],
                [
                    "tombstone (retire)",
                    fmt(records["tombstone_bytes"], 0),
                    fmt(records["tombstone_ratio_to_dict"], 2),
                ],
                [
                    "tombstone + request record (expect, bind, retire)",
                    fmt(records["tombstone_with_request_bytes"], 0),
                    fmt(records["with_request_ratio_to_dict"], 2),
                ],
            ],
        )
    )
    curve = session["curve"]
    first, last = curve[0], curve[-1]
    section.tables.append(
        Table(
            f"One session of {session['generations']:,} generations, default bounds",
            ["figure", "value"],
            [
                ["RSS at start, MB", fmt(session["rss_start_mb"])],
                ["peak RSS, MB", fmt(session["rss_peak_mb"])],
                ["RSS growth, gate session, MB", fmt(session["rss_growth_mb"])],
                ["RSS growth, same loop without gate, MB", fmt(session["baseline_rss_growth_mb"])],
                ["records held at the end", _held(session["footprint_end"])],
                ["control path per generation, us", fmt(session["control_us_per_generation"], 2)],
                [
                    f"admit ns at {first['generations']:,} / at {last['generations']:,}",
                    f"{first['admit_ns']:.1f} / {last['admit_ns']:.1f} "
                    f"(x{last['admit_ns'] / first['admit_ns']:.3f})",
                ],
                [
                    f"noop ns at {first['generations']:,} / at {last['generations']:,}",
                    f"{first['noop_ns']:.1f} / {last['noop_ns']:.1f}",
                ],
            ],
        )
    )
    section.notes += [
        "session: per generation expect, bind, 2 admits, then retire (4 in 5) or flag + 1 "
        "dropped admit (1 in 5); PcmFrame 24 kHz 20 ms; MonotonicClock.",
        "admit ns at each checkpoint: median of interleaved repeats, loop cost subtracted; "
        "control path = wall time of the session loop / generations (checkpoints excluded).",
    ]
    return section
