"""Co-movement: each of a source's streams judged by what the source's other streams say it
should be now.

CPU, load, temperature and request rates rise together in a burst; one metric that stops
following the others (a decoupled sensor, a leak, a stuck process) moves against them. For
the sources in ``CO_MOVING`` (rows of at least ``MIN_STREAMS`` streams), vigil keeps the
streams' means and spreads and the correlations of their standardised values (byte rates on
a log scale), with a memory of ``MEMORY_S`` of sample time (exponential forgetting), and from
them each stream's *residual*: how far its standardised value is from the best linear
prediction from all the others, in units of that prediction's own spread. With the
precision matrix ``P`` (the inverse of the correlations, shrunk towards the identity by
``SHRINK`` so that streams that move as one stay invertible), the residual of stream j is
``(P z)_j / sqrt(P_jj)``: one product for every stream at once.

The model changes only at fixed points of sample time (a *fold* every ``FOLD_EVERY_S``, of the
rows that came since the last one), never between: every row before a fold is scored with the
same model, so the scores are the same whatever the chunks the rows came in (the live
daemon's chunks of one, replay's thousands). A stream has a residual once it took part in
``READY_FOLDS`` folds (a day): before, it is not judged and does not count in the others'.
"""

from __future__ import annotations

import base64
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from agent.detect.novelty import next_entry

F64 = npt.NDArray[np.float64]
Mask = npt.NDArray[np.bool_]

#: Sample time between two changes of the model (the rows between are folded in together).
FOLD_EVERY_S = 600.0
#: How long the means, spreads and correlations remember (exponential forgetting).
MEMORY_S = 3 * 86400.0
#: Shrinkage of the correlations towards the identity (streams that move as one).
SHRINK = 0.02
#: Fewer streams than this: no co-movement to speak of (a pair is one correlation).
MIN_STREAMS = 3
#: At most this many streams per source are modelled (the first seen); the others are not.
MAX_STREAMS = 64
#: Folds a stream takes part in before it is judged and counts in the others' residuals.
READY_FOLDS = 144
#: Folds a stream's mean and spread take before its values enter the correlations.
SETTLE_FOLDS = 12
#: Standardised values are clipped here: one absurd reading cannot swamp the correlations.
Z_CLIP = 50.0
#: A stream's residuals are ranked among its own. Their histories take an entry on the
#: values' grid over the first ``history_s`` after the model judges (4 days: nights and days,
#: working days and a weekend's start, not the first hours alone, which 1,000 residuals of a
#: 10 s stream would be), then one every this much sample time (1,000 entries span 83 days:
#: a fault of hours does not make itself usual; the model itself follows slower changes
#: within days).
RESIDUAL_EVERY_S = 7200.0
#: The sources whose streams measure one machine together: not positions, nor the ranked
#: top processes of ``apps`` (whose identities change), nor ``battery`` (its charging flips
#: every relation: three more episodes in a laptop's routine week).
CO_MOVING = ("system",)
#: Streams named so are byte rates, compared on a log scale (``log_rates``).
RATE_SUFFIX = "_Bps"
#: Rows scored at once (the products are [rows, d, d]).
_BLOCK = 256

_FORGET = 1.0 - math.exp(-FOLD_EVERY_S / MEMORY_S)


