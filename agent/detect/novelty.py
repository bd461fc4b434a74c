"""Stage 3, how new a number is: its rank among the stream's recent numbers of that kind.

A running mean and deviation describe one level; many streams have several (idle and busy,
docked and on battery), and heavy tails, so a Gaussian threshold either fires at every usual
change or misses a dropout that stays inside the usual spread. Ranks need no shape: each
history keeps its last ``size`` entries, also sorted, and a number's *surprise* is
``-log10`` of its tail p-value among them (two-sided: ``2 * min(at or below, at or above)``;
or the upper tail only, for errors), plus, beyond the range seen, the distance past the edge
in units of the spread of the outermost 5 % on that side (a reading far outside everything
seen is more surprising than one just past it), less a ``slack`` for values: the stream's
smallest step (a quantised reading one step past its range, swap creeping by 0.1 %, is the
least move it can make, not a far one). A surprise of 1 is a one-in-ten number, 3 the edge
of a thousand entries. Ranking is O(log n), inserting an O(n) memmove of n floats.
"""

from __future__ import annotations

import base64
import math
from bisect import bisect_left, bisect_right, insort
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

#: No verdict (surprise 0) until a history holds this many entries.
WARMUP_N = 100
#: The outer tail that measures "past the edge" spans at least this many entries (a young
#: history's 5 % would be one or two).
TAIL_MIN_N = 10
#: How far past the edge counts at most, in tail spreads (keeps 1e300 finite).
MAX_PAST = 1e3


