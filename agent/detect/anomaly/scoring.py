"""The always-on tier's numbers: per stream, each value's surprise from its three rank
histories (value, shape, spread), a chunk of values at a time; per source, the combined
surprise (``combine`` and the joint sums). No events here (``episodes.py``)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
import numpy.typing as npt

from agent.detect.novelty import History, entry_times, feed_histories
from agent.power.meter import NullMeter, PowerMeter

#: Values are clipped to this magnitude before any arithmetic: squares and sums of a window
#: stay finite, so a reading of 1e300 is the largest anomaly, never an overflow or a NaN.
MAX_VALUE = 1e100
#: The surprise that scores 0.5 (a one-in-a-thousand number).
HALF_SCORE_SURPRISE = 3.0
LOG10_2 = math.log10(2.0)

F64 = npt.NDArray[np.float64]


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

    def scale(self, windows: npt.ArrayLike) -> npt.NDArray[np.float32]: ...

    def infer(self, x: npt.ArrayLike) -> npt.NDArray[np.float32]: ...


def log_spreads(windows: F64) -> F64:
    """The log standard deviation of each raw window ``[k, W]``, row by row the same numbers
    for any k; float32 like the model's errors, so both are kept exactly in 4 bytes."""
    spread: F64 = np.log(windows.std(axis=1) + 1e-9 + 1e-6 * np.abs(windows.mean(axis=1)))
    return spread.astype(np.float32).astype(np.float64)


def model_errors(
    model: WindowModel, windows: F64, meter: PowerMeter | None = None
) -> npt.NDArray[np.float32]:
    """The model's reconstruction error of each window, in one call (lapped on ``meter``)."""
    meter = meter or NullMeter()
    meter.lap("anomaly", calls=0)  # the stage's lap counts its samples
    errors = model.infer(model.scale(windows))
    meter.lap("tiny_model", calls=len(windows))
    return errors


@dataclass
class StreamState:
    """One stream: its last values (the model's window) and three rank histories."""

    window: F64
    values: History
    errors: History
    spreads: History
    n: int = 0  # values seen
    entry_t: float | None = None  # when the histories last took an entry
    first_t: float | None = None
    last_t: float | None = None  # when it last carried a value


@dataclass
class JointState:
    """A source's sum of stream surprises, ranked against its own past sums: streams that
    always move together (CPU, load, temperature) make large sums that are usual; several
    streams odd at once in a way never seen make a sum past the edge."""

    sums: History
    entry_t: float | None = None
    last_t: float | None = None


@dataclass
class StreamChunk:
    """One stream's values in a chunk and what the histories made of them."""

    values: F64  # clipped
    times: F64
    windows: F64  # [k, W]: the windows that are full, for the values ``full`` marks
    full: npt.NDArray[np.bool_]
    # Set by ``score_part``:
    surprise: F64 = field(init=False)
    shape: F64 = field(init=False)  # the model's alone
    edges: F64 = field(init=False)  # the values history's (smallest, largest) before each
    learning: npt.NDArray[np.bool_] = field(init=False)  # still in its warm-up: no verdict


def slide(state: StreamState, values: F64, times: F64, width: int) -> StreamChunk:
    """Append a chunk of values to the stream's window: the chunk's full windows."""
    before = len(state.window)
    joined = np.concatenate([state.window, values]) if before else values
    state.window = joined[-width:].copy()
    state.n += len(values)
    if len(values) == 1:  # the live daemon's case: one window or none
        full = np.array([len(joined) >= width])
        windows = state.window[None, :] if full[0] else np.zeros((0, width))
        return StreamChunk(values, times, windows, full)
    ends = np.arange(before, len(joined))  # where each new value sits in ``joined``
    full = ends >= width - 1
    starts = ends[full] - (width - 1)
    windows = joined[starts[:, None] + np.arange(width)] if len(starts) else np.zeros((0, width))
    return StreamChunk(values, times, windows, full)


def score_part(
    states: list[StreamState],
    chunks: list[StreamChunk],
    model: WindowModel | None,
    meter: PowerMeter,
    every_s: float,
    warmup_s: float,
) -> None:
    """Rank every stream's values, window spreads and model errors of a part of a chunk
    against its histories (each number before it joins them) and fill each chunk's
    ``surprise``, ``shape`` and ``edges``. All streams at once: one model call, one call of
    the rank kernel per kind of history, the arithmetic on the streams' values end to end."""
    lengths = np.array([len(c.values) for c in chunks], dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    values = np.concatenate([c.values for c in chunks])
    times = np.concatenate([c.times for c in chunks])
    full = np.concatenate([c.full for c in chunks])
    windows = np.concatenate([c.windows for c in chunks])
    dues = []
    for state, c in zip(states, chunks, strict=True):
        due, state.entry_t = entry_times(c.times, state.entry_t, every_s)
        dues.append(due)
    due = np.concatenate(dues)
    surprise, edges = feed_histories([s.values for s in states], values, due, offsets, edges=True)
    assert edges is not None
    shape = np.zeros(len(values))
    if len(windows):
        sub_due = due[full]  # the full windows, stream after stream as ``windows``
        sub_offsets = np.concatenate([[0], np.cumsum(full)])[offsets]
        spreads = log_spreads(windows)
        spread_s, _ = feed_histories([s.spreads for s in states], spreads, sub_due, sub_offsets)
        surprise[full] = np.maximum(surprise[full], spread_s)
        if model is not None:
            errors = model_errors(model, windows, meter).astype(np.float64)
            shape_s, _ = feed_histories(
                [s.errors for s in states], errors, sub_due, sub_offsets, upper_only=True
            )
            shape[full] = shape_s
    surprise = np.maximum(surprise, shape)
    for state, c in zip(states, chunks, strict=True):
        if state.first_t is None:
            state.first_t = float(c.times[0])
        state.last_t = float(c.times[-1])
    first = np.repeat([s.first_t for s in states], lengths)
    learning = times - first < warmup_s  # still learning what is usual
    surprise[learning] = 0.0
    shape[learning] = 0.0
    for k, c in enumerate(chunks):
        a, b = offsets[k], offsets[k + 1]
        c.surprise, c.shape, c.edges = surprise[a:b], shape[a:b], edges[a:b]
        c.learning = learning[a:b]
