"""NAB scoring (Lavin & Ahmad 2015): windows, scaled sigmoid, profiles, corpus threshold sweep."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from agent.evaluation.nab_io import (
    CostProfile,
    ResultFile,
    Windows,
    load_profiles,
    load_results,
    load_windows,
)

__all__ = [
    "CostProfile",
    "FileScore",
    "PreparedFile",
    "ProfileResult",
    "ResultFile",
    "load_profiles",
    "load_results",
    "labels_match",
    "load_windows",
    "optimise",
    "prepare_file",
    "probationary_length",
    "scaled_sigmoid",
    "score_file",
    "score_results_dir",
]

PROBATION_FRACTION = 0.15
PROBATION_CAP_ROWS = 5000  # the probationary period is at most 15% of 5000 rows
NOTHING_DETECTED = 1.1  # the reported threshold when the best choice is to flag nothing

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]


def scaled_sigmoid(x: npt.ArrayLike) -> F64:
    """2*sigmoid(-5x) - 1, and -1 from x >= 3: +0.987 at x=-1 (window start), 0 at x=0."""
    x = np.asarray(x, dtype=np.float64)
    with np.errstate(over="ignore"):
        y = 2.0 / (1.0 + np.exp(5.0 * x)) - 1.0
    return np.where(x >= 3.0, -1.0, y)


MAX_TP = float(scaled_sigmoid(-1.0))


def probationary_length(n_rows: int, fraction: float = PROBATION_FRACTION) -> int:
    """Rows at the start of a file that are never scored: min(floor(f*n), f*5000),
    as a count (rows with index < this are skipped)."""
    return math.ceil(min(math.floor(fraction * n_rows), fraction * PROBATION_CAP_ROWS))


@dataclass(frozen=True)
class PreparedFile:
    """The scorable rows of one file (after the probationary period) and their weights.

    ``window`` is the file's window index of each row (-1 outside every window);
    ``weight`` is, inside a window, the TP reward scaled to 1 at the window start, and
    outside, the (negative) FP sigmoid of the distance past the preceding window end.
    """

    name: str
    n_rows: int
    probation: int
    scores: F64
    window: I64
    weight: F64
    n_windows: int  # windows in the labels, including any wholly inside the probation
    scorable_windows: I64  # indices of windows with at least one scorable row


def _window_indices(result: ResultFile, windows: Windows) -> tuple[I64, I64]:
    ts = result.timestamps
    bounds = windows.get(result.name, [])
    lefts = np.empty(len(bounds), dtype=np.int64)
    rights = np.empty(len(bounds), dtype=np.int64)
    for k, (a, b) in enumerate(bounds):
        i, j = np.searchsorted(ts, [a, b])
        if i >= len(ts) or j >= len(ts) or ts[i] != a or ts[j] != b or j < i:
            raise ValueError(f"{result.name}: window {a}..{b} does not match the timestamps")
        lefts[k], rights[k] = i, j
    if len(bounds) > 1 and np.any(lefts[1:] <= rights[:-1]):
        raise ValueError(f"{result.name}: windows overlap or are unsorted")
    return lefts, rights


def prepare_file(
    result: ResultFile, windows: Windows, fraction: float = PROBATION_FRACTION
) -> PreparedFile:
    """Attach to each row its window and its profile-free reward or penalty."""
    n = len(result.scores)
    lefts, rights = _window_indices(result, windows)
    widths = rights - lefts + 1
    idx = np.arange(n, dtype=np.int64)
    window = np.full(n, -1, dtype=np.int64)  # the window a row is in
    prev = np.full(n, -1, dtype=np.int64)  # the last window that ended before the row
    for w, (left, right) in enumerate(zip(lefts, rights, strict=True)):
        window[left : right + 1] = w
        prev[right + 1 :] = w
    inside = window >= 0
    weight = np.full(n, -1.0)  # before any window: the full FP penalty
    k = window[inside]
    # Relative position -(right - i + 1)/width: -1 at the window start, -1/width at its end.
    weight[inside] = scaled_sigmoid(-(rights[k] - idx[inside] + 1) / widths[k]) / MAX_TP
    after = ~inside & (prev >= 0)
    k = prev[after]
    # Distance past the end, (i - right)/(width - 1): a one-row window divides by zero
    # (NAB would raise); we treat every row after it as far past (inf -> -1).
    with np.errstate(divide="ignore"):
        weight[after] = scaled_sigmoid((idx[after] - rights[k]) / (widths[k] - 1.0))
    p = probationary_length(n, fraction)
    scored_windows = np.unique(window[p:][window[p:] >= 0])
    return PreparedFile(
        name=result.name,
        n_rows=n,
        probation=p,
        scores=result.scores[p:].copy(),
        window=window[p:].copy(),
        weight=weight[p:].copy(),
        n_windows=len(lefts),
        scorable_windows=scored_windows.astype(np.int64),
    )


@dataclass(frozen=True)
class FileScore:
    """One file's raw score at a threshold, and its row counts (scorable rows only)."""

    name: str
    score: float
    tp: int
    fp: int
    fn: int
    tn: int
    detected_windows: int
    windows: int


def score_file(prepared: PreparedFile, threshold: float, profile: CostProfile) -> FileScore:
    """Score one file when every row with ``anomaly_score >= threshold`` is a detection.

    A window scores ``tp_weight * weight`` of its earliest detection (only that one counts),
    or ``-fn_weight`` if missed; every detection outside a window adds ``fp_weight * weight``.
    """
    det = prepared.scores >= threshold
    inside = prepared.window >= 0
    fp_part = profile.fp_weight * float(prepared.weight[det & ~inside].sum())
    best = np.zeros(prepared.n_windows, dtype=np.float64)
    hit = det & inside
    np.maximum.at(best, prepared.window[hit], prepared.weight[hit])
    found = best[prepared.scorable_windows] > 0.0
    win_part = profile.tp_weight * float(best[prepared.scorable_windows].sum())
    win_part -= profile.fn_weight * int((~found).sum())
    return FileScore(
        name=prepared.name,
        score=fp_part + win_part,
        tp=int(hit.sum()),
        fp=int((det & ~inside).sum()),
        fn=int((~det & inside).sum()),
        tn=int((~det & ~inside).sum()),
        detected_windows=int(found.sum()),
        windows=len(prepared.scorable_windows),
    )