@dataclass
class CoMovement:
    """One source's model: per stream (in ``names`` order) the mean and variance of its raw
    values and the folds it took part in; the covariance of the standardised values; the time
    of the last fold on its grid (the next is due ``FOLD_EVERY_S`` later), and the new streams
    that join the model then. The rows since the last fold wait in ``_rows``."""

    names: list[str] = field(default_factory=list)
    mean: F64 = field(default_factory=lambda: np.zeros(0))
    var: F64 = field(default_factory=lambda: np.zeros(0))
    folds: F64 = field(default_factory=lambda: np.zeros(0))
    cov: F64 = field(default_factory=lambda: np.zeros((0, 0)))
    grid_t: float | None = None
    waiting: set[str] = field(default_factory=set)
    last_t: float | None = None  # the last row it took
    #: The streams' residual histories take an entry on this grid (``RESIDUAL_EVERY_S``).
    entry_t: float | None = None
    #: Each stream's smallest change between two of its values at the folds so far (NaN:
    #: none yet): its spread is never less. A reading on a 0.1 % grid that barely moves
    #: (swap at 1.9 % for hours) has a spread of a fraction of its step, and each of its
    #: one-step moves, or the others moving while it stays, would be many spreads.
    step: F64 = field(default_factory=lambda: np.zeros(0))
    #: Each stream's last value at the last fold (NaN: none), for the step across folds.
    last: F64 = field(default_factory=lambda: np.zeros(0))
    #: Until this sample time the residual histories take an entry on the values' grid
    #: (the stage's), then on ``RESIDUAL_EVERY_S`` (None: no residual judged yet).
    fill_until_t: float | None = None

    def __post_init__(self) -> None:
        self._rows: list[F64] = []  # NaN where a row lacks a stream
        self._refresh()

    def _refresh(self) -> None:
        """What changes only at folds: the precision, each stream's scale and readiness, and
        where a source's streams sit in the model."""
        self.precision = _precision(self.cov)
        self._scale = 1.0 / np.sqrt(np.diag(self.precision))
        self._spread = np.fmax(_spread(self.mean, self.var), self.step)
        self._ready = (self.folds >= READY_FOLDS) & (self.var > 0.0)
        self._ready_count = int(np.count_nonzero(self._ready))
        self._rates = rate_columns(self.names)
        self._layouts: dict[tuple[str, ...], _Layout] = {}

    def _layout(self, names: Sequence[str]) -> _Layout:
        key = tuple(names)
        layout = self._layouts.get(key)
        if layout is None:
            index = {n: j for j, n in enumerate(self.names)}
            columns = [index.get(n, -1) for n in names]
            mine = [j for j, c in enumerate(columns) if c >= 0]
            theirs = [columns[j] for j in mine]
            unknown = [j for j, c in enumerate(columns) if c < 0]
            same = theirs == list(range(len(self.names))) and not unknown
            layout = _Layout(mine, theirs, unknown, same)
            self._layouts[key] = layout
        return layout

    # -- scoring --------------------------------------------------------------------------------
    def residuals(self, names: Sequence[str], x: F64, t: F64) -> F64:
        """Each cell's absolute residual for rows ``x`` ``[m, k]`` of the streams ``names``
        (NaN where absent) at sample times ``t`` (non-decreasing): NaN where the stream is
        absent, not ready or not modelled, or the row has fewer than ``MIN_STREAMS`` ready
        streams. Rows of one stream take no part at all. The model folds at its due points;
        a stream it does not know yet joins at the next fold after it first carried a
        value (so the model's size, too, changes only at folds)."""
        if len(x) == 1:
            one = self.residuals_one(names, x[0], float(t[0]))
            return np.full(x.shape, np.nan) if one is None else one[None, :]
        x = log_rates(x, rate_columns(names))
        out = np.full(x.shape, np.nan)
        taking = np.flatnonzero((~np.isnan(x)).sum(axis=1) >= 2)  # a lone value says nothing
        if len(taking) < len(x):
            out[taking] = self.residuals(names, x[taking], t[taking])
            return out
        start = 0
        while start < len(x):
            if self.grid_t is None:
                self.grid_t = float(t[start])  # the grid starts at the first row
            stop = int(np.searchsorted(t, self.grid_t + FOLD_EVERY_S, side="left"))
            if stop == start:  # this row is past the fold: fold what came before it
                self._fold(float(t[start]))
                continue
            layout = self._layout(names)
            rows = np.full((stop - start, len(self.names)), np.nan)
            rows[:, layout.theirs] = x[start:stop, layout.mine]
            out[start:stop, layout.mine] = self._score(rows)[:, layout.theirs]
            self.last_t = float(t[stop - 1])
            self._rows.append(rows)
            if layout.unknown:
                part = x[start:stop, layout.unknown]
                seen = np.flatnonzero((~np.isnan(part)).any(axis=0)).tolist()
                self.waiting.update(names[layout.unknown[j]] for j in seen)
            start = stop
        return out

    def residuals_one(self, names: Sequence[str], row: F64, t: float) -> F64 | None:
        """``residuals`` of one row (the live daemon's), the same steps without the chunk's
        bookkeeping; None where no stream of the row is judged (a young model's rows cost
        little more than being kept for the next fold)."""
        values: list[float] = row.tolist()
        if sum(v == v for v in values) < 2:  # a lone value says nothing (v == v: not NaN)
            return None
        if self.grid_t is None:
            self.grid_t = t
        if t >= self.grid_t + FOLD_EVERY_S:
            self._fold(t)
        layout = self._layout(names)
        if layout.same:
            model_row = row.copy()
        else:
            model_row = np.full(len(self.names), np.nan)
            model_row[layout.theirs] = row[layout.mine]
        rates = self._rates
        if rates is not None:  # log_rates in place: the row is already a copy
            np.maximum(model_row, 0.0, out=model_row, where=rates)
            np.log1p(model_row, out=model_row, where=rates)
        self.last_t = t
        self._rows.append(model_row[None, :])
        for j in layout.unknown:
            if values[j] == values[j]:
                self.waiting.add(names[j])
        if self._ready_count < MIN_STREAMS:
            return None
        usable = self._ready & ~np.isnan(model_row)
        judged = np.count_nonzero(usable)
        if judged < MIN_STREAMS:
            return None
        # _score's arithmetic on one row (the product summed along the same axis); np.clip's
        # bits with np.maximum and np.minimum, which cost half as much on a row
        z = model_row - self.mean
        np.divide(z, self._spread, out=z)
        np.maximum(z, -Z_CLIP, out=z)
        np.minimum(z, Z_CLIP, out=z)
        everyone = judged == len(usable)
        if not everyone:
            z[~usable] = 0.0
        scored: F64 = np.add.reduce(z[None, :] * self.precision, axis=1)  # (.sum's own bits)
        np.multiply(scored, self._scale, out=scored)
        np.abs(scored, out=scored)
        if not everyone:
            scored[~usable] = np.nan
        if layout.same:
            return scored
        out = np.full(len(values), np.nan)
        out[layout.mine] = scored[layout.theirs]
        return out

    def _score(self, x: F64) -> F64:
        usable = ~np.isnan(x) & self._ready
        usable[usable.sum(axis=1) < MIN_STREAMS] = False  # too few to judge one by the others
        z = np.clip((x - self.mean) / self._spread, -Z_CLIP, Z_CLIP)
        z[~usable] = 0.0
        scale = self._scale
        out = np.empty(x.shape)
        for a in range(0, len(x), _BLOCK):  # the sums in numpy's fixed order, any row count
            block = z[a : a + _BLOCK]
            out[a : a + _BLOCK] = (block[:, None, :] * self.precision[None, :, :]).sum(axis=2)
        out = np.abs(out * scale)
        out[~usable] = np.nan
        return out

    # -- learning -------------------------------------------------------------------------------
    def _fold(self, t: float) -> None:
        """Fold the rows since the last fold into the model, and move the grid on to ``t``
        (``next_entry``: restarted after a gap)."""
        rows = np.concatenate(self._rows) if self._rows else np.zeros((0, len(self.names)))
        self._rows = []
        _, self.grid_t = next_entry(self.grid_t, t, FOLD_EVERY_S)
        if not len(rows):
            self._join()
            return
        seen = ~np.isnan(rows)
        present = seen.any(axis=0)
        carried = fill_down(np.vstack([self.last[None, :], rows]))  # from the last fold's on
        self.step = np.fmin(self.step, _smallest_steps(carried))
        self.last = carried[-1]
        counts = np.maximum(seen.sum(axis=0), 1)
        filled = np.where(seen, rows, 0.0)
        block_mean = filled.sum(axis=0) / counts
        block_var = np.where(seen, (rows - block_mean) ** 2, 0.0).sum(axis=0) / counts
        new = present & (self.folds == 0)
        old = present & ~new
        # A plain average of the folds so far until it holds MEMORY_S, then forgetting: a
        # young model is not biased towards where it started.
        rate = np.maximum(_FORGET, 1.0 / (self.folds + 1.0))
        settled = old & (self.folds >= SETTLE_FOLDS)  # its spread is known well enough
        z = np.clip((rows - self.mean) / self._spread, -Z_CLIP, Z_CLIP)
        z[~(seen & settled)] = 0.0
        products = (z[:, :, None] * z[:, None, :]).sum(axis=0) / len(rows)
        most = float(self.folds.max()) if len(self.folds) else 0.0
        together = most - SETTLE_FOLDS  # folds the correlations have seen
        if together >= 0.0:
            cov_rate = max(_FORGET, 1.0 / (together + 1.0))
            self.cov = (1.0 - cov_rate) * self.cov + cov_rate * products
        moved = block_var + (block_mean - self.mean) ** 2
        self.var = np.where(old, (1.0 - rate) * self.var + rate * moved, self.var)
        self.mean = np.where(old, (1.0 - rate) * self.mean + rate * block_mean, self.mean)
        first_var = block_var + (1e-3 * block_mean) ** 2 + 1e-12  # one block's spread, floored
        self.mean = np.where(new, block_mean, self.mean)
        self.var = np.where(new, first_var, self.var)
        self.folds = self.folds + present
        self._join()

    def _join(self) -> None:
        """The streams waiting since the last fold join the model (while there is room)."""
        for name in sorted(self.waiting)[: MAX_STREAMS - len(self.names)]:
            d = len(self.names)
            self.names.append(name)
            self.mean, self.var = np.append(self.mean, 0.0), np.append(self.var, 0.0)
            self.folds = np.append(self.folds, 0.0)
            self.step = np.append(self.step, np.nan)
            self.last = np.append(self.last, np.nan)
            cov = np.eye(d + 1)
            cov[:d, :d] = self.cov
            self.cov = cov
        self.waiting.clear()
        self._rows = []
        self._refresh()

    # -- state ----------------------------------------------------------------------------------
    def encode(self) -> dict[str, Any]:
        """Plain data (arrays as base64 float64 bytes: exact, NaN included)."""
        return {
            "names": list(self.names),
            "mean": to_b64(self.mean),
            "var": to_b64(self.var),
            "folds": to_b64(self.folds),
            "cov": to_b64(self.cov),
            "pending": to_b64(np.concatenate(self._rows) if self._rows else np.zeros((0, 0))),
            "grid_t": self.grid_t,
            "waiting": sorted(self.waiting),
            "last_t": self.last_t,
            "entry_t": self.entry_t,
            "step": to_b64(self.step),
            "last": to_b64(self.last),
            "fill_until_t": self.fill_until_t,
        }

    @classmethod
    def decode(cls, saved: Mapping[str, Any]) -> CoMovement:
        """``encode``'s data back; ``ValueError``/``KeyError``/``TypeError`` if damaged."""
        names = [str(n) for n in saved["names"]]
        d = len(names)
        if d > MAX_STREAMS or len(set(names)) != d:
            raise ValueError("co-movement streams: too many or repeated")
        model = cls(
            names,
            from_b64(saved["mean"], (d,)),
            from_b64(saved["var"], (d,)),
            from_b64(saved["folds"], (d,)),
            from_b64(saved["cov"], (d, d)),
            None if saved["grid_t"] is None else float(saved["grid_t"]),
            {str(n) for n in saved["waiting"]},
            None if saved["last_t"] is None else float(saved["last_t"]),
            None if saved["entry_t"] is None else float(saved["entry_t"]),
            _saved_or_nan(saved, "step", d),
            _saved_or_nan(saved, "last", d),
            _fill_until(saved),
        )
        pending = from_b64(saved["pending"], (-1, d), nan_ok=True)
        if len(pending):
            model._rows = [pending]
        return model


