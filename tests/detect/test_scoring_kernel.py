"""A source's part through the C kernel (``columns`` and ``shapes``) gives the numpy
reference's numbers bit for bit: every cell's surprise, shape, edges and flags, the windows
scaled for the model, and the state left behind, over random sources (streams that come and
go, ties, level shifts, flat and huge values, repeated times and gaps) cut into random parts,
with the real tiny model."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from agent.detect import novelty
from agent.detect.anomaly.scoring import MAX_VALUE, StreamState, log_spreads, score_source
from agent.detect.novelty import KernelHistory, ReferenceHistory
from agent.detect.tflite import TinyModel, load_or_explain, scale_windows
from agent.power.meter import NullMeter

needs_kernel = pytest.mark.skipif(novelty.kernel() is None, reason="the kernel was not built")


@pytest.fixture(scope="module")
def model() -> TinyModel:
    return load_or_explain()


def _source(rng: np.random.Generator, m: int, k: int) -> tuple[np.ndarray, np.ndarray]:
    columns = []
    for j in range(k):
        kind = (j + int(rng.integers(0, 6))) % 6
        if kind == 0:
            col = rng.normal(size=m)
        elif kind == 1:
            col = rng.integers(0, 4, size=m).astype(float)  # ties
        elif kind == 2:
            col = np.where(np.arange(m) < m // 2, 1.0, 8.0) + rng.normal(0, 0.1, size=m)
        elif kind == 3:
            col = np.full(m, 3.25)  # flat: its spread is floored
        elif kind == 4:  # a quantised walk: new extremes by one step (its slack) and more
            col = np.round(np.cumsum(rng.choice([-0.1, 0.0, 0.1, 0.3], size=m)), 1)
        else:
            col = rng.lognormal(0, 3, size=m) * rng.choice([1.0, 1e90], size=m, p=[0.99, 0.01])
        col[rng.random(m) < rng.choice([0.0, 0.2, 0.6])] = np.nan  # absent here
        columns.append(col)
    matrix = np.clip(np.stack(columns, axis=1), -MAX_VALUE, MAX_VALUE)
    steps = rng.choice([0.0, 10.0, 30.0, 7200.0], size=m, p=[0.05, 0.6, 0.34, 0.01])
    return matrix, 1.7e9 + np.cumsum(steps)


def _states(k: int, width: int, history: type, size: int) -> list[StreamState]:
    return [StreamState(width, history(size), history(size), history(size)) for _ in range(k)]


@needs_kernel
@pytest.mark.parametrize("seed", range(8))
def test_kernel_equals_reference(seed: int, model: TinyModel) -> None:
    rng = np.random.default_rng(seed)
    m, k, size = int(rng.integers(400, 2500)), int(rng.integers(1, 7)), 150
    matrix, times = _source(rng, m, k)
    with_model = model if seed % 4 else None
    fast = _states(k, model.window, KernelHistory, size)
    slow = _states(k, model.window, ReferenceHistory, size)
    every, warmup = 300.0, 3000.0
    scored_any = False
    i = 0
    while i < m:
        j = min(m, i + int(rng.choice([1, 2, 7, 300])))
        args = (matrix[i:j], times[i:j], with_model, NullMeter(), every, warmup, seed % 2 == 0)
        a = score_source(fast, *args)
        b = score_source(slow, *args)
        for name in ("surprise", "shape", "edges", "full", "learning", "young", "novelty"):
            x, y = getattr(a, name), getattr(b, name)
            if name == "novelty" and (seed % 2 or x is None):  # off, or none judged here
                assert x is None and y is None
                continue
            assert np.array_equal(x, y, equal_nan=True), (name, i)
            assert np.array_equal(np.signbit(x), np.signbit(y)), (name, i)  # even a zero's sign
        scored_any |= bool(np.any(a.surprise > 0.0)) and bool(np.any(a.full))
        i = j
    assert scored_any  # past the warm-ups: the numbers compared were real verdicts
    for f, s in zip(fast, slow, strict=True):
        assert np.array_equal(f.window, s.window)
        assert np.array_equal(f.meta, s.meta, equal_nan=True)
        assert np.array_equal(f.bank, s.bank) and np.array_equal(f.bank_sums, s.bank_sums)
        assert np.array_equal(f.bank_meta, s.bank_meta, equal_nan=True)
        assert f.values.encode() == s.values.encode()
        assert f.spreads.encode("<f4") == s.spreads.encode("<f4")
        assert f.errors.encode("<f4") == s.errors.encode("<f4")


@needs_kernel
def test_windows_scaled_and_spread_as_numpy_does(model: TinyModel) -> None:
    """The kernel's window statistics are numpy's (pairwise sums), so the model sees the
    same input and the spread history the same numbers, for any width of window."""
    kernel = novelty.kernel()
    rng = np.random.default_rng(5)
    for width in (model.window, 3, 8, 13, 200):
        m = 600
        values = rng.normal(0, 1, size=m) * 10.0 ** rng.uniform(-6, 90, size=m)
        values[::50] = 7.0  # some windows with repeats
        state = StreamState(width, KernelHistory(50), KernelHistory(50), KernelHistory(50))
        surprise, edges = np.zeros((m, 1)), np.zeros((m, 1, 2))
        due, full, learning, young = (np.zeros((m, 1), dtype=np.bool_) for _ in range(4))
        scaled = np.empty((m, width), dtype=np.float32)
        scaling = dataclasses.replace(model.scaling, context=width - 1)  # the newest read alone
        n = kernel.columns(
            [(state.buffer, state.meta, state.values._state, state.spreads._state)],
            values[:, None].copy(),
            np.arange(m, dtype=np.float64),
            60.0,
            0.0,
            86400.0,
            scaling.context,
            scaling.min_std,
            scaling.rel_std,
            scaling.clip,
            surprise,
            edges,
            due,
            full,
            learning,
            young,
            scaled,
        )
        windows = np.lib.stride_tricks.sliding_window_view(values, width)
        assert n == len(windows) == full.sum()
        assert np.array_equal(scaled[:n], scale_windows(windows, scaling))
        reference = ReferenceHistory(50)
        reference.feed(log_spreads(windows), due[:, 0][full[:, 0]])
        assert state.spreads.encode("<f4") == reference.encode("<f4")


@needs_kernel
def test_bad_buffers_raise_instead_of_writing_past_them() -> None:
    kernel = novelty.kernel()
    state = StreamState(4, KernelHistory(10), KernelHistory(10), KernelHistory(10))
    streams = [(state.buffer, state.meta, state.values._state, state.spreads._state)]
    cells = np.zeros((5, 1))
    flags = np.zeros((5, 1), dtype=np.bool_)
    with pytest.raises(ValueError, match="edges"):
        kernel.columns(
            streams, cells, np.arange(5.0), 1.0, 0.0, 9.0, 3, 0.001, 0.001, 100.0, cells, cells,
            flags, flags, flags, flags, np.empty((5, 4), dtype=np.float32),
        )  # fmt: skip
    with pytest.raises(ValueError, match="too few rows"):
        kernel.columns(
            streams, cells, np.arange(5.0), 1.0, 0.0, 9.0, 3, 0.001, 0.001, 100.0, cells.copy(),
            np.zeros((5, 1, 2)), flags, flags.copy(), flags.copy(), flags.copy(),
            np.empty((1, 4), dtype=np.float32),
        )  # fmt: skip
    with pytest.raises(ValueError, match="fewer errors"):
        full = np.ones((5, 1), dtype=np.bool_)
        kernel.shapes(
            [state.errors._state], np.zeros(2), flags, full, flags.copy(), flags.copy(), 1.0,
            0.5, cells, cells.copy(),
        )  # fmt: skip
