"""Timing call chains frame by frame, interleaved with their baselines.

Shared by the adapter sections (:mod:`bench.adapter`, :mod:`bench.output_adapter`).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from bench.timing import Tick

__all__ = ["AdapterPlan", "interleaved_calls"]


@dataclass(frozen=True, slots=True)
class AdapterPlan:
    """How hard to measure.

    Attributes:
        rounds: Interleaved rounds.
        frames: Frames captured per chain per round.
    """

    rounds: int
    frames: int


async def interleaved_calls(
    calls: dict[str, Callable[[], Awaitable[object]]],
    plan: AdapterPlan,
    tick: Tick | None,
    between_rounds: Callable[[], None] | None = None,
) -> dict[str, list[float]]:
    """Time ``bare``, ``control`` and ``gated`` calls frame by frame, back to back.

    Args:
        calls: The keys ``"bare"``, ``"control"`` (a second bare chain) and ``"gated"``,
            and any others (e.g. a floor), each compared with the bare two like ``gated``.
        plan: Rounds and frames per round.
        tick: Progress callback, once per round.
        between_rounds: Called after the warm-up and after every round (housekeeping).

    Returns:
        Per round: each chain's median ns per frame, ``diff`` (median of gated - mean of
        the bare two), ``diff_<name>`` the same for every other chain, ``aa`` (median of
        control - bare) and, with a ``"floor"`` chain, ``beyond_floor`` (median of gated -
        floor: what the gated chain adds to a do-nothing wrapper in the same chain).
    """
    names = list(calls)
    clock = time.perf_counter_ns

    async def one_each(first: int) -> dict[str, int]:
        took: dict[str, int] = {}
        for name in names[first:] + names[:first]:
            t0 = clock()
            await calls[name]()
            took[name] = clock() - t0
        return took

    extra = [n for n in names if n not in ("bare", "control")]
    out: dict[str, list[float]] = {n: [] for n in names}
    out.update({("diff" if n == "gated" else f"diff_{n}"): [] for n in extra})
    out["aa"] = []
    with_floor = "floor" in calls and "gated" in calls
    if with_floor:
        out["beyond_floor"] = []
    k = len(names)
    for i in range(plan.frames):  # warm up every chain
        await one_each(i % k)
    if between_rounds is not None:
        between_rounds()
    for _ in range(plan.rounds):
        runs = [await one_each(i % k) for i in range(plan.frames)]
        for name in names:
            out[name].append(statistics.median(r[name] for r in runs))
        for name in extra:
            out["diff" if name == "gated" else f"diff_{name}"].append(
                statistics.median(r[name] - (r["bare"] + r["control"]) / 2 for r in runs)
            )
        out["aa"].append(statistics.median(r["control"] - r["bare"] for r in runs))
        if with_floor:
            out["beyond_floor"].append(statistics.median(r["gated"] - r["floor"] for r in runs))
        if between_rounds is not None:
            between_rounds()
        if tick is not None:
            tick(1)
    return out