def _fill_until(saved: Mapping[str, Any]) -> float | None:
    """The saved end of the residuals' fill; a state saved before it had one filled its
    histories with every residual already (0.0: over)."""
    if "fill_until_t" not in saved:
        return None if saved["entry_t"] is None else 0.0
    value = saved["fill_until_t"]
    return None if value is None else float(value)


def to_b64(values: npt.NDArray[Any]) -> str:
    """An array as base64 of little-endian float64 (exact, NaN included)."""
    return base64.b64encode(np.ascontiguousarray(values, dtype="<f8").tobytes()).decode()


def from_b64(text: str, shape: tuple[int, ...], nan_ok: bool = False) -> F64:
    """``to_b64``'s array back in ``shape``; ``ValueError`` if it does not fit or is not
    finite (NaN allowed with ``nan_ok``)."""
    values = np.frombuffer(base64.b64decode(text), dtype="<f8").astype(np.float64)
    if shape[0] == -1 and shape[1] == 0:
        return np.zeros((0, 0)) if not len(values) else values.reshape(shape)
    values = values.reshape(shape)
    if np.isinf(values).any() or (not nan_ok and np.isnan(values).any()):
        raise ValueError("saved state is not finite")
    return values


@dataclass(frozen=True)
class _Layout:
    """Where a source's part's streams sit in the model: part columns ``mine`` are model
    columns ``theirs``; ``unknown`` are not in the model (yet); ``same`` when the part's
    streams are the model's, in its order (most rows)."""

    mine: list[int]
    theirs: list[int]
    unknown: list[int]
    same: bool  # the part's streams are the model's, in its order


