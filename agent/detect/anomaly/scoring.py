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
from typing import Any, Literal, Protocol

import numpy as np
import numpy.typing as npt

from agent.detect import novelty
from agent.detect.novelty import History, KernelHistory, entry_times, next_entry
from agent.detect.tflite import WindowScaling
from agent.power.meter import PowerMeter

#: Values are clipped to this magnitude before any arithmetic: squares and sums of a window
#: stay finite, so a reading of 1e300 is the largest anomaly, never an overflow or a NaN.
MAX_VALUE = 1e100
#: The model's surprise counts at most this much above the value's own (about thirty times
#: as rare), and at most ``YOUNG_MODEL_MARGIN`` above it (about three times) while the stream
#: is in its first ``SETTLED_S``: the model reads the newest value against the ones just
#: before it, so any sudden step is a large error to it, also a step into a state the stream
#: is often in (a charger plugged in, a runaway ending), and a stream hours old has not shown
#: its day's steps yet (its first evening's charge). Chosen on the development corpus with
#: the shape memory on (0.5 62.55 / 62.17 on two draws, 1.0 63.46 / 62.67, 1.5 64.42 /
#: 62.67, unbounded 64.74 / 62.74 but a charger's plug-in on the laptop's tenth day).
MODEL_MARGIN = 1.5
YOUNG_MODEL_MARGIN = 0.5
#: A stream's first day: what it has shown so far does not stand for its days yet.
SETTLED_S = 86400.0
#: Each stream's memory of its own shapes (``memory_novelties``): windows of its last
#: ``MEMORY_WIDTH`` steps, at most ``MEMORY_SIZE`` of them; a window joins when the nearest
#: it holds is farther than ``VIGILANCE`` (a mean difference in units of the stream's range).
#: Chosen on the development corpus (bench/shape_memory.py, bench/nab_log.md); 64 windows,
#: not 256, for the live path's cost.
MEMORY_WIDTH = 8
MEMORY_SIZE = 64
VIGILANCE = 0.05
#: The memory sees a stream on its own grid, a step this many times as often as the other
#: histories take an entry (86.4 s by default: every 5-minute value is a step, one in nine
#: of a 10 s stream), so its windows span minutes whatever the sample interval (8 values
#: of 10 s are 80 s of noise). Each step's novelty is ranked among the stream's own (1,000
#: span a day) and is one of them: the memory changes as it learns, its distances with it.
NOVELTY_ENTRIES = 4
#: A window's novelty counts once its stream is settled (a memory of a few hours finds the
#: first evening's charge new: one false start on the generated laptop's first day).
NOVELTY_WARMUP_S = SETTLED_S
#: A novelty is kept as a float32 (as the histories are saved) and at most this: a window a
#: million ranges away is as new as any.
MAX_NOVELTY = 1e6
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
    meter.split("anomaly", calls=0)  # the stage's lap counts its samples
    errors = model.infer(scaled)
    meter.split("tiny_model", calls=len(scaled))
    return np.asarray(errors, dtype=np.float64)


#: ``StreamState.meta``'s fields (the kernel's ``S_*``): values seen, values in the window,
#: the histories' last entry time, the first and the last time the stream carried a value,
#: and its smallest step between two values so far (``step``).
_N, _HAVE, _ENTRY_T, _FIRST_T, _LAST_T, _STEP = range(6)
#: ``StreamState.bank_meta``'s fields (the kernel's ``B_*``): windows the memory holds, the
#: oldest one's place once it is full, the smallest and largest value it saw, its grid's last
#: step (``next_entry``) and the valid values in its window of recent steps.
_HELD, _OLDEST, _LO, _HI, _STEP_T, _RECENT = range(6)


def _time(x: float) -> float | None:
    return None if math.isnan(x) else x


