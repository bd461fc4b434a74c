"""Stage 3, how new a number is: its rank among the stream's recent numbers of that kind.

A running mean and deviation describe one level; many streams have several (idle and busy,
docked and on battery), and heavy tails, so a Gaussian threshold either fires at every usual
change or misses a dropout that stays inside the usual spread. Ranks need no shape: each
history keeps its last ``size`` entries, also sorted, and a number's *surprise* is
``-log10`` of its tail p-value among them (two-sided: ``2 * min(at or below, at or above)``;
or the upper tail only, for errors), plus, beyond the range seen, the distance past the edge
in units of the spread of the outermost 5 % on that side (a reading far outside everything
seen is more surprising than one just past it). A surprise of 1 is a one-in-ten number, 3 the edge
of a thousand entries. Ranking is O(log n), inserting an O(n) memmove of n floats.
"""

from __future__ import annotations

import base64
import math
from bisect import bisect_left, bisect_right, insort
from collections import deque
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

#: No verdict (surprise 0) until a history holds this many entries.
WARMUP_N = 100
#: The outer tail that measures "past the edge" spans at least this many entries (a young
#: history's 5 % would be one or two).
TAIL_MIN_N = 10
#: How far past the edge counts at most, in tail spreads (keeps 1e300 finite).
MAX_PAST = 1e3


class ValueHistory:
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

    def surprise(self, x: float, *, upper_only: bool = False) -> float:
        """How new ``x`` is against what came before (call before ``observe``/``add``)."""
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
            score += _past(x - top, s[-1] - s[n - 1 - k], s)
        elif x < bottom and not upper_only:
            score += _past(bottom - x, s[k] - s[0], s)
        return score

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
    def decode(cls, size: int, saved: Mapping[str, str], dtype: str = "<f8") -> ValueHistory:
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
