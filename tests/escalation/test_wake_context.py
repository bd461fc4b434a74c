"""A wake's facts on a stream, read from arrays of a week of samples: what the stream usually
reads at this load, and how long its last value has been repeated."""

from __future__ import annotations

from bisect import bisect_left

import numpy as np
import pytest

from agent.escalation.context import LOAD_BAND_PCT, _at_load, _stuck_s


def _near_load_by_hand(
    times: list[float], values: list[float], cpu_t: list[float], cpu_v: list[float], peak: float
) -> list[float]:
    """Each value paired with the CPU reading nearest in time, the earlier of two as near."""
    near = []
    for s, v in zip(times, values, strict=True):
        i = bisect_left(cpu_t, s)
        candidates = [j for j in (i - 1, i) if 0 <= j < len(cpu_t)]
        best = min(candidates, key=lambda j: abs(cpu_t[j] - s))
        if abs(cpu_t[best] - s) <= 60.0 and abs(cpu_v[best] - peak) <= LOAD_BAND_PCT:
            near.append(v)
    return near


@pytest.mark.parametrize("seed", range(4))
def test_values_at_load_are_paired_with_the_nearest_cpu_reading(seed: int) -> None:
    rng = np.random.default_rng(seed)
    # readings on a 5 s grid, values on a 2.5 s one: many values lie halfway between two
    cpu_t = np.sort(rng.choice(np.arange(0.0, 20_000.0, 5.0), 1_500, replace=False))
    cpu_v = rng.uniform(0.0, 100.0, len(cpu_t))
    times = np.sort(rng.choice(np.arange(-200.0, 20_200.0, 2.5), 3_000, replace=False))
    values = rng.normal(50.0, 10.0, len(times))
    near = _near_load_by_hand(times.tolist(), values.tolist(), cpu_t.tolist(), cpu_v.tolist(), 60)
    assert len(near) > 100
    median, p95 = np.percentile(near, (50, 95))
    assert _at_load(times, values, (cpu_t, cpu_v), 60.0) == (
        round(float(median), 6),
        round(float(p95), 6),
        len(near),
    )


def test_a_value_halfway_between_two_readings_takes_the_earlier_one() -> None:
    cpu = (np.array([0.0, 10.0]), np.array([60.0, 0.0]))
    times, values = np.full(10, 5.0), np.arange(10.0)
    assert _at_load(times, values, cpu, 60.0) == (4.5, 8.55, 10)
    assert _at_load(times, values, cpu, 0.0) is None  # (the later reading's load)
    assert _at_load(times, values, (np.zeros(0), np.zeros(0)), 60.0) is None


def test_how_long_the_last_value_has_been_repeated() -> None:
    times = np.arange(6) * 10.0
    assert _stuck_s(times, np.array([1.0, 2.0, 3.0, 3.0, 3.0, 3.0])) == 30.0
    assert _stuck_s(times, np.array([3.0, 3.0, 3.0, 3.0, 3.0, 3.0])) == 50.0
    assert _stuck_s(times, np.array([3.0, 3.0, 3.0, 3.0, 3.0, 4.0])) == 0.0
    assert _stuck_s(times[:1], np.array([3.0])) == 0.0
