"""bench/multivariate.py: generated multivariate servers, their faults, the baselines and F1."""

from __future__ import annotations

import itertools
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
from _tools import load_script

SCRIPT = Path(__file__).resolve().parent.parent / "bench" / "multivariate.py"
DAY = 1440
SEED = 5


@pytest.fixture(scope="module")
def mv() -> ModuleType:
    return load_script(SCRIPT)


@pytest.fixture(scope="module")
def sources(mv: ModuleType) -> list:
    return mv.generate_sources(SEED, 2, 4)


def test_same_seed_same_source_other_seed_other_source(mv: ModuleType, sources: list) -> None:
    again = mv.generate_sources(SEED, 2, 4)
    for a, b in zip(sources, again, strict=True):
        assert np.array_equal(a.values, b.values)
        assert a.names == b.names and a.faults == b.faults
        assert np.array_equal(a.labels, b.labels)
    other = mv.generate_source(SEED + 1, 0, 4 * DAY)
    first = sources[0]
    assert other.faults != first.faults
    assert other.values.shape != first.values.shape or not np.allclose(other.values, first.values)
    # Source i does not depend on how many sources were asked for.
    assert np.array_equal(mv.generate_sources(SEED, 1, 4)[0].values, first.values)
    assert not np.array_equal(sources[1].values[:, :20], first.values[:, :20])


def test_sources_look_like_servers(mv: ModuleType, sources: list) -> None:
    for s in sources:
        rows, d = s.values.shape
        assert rows == 4 * DAY and 20 <= d <= 40 and len(s.names) == d
        assert len(set(s.names)) == d
        assert all(n.isidentifier() and n.isascii() and len(n) < 64 for n in s.names)
        assert 2 <= len(s.factors) <= 4
        assert np.isfinite(s.values).all() and (s.values >= 0).all()
        ints = s.values[:, s.integer]
        assert s.integer.any() and np.array_equal(ints, np.round(ints))
        medians = np.median(np.abs(s.values), axis=0)
        assert medians.max() / max(medians[medians > 0].min(), 1e-12) > 1e3  # many scales
        # Correlated: a few components explain most of the training half's variance.
        train = s.values[: s.split]
        z = (train - train.mean(axis=0)) / train.std(axis=0)
        eig = np.sort(np.linalg.eigvalsh(np.cov(z.T)))[::-1]
        assert eig[:4].sum() / eig.sum() > 0.7


def test_faults_lie_in_the_test_half_and_match_the_labels(mv: ModuleType, sources: list) -> None:
    for s in sources:
        assert {f.kind for f in s.faults} == set(mv.FAULT_KINDS)
        expected = np.zeros(s.rows, dtype=bool)
        for f in s.faults:
            assert s.split <= f.start < f.end <= s.rows
            lo, hi = mv.FAULT_ROWS[f.kind]
            assert lo <= f.end - f.start <= hi
            assert f.metrics and all(0 <= j < len(s.names) for j in f.metrics)
            assert not expected[f.start : f.end].any()  # no two faults overlap
            expected[f.start : f.end] = True
        assert np.array_equal(s.labels, expected)
        assert not s.labels[: s.split].any()


def test_faults_change_only_their_rows_and_metrics(mv: ModuleType, sources: list) -> None:
    for index, s in enumerate(sources):
        clean = mv.generate_source(SEED, index, s.rows, plan={})
        assert clean.faults == [] and not clean.labels.any()
        touched = np.zeros(s.values.shape, dtype=bool)
        for f in s.faults:
            touched[f.start : f.end, list(f.metrics)] = True
            cells = s.values[f.start : f.end, list(f.metrics)]
            before = clean.values[f.start : f.end, list(f.metrics)]
            assert not np.array_equal(cells, before), f
            if f.kind == "stuck":
                assert len(f.metrics) >= 3
                assert (cells == s.values[f.start - 1, list(f.metrics)]).all()
            if f.kind == "leak":
                assert s.names[f.metrics[0]].endswith("_mem_mb")
                rise = cells[:, 0] - before[:, 0]
                assert rise[0] == pytest.approx(0.0) and rise[-1] > 0.0
        assert np.array_equal(s.values[~touched], clean.values[~touched])


