"""The apps sensor's rankings -> ``process.busy`` / ``process.calm`` events: a process busier
in the background over the last 15 minutes than in any 15 minutes of the last 4 days, by half
again, and at least half a core.

A runaway is a process nobody is looking at: an encoder or an indexer left spinning, a
helper stuck in a loop. The machine's CPU alone cannot tell it from a build or a video call,
which hold the same levels every afternoon; the process's own record can, and the focus
keeps out what the user is working in (a game started for the first time in weeks is busy,
and in front). So for each process name in the busiest ranking (``cpu<i>_name``,
``cpu<i>_pct``), its share counts only in samples where it is not the focused window's
process (``app_process``), and nothing where it is not ranked. Each name's mean over the
last ``WINDOW_S`` of samples (summed by the minute, judged as each minute closes) joins the
name's record every ``ENTRY_S``; once the sensor has ``SPAN_S`` behind it, a mean that is
``TIMES_RECORD`` times the name's largest entry of the last 4 days (leaving out the last
hour's, so a long run does not raise its own bar; a name never busy before has none) and at
least ``MIN_PCT`` opens an episode. It ends when the mean is back under that entry, and
under half of ``MIN_PCT``.

Where the focused window cannot be read (GNOME on Wayland, Android), every process counts as
in the background.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any

from agent.samples import FOCUSED_PROCESS, Event, Sample

SENSOR = "apps"
WINDOW_S = 900.0
BUCKET_S = 60.0
ENTRY_S = 300.0
SPAN_S = 4 * 86_400.0
#: Entries this recent are not the record yet: a run's own windows would raise its bar.
RECENT_S = 3_600.0
TIMES_RECORD = 1.5
#: Percent of one core: a quarter of an hour at less is never news.
MIN_PCT = 50.0
#: The busiest ranking's places read (the sensor's ``top_n`` is 3 by default).
RANKS = tuple((f"cpu{i}_name", f"cpu{i}_pct") for i in range(1, 11))


@dataclass(slots=True)
class _Record:
    """One process name's entries: recent ones, and the falling means of the rest."""

    recent: deque[tuple[float, float]] = field(default_factory=deque)
    record: deque[tuple[float, float]] = field(default_factory=deque)
    high: bool = False

    def largest(self, t: float) -> float:
        """The largest mean of the entries older than ``RECENT_S`` within ``SPAN_S``; 0 for
        none (each entry is added and dropped once)."""
        recent, record = self.recent, self.record
        while recent and recent[0][0] <= t - RECENT_S:
            entry = recent.popleft()
            while record and record[-1][1] <= entry[1]:
                record.pop()
            record.append(entry)
        while record and record[0][0] < t - SPAN_S:
            record.popleft()
        return record[0][1] if record else 0.0


