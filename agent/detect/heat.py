"""System samples -> ``heat.high`` / ``heat.end`` events: a CPU temperature far above what
this machine's CPU load usually gives it (a blocked fan, dust, a dead thermal paste).

A laptop that plays games every evening runs at 90 °C then, so a hot CPU is no news by its
value; a hot CPU at a load that usually leaves it at 60 °C is. Each minute of sample time
counts its mean temperature (to ``BIN_C``) in the *band* of its load (``BAND_PCT`` points of
CPU use wide), in a histogram per band and day of sample time, for ``SPAN_DAYS`` days and the
day under way (a few kB of state; a judgement merges a few hundred counts). A minute is
judged against the band of the largest load of its last ``LOAD_MINUTES`` minutes (a machine
cooling after a build is judged by the build), or that band and its neighbours while the
band alone holds fewer than ``MIN_MINUTES``. It is learned in the band of its *smoothed*
load, the minutes' CPU use averaged exponentially over ``LEARN_TAU_MIN`` minutes: a heat
sink takes minutes to heat and to cool, so a minute's own load says little of its
temperature at the start or the end of a burst. Learned by their own load, the bands of a
light load held such minutes and too narrow a spread (on a generated laptop, a browser's
four minutes at 28 % and 62 °C were three spreads over the 50 °C they had learned, and woke
the larger model); by the smoothed load, the same minutes are judged against 53 °C and a
spread of 5.6.

A minute is hot when it is ``MIN_OVER_C`` above the band's median and ``SPREADS`` of the
band's own spread (its interquartile range, as a standard deviation, at least
``MIN_SPREAD_C``). Each band its own spread: an idle machine's temperature wanders by ten
degrees with the room and the sun, a loaded one's by two. ``HOT_MINUTES`` hot minutes in a
row open an episode, and it ends when a minute is within half the spreads again; its minutes
are not learned, so a fan that stays blocked does not become the band's usual. Judged once
``SETTLED_S`` of sample time is behind the first minute (a new install's first days hold few
minutes under load).
"""

from __future__ import annotations

import math
from collections import Counter, deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from agent.samples import Event, Sample

#: The streams read (the system sensor's CPU use and temperature).
TEMP = "system.temp_C"
CPU = "system.cpu_pct"
#: Width of a band of CPU load, in points.
BAND_PCT = 10.0
#: Whole days of sample time a minute stays in its band (and the day under way).
SPAN_DAYS = 4
#: Temperatures are counted to this resolution.
BIN_C = 0.5
#: A minute is judged by the largest load of this many minutes (its own included).
LOAD_MINUTES = 5
#: A minute is learned at its load averaged exponentially over this many minutes. Chosen on
#: bench/escalation.py's development seeds 2, 5 and 6 (blocked fans found of 6, heat.high
#: outside any incident, the first's minutes into its fan summed): learned at the minute's
#: own load 6, 1, 49; at 1 minute 6, 0, 47; 2 and 3 minutes 6, 0, 47; 5 minutes 6, 0, 48;
#: 10 minutes 5, 0.
LEARN_TAU_MIN = 3.0
#: A band (with its neighbours) needs this many minutes to judge.
MIN_MINUTES = 60
#: Hot: this far above the band's median, in degrees and in the band's spreads.
MIN_OVER_C = 8.0
SPREADS = 3.0
MIN_SPREAD_C = 1.0
#: Hot minutes in a row that open an episode.
HOT_MINUTES = 2
#: Sample time from the first minute before any is judged.
SETTLED_S = 2 * 86_400.0


#: How hot a minute is: degrees and spreads above its band's median, the median, the spread.
_Judged = tuple[float, float, float, float]


@dataclass
class _Minute:
    """The minute being summed."""

    index: int
    cpu: float = 0.0
    temp: float = 0.0
    n: int = 0