@dataclass(frozen=True)
class ProfileResult:
    """The corpus optimum for one profile: threshold, raw and normalised scores."""

    profile: str
    threshold: float
    score: float
    null_score: float
    perfect_score: float
    normalised: float


@dataclass(frozen=True)
class _Sweep:
    thresholds: F64  # candidate thresholds, descending; NOTHING_DETECTED first
    fp_sum: F64  # sum of FP weights of the detections at each candidate
    tp_sum: F64  # sum over detected windows of the best TP weight
    detected: I64  # windows detected
    windows: int  # scorable windows in the corpus


def _sweep(files: list[PreparedFile]) -> _Sweep:
    """Running totals over all rows of all files sorted by score, descending: one pass."""
    scores = np.concatenate([f.scores for f in files])
    weight = np.concatenate([f.weight for f in files])
    offsets = np.cumsum([0] + [f.n_windows for f in files[:-1]])
    gwin = np.concatenate(
        [np.where(f.window >= 0, f.window + o, -1) for f, o in zip(files, offsets, strict=True)]
    )
    n = len(scores)
    order = np.argsort(-scores, kind="stable")
    s, w, g = scores[order], weight[order], gwin[order]
    inside = g >= 0
    fp_inc = np.where(inside, 0.0, w)
    # In-window rows: per window, the best (= earliest, since the reward falls with the
    # position) detection so far. Row ids grow with time inside a file, so a running max of
    # window*N + (N-1-row) grouped by window gives the earliest row detected so far.
    rank = np.flatnonzero(inside)
    row = order[rank]
    win = g[rank]
    by_win = np.lexsort((rank, win))
    rank, row, win = rank[by_win], row[by_win], win[by_win]
    key = np.maximum.accumulate(win * n + (n - 1 - row))
    best_row = n - 1 - (key - win * n)
    best = weight[best_row]
    first = np.ones(len(win), dtype=bool)
    first[1:] = win[1:] != win[:-1]
    prev = np.where(first, 0.0, np.concatenate([[0.0], best[:-1]]))
    tp_inc = np.zeros(n, dtype=np.float64)
    tp_inc[rank] = best - prev
    det_inc = np.zeros(n, dtype=np.int64)
    det_inc[rank[first]] = 1
    # Candidates: the end of each run of equal scores (ties are detected together).
    ends = np.flatnonzero(np.append(s[1:] != s[:-1], True))
    zero = np.zeros(1)
    return _Sweep(
        thresholds=np.concatenate([[NOTHING_DETECTED], s[ends]]),
        fp_sum=np.concatenate([zero, np.cumsum(fp_inc)[ends]]),
        tp_sum=np.concatenate([zero, np.cumsum(tp_inc)[ends]]),
        detected=np.concatenate([[0], np.cumsum(det_inc)[ends]]).astype(np.int64),
        windows=int(sum(len(f.scorable_windows) for f in files)),
    )


def optimise(
    files: list[PreparedFile], profiles: dict[str, CostProfile]
) -> dict[str, ProfileResult]:
    """One global threshold per profile, the best over every distinct score in the corpus,
    and the score normalised as 100*(S - S_null)/(S_perfect - S_null).

    The null detector flags nothing (every scorable window missed); the perfect one flags
    each labelled window at its first row (``tp_weight`` per window)."""
    sw = _sweep(files)
    total_windows = sum(f.n_windows for f in files)
    out: dict[str, ProfileResult] = {}
    for name, p in profiles.items():
        missed = sw.windows - sw.detected
        totals = p.fp_weight * sw.fp_sum + p.tp_weight * sw.tp_sum - p.fn_weight * missed
        best = int(np.argmax(totals))  # ties: the highest threshold
        null = -p.fn_weight * sw.windows
        perfect = p.tp_weight * total_windows
        score = float(totals[best])
        out[name] = ProfileResult(
            profile=name,
            threshold=float(sw.thresholds[best]),
            score=score,
            null_score=null,
            perfect_score=perfect,
            normalised=100.0 * (score - null) / (perfect - null),
        )
    return out


def labels_match(result: ResultFile, prepared: PreparedFile) -> bool:
    """Whether the file's ``label`` column marks exactly the scorable rows in a window."""
    return bool(np.array_equal(result.labels[prepared.probation :] == 1, prepared.window >= 0))


def score_results_dir(
    results_dir: Path, data_dir: Path, detector: str | None = None, check_labels: bool = True
) -> tuple[dict[str, ProfileResult], list[PreparedFile]]:
    """Load a detector's results for every labelled file of the corpus in ``data_dir``
    (``labels/combined_windows.json``, ``config/profiles.json``) and optimise each profile.
    With ``check_labels``, a ``label`` column that disagrees with the windows is an error."""
    windows = load_windows(data_dir / "labels" / "combined_windows.json")
    profiles = load_profiles(data_dir / "config" / "profiles.json")
    results = load_results(results_dir, list(windows), detector)
    files = [prepare_file(r, windows) for r in results]
    if check_labels:
        bad = [r.name for r, f in zip(results, files, strict=True) if not labels_match(r, f)]
        if bad:
            raise ValueError(f"label column disagrees with the windows in {bad}")
    return optimise(files, profiles), files
