"""The benchmark's own statistics: the bootstrap interval, the device floor, a session's playout."""

from __future__ import annotations

import random

import numpy as np
import pytest

from bench.sessions import FRAME, LAG_SLACK_MS, _played
from bench.speaker_floor import SteadyResult, floor_of
from bench.timing import bootstrap_mean


def test_bootstrap_interval_holds_the_mean_and_narrows_with_more_trials() -> None:
    rng = random.Random(3)
    few = [rng.gauss(0.5, 1.0) for _ in range(50)]
    many = few + [rng.gauss(0.5, 1.0) for _ in range(1950)]
    a, b = bootstrap_mean(few), bootstrap_mean(many)
    assert a.lo <= a.mean <= a.hi and b.lo <= b.mean <= b.hi
    assert b.width < a.width / 3  # ~ 1/sqrt(n): 40x the trials, about a sixth of the width
    assert b.lo < 0.5 < b.hi and b.n == 2000
    assert bootstrap_mean(few, seed=1) == bootstrap_mean(few, seed=1)  # reproducible


def test_bootstrap_of_constant_values_is_a_point_and_of_nothing_an_error() -> None:
    ci = bootstrap_mean([0.25] * 10)
    assert ci.mean == ci.lo == ci.hi == 0.25 and ci.width == 0
    with pytest.raises(ValueError):
        bootstrap_mean([])


def _steady(block: int, blocks: int, underflows: int) -> SteadyResult:
    return SteadyResult(block, blocks, block * blocks / 48.0, 1.0, 1.0, underflows, 0)


def test_floor_is_the_smallest_clean_buffer_whatever_a_larger_one_did() -> None:
    sweep = [_steady(480, 2, 0), _steady(240, 2, 2), _steady(120, 3, 0), _steady(64, 2, 4)]
    floor = floor_of(sweep)
    assert floor is not None and (floor.blocksize, floor.buffer_blocks) == (120, 3)
    assert floor_of([_steady(64, 2, 1)]) is None


def _frames(levels: list[int], t0: float = 0.0) -> list[tuple[float, np.ndarray]]:
    return [(t0 + i * 0.01, np.full(FRAME, v, np.int16)) for i, v in enumerate(levels)]


def test_a_session_holds_real_time_only_whole_and_on_time() -> None:
    whole = _played(_frames([0, 500, 500, 500, 0]))
    assert whole.held and whole.audio_ms == pytest.approx(30) and whole.underrun_ms == 0
    gap = _played(_frames([500, 0, 500]))
    assert not gap.held and gap.underrun_ms == pytest.approx(10)
    late = _frames([500, 500])
    late[1] = (late[1][0] + (LAG_SLACK_MS + 5) / 1e3, late[1][1])
    assert not _played(late).held
    assert not _played(_frames([0, 0])).held  # nothing played