@dataclass
class HeatAtLoad:
    """Watches the CPU temperature against the load's usual temperature."""

    first_minute: int | None = None
    #: band -> day -> temperature bin -> minutes
    bands: dict[int, dict[int, Counter[int]]] = field(default_factory=dict)
    loads: deque[tuple[int, float]] = field(default_factory=lambda: deque(maxlen=LOAD_MINUTES))
    #: (minute, load averaged over ``LEARN_TAU_MIN``) of the last minute closed
    smoothed: tuple[int, float] | None = None
    hot_run: int = 0
    high: bool = False
    _now: _Minute | None = None
    #: band -> its days' histograms summed (kept as they change; not saved)
    _totals: dict[int, Counter[int]] = field(default_factory=dict)
    _day: int | None = None  # the day of the last minute closed (days expire when it moves)

    def feed(self, sample: Sample, values: dict[str, float]) -> Sequence[Event]:
        """One system sample's stream values -> the events its finished minute makes (the
        minute being summed is reused: most samples make no object)."""
        temp, cpu = values.get(TEMP), values.get(CPU)
        if temp is None or cpu is None or not (math.isfinite(temp) and math.isfinite(cpu)):
            return ()
        index = math.floor(sample.t / 60.0)
        now = self._now
        if now is None:
            now = self._now = _Minute(index)
        event = None
        if index != now.index:
            event = self._close(now, sample.t)
            now.index, now.cpu, now.temp, now.n = index, 0.0, 0.0, 0
        now.cpu += cpu
        now.temp += temp
        now.n += 1
        return () if event is None else (event,)

    def _close(self, minute: _Minute, t: float) -> Event | None:
        """Judge a finished minute, then learn it (unless it was part of an episode)."""
        cpu, temp = minute.cpu / minute.n, minute.temp / minute.n
        index = minute.index
        if self.first_minute is None:
            self.first_minute = index
        loads = self.loads
        while loads and loads[0][0] <= index - LOAD_MINUTES - 2:  # not across a long pause
            loads.popleft()
        loads.append((index, cpu))
        load = max(c for _, c in loads)
        learned_at = self._smooth(index, cpu)
        day = index // 1440
        if day != self._day:
            self._expire(day)
        event = None
        judged = self._judge(index, temp, load)
        if judged is not None:
            over, spreads, median, spread = judged
            if self.high and spreads < SPREADS / 2:
                self.high, self.hot_run = False, 0
                event = "heat.end"
            elif not self.high:
                hot = over >= MIN_OVER_C and spreads >= SPREADS
                self.hot_run = self.hot_run + 1 if hot else 0
                if self.hot_run >= HOT_MINUTES:
                    self.high = True
                    event = "heat.high"
        if not self.high:
            band, temp_bin = _band(learned_at), round(temp / BIN_C)
            self.bands.setdefault(band, {}).setdefault(day, Counter())[temp_bin] += 1
            self._totals.setdefault(band, Counter())[temp_bin] += 1
        if event is None or judged is None:
            return None
        data = {
            "temp_C": round(temp, 1),
            "usual_C": round(judged[2], 1),
            "spread_C": round(judged[3], 1),
            "cpu_pct": round(load, 1),
        }
        return Event(t, event, TEMP, data)

    def _smooth(self, index: int, cpu: float) -> float:
        """The load averaged over ``LEARN_TAU_MIN`` up to minute ``index`` (``cpu`` its own),
        started again after a pause of more than ``LOAD_MINUTES + 2`` minutes."""
        last = self.smoothed
        if last is None or index - last[0] > LOAD_MINUTES + 2:
            smoothed = cpu
        else:
            weight = 1.0 - math.exp(-(index - last[0]) / LEARN_TAU_MIN)
            smoothed = last[1] + (cpu - last[1]) * weight
        self.smoothed = (index, smoothed)
        return smoothed

    def _judge(self, index: int, temp: float, load: float) -> _Judged | None:
        """How far above its load band's usual temperature a minute is: degrees, spreads,
        the band's median and spread; None while the band or the machine is too young."""
        if self.first_minute is None or (index - self.first_minute) * 60.0 < SETTLED_S:
            return None
        band = _band(load)
        counts = self._counts((band,))
        total = sum(counts.values())
        if total < MIN_MINUTES:
            counts = self._counts((band - 1, band, band + 1))
            total = sum(counts.values())
            if total < MIN_MINUTES:
                return None
        q25, median, q75 = _quantiles(counts, total, (0.25, 0.5, 0.75))
        spread = max((q75 - q25) / 1.349, MIN_SPREAD_C)
        over = temp - median
        return over, over / spread, median, spread

    def _counts(self, bands: tuple[int, ...]) -> Counter[int]:
        if len(bands) == 1:
            return self._totals.get(bands[0], Counter())
        merged: Counter[int] = Counter()
        for band in bands:
            merged.update(self._totals.get(band, ()))
        return merged

    def _expire(self, day: int) -> None:
        """Forget the days older than ``SPAN_DAYS`` before ``day``."""
        self._day = day
        for band, days in self.bands.items():
            old = [d for d in days if d < day - SPAN_DAYS]
            if old:
                total = self._totals[band]
                for d in old:
                    total.subtract(days.pop(d))
                self._totals[band] = +total  # (drops the bins left at zero)

    # -- state kept across restarts ------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        """The bands' histograms by day, the recent loads, the episode, and the minute being
        summed."""
        now = self._now
        return {
            "first_minute": self.first_minute,
            "bands": {
                str(b): {str(d): sorted(c.items()) for d, c in days.items()}
                for b, days in self.bands.items()
            },
            "loads": [[i, round(c, 2)] for i, c in self.loads],
            "smoothed": None if self.smoothed is None else [self.smoothed[0], self.smoothed[1]],
            "hot_run": self.hot_run,
            "high": self.high,
            "now": None if now is None else [now.index, now.cpu, now.temp, now.n],
        }

    def restore(self, state: dict[str, Any]) -> int:
        """Take back what ``state`` gave; returns how many bands were unreadable (each
        skipped: it fills again)."""
        skipped = 0
        first = state.get("first_minute")
        self.first_minute = None if first is None else int(first)
        for key, days in dict(state.get("bands", {})).items():
            try:
                self.bands[int(key)] = {
                    int(d): Counter({int(b): int(n) for b, n in counts})
                    for d, counts in dict(days).items()
                }
            except (TypeError, ValueError):
                skipped += 1
        self._totals = {b: sum(days.values(), Counter()) for b, days in self.bands.items()}
        self._day = None
        self.loads.extend((int(i), float(c)) for i, c in state.get("loads", []))
        smoothed = state.get("smoothed")  # (none in a state saved before it was kept)
        self.smoothed = None if smoothed is None else (int(smoothed[0]), float(smoothed[1]))
        self.hot_run = int(state.get("hot_run", 0))
        self.high = bool(state.get("high", False))
        now = state.get("now")
        if now is not None:
            index, cpu, temp, n = now
            self._now = _Minute(int(index), float(cpu), float(temp), int(n))
        return skipped


def _band(load: float) -> int:
    return int(min(max(load, 0.0), 100.0) // BAND_PCT)


def _quantiles(counts: Counter[int], total: int, qs: tuple[float, ...]) -> list[float]:
    """Quantiles of a histogram of ``total`` counts (the nearest rank, at each bin's
    temperature)."""
    bins = sorted(counts.items())
    out: list[float] = []
    for q in qs:
        rank, seen = q * (total - 1), 0
        for b, n in bins:
            seen += n
            if seen > rank:
                out.append(b * BIN_C)
                break
    return out
