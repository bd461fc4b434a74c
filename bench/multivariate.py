"""vigil and two baselines on generated servers with 20 to 40 correlated metrics: best F1.

Each source is one server: d metrics (d drawn in 20..40), one row per minute from Monday
2026-01-05 00:00 UTC, ``--days`` long. The metrics are driven by the first 2 to 4 of these
latent factors: a daily load cycle (quieter at weekends), bursty request load, a slow
mean-reverting random walk and a nightly batch job. Each metric is its loadings times the
factors, passed through its own kind (a CPU percent that saturates, a latency that grows
exponentially with load, a request rate with Poisson noise, integer thread and queue counts, a
temperature that lags the load, memory, an error ratio, a disk rate, a cache hit ratio that
falls with load), plus its own noise, at scales from 0.001 to 1e6. Load bursts, a few of them
large, are normal events: every metric that follows the load moves with them as usual, and they
are not labelled.

The first half of the rows is the training half; faults are injected in the second (test)
half only, without overlapping, each labelled 1 on every row of its interval:

* ``decoupling``: one metric stops following its factors for 1 to 6 hours, replaced by
  smooth independent noise with its training mean and spread (within its training range);
* ``leak``: a memory metric ramps up over 6 to 24 hours from where it was, by 2.5 to 5 times
  its training spread, then drops back (a restart);
* ``stuck``: 3 to 6 metrics that share a factor freeze at their last values for 1 to 4 hours;
* ``shift``: one metric moves by 1.5 to 3 times its training spread for 1 to 6 hours.

A 7-day test half holds 2 decouplings, 1 leak, 2 stuck groups and 1 shift (scaled with its
length, at least one of each, so ``--days`` is at least 4 and short sources have a large share
of labelled rows). Three detectors score every test row:

* ``pca``: each metric standardised with the training half's mean and spread, PCA fitted on
  the training half keeping the components that explain 95 % of its variance; the score is
  the row's squared reconstruction error (SPE);
* ``zscore``: the largest absolute z-score of the row's metrics (training mean and spread);
* ``vigil``: the whole source, training half then test half, fed in time order through the
  pipeline as the daemon builds it (the default config), as ``system`` samples with one
  field per metric; the score is the sample's combined anomaly score (``Step.node``; none
  counts as 0.0). vigil learns online and is causal: the training half is only its history;
* ``vigil_own``: the same with ``[anomaly] co_movement = false`` (each metric judged against
  its own past only, not by what the others say).

The metric is each source's best point-wise F1 over every threshold on its test half's scores
(no point-adjust), shown with ``all``: the F1 of flagging every row, which any useful detector
beats. Per fault kind, a fault counts as detected when the detector's best-F1 threshold flags
any row inside it; the share of normal test rows that threshold flags is shown with them (a
threshold low enough detects every fault). vigil's cost is the pipeline's CPU time per row fed
(``time.process_time`` around ``Pipeline.feed_chunk``). The output depends only on the seed.

    python bench/multivariate.py [--sources N] [--days D] [--seed S]
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import sys
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
import numpy.typing as npt
from dev_corpus import ar1
from rich.console import Console
from rich.table import Table

from agent.config import Config
from agent.gate import check_sample
from agent.runtime.replay import chunked
from agent.runtime.setup import build_pipeline
from agent.samples import Sample

F64 = npt.NDArray[np.float64]
Bools = npt.NDArray[np.bool_]
Rng = np.random.Generator

HOUR = 60  # rows of one minute
DAY = 24 * HOUR
START_T = datetime(2026, 1, 5, tzinfo=UTC).timestamp()  # a Monday, 00:00 UTC
MIN_DAYS = 4  # the test half must hold one fault of each kind with gaps between them
METRICS = (20, 40)
FACTORS = ("daily", "burst", "walk", "batch")  # the first 2 to 4 of these drive a source
DETECTORS = ("pca", "zscore", "vigil", "vigil_own")
PCA_SHARE = 0.95  # of the training half's variance kept by the PCA baseline

#: Metric kinds, in the order each source has at least one of each (then random ones).
KINDS = (
    "cpu_pct",
    "latency_ms",
    "req_per_s",
    "threads",
    "temp_c",
    "mem_mb",
    "err_ratio",
    "disk_Bps",
    "queue_len",
    "cache_hit_ratio",
)
INTEGER_KINDS = frozenset({"threads", "queue_len"})
UPPER = {"cpu_pct": 100.0, "err_ratio": 1.0, "cache_hit_ratio": 1.0}  # every kind is >= 0

FAULT_KINDS = ("decoupling", "leak", "stuck", "shift")
FAULTS_PER_WEEK = {"decoupling": 2, "leak": 1, "stuck": 2, "shift": 1}  # of test half
FAULT_ROWS = {  # (shortest, longest) interval
    "decoupling": (1 * HOUR, 6 * HOUR),
    "leak": (6 * HOUR, 24 * HOUR),
    "stuck": (1 * HOUR, 4 * HOUR),
    "shift": (1 * HOUR, 6 * HOUR),
}
FAULT_GAP = HOUR  # at least this many normal rows before, between and after the faults


@dataclass(frozen=True)
class Fault:
    """One injected fault: rows ``start`` to ``end`` (exclusive) of the whole source."""

    kind: str
    start: int
    end: int
    metrics: tuple[int, ...]


@dataclass
class Source:
    """One generated server: ``values`` has one row per minute and one column per metric."""

    name: str
    values: F64
    names: list[str]
    integer: Bools  # metrics fed to vigil as ints
    factors: tuple[str, ...]
    labels: Bools
    faults: list[Fault]

    @property
    def rows(self) -> int:
        return len(self.values)

    @property
    def split(self) -> int:
        """The first row of the test half."""
        return self.rows // 2


# ---- latent factors ---------------------------------------------------------------------------


def _loguniform(rng: Rng, low: float, high: float) -> float:
    return float(math.exp(rng.uniform(math.log(low), math.log(high))))


def lag(u: F64, tau: float) -> F64:
    """``u`` through a first-order lag of ``tau`` rows (a temperature following its load)."""
    alpha = 1.0 - math.exp(-1.0 / tau)
    out = np.empty(len(u))
    y = float(u[0])
    for i, x in enumerate(u.tolist()):
        y += alpha * (x - y)
        out[i] = y
    return out


def _ramp_edges(n: int, spans: list[tuple[int, int, float]], edge: int) -> F64:
    """Plateaus of the given heights on rows ``[start, end)``, with linear edges."""
    out = np.zeros(n)
    rows = np.arange(n)
    for start, end, height in spans:
        up = np.clip((rows - start + 1) / edge, 0.0, 1.0)
        down = np.clip((end - rows) / edge, 0.0, 1.0)
        out += height * np.minimum(up, down)
    return out


def daily_load(rng: Rng, n: int) -> F64:
    """The daily load cycle in about [0.1, 1]: a working-day bump, lower at weekends, each
    day's height varying a little."""
    minute = np.arange(n)
    hour = (minute % DAY) / HOUR
    day = minute // DAY
    peak = 14.0 + rng.uniform(-1.5, 1.5)
    bump = (0.5 * (1.0 + np.cos(2.0 * np.pi * (hour - peak) / 24.0))) ** rng.uniform(1.5, 3.0)
    weekend = rng.uniform(0.35, 0.6)
    heights = 1.0 + rng.normal(0.0, 0.08, int(day[-1]) + 1)
    scale = np.where(day % 7 >= 5, weekend, 1.0) * heights[day]
    return np.asarray(0.1 + 0.9 * bump * scale)


