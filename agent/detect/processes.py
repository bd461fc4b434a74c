"""The apps sensor's rankings -> ``process.busy`` / ``process.calm`` and ``process.drain`` /
``process.drain_end`` events: a process busier over the last 15 minutes than in any 15
minutes of the last 4 days, by half again, and at least half a core: in the background
(a runaway), or in any way while the machine is on battery, against its minutes on battery
(a drain).

A runaway is a process nobody is looking at: an encoder or an indexer left spinning, a
helper stuck in a loop. The machine's CPU alone cannot tell it from a build or a video call,
which hold the same levels every afternoon; the process's own record can, and the focus
keeps out what the user is working in (a game started for the first time in weeks is busy,
and in front). On battery, though, whatever works harder than it has lately is what empties
it, in front or not: a browser's page spinning at a meeting, a call taken unplugged. A call
held at the desk every afternoon, plugged in, says nothing of what it does to the battery:
so a drain is judged against the process's minutes on battery alone.

So for each process name in the busiest ranking (``cpu<i>_name``, ``cpu<i>_pct``) two shares
are kept: its *background* share, counted only where it is not the focused window's process
(``app_process``), and its *whole* share, entered in its record only while the machine is
on battery; nothing where it is not ranked. The sensor ranks once a minute and repeats the
ranking in between, so each minute counts once, by its last ranking. Each share's mean over
the minutes of the last ``WINDOW_S`` (judged as each minute closes) joins the name's record
of it every ``ENTRY_S`` (the window and the record are the rate volumes', ``volume.py``);
once the sensor has ``SPAN_S`` behind it, a mean that is ``TIMES_RECORD`` times the name's
largest entry of the last 4 days (leaving out the last hour's, so a long run does not raise
its own bar; a name never busy before has none) and at least ``MIN_PCT`` opens an episode:
of the background share always (``process.busy``), of the whole share while the battery
discharges (``process.drain``; the battery sensor's ``charging``, as the hour's judgement
follows it). It ends when the mean is back under that entry and under half of ``MIN_PCT``,
and a drain also when the machine is plugged in.

Where the focused window cannot be read (GNOME on Wayland, Android), every process counts as
in the background.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from agent.detect.volume import (
    BUCKET_S,
    ENTRY_S,
    SPAN_S,
    TIMES_RECORD,
    WINDOW_S,
    largest_entry,
    read_entries,
)
from agent.samples import FOCUSED_PROCESS, Event, Sample, Scalar

#: Percent of one core: a quarter of an hour at less is never news.
MIN_PCT = 50.0
#: The busiest ranking's places read (the sensor's ``top_n`` is 3 by default).
RANKS = tuple((f"cpu{i}_name", f"cpu{i}_pct") for i in range(1, 11))
_RANKED = frozenset(key for pair in RANKS for key in pair)


@dataclass(slots=True)
class Record:
    """One process name's entries of one measure (a share of CPU, a growth of memory): recent
    ones, and the falling means of the rest; and whether an episode of it is open."""

    recent: deque[tuple[float, float]] = field(default_factory=deque)
    record: deque[tuple[float, float]] = field(default_factory=deque)
    high: bool = False

    @classmethod
    def read(cls, saved: Mapping[str, Any]) -> Record:
        """A record ``state`` gave (raises ``KeyError``, ``TypeError``, ``ValueError``)."""
        recent, record = read_entries(saved["recent"]), read_entries(saved["record"])
        return cls(recent, record, bool(saved["high"]))

    def state(self) -> dict[str, Any]:
        return {
            "recent": [list(e) for e in self.recent],
            "record": [list(e) for e in self.record],
            "high": self.high,
        }

    def largest(self, t: float) -> float:
        """The largest entry of the record (``largest_entry``); 0 for none."""
        return largest_entry(self.recent, self.record, t) or 0.0

    def step(self, value: float, largest: float, floor: float, judged: bool) -> bool | None:
        """Whether the episode opens (True) or ends (False) at ``value``, or neither (None):
        it opens at ``TIMES_RECORD`` times the ``largest`` entry and at least ``floor``, and
        ends back under that entry and half the floor; with ``judged`` false none opens and
        an open one ends."""
        if self.high:
            if judged and value > max(largest, floor / 2):
                return None
            self.high = False
            return False
        if judged and value >= max(TIMES_RECORD * largest, floor):
            self.high = True
            return True
        return None


@dataclass(slots=True)
class _Shares:
    """One kind of share of every process name: the events that open and close its episodes,
    the minutes of the window (each with a ranking), and each name's record."""

    opens: str
    ends: str
    minutes: deque[tuple[float, dict[str, int]]] = field(default_factory=deque)
    names: dict[str, Record] = field(default_factory=dict)
    #: The window's sums per name and how many of its minutes name it, kept as minutes come
    #: and go (in thousandths, the sensor's rounding: exact, with no drift).
    totals: dict[str, int] = field(default_factory=dict)
    present: dict[str, int] = field(default_factory=dict)

    def close_minute(self, end: float, t: float, sums: dict[str, int] | None) -> None:
        """The minute ending at ``end`` joins the window with its ``sums`` (None: it had no
        ranking); the window keeps the minutes of the last ``WINDOW_S`` before ``t``."""
        minutes, totals, present = self.minutes, self.totals, self.present
        if sums is not None:
            minutes.append((end, sums))
            self._count(sums)
        while minutes and minutes[0][0] <= t - WINDOW_S:
            for name, value in minutes.popleft()[1].items():
                if present[name] == 1:
                    del totals[name], present[name]
                else:
                    totals[name] -= value
                    present[name] -= 1

    def _count(self, sums: dict[str, int]) -> None:
        """A minute's sums into the window's."""
        totals, present = self.totals, self.present
        for name, value in sums.items():
            totals[name] = totals.get(name, 0) + value
            present[name] = present.get(name, 0) + 1

    def full(self) -> bool:
        """Whether the window's minutes span half of it (after a pause a single minute is no
        quarter of an hour)."""
        minutes = self.minutes
        return bool(minutes) and minutes[-1][0] - minutes[0][0] >= WINDOW_S / 2

    def means(self) -> dict[str, float]:
        """Each name's share over the window's minutes, in percent of a core."""
        count = 1000.0 * len(self.minutes)
        return {name: total / count for name, total in self.totals.items()}

    def enter(self, t: float, means: dict[str, float]) -> None:
        """Every name's mean joins its record; names with no entry left are forgotten (a
        process busy once a month is not kept all month)."""
        for name, mean in means.items():
            self.record_of(name).recent.append((t, mean))
        gone = [n for n, r in self.names.items() if not r.high and not r.largest(t)]
        for name in gone:
            if not self.names[name].recent:
                del self.names[name]

    def judge(self, t: float, means: dict[str, float], judged: bool) -> list[Event]:
        """The events of this share's episodes; with ``judged`` false (a drain while the
        machine is plugged in) no episode opens and the open ones end."""
        events = []
        open_ = [name for name, rec in self.names.items() if rec.high and name not in means]
        for name in [*means, *open_]:
            mean, rec = means.get(name, 0.0), self.names.get(name)
            if mean < MIN_PCT and (rec is None or not rec.high):
                continue  # under half a core nothing opens
            rec = self.record_of(name)
            largest = rec.largest(t)
            opens = rec.step(mean, largest, MIN_PCT, judged)
            if opens is None:
                continue
            data = {
                "mean_pct": round(mean, 1),
                "record_pct": round(largest, 1),
                "window_s": WINDOW_S,
            }
            events.append(Event(t, self.opens if opens else self.ends, name, data))
        return events

    def record_of(self, name: str) -> Record:
        rec = self.names.get(name)
        if rec is None:
            rec = self.names[name] = Record()
        return rec

    def state(self) -> dict[str, Any]:
        return {
            "minutes": [[end, dict(sums)] for end, sums in self.minutes],
            "names": {name: r.state() for name, r in self.names.items()},
        }

    def restore(self, state: dict[str, Any]) -> int:
        """Raises (``TypeError``, ``ValueError``, ``KeyError``) for a window that cannot be
        read; returns how many names were unreadable (each skipped)."""
        self.minutes = deque((float(end), _sums(sums)) for end, sums in state["minutes"])
        self.totals, self.present = {}, {}
        for _, sums in self.minutes:
            self._count(sums)
        skipped = 0
        for name, saved in dict(state.get("names", {})).items():
            try:
                rec = Record.read(saved)
            except (KeyError, TypeError, ValueError):
                skipped += 1
                continue
            self.names[str(name)] = rec
        return skipped


