"""Byte rates -> ``volume.high`` / ``volume.end`` events: more moved in the last 15 minutes
than in any 15 minutes of the last 4 days, by half again; or, at an hour of the day when
the stream is usually quiet, many times more than at this hour on the days before.

What a transfer or a disk burst costs (battery, a data plan, a disk's wear) is its volume,
and a laptop's rates are spiky: a second of 20 MB/s is an ordinary page load or build, while
a quarter of an hour at a tenth of that is an upload or a backup. So each byte-rate stream
(``*_Bps``) keeps the mean of its last ``WINDOW_S`` of sample time (summed by the minute,
judged as each minute closes), and every ``ENTRY_S`` that mean joins a record of the
stream's last ``SPAN_S``. From the stream's second day, a window whose mean is
``TIMES_RECORD`` times the largest entry (leaving out the last hour's, so a long burst does
not raise its own bar) opens an episode, and it ends when the mean is back under that
largest entry; until the record spans its days, both bars are ``YOUNG_TIMES`` higher, and
a window must also be ``TIMES_HOUR`` times the largest entry near this time of day on the
days so far (a new install's first day holds few of the machine's routines: a day's record
alone made the next day's updates, builds and first video call news). Windows that moved
less than ``MIN_BYTES`` are never news.

A disk scan at 04:00 can move no more than the afternoon's largest burst (a swap storm's
reads, a backup) and still be unlike anything at that hour: so each stream also keeps its
largest entry in each hour of the last days, and where at least ``HOUR_DAYS`` of the last
4 days had entries within an hour of this time of day, a window ``TIMES_HOUR`` times the
largest of those, and at least ``SHARE_OF_RECORD`` of the 4-day record, opens an episode
too (it ends back under that bar by ``TIMES_RECORD``). A routine of the hour (a nightly
backup) sets its own bar; the day's calls and videos at an hour new to them stay within
``TIMES_HOUR`` (about ten times, on the development seeds, where night scans and uploads
were a hundred times and more).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any

from agent.detect.anomaly.comove import RATE_SUFFIX
from agent.samples import Event, Sample

HOUR_S = 3_600.0
DAY_S = 86_400.0
WINDOW_S = 900.0
#: Readings are summed by the minute: a reading costs two additions, and the window's mean
#: is judged once a minute, when a minute closes.
BUCKET_S = 60.0
ENTRY_S = 300.0
SPAN_S = 4 * DAY_S
#: Entries this recent are not the record yet: a burst's own windows would raise its bar.
RECENT_S = HOUR_S
TIMES_RECORD = 1.5
MIN_BYTES = 1e6
#: The hour's bar: this many times the largest entry within an hour of this time of day on
#: the last days (those of ``SPAN_S``; today's never count), where at least ``HOUR_DAYS`` of
#: them had one, and at least this share of the 4-day record.
TIMES_HOUR = 20.0
HOUR_DAYS = 2
SHARE_OF_RECORD = 0.25
#: A record younger than ``SPAN_S`` (judged from the stream's second day) has its bars this many
#: times higher: a new install's first days hold few of the machine's routines. Its window
#: must also pass ``TIMES_HOUR`` times the largest entry near this hour on the days so far
#: (one is enough): the first video call after an install is no news at an hour that saw
#: calls' smaller cousins the day before.
YOUNG_TIMES = 3.0
#: The samples' rate names are looked for again when a sample's size changes, and at least
#: this often (a device swapped for another keeps the size).
RESCAN_EVERY = 256


@dataclass(slots=True)
class _Rate:
    first_t: float
    minute_end: float  # the end of the minute being summed
    total: float = 0.0  # that minute's sum and count
    count: int = 0
    minutes: deque[tuple[float, float, int]] = field(default_factory=deque)  # (end, sum, n)
    window_total: float = 0.0  # the minutes' sums and counts, kept as they come and go
    window_count: int = 0
    next_entry: float = 0.0
    recent: deque[tuple[float, float]] = field(default_factory=deque)  # not the record yet
    record: deque[tuple[float, float]] = field(default_factory=deque)  # falling means
    high: bool = False
    hours: dict[int, float] = field(default_factory=dict)  # hour index -> largest entry

    def add_entry(self, t: float, mean: float) -> None:
        """An entry for the record and for its hour (hours past the span forgotten)."""
        self.recent.append((t, mean))
        self.next_entry = t + ENTRY_S
        hour = int(t // HOUR_S)
        hours = self.hours
        if mean > hours.get(hour, -1.0):
            hours[hour] = mean
        if len(hours) > SPAN_S / HOUR_S + 2:  # (an hour's first entry: one falls out)
            oldest = hour - int(SPAN_S / HOUR_S) - 1
            for old in [h for h in hours if h < oldest]:
                del hours[old]

    def at_hour(self, t: float) -> tuple[float, int]:
        """The largest entry within an hour of this time of day on the last days, and how
        many of those days had one (0.0 and 0 for none)."""
        hour, days, largest = int(t // HOUR_S), 0, 0.0
        for back in range(1, int(SPAN_S / DAY_S) + 1):
            seen = [
                v for o in (-1, 0, 1) if (v := self.hours.get(hour - 24 * back + o)) is not None
            ]
            if seen:
                days += 1
                largest = max(largest, *seen)
        return largest, days

    def close_minute(self, t: float) -> float | None:
        """Close the minute being summed (at reading time ``t``, past its end) and start
        the one ``t`` falls in; the mean of the last ``WINDOW_S``, once its minutes span at
        least half of it (after a pause a single minute is no quarter of an hour)."""
        minutes = self.minutes
        if self.count:
            minutes.append((self.minute_end, self.total, self.count))
            self.window_total += self.total
            self.window_count += self.count
        self.minute_end = t - t % BUCKET_S + BUCKET_S
        self.total, self.count = 0.0, 0
        while minutes and minutes[0][0] <= t - WINDOW_S:
            _, total, count = minutes.popleft()
            self.window_total -= total
            self.window_count -= count
        if not minutes:
            self.window_total, self.window_count = 0.0, 0  # (no drift carried past a pause)
            return None
        if minutes[-1][0] - minutes[0][0] < WINDOW_S / 2:
            return None
        return self.window_total / self.window_count

    def largest(self, t: float) -> float | None:
        return largest_entry(self.recent, self.record, t)


def read_entries(saved: Any) -> deque[tuple[float, float]]:
    """A record's saved entries, ``[[t, mean], ...]`` (raises on anything else)."""
    return deque((float(t), float(v)) for t, v in saved)


