"""vigil's NAB scorer: hand-worked scoring rules, the sweep against brute force, and the
published scores of two reference detectors."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from _tools import shared

from agent.evaluation.nab_score import (
    CostProfile,
    PreparedFile,
    ProfileResult,
    ResultFile,
    load_profiles,
    optimise,
    prepare_file,
    probationary_length,
    scaled_sigmoid,
    score_file,
    score_results_dir,
)

REPO = Path(__file__).resolve().parents[2]
STANDARD = CostProfile("standard", tp_weight=1.0, fp_weight=0.11, fn_weight=1.0)
LOW_FN = CostProfile("reward_low_FN_rate", tp_weight=1.0, fp_weight=0.11, fn_weight=2.0)
# 2*sigmoid(-5x) - 1 == tanh(-5x/2); at the window start (x = -1) it is tanh(2.5).
MAX_TP = math.tanh(2.5)  # 0.98661429815


def _file(
    n: int, windows: list[tuple[int, int]], detections: dict[int, float], name: str = "c/f.csv"
) -> tuple[ResultFile, dict[str, list[tuple[np.datetime64, np.datetime64]]]]:
    ts = np.datetime64("2020-01-01T00:00", "us") + np.arange(n) * np.timedelta64(5, "m")
    scores = np.zeros(n)
    for i, s in detections.items():
        scores[i] = s
    labels = np.zeros(n, dtype=np.int8)
    for a, b in windows:
        labels[a : b + 1] = 1
    result = ResultFile(name, ts, np.zeros(n), scores, labels)
    return result, {name: [(ts[a], ts[b]) for a, b in windows]}


def _score(
    n: int,
    windows: list[tuple[int, int]],
    det: dict[int, float],
    threshold: float = 0.5,
    profile: CostProfile = STANDARD,
) -> float:
    result, wins = _file(n, windows, det)
    return score_file(prepare_file(result, wins), threshold, profile).score


def test_scaled_sigmoid_landmarks() -> None:
    assert scaled_sigmoid(-1.0) == pytest.approx(0.98661429815)  # window start
    assert scaled_sigmoid(-0.5) == pytest.approx(0.84828363995)  # tanh(1.25), mid-window
    assert scaled_sigmoid(0.0) == pytest.approx(0.0)  # right edge
    assert scaled_sigmoid(1.0) == pytest.approx(-0.98661429815)
    assert scaled_sigmoid(3.0) == -1.0  # from 3 window-widths past: the flat -1


def test_probationary_length() -> None:
    assert probationary_length(40) == 6  # floor(0.15 * 40)
    assert probationary_length(7) == 1  # floor(1.05)
    assert probationary_length(4000) == 600
    assert probationary_length(10_000) == 750  # capped at 0.15 * 5000


# One file of 40 rows (probation: the first 6), one window over rows 10..19 (width 10).
N, WIN = 40, [(10, 19)]


def test_nothing_detected_misses_the_window() -> None:
    assert _score(N, WIN, {}) == pytest.approx(-1.0)  # -fnWeight
    assert _score(N, WIN, {}, profile=LOW_FN) == pytest.approx(-2.0)


def test_detection_at_window_start_earns_tp_weight() -> None:
    # position -(19 - 10 + 1)/10 = -1 -> sigmoid(-1)/MAX_TP = 1 -> +tpWeight
    assert _score(N, WIN, {10: 1.0}) == pytest.approx(1.0)


def test_detection_at_window_end_earns_little() -> None:
    # position -(19 - 19 + 1)/10 = -0.1 -> tanh(0.25)/tanh(2.5) = 0.24491866/0.98661430 = 0.24824155
    assert _score(N, WIN, {19: 1.0}) == pytest.approx(0.2482415498)


def test_only_the_earliest_detection_in_a_window_counts() -> None:
    # rows 12 and 15 detected: only row 12 counts, position -(19-12+1)/10 = -0.8:
    # tanh(2)/tanh(2.5) = 0.96402758/0.98661430 = 0.97710684; row 15 adds nothing.
    det = {15: 0.9, 12: 0.7}
    assert _score(N, WIN, det, threshold=0.6) == pytest.approx(0.9771068409)
    # at 0.8 only row 15: position -0.5 -> tanh(1.25)/tanh(2.5) = 0.84828364/0.98661430 = 0.85979257
    assert _score(N, WIN, det, threshold=0.8) == pytest.approx(0.8597925669)


def test_false_positive_right_after_a_window_costs_little() -> None:
    # row 20: (20 - 19)/(10 - 1) = 1/9 past -> tanh(-5/18) = -0.27084712 * 0.11
    # = -0.02979318, plus the missed window -1.
    assert _score(N, WIN, {20: 1.0}) == pytest.approx(-1.0 + 0.11 * math.tanh(-5 / 18))
    assert _score(N, WIN, {20: 1.0}) == pytest.approx(-1.0297931830)


def test_false_positive_far_after_a_window_costs_the_full_weight() -> None:
    # row 37: 18/9 = 2 widths past -> tanh(-5) = -0.99990920 * 0.11 = -0.10999001
    assert _score(N, WIN, {37: 1.0}) == pytest.approx(-1.0 - 0.1099900121)
    # 3 widths past (row 46 of 60) and beyond: exactly -0.11
    assert _score(60, WIN, {46: 1.0}) == pytest.approx(-1.11)


def test_false_positive_before_any_window_costs_the_full_weight() -> None:
    assert _score(N, WIN, {7: 1.0}) == pytest.approx(-1.11)  # -1 * 0.11, window missed


def test_probationary_rows_are_not_scored() -> None:
    # 40 rows -> rows 0..5 are probationary: a detection there is ignored, at row 6 it is
    # a false positive before any window.
    assert _score(N, WIN, {5: 1.0}) == pytest.approx(-1.0)
    assert _score(N, WIN, {6: 1.0}) == pytest.approx(-1.11)
    # A window wholly inside the probation is neither a miss nor a hit (100 rows -> 15).
    result, wins = _file(100, [(2, 8), (50, 59)], {50: 1.0})
    got = score_file(prepare_file(result, wins), 0.5, STANDARD)
    assert got.score == pytest.approx(1.0) and (got.windows, got.detected_windows) == (1, 1)


def _corpus(seed: int) -> list[PreparedFile]:
    rng = np.random.default_rng(seed)
    files = []
    for j in range(6):
        n = int(rng.integers(60, 300))
        k = int(rng.integers(0, 4))
        starts = np.sort(rng.choice(np.arange(n // 5, n - 12, 12), size=k, replace=False))
        wins = [(int(a), int(a) + int(rng.integers(1, 10))) for a in starts]
        det = {i: float(rng.integers(0, 11)) / 10 for i in range(n)}  # many ties
        result, w = _file(n, wins, det, name=f"c/f{j}.csv")
        files.append(prepare_file(result, w))
    return files


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_sweep_matches_rescoring_every_threshold(seed: int) -> None:
    files = _corpus(seed)
    profiles = {p.name: p for p in (STANDARD, LOW_FN)}
    best = optimise(files, profiles)
    candidates = sorted({float(s) for f in files for s in f.scores} | {1.1}, reverse=True)
    for name, p in profiles.items():
        totals = [sum(score_file(f, t, p).score for f in files) for t in candidates]
        assert best[name].score == pytest.approx(max(totals), abs=1e-9)
        assert best[name].threshold == candidates[int(np.argmax(totals))]


def test_null_and_perfect_detectors_normalise_to_0_and_100() -> None:
    wins = [(30, 39), (70, 79)]
    null, w = _file(100, wins, dict.fromkeys(range(100), 0.5))
    perfect, _ = _file(100, wins, {30: 1.0, 70: 1.0})
    profiles = {"standard": STANDARD, "low_fn": LOW_FN}
    for name, res in optimise([prepare_file(null, w)], profiles).items():
        assert res.normalised == pytest.approx(0.0) and res.threshold == 1.1, name
    for name, res in optimise([prepare_file(perfect, w)], profiles).items():
        assert res.normalised == pytest.approx(100.0) and res.threshold == 1.0, name


def _nab_root() -> Path:
    return shared("nab", "results").parent


# NAB's own scorer with its optimisation (see the shared SOURCE.md): standard, low FP, low FN.
PUBLISHED = {
    "windowedGaussian": (39.65, 20.87, 47.41),
    "numenta": (70.10, 63.21, 74.32),
}


@pytest.mark.parametrize("detector", sorted(PUBLISHED))
def test_reproduces_nab_published_scores(detector: str) -> None:
    root = _nab_root()
    results, files = score_results_dir(root / "results" / detector, root)
    assert len(files) == 58 and sum(f.n_rows for f in files) == 365_558
    got = tuple(
        round(results[p].normalised, 2)
        for p in ("standard", "reward_low_FP_rate", "reward_low_FN_rate")
    )
    assert got == PUBLISHED[detector]
    # The sweep's total equals rescoring each file at the chosen threshold.
    profiles = load_profiles(root / "config" / "profiles.json")
    for name, res in results.items():
        assert isinstance(res, ProfileResult)
        rescored = sum(score_file(f, res.threshold, profiles[name]).score for f in files)
        assert rescored == pytest.approx(res.score, abs=1e-9)
