"""The always-on tier's numbers: per stream, each value's surprise from its three rank
histories (value, shape, spread), a source's part of a chunk at a time (``score_source``);
``combine`` for a source's streams. No events here (``episodes.py``).

With the compiled kernel (``_ranks.c``) a source's part costs two C calls and one model
call whatever its size, so the live daemon's sample of one is cheap too; without it (no C
compiler where vigil was installed) ``_score_reference`` computes the same numbers, bit for
bit (``tests/detect/test_scoring_kernel.py``), with numpy and the Python histories."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal, Protocol

import numpy as np
import numpy.typing as npt

from agent.detect import novelty
from agent.detect.novelty import History, KernelHistory, entry_times
from agent.detect.tflite import WindowScaling
from agent.power.meter import PowerMeter

#: Values are clipped to this magnitude before any arithmetic: squares and sums of a window
#: stay finite, so a reading of 1e300 is the largest anomaly, never an overflow or a NaN.
MAX_VALUE = 1e100
#: The model's surprise counts at most this much above the value's own (about three times as
#: rare): the model reads the newest value against the ones just before it, so any sudden
#: step is a large error to it, also a step into a state the stream is often in (a charger
#: plugged in, a runaway ending); a value far from usual is already surprising on its own.
MODEL_MARGIN = 0.5
#: The surprise that scores 0.5 (a one-in-a-thousand number).
HALF_SCORE_SURPRISE = 3.0
LOG10_2 = math.log10(2.0)

F64 = npt.NDArray[np.float64]
#: No model: the kernel scales no windows (a NaN ``min_std``).
NO_SCALING = WindowScaling(context=1, min_std=math.nan, rel_std=0.0, clip=0.0)


def to_score(surprise: float) -> float:
    return surprise / (surprise + HALF_SCORE_SURPRISE)


def combine(surprises: list[float]) -> float:
    """The best of several streams' surprises (read as p-values ``10**-s``), corrected for
    how many there are (Bonferroni). Fisher's method on the same p-values, tried for streams
    odd together, fired on every stir of correlated streams (CPU, load and temperature move
    together) in the demo day, 43 of 92 starts: the joint sums are ranked instead."""
    k = len(surprises)
    if k == 1:
        return surprises[0]
    return max(0.0, max(surprises) - math.log10(k))


class WindowModel(Protocol):
    """The tiny model as this stage uses it (``agent.detect.tflite.TinyModel``)."""

    @property
    def window(self) -> int: ...

    @property
    def sha256(self) -> str:
        """The model file's: the errors it gives are ranked only among its own."""
        ...

    @property
    def scaling(self) -> WindowScaling:
        """How ``scale`` reads a window (the kernel scales the same way)."""
        ...

    def scale(self, windows: npt.ArrayLike) -> npt.NDArray[np.float32]: ...

    def infer(self, x: npt.ArrayLike) -> npt.NDArray[np.float32]: ...


def log_spreads(windows: F64) -> F64:
    """The log standard deviation of each raw window ``[k, W]``, row by row the same numbers
    for any k; float32 like the model's errors, so both are kept exactly in 4 bytes."""
    spread: F64 = np.log(windows.std(axis=1) + 1e-9 + 1e-6 * np.abs(windows.mean(axis=1)))
    return spread.astype(np.float32).astype(np.float64)


def model_errors(
    model: WindowModel, scaled: npt.NDArray[np.float32], meter: PowerMeter
) -> npt.NDArray[np.float64]:
    """The model's score (its error) of each scaled window, in one call (lapped)."""
    meter.lap("anomaly", calls=0)  # the stage's lap counts its samples
    errors = model.infer(scaled)
    meter.lap("tiny_model", calls=len(scaled))
    return np.asarray(errors, dtype=np.float64)


#: ``StreamState.meta``'s fields (the kernel's ``S_*``): values seen, values in the window,
#: the histories' last entry time, the first and the last time the stream carried a value.
_N, _HAVE, _ENTRY_T, _FIRST_T, _LAST_T = range(5)