#: A minute closed: its end, and its last ranking (None: none).
Closed = tuple[float, Mapping[str, Scalar] | None]


class LastRankings:
    """The apps sensor ranks the processes once a minute (``rank_every_s``) and repeats the
    ranking at the polls in between, so a stage reads each minute once, by its last ranking
    (the per-sample cost is keeping a reference). Also when the stage began and when its
    record's next entry is due."""

    def __init__(self, kept: frozenset[str], first_entry_s: float) -> None:
        """``kept``: the ranking's fields the state keeps of the minute being read; the
        first entry is due ``first_entry_s`` after the first ranking."""
        self.first_t: float | None = None
        self.minute_end = 0.0
        self.last: Mapping[str, Scalar] | None = None  # the minute's last ranking
        self.next_entry = 0.0
        self._kept = kept
        self._first_entry_s = first_entry_s

    def read(self, t: float, data: Mapping[str, Scalar]) -> Closed | None:
        """A ranking at sample time ``t``. At the first one past the minute's end: that
        minute's end and its last ranking (None: none), and the next minute is the one ``t``
        falls in; else None."""
        closed = None
        if self.first_t is None:
            self.first_t, self.next_entry = t, t + self._first_entry_s
            self.minute_end = t - t % BUCKET_S + BUCKET_S
        elif t >= self.minute_end:
            closed = (self.minute_end, self.last)
            self.minute_end = t - t % BUCKET_S + BUCKET_S
        self.last = data
        return closed

    def entry_due(self, t: float) -> bool:
        """Whether the record's next entry is due at ``t`` (then the one after is set)."""
        if t < self.next_entry:
            return False
        self.next_entry = t + ENTRY_S
        return True

    def since(self, t: float) -> float:
        """How long the stage has read rankings, at ``t``."""
        return 0.0 if self.first_t is None else t - self.first_t

    def state(self) -> dict[str, Any]:
        last = None
        if self.last is not None:  # the minute being read: its ranking, as the sensor's
            last = {k: v for k, v in self.last.items() if k in self._kept}
        return {
            "first_t": self.first_t,
            "minute": [self.minute_end, last],
            "next_entry": self.next_entry,
        }

    def restore(self, state: dict[str, Any]) -> None:
        """Raises ``KeyError``, ``TypeError`` or ``ValueError`` for a state it cannot read."""
        end, last = state["minute"]
        first_t = state["first_t"]
        self.first_t = None if first_t is None else float(first_t)
        self.minute_end = float(end)
        self.last = None if last is None else {str(k): v for k, v in dict(last).items()}
        self.next_entry = float(state["next_entry"])