def test_best_f1_on_cases_checked_by_hand(mv: ModuleType) -> None:
    labels = np.array([1, 0, 1, 0], dtype=bool)
    assert mv.best_f1(np.array([0.9, 0.1, 0.8, 0.2]), labels) == (1.0, 0.8)
    # Thresholds 0.9, 0.8, 0.7, 0.1 give F1 2/3, 1/2, 4/5, 2/3.
    f1, threshold = mv.best_f1(np.array([0.9, 0.8, 0.7, 0.1]), labels)
    assert f1 == pytest.approx(0.8) and threshold == 0.7
    # Equal scores are flagged together: 1.0 is out of reach here.
    f1, threshold = mv.best_f1(np.array([0.5, 0.5, 0.2]), np.array([1, 0, 0], dtype=bool))
    assert f1 == pytest.approx(2 / 3) and threshold == 0.5
    # A constant score can only flag every row: 2P / (N + P).
    f1, _ = mv.best_f1(np.zeros(10), np.array([1, 1] + [0] * 8, dtype=bool))
    assert f1 == pytest.approx(4 / 12)
    with pytest.raises(ValueError):
        mv.best_f1(np.ones(3), np.zeros(3, dtype=bool))


def test_best_f1_matches_brute_force(mv: ModuleType) -> None:
    rng = np.random.default_rng(0)
    for _ in range(200):
        n = int(rng.integers(1, 30))
        scores = rng.integers(0, 6, n).astype(float)  # many ties
        labels = rng.random(n) < 0.3
        if not labels.any():
            labels[int(rng.integers(n))] = True
        best = 0.0
        for t in np.unique(scores):
            flagged = scores >= t
            tp = int((flagged & labels).sum())
            best = max(best, 2 * tp / (flagged.sum() + labels.sum()))
        f1, threshold = mv.best_f1(scores, labels)
        assert f1 == pytest.approx(best)
        flagged = scores >= threshold
        assert 2 * (flagged & labels).sum() / (flagged.sum() + labels.sum()) == pytest.approx(f1)


def test_detected_needs_one_flagged_row_inside(mv: ModuleType) -> None:
    faults = [mv.Fault("shift", 12, 15, (0,)), mv.Fault("stuck", 16, 18, (1, 2, 3))]
    scores = np.array([0.0, 0.0, 0.9, 0.0, 0.0, 0.0, 0.0, 0.0, 0.9])  # rows 10..18
    assert mv.detected(scores, 0.5, faults, 10) == [True, False]
    assert mv.detected(scores, 0.95, faults, 10) == [False, False]


@pytest.fixture(scope="module")
def tiny(mv: ModuleType) -> tuple:
    """Two days of 20 metrics; one metric jumps by 20 training spreads for two test hours."""
    s = mv.generate_source(SEED, 7, 2 * DAY, metrics=20, plan={})
    start, end = s.split + 600, s.split + 720
    j = next(i for i, name in enumerate(s.names) if name.endswith("_latency_ms"))
    s.values[start:end, j] += 20.0 * s.values[: s.split, j].std()
    s.labels[start:end] = True
    s.faults.append(mv.Fault("shift", start, end, (j,)))
    return s, s.values[: s.split], s.values[s.split :], s.labels[s.split :]


def test_baselines_find_an_obvious_fault(mv: ModuleType, tiny: tuple) -> None:
    s, train, test, labels = tiny
    chance = 2 * labels.sum() / (len(labels) + labels.sum())  # flag every row
    spe, components = mv.pca_scores(train, test)
    assert 1 <= components < train.shape[1]
    z = mv.zscore_scores(train, test)
    for scores in (spe, z):
        assert scores.shape == (len(test),) and (scores >= 0).all()
        f1, threshold = mv.best_f1(scores, labels)
        assert f1 > max(0.5, 2 * chance)
        assert mv.detected(scores, threshold, s.faults, s.split) == [True]


def test_vigil_scores_every_test_row(mv: ModuleType, tiny: tuple) -> None:
    s, _, test, _ = tiny
    samples = list(itertools.islice(mv.samples(s), 3))
    assert [x.t for x in samples] == [mv.START_T, mv.START_T + 60.0, mv.START_T + 120.0]
    assert samples[0].sensor == "system" and list(samples[0].data) == s.names
    for name, integer in zip(s.names, s.integer, strict=True):
        assert type(samples[0].data[name]) is (int if integer else float)
    scores, cpu = mv.vigil_scores(s)
    assert scores.shape == (len(test),)
    assert np.isfinite(scores).all() and (scores >= 0).all() and (scores <= 1).all()
    assert scores.max() > 0.0 and cpu > 0.0


def test_main_prints_the_tables(mv: ModuleType, capsys: pytest.CaptureFixture[str]) -> None:
    assert mv.main(["--sources", "1", "--days", "4", "--seed", "3"]) == 0
    out = capsys.readouterr().out
    assert "multivariate: 1 sources, 5,760 rows, 4 faults, seed 3" in out
    for word in ("mean", *mv.DETECTORS, *mv.FAULT_KINDS, "us per row"):
        assert word in out
    with pytest.raises(SystemExit):
        mv.main(["--days", "2"])