def rate_columns(names: Sequence[str]) -> Mask | None:
    """Where ``names`` has byte rates (vigil's ``*_Bps`` fields); None where it has none."""
    rates = np.array([name.endswith(RATE_SUFFIX) for name in names], dtype=np.bool_)
    return rates if rates.any() else None


def log_rates(x: F64, rates: Mask | None) -> F64:
    """``x`` with the byte-rate columns ``rates`` (``rate_columns``) on a log scale: their
    bursts span orders of magnitude, and on a linear scale one download makes every other
    stream look decoupled. (A live row by masked ufuncs, half the cost of a gather and a
    scatter of its columns; a chunk by the gather and scatter, a fifth less than masked
    ufuncs over every column: the same bits either way.)"""
    if rates is None:
        return x
    if len(x) == 1:
        out = np.maximum(x, 0.0, out=x.copy(), where=rates)
        np.log1p(out, out=out, where=rates)
        return out
    columns = np.flatnonzero(rates)
    out = x.copy()
    out[:, columns] = np.log1p(np.maximum(x[:, columns], 0.0))
    return out


def _saved_or_nan(saved: Mapping[str, Any], key: str, d: int) -> F64:
    """A saved per-stream array, or NaN for each stream in a state saved before it."""
    return from_b64(saved[key], (d,), nan_ok=True) if key in saved else np.full(d, np.nan)