class ProcessLoads:
    """Watches each process's CPU over a quarter of an hour, in the background and whole."""

    def __init__(self) -> None:
        self._minutes = LastRankings(_RANKED | {FOCUSED_PROCESS}, WINDOW_S)
        self._on_battery = False
        self._background = _Shares("process.busy", "process.calm")
        self._whole = _Shares("process.drain", "process.drain_end")

    def feed(self, sample: Sample) -> list[Event]:
        """One sample -> the events it makes: the apps sensor's with a ranking count, and the
        battery's say whether it discharges."""
        data = sample.data
        if sample.sensor == "battery":
            charging = data.get("charging")
            if charging is True or charging is False:
                self._on_battery = not charging
            return []
        if sample.sensor != "apps" or "cpu1_name" not in data:
            return []
        closed = self._minutes.read(sample.t, data)
        return [] if closed is None else self._close_minute(*closed, sample.t)

    def _close_minute(self, end: float, last: Mapping[str, Scalar] | None, t: float) -> list[Event]:
        """Close the minute ending at ``end`` (its last ranking ``last``) and judge the
        window it ends, at sample time ``t``."""
        background_sums: dict[str, int] | None = None
        whole_sums: dict[str, int] | None = None
        if last is not None:
            background_sums, whole_sums = _shares_of(last)
        self._background.close_minute(end, t, background_sums)
        self._whole.close_minute(end, t, whole_sums)
        full = self._whole.full()  # (both shares hold the same minutes)
        background = self._background.means() if full else {}
        whole = self._whole.means() if full else {}
        if full and self._minutes.entry_due(t):
            self._background.enter(t, background)
            self._whole.enter(t, whole if self._on_battery else {})  # a drain's record
        if self._minutes.since(t) < SPAN_S:
            return []
        events = self._background.judge(t, background, True)
        return events + self._whole.judge(t, whole, self._on_battery)

    # -- state kept across restarts ------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        """The minutes of the window, and each name's entries (only the record's falling
        means) and episodes: a few kB."""
        return {
            **self._minutes.state(),
            "on_battery": self._on_battery,
            "background": self._background.state(),
            "whole": self._whole.state(),
        }

    def restore(self, state: dict[str, Any]) -> int:
        """Take back what ``state`` gave; returns how many names were unreadable (each
        skipped: its record starts afresh, the others are kept). A window that cannot be read
        raises (``TypeError``, ``ValueError``): the stage starts afresh."""
        try:
            self._minutes.restore(state)
            self._on_battery = bool(state["on_battery"])
            skipped = self._background.restore(state["background"])
            return skipped + self._whole.restore(state["whole"])
        except KeyError as exc:
            raise ValueError(f"missing {exc}") from exc


def _shares_of(data: Mapping[str, Scalar]) -> tuple[dict[str, int], dict[str, int]]:
    """One ranking's shares, in thousandths of a percent: those not the focused window's
    process (background), and every process's (whole)."""
    background: dict[str, int] = {}
    whole: dict[str, int] = {}
    focused = data.get(FOCUSED_PROCESS)
    for name_key, pct_key in RANKS:
        name = data.get(name_key)
        if not isinstance(name, str):
            break
        pct = data.get(pct_key)
        if isinstance(pct, float | int) and pct > 0.0:
            value = round(pct * 1000.0)
            whole[name] = whole.get(name, 0) + value
            if name != focused:
                background[name] = background.get(name, 0) + value
    return background, whole


def _sums(saved: Any) -> dict[str, int]:
    return {str(name): int(total) for name, total in dict(saved).items()}
