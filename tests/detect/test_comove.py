"""Co-movement's model of a source's streams (``agent/detect/anomaly/comove.py``): a stream's
spread is never less than its smallest step."""

from __future__ import annotations

import numpy as np

from agent.detect.anomaly.comove import CoMovement, _smallest_steps, fill_down

NAMES = ["system.cpu_pct", "system.load1", "system.mem_used_pct", "system.swap_pct"]
T0 = 1_780_272_000.0


def _rows(rng: np.random.Generator, n: int, swap: np.ndarray) -> np.ndarray:
    """A minute a row: CPU, load and memory swinging with the day, swap as given; each on
    the grid its sensor reports (0.1 %, 0.01)."""
    day = np.sin(2 * np.pi * np.arange(n) / 1440)
    cpu = np.round(20 + 10 * day + rng.normal(0, 2, n), 1)
    load = np.round(cpu / 20 + rng.normal(0, 0.05, n), 2)
    mem = np.round(40 + 5 * day + rng.normal(0, 0.3, n), 1)
    return np.stack([cpu, load, mem, swap], axis=1)


def _trained() -> tuple[CoMovement, np.random.Generator]:
    """Three days of the source; swap at 2.0 % all along but for one step down to 1.9 in the
    last five hours (its spread a fraction of that step)."""
    rng = np.random.default_rng(3)
    n = 3 * 1440
    swap = np.where(np.arange(n) < n - 300, 2.0, 1.9)
    model = CoMovement()
    model.residuals(NAMES, _rows(rng, n, swap), T0 + 60.0 * np.arange(n))
    return model, rng


def test_a_nearly_constant_stream_that_stays_put_is_not_many_spreads_off() -> None:
    """The next day CPU, load and memory swing as usual and swap stays at 1.9: it is where a
    reading on its grid can be, not a stream turning against the others. Without its step
    as the least spread, one step is about three and a half spreads."""
    model, rng = _trained()
    assert abs(model.step[NAMES.index("system.swap_pct")] - 0.1) < 1e-9  # across two folds
    saved = model.encode()
    m = 1440
    day = _rows(rng, m, np.full(m, 1.9))
    t = T0 + 3 * 86400.0 + 60.0 * np.arange(m)
    swap = NAMES.index("system.swap_pct")
    floored = model.residuals(NAMES, day, t)[:, swap]
    bare = CoMovement.decode(saved)
    bare.step[:] = np.nan
    bare._refresh()
    unfloored = bare.residuals(NAMES, day, t)[:, swap]
    assert np.nanmax(floored) < 1.5
    assert np.nanmax(unfloored) > 3.0


def test_the_steps_are_saved_and_a_state_without_them_restores() -> None:
    model, _ = _trained()
    again = CoMovement.decode(model.encode())
    assert np.array_equal(again.step, model.step, equal_nan=True)
    assert np.array_equal(again.last, model.last, equal_nan=True)
    older = {k: v for k, v in model.encode().items() if k not in ("step", "last")}
    restored = CoMovement.decode(older)
    assert np.isnan(restored.step).all() and np.isnan(restored.last).all()


def test_the_end_of_the_residuals_fill_is_saved() -> None:
    """A model saved midway fills on the values' grid until the same time; one saved before
    the fill had an end had filled its histories with every residual already (over), and
    one that never judged a residual has not begun."""
    model, _ = _trained()
    model.fill_until_t, model.entry_t = T0 + 5 * 86400.0, T0 + 86400.0
    assert CoMovement.decode(model.encode()).fill_until_t == T0 + 5 * 86400.0
    older = {k: v for k, v in model.encode().items() if k != "fill_until_t"}
    assert CoMovement.decode(older).fill_until_t == 0.0
    older["entry_t"] = None
    assert CoMovement.decode(older).fill_until_t is None


def test_the_smallest_steps_are_each_columns_own() -> None:
    """The vectorised search (rows filled down: each value against the last one before it in
    its column, absent rows skipped) against the plain loop, on rows with gaps and repeats."""
    rng = np.random.default_rng(1)
    for _ in range(500):
        m, d = int(rng.integers(1, 30)), int(rng.integers(1, 6))
        rows = np.round(rng.normal(size=(m, d)), int(rng.integers(0, 3)))
        rows[rng.random((m, d)) < rng.choice([0.0, 0.3, 0.8])] = np.nan
        expected = np.full(d, np.nan)
        for j in range(d):
            column = rows[~np.isnan(rows[:, j]), j]
            steps = np.abs(np.diff(column))
            if (steps > 0).any():
                expected[j] = steps[steps > 0].min()
        assert np.array_equal(_smallest_steps(fill_down(rows)), expected, equal_nan=True)