def largest_entry(
    recent: deque[tuple[float, float]], record: deque[tuple[float, float]], t: float
) -> float | None:
    """The largest mean of a record at time ``t``: of the entries older than ``RECENT_S``
    within ``SPAN_S``. ``recent`` holds the newer entries in time order, ``record`` only the
    falling means among the older ones (a larger entry retires the smaller ones before it),
    so each entry is added and dropped once."""
    while recent and recent[0][0] <= t - RECENT_S:
        entry = recent.popleft()
        while record and record[-1][1] <= entry[1]:
            record.pop()
        record.append(entry)
    while record and record[0][0] < t - SPAN_S:
        record.popleft()
    return record[0][1] if record else None


class RateVolumes:
    """Watches every byte-rate stream's volume over a quarter of an hour."""

    def __init__(self) -> None:
        self._rates: dict[str, _Rate] = {}
        self._watched: tuple[tuple[str, _Rate], ...] = ()  # the byte rates the samples carry
        self._shape = (-1, 0)  # (how many values a sample had, samples since a look)

    def feed(self, sample: Sample, values: dict[str, float]) -> list[Event]:
        """One sample's stream values (``stream_values``) -> the events they make."""
        t = sample.t
        size, since = self._shape
        if len(values) != size or since >= RESCAN_EVERY:  # a device came or went: look again
            self._watched = tuple((n, self._rate(n, t)) for n in values if n.endswith(RATE_SUFFIX))
            size, since = len(values), 0
        self._shape = (size, since + 1)
        events: list[Event] = []
        for name, rate in self._watched:
            value = values.get(name)
            if value is None:
                continue
            if t >= rate.minute_end:
                mean = rate.close_minute(t)
                if mean is not None:
                    if t >= rate.next_entry:
                        rate.add_entry(t, mean)
                    if t - rate.first_t >= DAY_S:
                        event = _judge(name, rate, t, mean)
                        if event is not None:
                            events.append(event)
            rate.total += value
            rate.count += 1
        return events

    def _rate(self, name: str, t: float) -> _Rate:
        rate = self._rates.get(name)
        if rate is None:
            end = t - t % BUCKET_S + BUCKET_S
            rate = self._rates[name] = _Rate(first_t=t, minute_end=end, next_entry=t + WINDOW_S)
        return rate

    # -- state kept across restarts ------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        """Each rate's minutes, record and episode. The record keeps only its falling
        means (a larger entry retires the smaller ones before it): a few kB in all."""
        return {
            name: {
                "first_t": r.first_t,
                "minute": [r.minute_end, r.total, r.count],
                "minutes": [list(m) for m in r.minutes],
                "window": [r.window_total, r.window_count],  # the running sums themselves
                "next_entry": r.next_entry,
                "recent": [list(p) for p in r.recent],
                "record": [list(p) for p in r.record],
                "high": r.high,
                "hours": [[h, v] for h, v in r.hours.items()],
            }
            for name, r in self._rates.items()
        }

    def restore(self, state: dict[str, Any]) -> int:
        """Take back what ``state`` gave; returns how many rates were unreadable (each
        skipped: its record starts afresh, the others are kept)."""
        skipped = 0
        for name, saved in state.items():
            try:
                end, total, count = saved["minute"]
                window_total, window_count = saved["window"]
                rate = _Rate(
                    float(saved["first_t"]),
                    float(end),
                    float(total),
                    int(count),
                    deque((float(e), float(s), int(n)) for e, s, n in saved["minutes"]),
                    float(window_total),
                    int(window_count),
                    float(saved["next_entry"]),
                    read_entries(saved["recent"]),
                    read_entries(saved["record"]),
                    bool(saved["high"]),
                    {int(h): float(v) for h, v in saved.get("hours", [])},  # (none before)
                )
            except (KeyError, TypeError, ValueError):
                skipped += 1
                continue
            self._rates[str(name)] = rate
        self._watched, self._shape = (), (-1, 0)  # looked for again, among the restored
        return skipped


def _judge(name: str, rate: _Rate, t: float, mean: float) -> Event | None:
    largest = rate.largest(t)
    if largest is None:
        return None
    bar = TIMES_RECORD * largest
    hour: tuple[float, int] | None = None  # (the hour's largest, on how many days): asked once
    at_hour = None  # the hour's largest, where it set a bar
    if rate.high or mean > SHARE_OF_RECORD * largest:  # (the hour's bar is never under it)
        hour = rate.at_hour(t)
        if hour[1] >= HOUR_DAYS:
            at_hour = hour[0]
            bar = min(bar, max(TIMES_HOUR * at_hour, SHARE_OF_RECORD * largest))
    if t - rate.first_t < SPAN_S:
        bar *= YOUNG_TIMES
        if rate.high or mean > bar:  # and past what this hour saw on the days so far
            if hour is None:
                hour = rate.at_hour(t)
            if hour[1] >= 1:
                at_hour = hour[0]
                bar = max(bar, TIMES_HOUR * at_hour)
    if rate.high:
        if mean > bar / TIMES_RECORD:
            return None
        rate.high = False
        kind = "volume.end"
    elif mean > bar and mean * WINDOW_S >= MIN_BYTES:
        rate.high = True
        kind = "volume.high"
    else:
        return None
    data = {"mean_Bps": round(mean, 1), "record_Bps": round(largest, 1), "window_s": WINDOW_S}
    if at_hour is not None:
        data["hour_record_Bps"] = round(at_hour, 1)
    return Event(t, kind, name, data)