def bursts(rng: Rng, n: int) -> F64:
    """Bursty request load: frequent small bursts that decay within minutes to an hour, and
    at least one large plateau in each half (normal events, never labelled)."""
    out = np.zeros(n)
    count = int(rng.poisson(n / (rng.uniform(3.0, 8.0) * HOUR)))
    for start in rng.integers(0, n, count).tolist():
        tau = rng.uniform(5.0, 40.0)
        end = min(n, start + int(6 * tau))
        out[start:end] += rng.lognormal(math.log(0.3), 0.5) * np.exp(-np.arange(end - start) / tau)
    spans: list[tuple[int, int, float]] = []
    half = n // 2
    for lo in (0, half):
        for _ in range(max(1, round(half / (3.5 * DAY)))):
            start = int(rng.integers(lo, lo + half - 2 * HOUR))
            end = start + int(rng.integers(20, 120))
            spans.append((start, end, float(rng.uniform(1.2, 2.2))))
    return out + _ramp_edges(n, spans, 5)


def slow_walk(rng: Rng, n: int) -> F64:
    """A slow mean-reverting walk around 0.5 (days to revert)."""
    return 0.5 + ar1(n, rng.uniform(1.0, 3.0) * DAY, rng.uniform(0.15, 0.25), rng)


def batch_job(rng: Rng, n: int) -> F64:
    """A nightly batch job near 02:00, 30 to 75 minutes long, not on Sundays."""
    offset = 2 * HOUR + int(rng.integers(-HOUR, HOUR))
    height = float(rng.uniform(0.6, 1.0))
    spans = []
    for day in range(n // DAY + 1):
        if day % 7 == 6:
            continue
        start = day * DAY + offset + int(rng.integers(-10, 11))
        spans.append((start, start + int(rng.integers(30, 76)), height))
    return _ramp_edges(n, spans, 3)


FACTOR_FNS = {"daily": daily_load, "burst": bursts, "walk": slow_walk, "batch": batch_job}
PRIMARY_WEIGHTS = {"daily": 0.45, "burst": 0.2, "walk": 0.2, "batch": 0.15}


# ---- metrics ----------------------------------------------------------------------------------


def loadings(rng: Rng, kinds: list[str], factors: tuple[str, ...]) -> F64:
    """Metrics x factors: one primary factor per metric (memory follows the walk where there
    is one), bursts weighing on metrics that follow the daily load (both are load), and small
    random loadings on some others."""
    w = np.zeros((len(kinds), len(factors)))
    p = np.array([PRIMARY_WEIGHTS[f] for f in factors])
    for j, kind in enumerate(kinds):
        if kind == "mem_mb" and "walk" in factors:
            primary = factors.index("walk")
        else:
            primary = int(rng.choice(len(factors), p=p / p.sum()))
        for k in range(len(factors)):
            if rng.random() < 0.4:
                w[j, k] = rng.uniform(0.05, 0.3)
        w[j, primary] = rng.uniform(0.7, 1.0)
        if factors[primary] == "daily":
            w[j, factors.index("burst")] = rng.uniform(0.5, 1.0)
        elif factors[primary] == "burst":
            w[j, factors.index("daily")] = rng.uniform(0.3, 0.7)
    return w


def draw_metric(rng: Rng, kind: str, u: F64) -> F64:
    """One metric of ``kind`` from its drive ``u`` (its loadings times the factors)."""
    n = len(u)
    pos = np.maximum(u, 0.0)
    if kind == "cpu_pct":  # saturates towards 100
        g = rng.uniform(0.8, 1.6)
        v = 100.0 * (1.0 - np.exp(-g * (pos + 0.15))) + rng.normal(0.0, 1.0, n)
    elif kind == "latency_ms":  # log-normal around an exponential of the load
        base = _loguniform(rng, 0.3, 50.0)
        v = base * np.exp(rng.uniform(0.6, 1.2) * u + rng.normal(0.0, 0.06, n))
    elif kind == "req_per_s":  # a counter's rate: Poisson counts per minute
        per_min = _loguniform(rng, 0.2, 3e5) * 60.0 * (pos + 0.1)
        v = rng.poisson(per_min) / 60.0
    elif kind == "threads":
        base = _loguniform(rng, 6.0, 300.0)
        v = np.round(base * (1.0 + 0.6 * u) + rng.normal(0.0, 0.4, n))
    elif kind == "temp_c":  # lags its load by 10 to 45 minutes
        lagged = lag(u, rng.uniform(10.0, 45.0))
        v = 32.0 + rng.uniform(15.0, 30.0) * lagged + rng.normal(0.0, 0.25, n)
    elif kind == "mem_mb":
        base = _loguniform(rng, 200.0, 6e4)
        v = base * (1.0 + rng.uniform(0.1, 0.4) * u + rng.normal(0.0, 0.003, n))
    elif kind == "err_ratio":
        a = _loguniform(rng, 0.002, 0.05)
        v = a * (0.1 + pos**2) + rng.normal(0.0, 0.05 * a, n)
    elif kind == "disk_Bps":
        v = _loguniform(rng, 1e3, 1e6) * (0.2 + pos) * np.exp(rng.normal(0.0, 0.1, n))
    elif kind == "queue_len":
        v = rng.poisson(rng.uniform(2.0, 40.0) * (0.05 + pos) ** 2).astype(np.float64)
    elif kind == "cache_hit_ratio":  # falls as the load rises
        v = 0.995 - rng.uniform(0.02, 0.08) * pos + rng.normal(0.0, 0.002, n)
    else:
        raise ValueError(f"unknown metric kind {kind!r}")
    return np.clip(v, 0.0, UPPER.get(kind, np.inf))


# ---- faults -----------------------------------------------------------------------------------


def fault_plan(test_rows: int) -> dict[str, int]:
    """Faults per kind for a test half of ``test_rows``: ``FAULTS_PER_WEEK`` scaled, >= 1."""
    weeks = test_rows / (7 * DAY)
    return {kind: max(1, round(n * weeks)) for kind, n in FAULTS_PER_WEEK.items()}


def place(rng: Rng, lengths: list[int], first: int, end: int) -> list[int]:
    """Start rows for intervals of ``lengths``, in this order, inside ``[first, end)``, with
    at least ``FAULT_GAP`` rows before, between and after them; the slack spread at random."""
    slack = end - first - sum(lengths) - FAULT_GAP * (len(lengths) + 1)
    if slack < 0:
        raise ValueError(f"{len(lengths)} faults of {sum(lengths)} rows do not fit")
    cuts = np.sort(rng.integers(0, slack + 1, len(lengths))).tolist()
    starts, row, used = [], first + FAULT_GAP, 0
    for cut, length in zip(cuts, lengths, strict=True):
        row += cut - used
        used = cut
        starts.append(row)
        row += length + FAULT_GAP
    return starts


def _shared_group(rng: Rng, w: F64) -> tuple[int, ...]:
    """3 to 6 metrics with a loading of at least 0.5 on one factor."""
    members = [np.flatnonzero(w[:, k] >= 0.5) for k in range(w.shape[1])]
    choices = [m for m in members if len(m) >= 3]
    group = choices[int(rng.integers(len(choices)))]
    size = int(rng.integers(3, min(6, len(group)) + 1))
    return tuple(sorted(int(j) for j in rng.choice(group, size, replace=False)))


def inject(
    rng: Rng, x: F64, kinds: list[str], w: F64, split: int, kind: str, start: int, end: int
) -> Fault:
    """Apply one fault to ``x`` in place on rows ``[start, end)``; scales are the training
    half's (``x[:split]``)."""
    train = x[:split]
    mean, sd = train.mean(axis=0), train.std(axis=0)
    n = end - start
    if kind == "decoupling":
        j = int(rng.integers(x.shape[1]))
        noise = ar1(n, 10.0, 1.0, rng)  # smooth, as the metric itself is
        x[start:end, j] = np.clip(mean[j] + sd[j] * noise, train[:, j].min(), train[:, j].max())
        metrics: tuple[int, ...] = (j,)
    elif kind == "leak":
        memory = [j for j, k in enumerate(kinds) if k == "mem_mb"]
        j = memory[int(rng.integers(len(memory)))]
        x[start:end, j] += rng.uniform(2.5, 5.0) * sd[j] * np.linspace(0.0, 1.0, n)
        metrics = (j,)
    elif kind == "stuck":
        metrics = _shared_group(rng, w)
        x[start:end, list(metrics)] = x[start - 1, list(metrics)]
    elif kind == "shift":
        j = int(rng.integers(x.shape[1]))
        x[start:end, j] += rng.choice((-1.0, 1.0)) * rng.uniform(1.5, 3.0) * sd[j]
        metrics = (j,)
    else:
        raise ValueError(f"unknown fault kind {kind!r}")
    for j in metrics:
        column = x[start:end, j]
        if kinds[j] in INTEGER_KINDS:
            column = np.round(column)
        x[start:end, j] = np.clip(column, 0.0, UPPER.get(kinds[j], np.inf))
    return Fault(kind, start, end, metrics)


# ---- sources ----------------------------------------------------------------------------------


def generate_source(
    seed: int,
    index: int,
    rows: int,
    *,
    metrics: int | None = None,
    plan: Mapping[str, int] | None = None,
) -> Source:
    """Source ``index`` of ``seed``. ``metrics`` fixes d (else drawn in 20..40); ``plan``
    gives the faults per kind (else ``fault_plan``). The normal data are drawn before the
    faults, so the same source without faults (``plan={}``) has the same normal rows."""
    rng = np.random.default_rng([seed, index])
    d = int(rng.integers(METRICS[0], METRICS[1] + 1)) if metrics is None else metrics
    if d < len(KINDS):
        raise ValueError(f"at least {len(KINDS)} metrics (one of each kind)")
    factors = FACTORS[: int(rng.integers(2, 5))]
    f = np.column_stack([FACTOR_FNS[name](rng, rows) for name in factors])
    kinds = list(KINDS) + [str(k) for k in rng.choice(KINDS, d - len(KINDS))]
    kinds = [kinds[i] for i in rng.permutation(d)]
    w = loadings(rng, kinds, factors)
    drive = f @ w.T
    x = np.column_stack([draw_metric(rng, kind, drive[:, j]) for j, kind in enumerate(kinds)])
    split = rows // 2
    todo = fault_plan(rows - split) if plan is None else dict(plan)
    order = [kind for kind in FAULT_KINDS for _ in range(todo.get(kind, 0))]
    order = [order[i] for i in rng.permutation(len(order))]
    lengths = [int(rng.integers(FAULT_ROWS[k][0], FAULT_ROWS[k][1] + 1)) for k in order]
    starts = place(rng, lengths, split, rows)
    faults = [
        inject(rng, x, kinds, w, split, kind, start, start + length)
        for kind, start, length in zip(order, starts, lengths, strict=True)
    ]
    labels = np.zeros(rows, dtype=bool)
    for fault in faults:
        labels[fault.start : fault.end] = True
    names = [f"m{j:02d}_{kind}" for j, kind in enumerate(kinds)]
    integer = np.array([k in INTEGER_KINDS for k in kinds])
    return Source(f"s{index}", x, names, integer, factors, labels, faults)


def generate_sources(seed: int, count: int, days: float) -> list[Source]:
    """``count`` sources of ``days`` each; source ``i`` is the same whatever ``count`` is."""
    rows = int(round(days * DAY))
    return [generate_source(seed, i, rows) for i in range(count)]


# ---- detectors --------------------------------------------------------------------------------


def standardiser(train: F64) -> tuple[F64, F64]:
    """The training half's mean and spread per metric; the spread floored, so a metric that
    never moved in training does not divide by zero."""
    mean = train.mean(axis=0)
    sd = np.maximum(train.std(axis=0), 1e-9 + 1e-6 * np.abs(mean))
    return mean, sd


def pca_scores(train: F64, test: F64, share: float = PCA_SHARE) -> tuple[F64, int]:
    """(SPE of each test row, components kept) of a PCA fitted on the standardised training
    half, keeping the fewest components that explain ``share`` of its variance."""
    mean, sd = standardiser(train)
    z_train = (train - mean) / sd
    _, s, vt = np.linalg.svd(z_train, full_matrices=False)
    explained = np.cumsum(s**2) / np.sum(s**2)
    k = int(np.searchsorted(explained, share) + 1)
    basis = vt[:k]
    z = (test - mean) / sd
    residual = z - (z @ basis.T) @ basis
    return np.asarray(np.sum(residual**2, axis=1)), k


def zscore_scores(train: F64, test: F64) -> F64:
    """The largest absolute z-score of each test row against the training half."""
    mean, sd = standardiser(train)
    return np.asarray(np.max(np.abs((test - mean) / sd), axis=1))


def samples(source: Source) -> Iterator[Sample]:
    """The source as checked ``system`` samples, one a minute: floats, and ints for counts."""
    columns = [
        col.astype(np.int64).tolist() if integer else col.tolist()
        for col, integer in zip(source.values.T, source.integer, strict=True)
    ]
    for i, row in enumerate(zip(*columns, strict=True)):
        yield check_sample("system", START_T + 60.0 * i, dict(zip(source.names, row, strict=True)))


def default() -> Config:
    """The default config, its hours in UTC (the generated days are UTC's)."""
    return dataclasses.replace(
        Config(), anomaly=dataclasses.replace(Config().anomaly, timezone="UTC")
    )


def own_past_only() -> Config:
    """The default config with ``[anomaly] co_movement = false``."""
    config = default()
    return dataclasses.replace(
        config, anomaly=dataclasses.replace(config.anomaly, co_movement=False)
    )


def vigil_scores(source: Source, config: Config | None = None) -> tuple[F64, float]:
    """(vigil's node score of each test row, the pipeline's CPU seconds for the whole
    source): a fresh pipeline fed the training half, then the test half."""
    pipeline = build_pipeline(config if config is not None else default(), keep_scores=True)
    scores = np.zeros(source.rows)
    cpu = 0.0
    i = 0
    for chunk in chunked(samples(source)):
        start = time.process_time()
        steps = pipeline.feed_chunk(chunk)
        cpu += time.process_time() - start
        for _, step in zip(chunk, steps, strict=True):
            scores[i] = step.node or 0.0
            i += 1
    return scores[source.split :], cpu


# ---- metric -----------------------------------------------------------------------------------


def best_f1(scores: F64, labels: Bools) -> tuple[float, float]:
    """(best point-wise F1, its threshold) over every threshold: a row is flagged when its
    score is >= the threshold. Rows with equal scores are flagged together."""
    y = np.asarray(labels, dtype=bool)
    positives = int(y.sum())
    if positives == 0:
        raise ValueError("no labelled row: F1 is undefined")
    order = np.argsort(-scores, kind="stable")
    ranked = scores[order]
    tp = np.cumsum(y[order])
    last = np.flatnonzero(np.append(ranked[1:] != ranked[:-1], True))  # end of each tie
    f1 = 2.0 * tp[last] / (last + 1 + positives)  # 2 TP / (flagged + positives)
    best = int(np.argmax(f1))
    return float(f1[best]), float(ranked[last[best]])


def detected(scores: F64, threshold: float, faults: list[Fault], offset: int) -> list[bool]:
    """Per fault, whether any of its rows scores >= ``threshold`` (``scores`` start at row
    ``offset`` of the source)."""
    return [bool(np.any(scores[f.start - offset : f.end - offset] >= threshold)) for f in faults]


# ---- the benchmark ----------------------------------------------------------------------------


@dataclass
class Result:
    """One source's scores: best F1 and the faults found per detector."""

    source: Source
    components: int
    f1: dict[str, float]
    found: dict[str, list[bool]]
    false_alarms: dict[str, int]  # normal test rows flagged at the best-F1 threshold
    cpu_s: float

    @property
    def flag_all(self) -> float:
        """The F1 of flagging every test row."""
        labels = self.source.labels[self.source.split :]
        return float(2.0 * labels.sum() / (len(labels) + labels.sum()))


def evaluate(source: Source) -> Result:
    """Score the source's test half with every detector."""
    train, test = source.values[: source.split], source.values[source.split :]
    labels = source.labels[source.split :]
    pca, components = pca_scores(train, test)
    vigil, cpu = vigil_scores(source)
    own, _ = vigil_scores(source, own_past_only())
    scores = {
        "pca": pca,
        "zscore": zscore_scores(train, test),
        "vigil": vigil,
        "vigil_own": own,
    }
    f1: dict[str, float] = {}
    found: dict[str, list[bool]] = {}
    false_alarms: dict[str, int] = {}
    for name, s in scores.items():
        f1[name], threshold = best_f1(s, labels)
        found[name] = detected(s, threshold, source.faults, source.split)
        false_alarms[name] = int(np.sum((s >= threshold) & ~labels))
    return Result(source, components, f1, found, false_alarms, cpu)


def report(results: list[Result], console: Console) -> None:
    """The per-source F1 table and the per-kind detection table."""
    table = Table(title="best point-wise F1 on the test half (no point-adjust)")
    for column in ("source", "d", "k", "PCs", "faults", "labelled", "all", *DETECTORS):
        table.add_column(column, justify="left" if column == "source" else "right")
    for r in results:
        s = r.source
        table.add_row(
            s.name,
            str(len(s.names)),
            str(len(s.factors)),
            str(r.components),
            str(len(s.faults)),
            f"{100.0 * s.labels[s.split :].mean():.1f} %",
            f"{r.flag_all:.3f}",
            *(f"{r.f1[d]:.3f}" for d in DETECTORS),
        )
    mean_all = float(np.mean([r.flag_all for r in results]))
    means = [f"{np.mean([r.f1[d] for r in results]):.3f}" for d in DETECTORS]
    table.add_row("mean", "", "", "", "", "", f"{mean_all:.3f}", *means, style="bold")
    console.print(table)
    kinds = Table(title="faults detected at each detector's best-F1 threshold")
    kinds.add_column("fault")
    for column in ("count", *DETECTORS):
        kinds.add_column(column, justify="right")
    for kind in FAULT_KINDS:
        rows = [(r, i) for r in results for i, f in enumerate(r.source.faults) if f.kind == kind]
        if not rows:
            continue
        cells = []
        for d in DETECTORS:
            hits = sum(r.found[d][i] for r, i in rows)
            cells.append(f"{hits}/{len(rows)} ({100.0 * hits / len(rows):.0f} %)")
        kinds.add_row(kind, str(len(rows)), *cells)
    normal = sum(int((~r.source.labels[r.source.split :]).sum()) for r in results)
    false = [f"{100.0 * sum(r.false_alarms[d] for r in results) / normal:.1f} %" for d in DETECTORS]
    kinds.add_row("normal rows flagged", f"{normal:,}", *false, style="italic")
    console.print(kinds)
    console.print(
        "d: metrics, k: latent factors, PCs: components kept by pca, labelled: share of the "
        "test half in faults, all: F1 of flagging every test row"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sources", type=int, default=6, help="servers (default: %(default)s)")
    parser.add_argument(
        "--days", type=float, default=14.0, help="days per server (default: %(default)s)"
    )
    parser.add_argument("--seed", type=int, default=1, help="random seed (default: %(default)s)")
    args = parser.parse_args(argv)
    if args.sources < 1 or args.days < MIN_DAYS or args.seed < 0:
        parser.error(f"--sources must be >= 1, --days >= {MIN_DAYS} and --seed >= 0")
    wall = time.perf_counter()
    sources = generate_sources(args.seed, args.sources, args.days)
    results = [evaluate(s) for s in sources]
    console = Console(width=110)
    rows = sum(r.source.rows for r in results)
    console.print(
        f"multivariate: {len(results)} sources, {rows:,} rows, "
        f"{sum(len(r.source.faults) for r in results)} faults, seed {args.seed}"
    )
    report(results, console)
    cpu = sum(r.cpu_s for r in results)
    console.print(
        f"vigil pipeline CPU {cpu:.2f} s = {cpu / rows * 1e6:.1f} us per row (default config)"
    )
    console.print(f"wall time {time.perf_counter() - wall:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
