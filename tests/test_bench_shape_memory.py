"""bench/shape_memory.py: a window's novelty is its distance to the nearest in the stream's
memory, a window joins the memory only past the vigilance, and the memory stays bounded."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
from _tools import load_script

SCRIPT = Path(__file__).resolve().parents[1] / "bench" / "shape_memory.py"
PERIOD = 16


@pytest.fixture(scope="module")
def memory() -> ModuleType:
    return load_script(SCRIPT)


def _sawtooth_with_a_spike(rows: int, spike_at: int) -> np.ndarray:
    values = (np.arange(rows) % PERIOD).astype(np.float64)
    values[spike_at] = 3.0 * PERIOD
    return values


def test_a_repeated_shape_is_remembered_and_a_new_one_is_novel(memory: ModuleType) -> None:
    values = _sawtooth_with_a_spike(2000, 1700)
    found, most = memory.novelties(values, 8, 0.05, 256)
    assert np.isnan(found[:8]).all()  # no range, then no memory yet
    # Each of the sawtooth's 16 phases differs from the others by more than the vigilance:
    # each joins once, and every later window is one of them; then the 8 holding the spike.
    _, before = memory.novelties(values[:1700], 8, 0.05, 256)
    assert (before, most) == (PERIOD, PERIOD + 8)
    assert np.nanmax(found[2 * PERIOD : 1700]) == 0.0
    assert (found[1700:1708] > 0.05).all()  # every window holding the spike
    assert np.nanmax(found[1708:]) == 0.0  # the sawtooth again: remembered, in any range
    higher, _ = memory.novelties(values, 8, 0.2, 256)  # a coarser memory: fewer phases
    assert np.nanmax(higher[2 * PERIOD : 1700]) > 0.0


def test_the_memory_keeps_at_most_its_size(memory: ModuleType) -> None:
    noise = np.random.default_rng(3).normal(size=600)
    _, most = memory.novelties(noise, 8, 0.0, 50)  # every window joins: the oldest leave
    assert most == 50
    _, most = memory.novelties(noise, 8, 10.0, 50)  # nothing is that far: only the first
    assert most == 1


def test_scores_rank_each_novelty_among_the_stream_s_own(memory: ModuleType) -> None:
    values = _sawtooth_with_a_spike(2000, 1700)
    scores, _ = memory.memory_scores(values, 8, 0.05, 256)
    assert scores.shape == values.shape and (scores >= 0.0).all() and (scores < 1.0).all()
    assert scores[:1700].max() < 0.1  # the first phases' novelties: before the warm-up
    assert scores[1700] > 0.9  # past everything the stream's history holds
    assert scores[1701:1708].min() > 0.4  # the spike still in the window: ranked past the rest
    assert scores[1708:].max() == 0.0
