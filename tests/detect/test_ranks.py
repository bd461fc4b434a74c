"""The rank histories' C kernel gives the Python reference's numbers bit for bit: surprises,
edges and saved state, over random streams (ties, quantised values, level shifts), random
entry patterns and random chunk sizes, through save and restore."""

from __future__ import annotations

import os

import numpy as np
import pytest

from agent.detect import novelty
from agent.detect.novelty import KernelHistory, ReferenceHistory, entry_times, next_entry


def test_the_kernel_is_built() -> None:
    """Where vigil is installed with a C compiler (CI), the kernel is what runs."""
    if os.environ.get("VIGIL_REQUIRE_SYSTEM_TOOLS") != "1" and novelty._ranks is None:
        pytest.skip("the kernel was not compiled here")
    assert novelty.ValueHistory is KernelHistory


@pytest.mark.parametrize("seed", range(12))
def test_kernel_equals_reference(seed: int) -> None:
    if novelty._ranks is None:
        pytest.skip("the kernel was not compiled here")
    rng = np.random.default_rng(seed)
    size = int(rng.choice([120, 200, 1000]))
    n = int(rng.integers(300, 4000))
    kind = seed % 3
    if kind == 0:
        xs = rng.normal(size=n)
    elif kind == 1:
        xs = rng.integers(0, 5, size=n).astype(float)  # many ties
    else:
        xs = np.concatenate([rng.normal(size=n // 2), rng.normal(5, 3, size=n - n // 2)])
    add = rng.random(n) < rng.choice([0.05, 0.3, 1.0])
    add[: int(rng.integers(0, size))] = True
    upper = bool(seed % 2)
    ref, fast = ReferenceHistory(size), KernelHistory(size)
    i = 0
    while i < n:
        j = min(n, i + int(rng.integers(1, 300)))
        a, edges_a = ref.feed(xs[i:j], add[i:j], upper_only=upper, edges=True)
        b, edges_b = fast.feed(xs[i:j], add[i:j], upper_only=upper, edges=True)
        assert np.array_equal(a, b)
        assert np.array_equal(edges_a, edges_b, equal_nan=True)
        i = j
        if rng.random() < 0.2:  # through the saved form and back
            saved = fast.encode()
            assert saved == ref.encode()
            ref = ReferenceHistory.decode(size, saved)
            fast = KernelHistory.decode(size, saved)
    assert fast.encode() == ref.encode()
    assert np.any(a > 0.0)  # the histories were past their warm-up


def test_entry_times_follow_next_entry() -> None:
    rng = np.random.default_rng(3)
    times = np.cumsum(rng.exponential(40.0, size=3000))
    times[1000:1010] = times[999]  # repeated times never add an entry early
    due, last = entry_times(times, None, 345.6)
    entry_t: float | None = None
    expected = []
    for t in times.tolist():
        d, entry_t = next_entry(entry_t, t, 345.6)
        expected.append(d)
    assert due.tolist() == expected and last == entry_t


def test_one_number_at_a_time_equals_the_reference() -> None:
    """``observe``, ``add`` and ``surprise`` one by one (tests and tools use them): the same
    state as the reference's, an observed number never an entry, not even while filling."""
    if novelty._ranks is None:
        pytest.skip("the kernel was not compiled here")
    rng = np.random.default_rng(9)
    ref, fast = ReferenceHistory(150), KernelHistory(150)
    for i in range(600):
        x = float(rng.normal())
        assert fast.surprise(x) == ref.surprise(x)
        if i % 3 == 0:
            ref.add(x)
            fast.add(x)
        else:
            ref.observe(x)
            fast.observe(x)
        assert len(fast) == len(ref)
    assert fast.encode() == ref.encode()


@pytest.mark.parametrize("fill", [True, False])
def test_cells_equal_the_reference_column_by_column(fill: bool) -> None:
    """``feed_cells`` (one kernel call for a matrix, NaN cells skipped) against the
    reference's ``feed`` of each column's numbers; without ``fill`` a history takes only
    the due rows, even while it is filling."""
    if novelty._ranks is None:
        pytest.skip("the kernel was not compiled here")
    rng = np.random.default_rng(17)
    m, k = 3000, 4
    x = rng.normal(size=(m, k)) * np.array([1.0, 10.0, 0.1, 1.0])
    x[rng.random((m, k)) < 0.3] = np.nan
    x[:, 3] = np.nan  # a stream with no number at all
    due = rng.random(m) < 0.1
    fast = [KernelHistory(200) for _ in range(k)]
    ref = [ReferenceHistory(200) for _ in range(k)]
    out = np.empty((m, k))
    at = 0
    while at < m:  # in parts, as chunks come
        stop = min(m, at + int(rng.integers(1, 500)))
        out[at:stop] = novelty.feed_cells(
            fast, x[at:stop], due[at:stop], upper_only=True, fill=fill
        )
        at = stop
    for j in range(k):
        rows = np.flatnonzero(~np.isnan(x[:, j]))
        expected, _ = ref[j].feed(x[rows, j], due[rows], upper_only=True, fill=fill)
        assert np.array_equal(out[rows, j], expected)
        assert fast[j].encode() == ref[j].encode()
    assert np.all(out[np.isnan(x)] == -1.0)
    taken = int((due & ~np.isnan(x[:, 0])).sum())
    assert len(fast[0]) == (min(200, taken) if not fill else 200)
    assert np.any(out > 0.0)


@pytest.mark.parametrize(("upper_only", "fill"), [(True, True), (True, False), (False, False)])
def test_one_number_fed_equals_a_feed_of_one(upper_only: bool, fill: bool) -> None:
    """``feed_number`` (the live daemon's source sums: one C call, no arrays) gives what
    ``feed`` of a one-number array gives, surprise and edges, and leaves the same state, in
    both implementations; the edges are NaN while the history is empty."""
    if novelty._ranks is None:
        pytest.skip("the kernel was not compiled here")
    rng = np.random.default_rng(23)
    xs = np.concatenate([rng.normal(size=800), rng.normal(4.0, 2.0, size=400)])
    due = rng.random(len(xs)) < 0.2
    by_array = KernelHistory(150)
    by_number = [KernelHistory(150), ReferenceHistory(150)]
    for x, d in zip(xs.tolist(), due.tolist(), strict=True):
        (surprise,), edges = by_array.feed(
            np.array([x]), np.array([d]), upper_only=upper_only, edges=True, fill=fill
        )
        assert edges is not None
        for history in by_number:
            got = history.feed_number(x, d, upper_only=upper_only, fill=fill)
            assert np.array_equal(got, (surprise, *edges[0].tolist()), equal_nan=True)
    assert by_number[0].encode() == by_array.encode() == by_number[1].encode()
    assert surprise > 0.0 and not np.isnan(edges[0]).any()  # warm, with a range


def test_a_rescaled_history_ranks_rescaled_numbers_as_before() -> None:
    """``rescale`` (a personalisation round's new units): every number kept times the
    factor, in both implementations alike; a number in the new units ranks as it did in the
    old, edges and past-the-edge distances included."""
    if novelty._ranks is None:
        pytest.skip("the kernel was not compiled here")
    rng = np.random.default_rng(31)
    xs = rng.lognormal(size=1500)
    due = rng.random(len(xs)) < 0.3
    old = KernelHistory(200)
    old.feed(xs, due, upper_only=True)
    lo, hi = old.edges() or (np.nan, np.nan)
    probes = [0.2, 1.0, 3.0, hi, hi * 4.0]

    def ranked(history: KernelHistory | ReferenceHistory, factor: float) -> list[float]:
        """Each probe's surprise, each against its own copy (a probe is observed)."""
        kind = type(history)
        return [
            kind.decode(200, history.encode()).feed_number(p * factor, False, upper_only=True)[0]
            for p in probes
        ]

    rescaled = [KernelHistory(200), ReferenceHistory(200)]
    for history in rescaled:
        history.feed(xs, due, upper_only=True)
        history.rescale(0.37)
    assert rescaled[0].encode() == rescaled[1].encode()
    assert rescaled[0].edges() == pytest.approx((lo * 0.37, hi * 0.37), rel=1e-12)
    before = ranked(old, 1.0)
    for history in rescaled:
        assert np.allclose(ranked(history, 0.37), before, rtol=1e-9, atol=1e-12)
    assert before[-1] > before[-2] > before[0] >= 0.0  # past the edge counts, and grows
