"""Interleaved micro-timing and the statistics every section reports.

A :class:`Probe` is one statement timed with :mod:`timeit` (a compiled loop,
garbage collector off). :func:`interleave` times every probe once per round, in
a fresh random order each round, so slow drift on a shared machine hits every
probe alike; figures are then compared round by round (paired), never across
runs.
"""

from __future__ import annotations

import random
import statistics
import timeit
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = ["MeanCI", "Probe", "Spread", "bootstrap_mean", "interleave", "paired", "percentile"]

Tick = Callable[[int], object]


@dataclass(frozen=True, slots=True)
class Spread:
    """Median and spread of repeated measurements.

    Attributes:
        median: The median.
        p25: The 25th percentile.
        p75: The 75th percentile.
        lo: The smallest value.
        hi: The largest value.
        n: How many values.
    """

    median: float
    p25: float
    p75: float
    lo: float
    hi: float
    n: int

    @classmethod
    def of(cls, values: Iterable[float]) -> Spread:
        """Summarise ``values``.

        Args:
            values: At least one number.

        Returns:
            Their spread.

        Raises:
            ValueError: If ``values`` is empty.
        """
        data = sorted(values)
        if not data:
            raise ValueError("no values to summarise")
        if len(data) == 1:
            return cls(data[0], data[0], data[0], data[0], data[0], 1)
        q = statistics.quantiles(data, n=4, method="inclusive")
        return cls(statistics.median(data), q[0], q[2], data[0], data[-1], len(data))

    def to_json(self) -> dict[str, float]:
        """Return the spread as a JSON-ready dict."""
        return {
            "median": self.median,
            "p25": self.p25,
            "p75": self.p75,
            "min": self.lo,
            "max": self.hi,
            "n": self.n,
        }


@dataclass(slots=True)
class Probe:
    """One statement to time.

    Args:
        name: Unique key of the probe.
        stmt: Python statement; it may repeat the measured call several times
            (unrolled) to amortise the loop.
        namespace: Globals the statement runs in.
        calls: How many measured calls one execution of ``stmt`` makes.
    """

    name: str
    stmt: str
    namespace: Mapping[str, Any]
    calls: int = 1
    _timer: timeit.Timer | None = field(default=None, init=False, repr=False)

    def time_ns(self, number: int) -> float:
        """Run the statement ``number`` times; return nanoseconds per call.

        Args:
            number: Executions of the statement.

        Returns:
            Wall time per measured call, loop overhead included.
        """
        if self._timer is None:
            self._timer = timeit.Timer(self.stmt, globals=dict(self.namespace))
        return self._timer.timeit(number) * 1e9 / (number * self.calls)


def interleave(
    probes: Sequence[Probe],
    *,
    rounds: int,
    number: int,
    tick: Tick | None = None,
    seed: int = 0,
) -> dict[str, list[float]]:
    """Time every probe once per round, in a fresh random order each round.

    Args:
        probes: The probes; names must be unique.
        rounds: Rounds to run.
        number: Executions of each statement per round.
        tick: Called with 1 after each round (a progress bar's ``update``).
        seed: Seed of the shuffling, for a repeatable order.

    Returns:
        For each probe name, its ns-per-call value in each round, in round order.

    Raises:
        ValueError: If two probes share a name.
    """
    names = [p.name for p in probes]
    if len(set(names)) != len(names):
        raise ValueError("probe names must be unique")
    rng = random.Random(seed)
    order = list(probes)
    for probe in order:  # warm up: compile, fill caches, specialise the bytecode
        probe.time_ns(max(1, number // 10))
    out: dict[str, list[float]] = {name: [] for name in names}
    for _ in range(rounds):
        rng.shuffle(order)
        for probe in order:
            out[probe.name].append(probe.time_ns(number))
        if tick is not None:
            tick(1)
    return out


def percentile(values: Sequence[float], p: float) -> float:
    """Return the ``p``-th percentile (0-100) of ``values``, by nearest rank.

    Args:
        values: At least one number.
        p: The percentile.

    Returns:
        The value at that rank.
    """
    data = sorted(values)
    return data[min(len(data) - 1, max(0, round(p / 100 * (len(data) - 1))))]


def paired(a: Sequence[float], b: Sequence[float], op: Callable[[float, float], float]) -> Spread:
    """Combine two series round by round (e.g. a difference or a ratio) and summarise.

    Args:
        a: One value per round.
        b: One value per round, same length.
        op: How to combine a round's two values.

    Returns:
        The spread of the combined values.
    """
    return Spread.of(op(x, y) for x, y in zip(a, b, strict=True))


@dataclass(frozen=True, slots=True)
class MeanCI:
    """A mean with its bootstrap confidence interval.

    Attributes:
        mean: The sample mean.
        lo: The interval's lower end.
        hi: The interval's upper end.
        n: How many values.
    """

    mean: float
    lo: float
    hi: float
    n: int

    @property
    def width(self) -> float:
        """``hi - lo``."""
        return self.hi - self.lo

    def to_json(self) -> dict[str, float]:
        """Return the interval as a JSON-ready dict."""
        return {"mean": self.mean, "lo": self.lo, "hi": self.hi, "width": self.width, "n": self.n}


def bootstrap_mean(
    values: Sequence[float], level: float = 0.95, resamples: int = 10_000, seed: int = 0
) -> MeanCI:
    """Return the mean of ``values`` and its percentile-bootstrap confidence interval.

    Args:
        values: At least one number (e.g. paired differences, one per trial).
        level: The interval's confidence level.
        resamples: Bootstrap resamples.
        seed: Seed of the resampling (the interval is reproducible for the same values).

    Returns:
        The mean and the interval.

    Raises:
        ValueError: If ``values`` is empty.
    """
    import numpy as np

    data = np.asarray(values, dtype=float)
    if not len(data):
        raise ValueError("no values to bootstrap")
    rng = np.random.default_rng(seed)
    means = np.empty(resamples)
    for start in range(0, resamples, 1000):  # in chunks: memory stays small for long series
        stop = min(resamples, start + 1000)
        idx = rng.integers(0, len(data), size=(stop - start, len(data)))
        means[start:stop] = data[idx].mean(axis=1)
    tail = (1 - level) / 2 * 100
    lo, hi = np.percentile(means, [tail, 100 - tail])
    return MeanCI(float(data.mean()), float(lo), float(hi), len(data))