def _time(x: float) -> float | None:
    return None if math.isnan(x) else x


class StreamState:
    """One stream: its last values (the model's window) and three rank histories. The window
    and the counters live in two small arrays the kernel updates in place."""

    def __init__(
        self,
        width: int,
        values: History,
        errors: History,
        spreads: History,
        window: npt.ArrayLike = (),
        n: int = 0,
        entry_t: float | None = None,
        first_t: float | None = None,
        last_t: float | None = None,
    ) -> None:
        last = np.asarray(window, dtype=np.float64)[-width:]
        self.buffer = np.zeros(width)  # the window, oldest first, its values at the end
        self.buffer[width - len(last) :] = last
        nan = math.nan
        self.meta = np.array(
            [
                n,
                len(last),
                nan if entry_t is None else entry_t,
                nan if first_t is None else first_t,
                nan if last_t is None else last_t,
            ],
            dtype=np.float64,
        )
        self.values, self.errors, self.spreads = values, errors, spreads
        #: The stream's residuals given its source's other streams (``comove.py``) and
        #: given the hour (``context.py``), once there are any.
        self.residuals: History | None = None
        self.context: History | None = None

    def own_history(self, kind: Literal["residuals", "context"], size: int) -> History:
        """The history of ``kind``, made (like the values history) at its first use."""
        history: History | None = getattr(self, kind)
        if history is None:
            history = type(self.values)(size)  # type: ignore[call-arg]
            setattr(self, kind, history)
        return history

    @property
    def window(self) -> F64:
        have = int(self.meta[_HAVE])
        return self.buffer[len(self.buffer) - have :].copy()

    @property
    def n(self) -> int:
        return int(self.meta[_N])

    @property
    def entry_t(self) -> float | None:
        return _time(float(self.meta[_ENTRY_T]))

    @property
    def first_t(self) -> float | None:
        return _time(float(self.meta[_FIRST_T]))

    @property
    def last_t(self) -> float | None:
        return _time(float(self.meta[_LAST_T]))


@dataclass
class JointState:
    """A source's sum of stream surprises, ranked against its own past sums: streams that
    always move together (CPU, load, temperature) make large sums that are usual; several
    streams odd at once in a way never seen make a sum past the edge."""

    sums: History
    entry_t: float | None = None
    last_t: float | None = None
    #: A source of many streams: its surprises, to rank each new one among (``stage.py``).
    nodes: History | None = None
    node_entry_t: float | None = None


@dataclass
class SourceScores:
    """A source's part of a chunk, cell by cell ``[sample, stream]`` (zero where a sample
    lacks the stream)."""

    surprise: F64  # the largest of value, spread and shape (the shape at most MODEL_MARGIN above)
    shape: F64  # the model's alone
    edges: F64  # [m, k, 2]: the values history's (smallest, largest) before the value
    full: npt.NDArray[np.bool_]  # the window was full: the model and the spread had a say
    learning: npt.NDArray[np.bool_]  # the stream is still in its warm-up: no verdict
    due: npt.NDArray[np.bool_]  # the stream's histories took the value as an entry