def fill_down(x: F64) -> F64:
    """Each cell's column's last value at or before its row (NaN before the column's first)."""
    m, k = x.shape
    at = np.where(np.isnan(x), 0, np.arange(m)[:, None])  # rows that hold a value
    np.maximum.accumulate(at, axis=0, out=at)  # the latest such row, down each column
    out: F64 = x[at, np.arange(k)]
    return out


def _smallest_steps(filled: F64) -> F64:
    """Each column's smallest nonzero change between two of its values, in rows filled down
    (``fill_down``: a row without the stream repeats its last value, no step); NaN where it
    has none."""
    steps = np.abs(np.diff(filled, axis=0))
    steps[~(steps > 0.0)] = np.inf  # no change, or no value yet (NaN)
    smallest = steps.min(axis=0, initial=np.inf)
    out: F64 = np.where(np.isinf(smallest), np.nan, smallest)
    return out


def _spread(mean: F64, var: F64) -> F64:
    return np.sqrt(var) + 1e-9 + 1e-6 * np.abs(mean)


def _precision(cov: F64) -> F64:
    """The inverse of the correlations, shrunk towards the identity."""
    d = len(cov)
    if not d:
        return np.zeros((0, 0))
    sd = np.sqrt(np.maximum(np.diag(cov), 1e-6))
    corr = cov / np.outer(sd, sd)
    shrunk: F64 = (1.0 - SHRINK) * corr + SHRINK * np.eye(d)
    return np.asarray(np.linalg.inv(shrunk))
