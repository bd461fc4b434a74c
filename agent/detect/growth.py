"""The apps sensor's memory ranking -> ``process.grow`` / ``process.grow_end`` events: a
process whose share of memory grew more over the last 10 minutes than in any 10 minutes of
its last 4 days, by half again, and by at least 1.5 points of RAM.

A leak is a process that keeps taking memory until the machine swaps. The machine's memory
use shows it late: a laptop's moves by tens of points between a quiet morning and a busy
evening, so a leak is past the usual range only once it has taken that much. The process's
own share shows it early: a browser's grows by a point as tabs open, a build's by a few as
it starts, and a process that takes a point and a half in ten minutes, more than ever
before, is news after a few minutes of its leak.

So for each process name in the memory ranking (``mem<i>_name``, ``mem<i>_pct``) its share
at each minute's last ranking is kept for ``WINDOW_S`` (the sensor ranks once a minute and
repeats the ranking in between); its *growth* is its share now less the smallest of those
(the minutes it was ranked). Every 5 minutes the growth joins the name's record (the rate
volumes' record, ``volume.py``); once the sensor has ``SETTLED_S`` behind it, a growth of
1.5 times the name's largest entry of the last 4 days (leaving out the last hour's) and at
least ``MIN_GROWTH_PCT`` opens an episode. It ends when the growth is back
under that entry and half of ``MIN_GROWTH_PCT``, or the name has left the ranking. A day,
not the record's 4, is enough to judge: a growth half again past its largest ten minutes
of a day is rare, and a new machine's first leak should not wait for its fifth day.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from agent.detect.processes import LastRankings, Record
from agent.detect.volume import read_entries
from agent.samples import Event, Sample, Scalar

WINDOW_S = 600.0
#: Points of RAM a process must take within ``WINDOW_S`` to be news.
MIN_GROWTH_PCT = 1.5
#: The sensor must have this long behind it before a growth is judged.
SETTLED_S = 86_400.0
#: The memory ranking's places read (the sensor's ``top_n`` is 3 by default).
RANKS = tuple((f"mem{i}_name", f"mem{i}_pct") for i in range(1, 11))
_RANKED = frozenset(key for pair in RANKS for key in pair)


@dataclass(slots=True)
class _Process:
    """One process name: its shares at the window's ranked minutes (their ends apart, so
    the smallest is one call of ``min``), and its record."""

    ends: deque[float] = field(default_factory=deque)
    shares: deque[float] = field(default_factory=deque)  # percent of RAM
    record: Record = field(default_factory=Record)

    def add(self, end: float, share: float) -> None:
        self.ends.append(end)
        self.shares.append(share)

    def growth(self, t: float) -> float:
        """The newest share less the smallest in the window ending at ``t`` (0: none)."""
        ends, shares = self.ends, self.shares
        while ends and ends[0] <= t - WINDOW_S:
            ends.popleft()
            shares.popleft()
        return shares[-1] - min(shares) if shares else 0.0


class MemoryGrowth:
    """Watches each process's share of memory over the last ten minutes."""

    def __init__(self) -> None:
        self._minutes = LastRankings(_RANKED, WINDOW_S)
        self._names: dict[str, _Process] = {}

    def feed(self, sample: Sample) -> list[Event]:
        """One apps sample with a memory ranking -> the events it makes."""
        data = sample.data
        if sample.sensor != "apps" or "mem1_name" not in data:
            return []
        closed = self._minutes.read(sample.t, data)
        return [] if closed is None else self._close_minute(*closed, sample.t)

    def _close_minute(self, end: float, last: Mapping[str, Scalar] | None, t: float) -> list[Event]:
        """Close the minute ending at ``end`` (its last ranking ``last``) and judge each
        name's growth, at sample time ``t``."""
        ranked = _shares_of(last) if last is not None else {}
        for name, share in ranked.items():
            self._process(name).add(end, share)
        grown = {name: self._names[name].growth(t) for name in ranked}
        if self._minutes.entry_due(t):
            self._enter(t, grown)
        if self._minutes.since(t) < SETTLED_S:
            return []
        return self._judge(t, grown)

    def _enter(self, t: float, grown: dict[str, float]) -> None:
        """Each ranked name's growth joins its record; names unranked for the window and with
        no entry left in 4 days are forgotten (a process seen once is not kept for weeks)."""
        for name, growth in grown.items():
            self._names[name].record.recent.append((t, growth))
        for name, proc in list(self._names.items()):
            proc.growth(t)  # (drops the shares older than the window)
            rec = proc.record
            if not rec.high and not proc.shares and not rec.largest(t) and not rec.recent:
                del self._names[name]

    def _judge(self, t: float, grown: dict[str, float]) -> list[Event]:
        events = []
        left = [n for n, p in self._names.items() if p.record.high and n not in grown]
        for name in [*grown, *left]:
            growth = grown.get(name, 0.0)
            rec = self._names[name].record
            if growth < MIN_GROWTH_PCT and not rec.high:
                continue  # under MIN_GROWTH_PCT nothing opens
            largest = rec.largest(t)
            opens = rec.step(growth, largest, MIN_GROWTH_PCT, name in grown)  # (a name gone ends)
            if opens is None:
                continue
            data = {
                "grew_pct": round(growth, 2),
                "record_pct": round(largest, 2),
                "window_s": WINDOW_S,
            }
            kind = "process.grow" if opens else "process.grow_end"
            events.append(Event(t, kind, name, data))
        return events

    def _process(self, name: str) -> _Process:
        proc = self._names.get(name)
        if proc is None:
            proc = self._names[name] = _Process()
        return proc

    # -- state kept across restarts ------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        """Each name's shares in the window, entries (only the record's falling means) and
        episode, and the minute being read: a few kB."""
        return {
            **self._minutes.state(),
            "names": {
                name: {
                    "shares": [[end, share] for end, share in zip(p.ends, p.shares, strict=True)],
                    **p.record.state(),
                }
                for name, p in self._names.items()
            },
        }

    def restore(self, state: dict[str, Any]) -> int:
        """Take back what ``state`` gave; returns how many names were unreadable (each
        skipped: its record starts afresh, the others are kept). The rest unreadable raises
        (``TypeError``, ``ValueError``): the stage starts afresh."""
        try:
            self._minutes.restore(state)
            names = dict(state["names"])
        except KeyError as exc:
            raise ValueError(f"missing {exc}") from exc
        skipped = 0
        for name, saved in names.items():
            try:
                shares = read_entries(saved["shares"])
                proc = _Process(
                    deque(end for end, _ in shares),
                    deque(share for _, share in shares),
                    Record.read(saved),
                )
            except (KeyError, TypeError, ValueError):
                skipped += 1
                continue
            self._names[str(name)] = proc
        return skipped


def _shares_of(data: Mapping[str, Scalar]) -> dict[str, float]:
    """One memory ranking's shares by name, in percent of RAM. A name ranked twice (a
    browser's content processes) counts by its largest: a leak is one process growing, and a
    sum would grow whenever another process of that name entered the ranking."""
    shares: dict[str, float] = {}
    for name_key, pct_key in RANKS:
        name = data.get(name_key)
        if not isinstance(name, str):
            break
        pct = data.get(pct_key)
        if isinstance(pct, float | int) and pct >= 0.0:
            shares[name] = max(shares.get(name, 0.0), float(pct))
    return shares