def score_source(
    states: list[StreamState],
    matrix: F64,
    times: F64,
    model: WindowModel | None,
    meter: PowerMeter,
    every_s: float,
    warmup_s: float,
) -> SourceScores:
    """Rank a source's values ``matrix[sample, stream]`` (NaN where absent, clipped to
    ``MAX_VALUE``), their windows' spreads and the model's errors of those windows, each
    against its stream's history before it joins it, in time order per stream."""
    m, k = matrix.shape
    out = SourceScores(
        np.zeros((m, k)),
        np.zeros((m, k)),
        np.full((m, k, 2), np.nan),
        np.zeros((m, k), dtype=np.bool_),
        np.zeros((m, k), dtype=np.bool_),
        np.zeros((m, k), dtype=np.bool_),
    )
    kernel = novelty.kernel()
    if kernel is None or not all(type(s.values) is KernelHistory for s in states):
        _score_reference(states, matrix, times, model, meter, every_s, warmup_s, out)
        return out
    width = len(states[0].buffer)
    scaling = model.scaling if model is not None else NO_SCALING
    scaled = np.empty((m * k if model is not None else 0, width), dtype=np.float32)
    n_full = kernel.columns(
        [(s.buffer, s.meta, s.values._state, s.spreads._state) for s in states],  # type: ignore[attr-defined]
        np.ascontiguousarray(matrix),
        np.ascontiguousarray(times, dtype=np.float64),
        every_s,
        warmup_s,
        scaling.context,
        scaling.min_std,
        scaling.rel_std,
        scaling.clip,
        out.surprise,
        out.edges,
        out.due,
        out.full,
        out.learning,
        scaled,
    )
    errors, error_states = np.zeros(0), None
    if model is not None and n_full:
        errors = model_errors(model, scaled[:n_full], meter)
        error_states = [s.errors._state for s in states]  # type: ignore[attr-defined]
    kernel.shapes(
        error_states, errors, out.due, out.full, out.learning, MODEL_MARGIN, out.surprise, out.shape
    )
    return out


def _score_reference(
    states: list[StreamState],
    matrix: F64,
    times: F64,
    model: WindowModel | None,
    meter: PowerMeter,
    every_s: float,
    warmup_s: float,
    out: SourceScores,
) -> None:
    """``score_source`` with numpy and any ``History``: the kernel's arithmetic step by step
    (numpy's sums are the kernel's pairwise sums)."""
    windows, columns = [], []
    for j, state in enumerate(states):
        rows = np.flatnonzero(~np.isnan(matrix[:, j]))
        if not len(rows):
            continue
        values, t = matrix[rows, j], times[rows]
        width, meta = len(state.buffer), state.meta
        have = int(meta[_HAVE])
        joined = np.concatenate([state.buffer[width - have :], values])
        ends = np.arange(have, len(joined))  # where each new value sits in ``joined``
        full = ends >= width - 1
        starts = ends[full] - (width - 1)
        stream_windows = joined[starts[:, None] + np.arange(width)]
        state.buffer[:] = np.concatenate([np.zeros(width), joined])[-width:]
        meta[_N] += len(values)
        meta[_HAVE] = min(len(joined), width)
        d, entry_t = entry_times(t, state.entry_t, every_s)
        meta[_ENTRY_T] = math.nan if entry_t is None else entry_t
        if math.isnan(meta[_FIRST_T]):
            meta[_FIRST_T] = t[0]
        meta[_LAST_T] = t[-1]
        surprise, edges = state.values.feed(values, d, edges=True)
        assert edges is not None
        if len(stream_windows):
            spread, _ = state.spreads.feed(log_spreads(stream_windows), d[full])
            surprise[full] = np.maximum(surprise[full], spread)
        out.surprise[rows, j], out.edges[rows, j] = surprise, edges
        out.full[rows, j], out.due[rows, j] = full, d
        out.learning[rows, j] = t - meta[_FIRST_T] < warmup_s
        windows.append(stream_windows)
        columns.append((j, rows[full], d[full]))
    if model is not None and windows:
        all_windows = np.concatenate(windows)
        if len(all_windows):
            errors = model_errors(model, model.scale(all_windows), meter)
            at = 0
            for j, rows, d in columns:
                shape, _ = states[j].errors.feed(errors[at : at + len(rows)], d, upper_only=True)
                out.shape[rows, j] = shape
                at += len(rows)
    capped = np.minimum(out.shape, out.surprise + MODEL_MARGIN)
    out.surprise[:] = np.maximum(out.surprise, capped) + 0.0
    out.shape += 0.0
    out.surprise[out.learning] = 0.0
    out.shape[out.learning] = 0.0