class StreamState:
    """One stream: its last values (the model's window), three rank histories, and its memory
    of its own shapes (``memory_novelties``). The window, the memory and their counters live
    in small arrays the kernel updates in place."""

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
        step: float | None = None,
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
                nan if step is None else step,
            ],
            dtype=np.float64,
        )
        self.values, self.errors, self.spreads = values, errors, spreads
        #: Its surprises at its last two values in samples of many streams, older first (NaN:
        #: none yet), which its next one there is held to (``stage.py``'s ``_held``).
        self.last_surprises = (math.nan, math.nan)
        #: The stream's residuals given its source's other streams (``comove.py``) and
        #: given the hour (``context.py``), and its windows' novelties, once there are any.
        self.residuals: History | None = None
        self.context: History | None = None
        self.sustained: History | None = None  # (``context.py``'s ``SUSTAIN_S``)
        self.novelty: History | None = None
        self.recent = np.zeros(MEMORY_WIDTH)  # the last values on the memory's grid
        self.bank = np.zeros((MEMORY_SIZE, MEMORY_WIDTH))  # the windows kept, the first held
        self.bank_sums = np.zeros(MEMORY_SIZE)  # each one's values summed in order
        self.bank_meta = np.array([0.0, 0.0, math.inf, -math.inf, math.nan, 0.0])
        self._memory_state: tuple[Any, ...] | None = None

    def memory_state(self) -> tuple[Any, ...]:
        """The kernel's view of the memory: its counters, its recent steps, the stream's
        counters (for its first time), the windows kept and the novelty history's state (the
        same arrays, updated in place)."""
        if self._memory_state is None:
            history = self.own_history("novelty", self.values.size)
            self._memory_state = (
                self.bank_meta,  # first: the kernel reads it alone where no value is a step
                self.recent,
                self.meta,
                self.bank,
                self.bank_sums,
                history._state,  # type: ignore[attr-defined]
            )
        return self._memory_state

    def own_history(
        self, kind: Literal["residuals", "context", "sustained", "novelty"], size: int
    ) -> History:
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

    @property
    def step(self) -> float | None:
        """The smallest change between two of its values so far (a quantised reading's
        resolution, 0.1 for a percentage psutil rounds): a value this far past its range is
        at the range's edge for the values history (``novelty``'s ``slack``)."""
        return _time(float(self.meta[_STEP]))


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


class Columns:
    """A source's streams in one order, with the lists the kernel reads of them (the same
    arrays, updated in place): the live daemon's samples repeat a few layouts, so each is
    built once (``AnomalyDetector._layout``). A stream or its error history replaced (a
    state restored) makes its lists stale: the stage builds them again. (A kept
    personalisation round rescales the error histories in place: the lists stay valid.)"""

    __slots__ = ("states", "in_kernel", "_columns", "_memories", "_errors")

    def __init__(self, states: list[StreamState]) -> None:
        self.states = states
        #: Whether the kernel can score them: every history is the kernel's.
        self.in_kernel = all(type(s.values) is KernelHistory for s in states)
        self._columns: list[tuple[Any, ...]] | None = None
        self._memories: list[tuple[Any, ...]] | None = None
        self._errors: list[Any] | None = None

    def columns(self) -> list[tuple[Any, ...]]:
        """Each stream's window, counters, and values and spreads histories."""
        if self._columns is None:
            self._columns = [
                (s.buffer, s.meta, s.values._state, s.spreads._state)  # type: ignore[attr-defined]
                for s in self.states
            ]
        return self._columns

    def memories(self) -> list[tuple[Any, ...]]:
        """Each stream's memory of its shapes (made at the first call: only with the memory)."""
        if self._memories is None:
            self._memories = [s.memory_state() for s in self.states]
        return self._memories

    def errors(self) -> list[Any]:
        """Each stream's model-error history."""
        if self._errors is None:
            self._errors = [s.errors._state for s in self.states]  # type: ignore[attr-defined]
        return self._errors


@dataclass(slots=True)
class SourceScores:
    """A source's part of a chunk, cell by cell ``[sample, stream]`` (zero where a sample
    lacks the stream)."""

    #: the largest of value, spread, novelty and shape (the last two at most MODEL_MARGIN above
    #: the first two)
    surprise: F64
    shape: F64  # the model's alone
    edges: F64  # [m, k, 2]: the values history's (smallest, largest) before the value
    full: npt.NDArray[np.bool_]  # the window was full: the model and the spread had a say
    learning: npt.NDArray[np.bool_]  # the stream is still in its warm-up: no verdict
    due: npt.NDArray[np.bool_]  # the stream's histories took the value as an entry
    young: npt.NDArray[np.bool_]  # the stream is in its first SETTLED_S
    novelty: F64 | None = None  # the window's novelty ranked (0 where none)


