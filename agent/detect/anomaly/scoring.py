"""The always-on tier's numbers: per stream, each value's surprise from its three rank
histories (value, shape, spread), a chunk of values at a time; per source, the combined
surprise (``combine`` and the joint sums). No events here (``episodes.py``)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
import numpy.typing as npt

from agent.detect.novelty import History, entry_times
from agent.power.meter import NullMeter, PowerMeter

#: Values are clipped to this magnitude before any arithmetic: squares and sums of a window
#: stay finite, so a reading of 1e300 is the largest anomaly, never an overflow or a NaN.
MAX_VALUE = 1e100
#: The surprise that scores 0.5 (a one-in-a-thousand number).
HALF_SCORE_SURPRISE = 3.0
LOG10_2 = math.log10(2.0)

F64 = npt.NDArray[np.float64]


def clip_value(value: float) -> float:
    return min(max(value, -MAX_VALUE), MAX_VALUE)


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
    surprise: F64 = field(default_factory=lambda: np.zeros(0))
    shape: F64 = field(default_factory=lambda: np.zeros(0))  # the model's alone
    edges: F64 = field(default_factory=lambda: np.zeros((0, 2)))  # before each value


def slide(state: StreamState, values: F64, times: F64, width: int) -> StreamChunk:
    """Append a chunk of values to the stream's window: the chunk's full windows."""
    joined = np.concatenate([state.window, values])
    before = len(state.window)
    ends = np.arange(before, len(joined))  # where each new value sits in ``joined``
    full = ends >= width - 1
    if full.any():
        views = np.lib.stride_tricks.sliding_window_view(joined, width)
        windows = np.ascontiguousarray(views[ends[full] - (width - 1)])
    else:
        windows = np.zeros((0, width))
    state.window = joined[-width:].copy()
    state.n += len(values)
    return StreamChunk(values, times, windows, full)


def adds(history: History, due: npt.NDArray[np.bool_], size: int) -> npt.NDArray[np.bool_]:
    """Which numbers become entries: those due, and every one while the history fills."""
    add = due.copy()
    add[: max(0, size - len(history))] = True
    return add


def score_stream(
    state: StreamState,
    chunk: StreamChunk,
    errors: npt.NDArray[np.float32] | None,
    every_s: float,
    size: int,
    warmup_s: float,
) -> None:
    """Rank the chunk's values, spreads and model errors against the stream's histories (each
    number before it joins them), fill ``chunk.surprise``/``shape``/``edges``."""
    due, entry_t = entry_times(chunk.times, state.entry_t, every_s)
    state.entry_t = entry_t
    surprise, edges = state.values.feed(chunk.values, adds(state.values, due, size), edges=True)
    assert edges is not None
    full = chunk.full
    shape = np.zeros(len(chunk.values))
    if full.any():
        sub_due = due[full]
        spreads = log_spreads(chunk.windows)
        spread_s, _ = state.spreads.feed(spreads, adds(state.spreads, sub_due, size))
        surprise[full] = np.maximum(surprise[full], spread_s)
        if errors is not None:
            err = errors.astype(np.float64)
            shape_s, _ = state.errors.feed(err, adds(state.errors, sub_due, size), upper_only=True)
            shape[full] = shape_s
    surprise = np.maximum(surprise, shape)
    if state.first_t is None:
        state.first_t = float(chunk.times[0])
    learning = chunk.times - state.first_t < warmup_s  # still learning what is usual
    surprise[learning] = 0.0
    shape[learning] = 0.0
    state.last_t = float(chunk.times[-1])
    chunk.surprise, chunk.shape, chunk.edges = surprise, shape, edges