class BackgroundCpu:
    """Watches each process's CPU in the background over a quarter of an hour."""

    def __init__(self) -> None:
        self._first_t: float | None = None
        self._minute_end = 0.0
        self._count = 0  # samples in the minute being summed
        self._sums: dict[str, float] = {}  # and each name's background share in them
        self._minutes: deque[tuple[float, int, dict[str, float]]] = deque()
        self._next_entry = 0.0
        self._names: dict[str, _Record] = {}

    def feed(self, sample: Sample) -> list[Event]:
        """One sample (only the apps sensor's with a ranking count) -> the events it makes."""
        data = sample.data
        if sample.sensor != SENSOR or "cpu1_name" not in data:
            return []
        t = sample.t
        events: list[Event] = []
        if self._first_t is None:
            self._first_t, self._next_entry = t, t + WINDOW_S
            self._minute_end = t - t % BUCKET_S + BUCKET_S
        elif t >= self._minute_end:
            events = self._close_minute(t)
        focused = data.get(FOCUSED_PROCESS)
        sums = self._sums
        for name_key, pct_key in RANKS:
            name = data.get(name_key)
            if not isinstance(name, str):
                break
            if name != focused:
                pct = data.get(pct_key)
                if isinstance(pct, float | int) and pct > 0.0:
                    sums[name] = sums.get(name, 0.0) + pct
        self._count += 1
        return events

    def _close_minute(self, t: float) -> list[Event]:
        """Close the minute being summed and judge the window it ends (at sample time ``t``,
        past its end); the next minute is the one ``t`` falls in."""
        minutes = self._minutes
        if self._count:
            minutes.append((self._minute_end, self._count, self._sums))
        self._minute_end = t - t % BUCKET_S + BUCKET_S
        self._count, self._sums = 0, {}
        while minutes and minutes[0][0] <= t - WINDOW_S:
            minutes.popleft()
        means: dict[str, float] = {}
        if minutes and minutes[-1][0] - minutes[0][0] >= WINDOW_S / 2:
            count = sum(m[1] for m in minutes)
            for _, _, sums in minutes:
                for name, total in sums.items():
                    means[name] = means.get(name, 0.0) + total
            means = {name: total / count for name, total in means.items()}
        if means and t >= self._next_entry:
            for name, mean in means.items():
                self._record(name).recent.append((t, mean))
            self._next_entry = t + ENTRY_S
            self._forget(t)
        assert self._first_t is not None
        if t - self._first_t < SPAN_S:
            return []
        events = []
        open_ = [name for name, rec in self._names.items() if rec.high and name not in means]
        for name in [*means, *open_]:
            event = _judge(name, self._record(name), t, means.get(name, 0.0))
            if event is not None:
                events.append(event)
        return events

    def _record(self, name: str) -> _Record:
        rec = self._names.get(name)
        if rec is None:
            rec = self._names[name] = _Record()
        return rec

    def _forget(self, t: float) -> None:
        """Names with no entry left in their 4 days and no episode open (a process busy once
        a month is not kept all month)."""
        gone = [n for n, r in self._names.items() if not r.high and not r.largest(t)]
        for name in gone:
            if not self._names[name].recent:
                del self._names[name]

    # -- state kept across restarts ------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        """The minutes of the window, and each name's entries (only the record's falling
        means) and episode: a few kB."""
        return {
            "first_t": self._first_t,
            "minute": [self._minute_end, self._count, dict(self._sums)],
            "minutes": [[end, count, dict(sums)] for end, count, sums in self._minutes],
            "next_entry": self._next_entry,
            "names": {
                name: {
                    "recent": [list(p) for p in r.recent],
                    "record": [list(p) for p in r.record],
                    "high": r.high,
                }
                for name, r in self._names.items()
            },
        }

    def restore(self, state: dict[str, Any]) -> int:
        """Take back what ``state`` gave; returns how many names were unreadable (each
        skipped: its record starts afresh, the others are kept). A window that cannot be read
        raises (``TypeError``, ``ValueError``): the stage starts afresh."""
        first_t = state.get("first_t")
        try:
            end, count, sums = state["minute"]
            minutes = deque((float(e), int(n), _sums(s)) for e, n, s in state.get("minutes", []))
            self._minute_end, self._count, self._sums = float(end), int(count), _sums(sums)
            self._next_entry = float(state["next_entry"])
        except KeyError as exc:
            raise ValueError(f"missing {exc}") from exc
        self._first_t = None if first_t is None else float(first_t)
        self._minutes = minutes
        skipped = 0
        for name, saved in dict(state.get("names", {})).items():
            try:
                rec = _Record(
                    deque((float(t), float(v)) for t, v in saved["recent"]),
                    deque((float(t), float(v)) for t, v in saved["record"]),
                    bool(saved["high"]),
                )
            except (KeyError, TypeError, ValueError):
                skipped += 1
                continue
            self._names[str(name)] = rec
        return skipped


def _sums(saved: Any) -> dict[str, float]:
    return {str(name): float(total) for name, total in dict(saved).items()}


def _judge(name: str, rec: _Record, t: float, mean: float) -> Event | None:
    largest = rec.largest(t)
    if rec.high:
        if mean > max(largest, MIN_PCT / 2):
            return None
        rec.high = False
        kind = "process.calm"
    elif mean >= max(TIMES_RECORD * largest, MIN_PCT):
        rec.high = True
        kind = "process.busy"
    else:
        return None
    data = {"mean_pct": round(mean, 1), "record_pct": round(largest, 1), "window_s": WINDOW_S}
    return Event(t, kind, name, data)