def score_source(
    streams: list[StreamState] | Columns,
    matrix: F64,
    times: F64,
    model: WindowModel | None,
    meter: PowerMeter,
    every_s: float,
    warmup_s: float,
    shape_memory: bool = False,
) -> SourceScores:
    """Rank a source's values ``matrix[sample, stream]`` (NaN where absent, clipped to
    ``MAX_VALUE``), their windows' spreads and the model's errors of those windows, each
    against its stream's history before it joins it, in time order per stream. ``streams``
    in the matrix's column order (a ``Columns`` the live path keeps)."""
    layout = streams if isinstance(streams, Columns) else Columns(streams)
    states = layout.states
    m, k = matrix.shape
    # Three blocks, not seven arrays: a live sample's row costs its allocations.
    numbers = np.zeros((2, m, k))
    edges = np.empty((m, k, 2))
    edges.fill(math.nan)  # (np.full's numbers, at half its cost on a live sample's row)
    flags = np.zeros((4, m, k), dtype=np.bool_)
    out = SourceScores(numbers[0], numbers[1], edges, flags[0], flags[1], flags[2], flags[3])
    kernel = novelty.kernel()
    every_novelty_s = every_s / NOVELTY_ENTRIES
    if kernel is None or not layout.in_kernel:
        found = _novelty_reference(states, matrix, times, every_novelty_s) if shape_memory else None
        before = _score_reference(states, matrix, times, model, meter, every_s, warmup_s, out)
        if found is not None and (found >= 0.0).any():
            _count_novelty(found, out, before)
        return out
    matrix = np.ascontiguousarray(matrix)
    times = np.ascontiguousarray(times, dtype=np.float64)
    found = None
    if shape_memory:  # each step's novelty ranked
        found = np.empty((m, k))  # the kernel writes every cell
        judged = kernel.memory(
            layout.memories(),
            matrix,
            times,
            MEMORY_WIDTH,
            VIGILANCE,
            every_novelty_s,
            NOVELTY_WARMUP_S,
            found,
        )
        if not judged:  # (a live sample between two of the memory's steps)
            found = None
    width = len(states[0].buffer)
    scaling = model.scaling if model is not None else NO_SCALING
    scaled = np.empty((m * k if model is not None else 0, width), dtype=np.float32)
    n_full = kernel.columns(
        layout.columns(),
        matrix,
        times,
        every_s,
        warmup_s,
        SETTLED_S,
        scaling.context,
        scaling.min_std,
        scaling.rel_std,
        scaling.clip,
        out.surprise,
        out.edges,
        out.due,
        out.full,
        out.learning,
        out.young,
        scaled,
    )
    errors, error_states = np.zeros(0), None
    if model is not None and n_full:
        errors = model_errors(model, scaled[:n_full], meter)
        error_states = layout.errors()
    own = None if found is None else out.surprise.copy()  # value and spread only
    kernel.shapes(
        error_states,
        errors,
        out.due,
        out.full,
        out.learning,
        out.young,
        MODEL_MARGIN,
        YOUNG_MODEL_MARGIN,
        out.surprise,
        out.shape,
    )
    if found is not None and own is not None:
        _count_novelty(found, out, own)
    return out


def memory_novelties(state: StreamState, values: F64, vigilance: float = VIGILANCE) -> F64:
    """Each of a stream's new steps ``values`` (in time order, each one the memory's grid
    took) through its memory of its own shapes, the kernel's ``memory`` step by step: the
    window of its last steps (as wide as the memory's windows), in units of the range of every
    step before, against each window the memory holds (the mean absolute difference: the
    smallest sum, in order, then scaled); the nearest one's distance (NaN until the stream has
    a range and a full window). The window joins the memory when that is more than
    ``vigilance`` (or the memory is empty), in place of the oldest once it is full."""
    out = np.full(len(values), np.nan)
    bank, meta, recent = state.bank, state.bank_meta, state.recent
    width = bank.shape[1]
    have = int(meta[_RECENT])
    held, oldest = int(meta[_HELD]), int(meta[_OLDEST])
    lo, hi = float(meta[_LO]), float(meta[_HI])
    for i, v in enumerate(values.tolist()):
        recent[:-1] = recent[1:].copy()
        recent[-1] = v
        have = min(have + 1, width)
        if have == width and hi > lo:
            nearest = math.nan
            if held:
                differences = np.abs(bank[:held] - recent)
                total = np.zeros(held)
                for q in range(width):
                    total = total + differences[:, q]
                nearest = float(total.min()) / width / (hi - lo)
            out[i] = nearest
            if held == 0 or nearest > vigilance:
                at = held if held < len(bank) else oldest
                bank[at] = recent
                state.bank_sums[at] = window_sum(bank[at])
                if held < len(bank):
                    held += 1
                else:
                    oldest = (oldest + 1) % len(bank)
        lo, hi = min(lo, v), max(hi, v)
    meta[[_HELD, _OLDEST, _LO, _HI, _RECENT]] = (held, oldest, lo, hi, have)
    return out


def window_sum(window: F64) -> float:
    """A kept window's values summed in order, as the kernel keeps them (its search passes
    over windows whose sums alone are too far from the window's)."""
    return sum(window.tolist(), 0.0)