class ReferenceHistory:
    """Entries for ranks, and every number's extremes for the edge.

    A history that takes one entry every few samples would miss a reading that comes back
    once a day for one sample (the window that straddles an evening's drop in level): so
    ``observe`` sees every number, and each entry also keeps the largest and smallest number
    since the previous entry. Ranks come from the entries; "past the edge" is measured from
    the extremes of everything seen while those entries were taken (sliding maxima and minima
    in monotonic queues: O(1) amortised).
    """

    def __init__(self, size: int) -> None:
        self.size = size
        self._order: deque[float] = deque()
        self._sorted: list[float] = []
        self._block: tuple[float, float] | None = None  # (hi, lo) since the last entry
        self._added = 0  # entries ever added: the monotonic queues' clock
        self._maxq: deque[tuple[int, float]] = deque()
        self._minq: deque[tuple[int, float]] = deque()

    def __len__(self) -> int:
        return len(self._order)

    def feed(
        self,
        xs: npt.NDArray[np.float64],
        due: npt.NDArray[np.bool_],
        *,
        upper_only: bool = False,
        edges: bool = False,
        fill: bool = True,
        slack: npt.NDArray[np.float64] | None = None,
    ) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64] | None]:
        """Each number's surprise against the history so far (with ``slack[i]``), then the
        number taken as an entry (when ``due``, or with ``fill`` while the history holds
        fewer than ``size``) or only observed; with ``edges``, also the history's (smallest,
        largest) before each number (NaN while empty), as an array ``[k, 2]``."""
        out = np.empty(len(xs))
        bounds = np.full((len(xs), 2), np.nan) if edges else None
        slacks = [0.0] * len(xs) if slack is None else slack.tolist()
        for i, (x, entry) in enumerate(zip(xs.tolist(), due.tolist(), strict=True)):
            out[i], lo, hi = self.feed_number(
                x, entry, upper_only=upper_only, fill=fill, slack=slacks[i]
            )
            if bounds is not None:
                bounds[i] = lo, hi
        return out, bounds

    def feed_number(
        self,
        x: float,
        due: bool,
        *,
        upper_only: bool = False,
        fill: bool = True,
        slack: float = 0.0,
    ) -> tuple[float, float, float]:
        """``feed`` of one number: its surprise and the (smallest, largest) before it (NaN
        while empty)."""
        surprise = self.surprise(x, upper_only=upper_only, slack=slack)
        lo, hi = self.edges() or (math.nan, math.nan)
        if due or (fill and len(self._order) < self.size):
            self.add(x)
        else:
            self.observe(x)
        return surprise, lo, hi

    def surprise(self, x: float, *, upper_only: bool = False, slack: float = 0.0) -> float:
        """How new ``x`` is against what came before (call before ``observe``/``add``); a
        value up to ``slack`` past the edge is at it."""
        s = self._sorted
        n = len(s)
        if n < WARMUP_N:
            return 0.0
        above = n - bisect_left(s, x)  # entries >= x
        if upper_only:
            p = (above + 1) / (n + 1)
        else:
            p = min(1.0, 2.0 * (min(bisect_right(s, x), above) + 1) / (n + 1))
        score = -math.log10(p)
        k = max(n // 20, TAIL_MIN_N)
        top, bottom = self._maxq[0][1], self._minq[0][1]
        if x > top:
            score += _past(max(0.0, x - top - slack), s[-1] - s[n - 1 - k], s)
        elif x < bottom and not upper_only:
            score += _past(max(0.0, bottom - x - slack), s[k] - s[0], s)
        return score

    def rescale(self, factor: float) -> None:
        """Every number kept times ``factor`` (> 0: the order, the ranks and the edges keep
        their shape), as though the stream's numbers had always been in the new units."""
        self._order = deque(x * factor for x in self._order)
        self._sorted = [x * factor for x in self._sorted]
        if self._block is not None:
            self._block = (self._block[0] * factor, self._block[1] * factor)
        self._maxq = deque((i, x * factor) for i, x in self._maxq)
        self._minq = deque((i, x * factor) for i, x in self._minq)

    def edges(self) -> tuple[float, float] | None:
        """(smallest, largest) of every number the entries kept cover; None when empty."""
        if not self._maxq:
            return None
        return self._minq[0][1], self._maxq[0][1]

    def observe(self, x: float) -> None:
        """A number that is not an entry still counts for the extremes."""
        block = self._block
        self._block = (x, x) if block is None else (max(block[0], x), min(block[1], x))

    def add(self, x: float) -> None:
        """An entry (observed too)."""
        self.observe(x)
        assert self._block is not None
        hi, lo = self._block
        self._block = None
        self._push(x, hi, lo)

    def _push(self, x: float, hi: float, lo: float) -> None:
        """Entry ``x`` with the extremes of the numbers since the previous entry; the queues
        keep only the extremes that can still be the largest or smallest (O(1) amortised)."""
        self._order.append(x)
        insort(self._sorted, x)
        i = self._added
        self._added += 1
        while self._maxq and self._maxq[-1][1] <= hi:
            self._maxq.pop()
        self._maxq.append((i, hi))
        while self._minq and self._minq[-1][1] >= lo:
            self._minq.pop()
        self._minq.append((i, lo))
        if len(self._order) > self.size:
            old = self._order.popleft()
            del self._sorted[bisect_left(self._sorted, old)]
            first = self._added - self.size  # the oldest entry still kept
            while self._maxq[0][0] < first:
                self._maxq.popleft()
            while self._minq[0][0] < first:
                self._minq.popleft()

    # -- state: base64 of little-endian floats (entries, the queues' extremes, the block) ----
    def encode(self, dtype: str = "<f8") -> dict[str, str]:
        """``<f4`` halves the size; exact only for numbers that are float32 numbers. The
        queues are all that future edges need: an extreme they dropped can never return."""

        def b64(values: Iterable[float], kind: str = dtype) -> str:
            return base64.b64encode(np.asarray(list(values), dtype=kind).tobytes()).decode()

        first = self._added - len(self._order)
        return {
            "entries": b64(self._order),
            "max_at": b64((i - first for i, _ in self._maxq), "<i4"),
            "max": b64(v for _, v in self._maxq),
            "min_at": b64((i - first for i, _ in self._minq), "<i4"),
            "min": b64(v for _, v in self._minq),
            "block": b64(self._block or ()),
        }

    @classmethod
    def decode(cls, size: int, saved: Mapping[str, str], dtype: str = "<f8") -> ReferenceHistory:
        def numbers(key: str, kind: str = dtype) -> list[Any]:
            return list(np.frombuffer(base64.b64decode(saved.get(key, "")), dtype=kind).tolist())

        history = cls(size)
        entries = numbers("entries")
        history._order.extend(entries)
        history._sorted = sorted(entries)
        history._added = len(entries)
        history._maxq.extend(zip(numbers("max_at", "<i4"), numbers("max"), strict=True))
        history._minq.extend(zip(numbers("min_at", "<i4"), numbers("min"), strict=True))
        if entries and not (history._maxq and history._minq):
            raise ValueError("history without its extremes")
        block = numbers("block")
        history._block = (block[0], block[1]) if len(block) == 2 else None
        return history


def _past(distance: float, tail: float, s: list[float]) -> float:
    """How far past the edge, in units of the outer 5 % of entries on that side (the spread
    where the value left the range: an interquartile range would measure the gap between
    two usual levels instead)."""
    if tail <= 0.0:  # that tail is one value (a flat or quantised stream): use the range
        tail = s[-1] - s[0]
    return min(distance / max(tail, 1e-9 + 1e-6 * abs(s[len(s) // 2])), MAX_PAST)


class History(Protocol):
    """What the always-on tier asks of a rank history (either implementation)."""

    size: int

    def __len__(self) -> int: ...

    def feed(
        self,
        xs: npt.NDArray[np.float64],
        due: npt.NDArray[np.bool_],
        *,
        upper_only: bool = False,
        edges: bool = False,
        fill: bool = True,
        slack: npt.NDArray[np.float64] | None = None,
    ) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64] | None]: ...

    def feed_number(
        self, x: float, due: bool, *, upper_only: bool = False, fill: bool = True
    ) -> tuple[float, float, float]: ...

    def edges(self) -> tuple[float, float] | None: ...

    def rescale(self, factor: float) -> None: ...

    def encode(self, dtype: str = "<f8") -> dict[str, str]: ...


_N, _HEAD, _ADDED, _MAXQ_HEAD, _MAXQ_LEN, _MINQ_HEAD, _MINQ_LEN, _HAS_BLOCK = range(8)


class KernelHistory:
    """``ReferenceHistory`` with its state in flat arrays and its loop in C (``_ranks.c``):
    the same numbers, bit for bit, at a small fraction of the cost."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._order = np.zeros(size)
        self._sorted = np.zeros(size)
        self._maxq_at = np.zeros(size + 1, dtype=np.int64)
        self._maxq = np.zeros(size + 1)
        self._minq_at = np.zeros(size + 1, dtype=np.int64)
        self._minq = np.zeros(size + 1)
        self._meta = np.zeros(8, dtype=np.int64)
        self._block = np.zeros(2)
        self._state = (
            self._order,
            self._sorted,
            self._maxq_at,
            self._maxq,
            self._minq_at,
            self._minq,
            self._meta,
            self._block,
            size,
        )

    def __len__(self) -> int:
        return int(self._meta[_N])

    def feed(
        self,
        xs: npt.NDArray[np.float64],
        due: npt.NDArray[np.bool_],
        *,
        upper_only: bool = False,
        edges: bool = False,
        fill: bool = True,
        slack: npt.NDArray[np.float64] | None = None,
    ) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64] | None]:
        """As ``ReferenceHistory.feed``."""
        offsets = _ONE if len(xs) == 1 else np.array([0, len(xs)], dtype=np.int64)
        return feed_histories(
            [self], xs, due, offsets, upper_only=upper_only, edges=edges, fill=fill, slack=slack
        )

    def feed_number(
        self, x: float, due: bool, *, upper_only: bool = False, fill: bool = True
    ) -> tuple[float, float, float]:
        """As ``ReferenceHistory.feed_number``: one C call, no arrays (a live sample's
        source sums)."""
        assert _ranks is not None
        return _ranks.feed_number(self._state, x, due, upper_only, fill)

    def surprise(self, x: float, *, upper_only: bool = False) -> float:
        """One number's surprise, the history unchanged (slow: for tests and tools)."""
        probe = self.decode(self.size, self.encode())
        out, _ = probe.feed(np.array([x]), np.zeros(1, dtype=np.bool_), upper_only=upper_only)
        return float(out[0])

    def observe(self, x: float) -> None:
        """A number that is not an entry (``feed`` would take it as one while filling)."""
        block, m = self._block, self._meta
        if m[_HAS_BLOCK]:
            block[0], block[1] = max(float(block[0]), x), min(float(block[1]), x)
        else:
            block[0] = block[1] = x
            m[_HAS_BLOCK] = 1

    def add(self, x: float) -> None:
        self.feed(np.array([x]), np.ones(1, dtype=np.bool_))

    def rescale(self, factor: float) -> None:
        """As ``ReferenceHistory.rescale``, in place (the kernel's views stay valid)."""
        for numbers in (self._order, self._sorted, self._maxq, self._minq, self._block):
            numbers *= factor

    def edges(self) -> tuple[float, float] | None:
        m = self._meta
        if not m[_MAXQ_LEN]:
            return None
        return float(self._minq[m[_MINQ_HEAD]]), float(self._maxq[m[_MAXQ_HEAD]])

    def _queue(self, at: npt.NDArray[np.int64], q: npt.NDArray[np.float64], head: int, n: int):  # type: ignore[no-untyped-def]
        idx = (head + np.arange(n)) % (self.size + 1)
        return at[idx], q[idx]

    def encode(self, dtype: str = "<f8") -> dict[str, str]:
        """The format of ``ReferenceHistory.encode``."""
        m = self._meta
        n = int(m[_N])
        first = int(m[_ADDED]) - n
        entries = self._order[(int(m[_HEAD]) + np.arange(n)) % self.size]
        max_at, maxv = self._queue(self._maxq_at, self._maxq, int(m[_MAXQ_HEAD]), int(m[_MAXQ_LEN]))
        min_at, minv = self._queue(self._minq_at, self._minq, int(m[_MINQ_HEAD]), int(m[_MINQ_LEN]))
        block = self._block if m[_HAS_BLOCK] else np.zeros(0)

        def b64(values: npt.NDArray[Any], kind: str = dtype) -> str:
            return base64.b64encode(np.asarray(values, dtype=kind).tobytes()).decode()

        return {
            "entries": b64(entries),
            "max_at": b64(max_at - first, "<i4"),
            "max": b64(maxv),
            "min_at": b64(min_at - first, "<i4"),
            "min": b64(minv),
            "block": b64(block),
        }

    @classmethod
    def decode(cls, size: int, saved: Mapping[str, str], dtype: str = "<f8") -> KernelHistory:
        def numbers(key: str, kind: str = dtype) -> npt.NDArray[Any]:
            raw = np.frombuffer(base64.b64decode(saved.get(key, "")), dtype=kind)
            return raw.astype(np.float64 if kind != "<i4" else np.int64)

        history = cls(size)
        entries = numbers("entries")
        n = len(entries)
        if n > size:
            raise ValueError(f"history of {n} entries, more than {size}")
        max_at, maxv = numbers("max_at", "<i4"), numbers("max")
        min_at, minv = numbers("min_at", "<i4"), numbers("min")
        if len(max_at) != len(maxv) or len(min_at) != len(minv):
            raise ValueError("history extremes of different lengths")
        if n and not (len(maxv) and len(minv)):
            raise ValueError("history without its extremes")
        if len(maxv) > size + 1 or len(minv) > size + 1:
            raise ValueError("history extremes longer than the history")
        history._order[:n] = entries
        history._sorted[:n] = np.sort(entries)
        history._maxq_at[: len(max_at)], history._maxq[: len(maxv)] = max_at, maxv
        history._minq_at[: len(min_at)], history._minq[: len(minv)] = min_at, minv
        m = history._meta
        m[_N], m[_ADDED] = n, n
        m[_MAXQ_LEN], m[_MINQ_LEN] = len(maxv), len(minv)
        block = numbers("block")
        if len(block) == 2:
            history._block[:] = block
            m[_HAS_BLOCK] = 1
        return history


try:
    import agent.detect._ranks as _ranks
except ImportError:  # not compiled (no C compiler where vigil was installed): the reference
    _ranks = None  # type: ignore[assignment]


def kernel() -> Any:
    """The compiled kernel (``_ranks.c``), or None where it could not be built."""
    return _ranks


#: ``KernelHistory.feed``'s offsets for one number (only read: the kernel takes them as is).
_ONE = np.array([0, 1], dtype=np.int64)
_ONE.flags.writeable = False


def feed_histories(
    histories: Sequence[History],
    xs: npt.NDArray[np.float64],
    due: npt.NDArray[np.bool_],
    offsets: npt.NDArray[np.int64],
    *,
    upper_only: bool = False,
    edges: bool = False,
    fill: bool = True,
    slack: npt.NDArray[np.float64] | None = None,
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64] | None]:
    """``feed`` of many histories at once: history k takes ``xs[offsets[k]:offsets[k+1]]``
    (and their ``slack``, if any). With the kernel, one call for all of them (a live sample's
    streams cost one call, not one each)."""
    xs = np.ascontiguousarray(xs, dtype=np.float64)
    flags = np.ascontiguousarray(due, dtype=np.bool_)
    if slack is not None:
        slack = np.ascontiguousarray(slack, dtype=np.float64)
    if _ranks is not None and histories and type(histories[0]) is KernelHistory:
        out = np.empty(len(xs))
        bounds = np.empty((len(xs), 2)) if edges else None
        states = [h._state for h in histories]  # type: ignore[attr-defined]
        at = np.ascontiguousarray(offsets, dtype=np.int64)  # a copy only where it must
        _ranks.feed(states, xs, flags, at, upper_only, fill, out, bounds, slack)
        return out, bounds
    outs, all_bounds = [], []
    for k, history in enumerate(histories):
        a, b = int(offsets[k]), int(offsets[k + 1])
        part = None if slack is None else slack[a:b]
        o, e = history.feed(
            xs[a:b], flags[a:b], upper_only=upper_only, edges=edges, fill=fill, slack=part
        )
        outs.append(o)
        if e is not None:
            all_bounds.append(e)
    out = np.concatenate(outs) if outs else np.zeros(0)
    if not edges:
        return out, None
    return out, (np.concatenate(all_bounds) if all_bounds else np.zeros((0, 2)))


def feed_cells(
    histories: Sequence[History],
    matrix: npt.NDArray[np.float64],
    due: npt.NDArray[np.bool_],
    *,
    upper_only: bool = False,
    fill: bool = True,
) -> npt.NDArray[np.float64]:
    """``feed`` of history j with column j of ``matrix`` ``[m, k]`` (NaN: no number there),
    in time order; a number takes an entry where its row is ``due``. The surprises ``[m, k]``,
    -1 where there is no number. With the kernel, one call."""
    x = np.ascontiguousarray(matrix, dtype=np.float64)
    flags = np.ascontiguousarray(due, dtype=np.bool_)
    out = np.empty(x.shape)  # (np.full costs twice this on a live sample's row)
    out.fill(-1.0)
    if _ranks is not None and histories and type(histories[0]) is KernelHistory:
        states = [h._state for h in histories]  # type: ignore[attr-defined]
        _ranks.cells(states, x, flags, upper_only, fill, out)
        return out
    for j, history in enumerate(histories):
        rows = np.flatnonzero(~np.isnan(x[:, j]))
        if len(rows):
            out[rows, j], _ = history.feed(
                x[rows, j], flags[rows], upper_only=upper_only, fill=fill
            )
    return out


def next_entry(entry_t: float | None, t: float, every: float) -> tuple[bool, float | None]:
    """Whether a history takes an entry at ``t``, and its new entry time: on a grid of
    ``every`` from the first entry (so entries keep the mean spacing whatever the sample
    interval), restarted after a gap."""
    if entry_t is None:
        return True, t
    if t < entry_t + every:
        return False, entry_t
    return True, (t if t - entry_t >= 2 * every else entry_t + every)


def entry_times(
    times: npt.NDArray[np.float64], entry_t: float | None, every: float
) -> tuple[npt.NDArray[np.bool_], float | None]:
    """``next_entry`` over a chunk of times: which take an entry, and the last entry time."""
    due = np.empty(len(times), dtype=np.bool_)
    if _ranks is not None and len(times) > 1:  # one time: the Python below is cheaper
        start = math.nan if entry_t is None else entry_t
        last = _ranks.due(np.ascontiguousarray(times, dtype=np.float64), start, every, due)
        return due, None if math.isnan(last) else last
    for i, t in enumerate(times.tolist()):
        due[i], entry_t = next_entry(entry_t, t, every)
    return due, entry_t


#: The history the always-on tier uses: the compiled one where it was built.
ValueHistory: type[KernelHistory] | type[ReferenceHistory] = (
    KernelHistory if _ranks is not None else ReferenceHistory
)