def _novelty_reference(states: list[StreamState], matrix: F64, times: F64, every_s: float) -> F64:
    """The kernel's ``memory`` with numpy and any ``History``: each stream's values on the
    memory's grid of ``every_s`` (``entry_times``) through its memory, each novelty
    (``memory_novelties``, at most ``MAX_NOVELTY``, kept as a float32) ranked (upper tail)
    among its stream's own and an entry; -1 where none."""
    found = np.full(matrix.shape, -1.0)
    # A live sample's stream between two steps (most of them) costs a comparison of floats.
    t0, row0 = (float(times[0]), matrix[0].tolist()) if len(times) == 1 else (math.nan, [])
    for j, state in enumerate(states):
        meta = state.bank_meta
        if row0 and (row0[j] != row0[j] or not next_entry(_time(meta[_STEP_T]), t0, every_s)[0]):
            continue  # (no value, or not a step; asked only: entry_times below moves the grid)
        present = np.flatnonzero(~np.isnan(matrix[:, j]))
        if not len(present):
            continue
        steps, step_t = entry_times(times[present], _time(meta[_STEP_T]), every_s)
        meta[_STEP_T] = math.nan if step_t is None else step_t
        rows = present[steps]
        if not len(rows):
            continue
        distances = memory_novelties(state, matrix[rows, j])
        judged = ~np.isnan(distances)
        if not judged.any():
            continue
        at = rows[judged]
        kept = np.minimum(distances[judged], MAX_NOVELTY).astype(np.float32).astype(np.float64)
        history = state.own_history("novelty", state.values.size)
        ranked, _ = history.feed(kept, np.ones(len(kept), dtype=np.bool_), upper_only=True)
        first_t = state.meta[_FIRST_T]  # as ``_score_reference`` will keep it
        first_t = times[present[0]] if math.isnan(first_t) else first_t
        warm = times[at] - first_t >= NOVELTY_WARMUP_S
        found[at[warm], j] = ranked[warm] + 0.0
    return found


def _count_novelty(found: F64, out: SourceScores, own: F64) -> None:
    """A value's surprise is at least its window's ranked novelty ``found`` (-1: none, or
    its stream is younger than ``NOVELTY_WARMUP_S``, which is longer than any warm-up), the
    novelty counting at most the model's margin above the value's and spread's surprise
    ``own``: a shape judgement as the model's is (the nightly step of a browser closed, a
    shape the memory has churned out since yesterday, is no incident by its shape alone);
    the novelties stay None where no window was judged."""
    np.maximum(out.surprise, np.minimum(found, _most_for_shape(own, out.young)), out=out.surprise)
    out.novelty = np.maximum(found, 0.0)


def _most_for_shape(own: F64, young: npt.NDArray[np.bool_]) -> F64:
    """The most a judgement of shape alone (the model's, the memory's novelty) may count in
    each cell: its value's and spread's surprise ``own`` plus ``MODEL_MARGIN``
    (``YOUNG_MODEL_MARGIN`` where the stream is ``young``; the kernel's ``shapes`` does the
    same for the model)."""
    out: F64 = own + np.where(young, YOUNG_MODEL_MARGIN, MODEL_MARGIN)
    return out


def _smallest_steps(steps: F64, before: float) -> F64:
    """The smallest nonzero step so far at each of ``steps`` (the stream's ``step`` before
    them: ``before``, NaN for none), 0 while there is none (the kernel's running minimum)."""
    nonzero = np.where(steps > 0.0, steps, np.inf)
    start = np.inf if math.isnan(before) else before
    smallest = np.minimum.accumulate(np.concatenate([[start], nonzero]))[1:]
    out: F64 = np.where(np.isinf(smallest), 0.0, smallest)
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
) -> F64:
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
        # each value's step from the one before it (the stream's first value has none)
        slack = _smallest_steps(np.abs(np.diff(joined[max(have - 1, 0) :])), meta[_STEP])
        if not have:
            slack = np.concatenate([[0.0], slack])
        if len(slack) and slack[-1] > 0.0:
            meta[_STEP] = slack[-1]
        surprise, edges = state.values.feed(values, d, edges=True, slack=slack)
        assert edges is not None
        if len(stream_windows):
            spread, _ = state.spreads.feed(log_spreads(stream_windows), d[full])
            surprise[full] = np.maximum(surprise[full], spread)
        out.surprise[rows, j], out.edges[rows, j] = surprise, edges
        out.full[rows, j], out.due[rows, j] = full, d
        out.learning[rows, j] = t - meta[_FIRST_T] < warmup_s
        out.young[rows, j] = t - meta[_FIRST_T] < SETTLED_S
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
    own = out.surprise.copy()
    capped = np.minimum(out.shape, _most_for_shape(out.surprise, out.young))
    out.surprise[:] = np.maximum(out.surprise, capped) + 0.0
    out.shape += 0.0
    out.surprise[out.learning] = 0.0
    out.shape[out.learning] = 0.0
    return own
