"""A development anomaly corpus in the Numenta Anomaly Benchmark's layout, all generated.

vigil's detector is evaluated on NAB (``bench/nab.py``, ``bench/nab_log.md``) and must never be
tuned on it. This script writes a corpus to tune on instead: series that behave like machine
metrics and sensors (seasonal load, wandering temperatures, bursty counts, quantised readings,
sawtooth charge cycles, flat levels with normal plateaus, heavy-tailed latencies, slow trends)
at many scales, with known anomalies injected after NAB's probationary period and labelled
with NAB's windows. Two categories test what one series at a time cannot: ``devContext``
(a work machine's CPU with busy weekday hours; after two weeks, the working hours' level for
1.5 to 4 hours at night, a value usual at 14:00 and never seen at night) and
``devMultivariate`` (``bench/multivariate.py``'s servers of 20 to 40 correlated metrics a
minute for 8 days, other seeds than that bench's, faults in the second half: a metric that
decouples, a leak, a stuck group, a shift), each with one clean file in ``devNoAnomaly``.
``devSteady`` has steady readings with short-memory Gaussian noise, the series NAB's
windowed Gaussian baseline is made for (it scores nothing on the rest of the corpus).
The layout is NAB's, so ``bench/nab.py --data DIR`` scores it (a server's file has a column
per metric, fed as one ``system`` source and scored by the source's score):

    DIR/data/<category>/<file>.csv     timestamp,value every 5 minutes (a server's:
                                       timestamp and one column per metric, every minute)
    DIR/labels/combined_windows.json   {"<category>/<file>.csv": [[start, end], ...]}
    DIR/labels/dev_anomalies.json      what was injected: kind, onset row and time
    DIR/config/profiles.json           NAB's three cost profiles

Windows follow NAB's rule: a file's windows together cover 10 % of its rows, one window per
anomaly centred on the anomaly's onset. Anomalies start after the first 15 % of the rows;
transient ones (a stuck sensor, a dropout) end inside their window, so a detector is not
penalised for flagging their end. Files of ``devNoAnomaly`` (about 15 %) have none at all.
The output depends only on the seed (numpy ``default_rng``).

    python bench/dev_corpus.py --out DIR [--seed N] [--files-per-kind K]
    python bench/nab.py --data DIR --out RESULTS
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import numpy.typing as npt

F64 = npt.NDArray[np.float64]
Rng = np.random.Generator
SeasonFn = Callable[[F64], F64]

STEP = np.timedelta64(5, "m")
DAY = 288  # rows of 5 minutes
WEEK = 7 * DAY
EPOCH = np.datetime64("1970-01-05T00:00", "m")  # a Monday: row 0 of the seasonal clock
FIRST_START = np.datetime64("2013-01-07T00:00", "m")
START_SPAN_ROWS = 4 * 365 * DAY  # files start anywhere in the four years after FIRST_START
MIN_ROWS, MAX_ROWS = 2000, 6000
PROBATION = 0.15  # NAB's probationary fraction: no anomaly starts before it
WINDOW_FRACTION = 0.10  # NAB: a file's windows together cover 10 % of its rows
NO_ANOMALY_SHARE = 0.15
ANOMALY_COUNTS = (1, 2, 3, 4)
ANOMALY_COUNT_WEIGHTS = (0.3, 0.3, 0.25, 0.15)
VALUE_FORMAT = ".12g"
NO_ANOMALY = "devNoAnomaly"
PROFILES = {  # NAB's config/profiles.json: (tp, fp, fn, tn) weights
    "standard": (1.0, 0.11, 1.0, 1.0),
    "reward_low_FP_rate": (1.0, 0.22, 1.0, 1.0),
    "reward_low_FN_rate": (1.0, 0.11, 2.0, 1.0),
}


# ---- normal behaviour ------------------------------------------------------------------------


@dataclass
class Model:
    """A normal series before it is drawn: ``level + season(clock) + noise``, then (``counts``)
    a Poisson count of that mean, clipped to ``lo``..``hi`` and rounded to ``step``.

    ``season`` maps the seasonal clock (rows since a Monday midnight, possibly time-warped) to
    the periodic part, so an anomaly can change its period. ``floor`` is the smallest change
    that is clearly visible in this quantity (anomalies are never sized below it)."""

    level: F64
    season: SeasonFn
    noise: F64
    counts: bool = False
    lo: float | None = None
    hi: float | None = None
    step: float | None = None
    floor: float = 0.0


def _no_season(t: F64) -> F64:
    return np.zeros_like(t)


def _daily(t: F64, peak: float, sharp: float) -> F64:
    """A daily bump in [0, 1], highest at row ``peak`` of the day; ``sharp`` narrows it."""
    return np.asarray((0.5 * (1.0 + np.cos(2.0 * np.pi * (t - peak) / DAY))) ** sharp)


def _weekend(t: F64, factor: float, peak: float) -> F64:
    """1 on weekdays, ``factor`` on Saturdays and Sundays. A day here runs from trough to
    trough of a daily bump peaking at row ``peak``, so the bump scaled by it stays smooth."""
    return np.where(np.floor((t - peak + DAY / 2) / DAY) % 7 >= 5, factor, 1.0)


def ar1(n: int, tau: float, sd: float, rng: Rng) -> F64:
    """A mean-reverting random walk (AR(1), correlation time ``tau`` rows, stationary ``sd``)."""
    phi = math.exp(-1.0 / tau)
    shocks = rng.normal(0.0, sd * math.sqrt(1.0 - phi * phi), n).tolist()
    x = float(rng.normal(0.0, sd))
    out = np.empty(n)
    for j, e in enumerate(shocks):
        x = phi * x + e
        out[j] = x
    return out


def _plateaus(n: int, count: int, rows: tuple[int, int], rng: Rng) -> list[tuple[int, int]]:
    """``count`` (start, end) row ranges of random lengths in ``rows``."""
    starts = rng.integers(0, n, count)
    lengths = rng.integers(rows[0], rows[1] + 1, count)
    return [(int(s), int(s + d)) for s, d in zip(starts, lengths, strict=True)]


def _busy_season(rng: Rng, amp: float) -> SeasonFn:
    """A busy-hours bump of height ``amp``, lower at weekends."""
    peak, sharp, weekend = rng.uniform(0, DAY), rng.uniform(0.5, 3.0), rng.uniform(0.2, 1.0)

    def season(t: F64) -> F64:
        return amp * _daily(t, peak, sharp) * _weekend(t, weekend, peak)

    return season


def cpu(n: int, clock: F64, rng: Rng) -> Model:
    """CPU percent: a busy-hours bump, quieter weekends, Gaussian noise, within 0-100."""
    base, amp = rng.uniform(3.0, 30.0), rng.uniform(10.0, 50.0)
    noise = rng.normal(0.0, rng.uniform(0.5, 4.0), n)
    return Model(np.full(n, base), _busy_season(rng, amp), noise, lo=0.0, hi=100.0, floor=5.0)


def requests(n: int, clock: F64, rng: Rng) -> Model:
    """Requests per 5 minutes, from tens to tens of millions: a daily and weekly pattern,
    noise proportional to the load, Poisson counts."""
    base = 10.0 ** rng.uniform(0.5, 6.0)
    season = _busy_season(rng, base * rng.uniform(0.5, 5.0))
    noise = rng.normal(0.0, rng.uniform(0.02, 0.1), n) * (base + season(clock))
    return Model(np.full(n, base), season, noise, counts=True, lo=0.0, floor=0.2 * base)


def connections(n: int, clock: F64, rng: Rng) -> Model:
    """Open connections: small integers (Poisson) following the working day."""
    base = 10.0 ** rng.uniform(0.3, 2.0)
    season = _busy_season(rng, base * rng.uniform(0.5, 3.0))
    noise = rng.normal(0.0, 0.05 * base, n)
    return Model(np.full(n, base), season, noise, counts=True, lo=0.0, floor=max(2.0, 0.5 * base))


def temperature(n: int, clock: F64, rng: Rng) -> Model:
    """A temperature (freezer, room or machine): a mean-reverting walk, a small daily swing."""
    low, high = [(-30.0, -10.0), (15.0, 35.0), (40.0, 90.0)][int(rng.integers(3))]
    sd = rng.uniform(0.3, 3.0)
    walk = rng.uniform(low, high) + ar1(n, rng.uniform(50.0, 800.0), sd, rng)
    amp, peak = sd * rng.uniform(0.0, 1.0), rng.uniform(0, DAY)

    def season(t: F64) -> F64:
        return amp * np.cos(2.0 * np.pi * (t - peak) / DAY)

    noise = rng.normal(0.0, sd * rng.uniform(0.02, 0.15), n)
    return Model(walk, season, noise, floor=sd)


QUANTISED_SENSORS = (  # (lowest mean, highest mean, resolution)
    (990.0, 1030.0, 0.1),  # air pressure, hPa
    (30.0, 70.0, 1.0),  # relative humidity, %
    (18.0, 25.0, 0.5),  # room temperature, degrees
    (400.0, 900.0, 10.0),  # CO2, ppm
    (0.05, 0.5, 0.01),  # a small gauge
)


def quantised(n: int, clock: F64, rng: Rng) -> Model:
    """A slowly wandering sensor reported at a coarse resolution (long runs of one value)."""
    low, high, step = QUANTISED_SENSORS[int(rng.integers(len(QUANTISED_SENSORS)))]
    sd = step * rng.uniform(2.0, 10.0)
    walk = rng.uniform(low, high) + ar1(n, rng.uniform(100.0, 1000.0), sd, rng)
    amp, peak = sd * rng.uniform(0.0, 0.8), rng.uniform(0, DAY)

    def season(t: F64) -> F64:
        return amp * np.cos(2.0 * np.pi * (t - peak) / DAY)

    noise = rng.normal(0.0, step * rng.uniform(0.1, 0.4), n)
    return Model(walk, season, noise, step=step, floor=3.0 * step)


def disk_used(n: int, clock: F64, rng: Rng) -> Model:
    """Bytes used on a volume (1e8-1e10): a slow growth with a random walk on it, in blocks."""
    start = 10.0 ** rng.uniform(8.0, 10.0)
    per_row = start * rng.uniform(0.05, 0.6) / n
    walk = np.cumsum(rng.normal(0.0, per_row * rng.uniform(0.5, 3.0), n))
    level = start + per_row * np.arange(n) + walk
    noise = rng.normal(0.0, per_row * rng.uniform(0.2, 2.0), n)
    return Model(level, _no_season, noise, lo=0.0, step=4096.0, floor=20.0 * per_row)


def latency(n: int, clock: F64, rng: Rng) -> Model:
    """A response time in seconds (0.01-5): heavy-tailed noise (|Student t|), a daily bump."""
    base = 10.0 ** rng.uniform(-2.0, 0.7)
    tails = np.abs(rng.standard_t(rng.uniform(1.8, 3.5), n))
    noise = base * rng.uniform(0.05, 0.25) * (tails - np.median(tails))
    season = _busy_season(rng, base * rng.uniform(0.0, 0.5))
    return Model(np.full(n, base), season, noise, lo=0.0, floor=0.5 * base)


def disk_writes(n: int, clock: F64, rng: Rng) -> Model:
    """Bytes written per 5 minutes: an hourly cron burst, a bigger nightly job lasting a few
    rows, and unscheduled normal bursts over a log-normal baseline."""
    base = 10.0 ** rng.uniform(3.0, 7.0)
    slot, hourly = int(rng.integers(12)), base * rng.uniform(2.0, 15.0)
    night, night_rows = int(rng.integers(DAY)), int(rng.integers(1, 7))
    nightly = base * rng.uniform(15.0, 100.0)

    def season(t: F64) -> F64:
        row = np.floor(t)
        burst = np.where(row % 12 == slot, hourly, 0.0)
        return burst + np.where((row - night) % DAY < night_rows, nightly, 0.0)

    noise = base * (rng.lognormal(0.0, rng.uniform(0.2, 0.6), n) - 1.0)
    bursts = rng.random(n) < rng.uniform(0.002, 0.01)
    noise += bursts * base * rng.uniform(2.0, 15.0, n)
    return Model(np.full(n, base), season, noise, lo=0.0, step=512.0, floor=hourly)


def events(n: int, clock: F64, rng: Rng) -> Model:
    """Events per 5 minutes: Poisson counts with normal clusters that decay over a few rows."""
    rate = rng.uniform(5.0, 40.0)
    season = _busy_season(rng, rate * rng.uniform(0.0, 0.6))
    starts = (rng.random(n) < rng.uniform(0.003, 0.02)) * rate * rng.uniform(1.0, 4.0, n)
    decay = np.exp(-np.arange(16) / rng.uniform(1.0, 4.0))
    noise = np.convolve(starts, decay)[:n]
    return Model(np.full(n, rate), season, noise, counts=True, lo=0.0, floor=0.5 * rate)


def battery(n: int, clock: F64, rng: Rng) -> Model:
    """Battery percent: discharges over 6-30 hours, recharges quickly; whole percents."""
    period = rng.uniform(6.0, 30.0) * 12
    charging, gamma = rng.uniform(0.06, 0.2), rng.uniform(0.8, 1.4)
    top, bottom = rng.uniform(95.0, 100.0), rng.uniform(8.0, 40.0)
    wobble, wobble_period = rng.uniform(0.0, 0.08), period * rng.uniform(2.5, 6.0)
    offset, phase0 = rng.uniform(0.0, 1.0), rng.uniform(0.0, 2.0 * np.pi)

    def season(t: F64) -> F64:
        phase = t / period + offset + wobble * np.sin(2.0 * np.pi * t / wobble_period + phase0)
        u = phase % 1.0
        down = top - (top - bottom) * (np.minimum(u, 1.0 - charging) / (1.0 - charging)) ** gamma
        v = np.clip((u - (1.0 - charging)) / charging, 0.0, 1.0)
        up = bottom + (top - bottom) * (1.0 - (1.0 - v) ** 2)
        return np.where(u < 1.0 - charging, down, up)

    noise = rng.normal(0.0, rng.uniform(0.1, 0.5), n)
    return Model(np.zeros(n), season, noise, lo=0.0, hi=100.0, step=1.0, floor=10.0)


def log_size(n: int, clock: F64, rng: Rng) -> Model:
    """A log file's size in bytes: grows steadily, rotated every 6, 12 or 24 hours."""
    per_row = 10.0 ** rng.uniform(2.0, 6.0)
    period = float(rng.choice([72, 144, 288]))
    head, offset = per_row * rng.uniform(0.0, 5.0), float(rng.integers(288))

    def season(t: F64) -> F64:
        return np.asarray(head + per_row * ((t - offset) % period), dtype=np.float64)

    noise = rng.normal(0.0, per_row * rng.uniform(0.05, 0.5), n)
    return Model(np.zeros(n), season, noise, lo=0.0, step=1.0, floor=0.2 * per_row * period)


def replicas(n: int, clock: F64, rng: Rng) -> Model:
    """Running replicas: a constant small integer, scaled up by 1-2 for a while now and then."""
    level = np.full(n, float(rng.integers(1, 12)))
    for a, b in _plateaus(n, int(rng.integers(2, 9)), (12, 120), rng):
        level[a:b] += float(rng.integers(1, 3))
    return Model(level, _no_season, np.zeros(n), lo=0.0, step=1.0, floor=2.0)


def supply(n: int, clock: F64, rng: Rng) -> Model:
    """A regulated quantity (a supply voltage, a set point; 0.01-1000): flat with tiny noise
    and a few short normal plateaus."""
    base = 10.0 ** rng.uniform(-2.0, 3.0)
    level = np.full(n, base)
    for a, b in _plateaus(n, int(rng.integers(1, 6)), (6, 60), rng):
        level[a:b] += base * rng.uniform(0.02, 0.1) * rng.choice([-1.0, 1.0])
    noise = rng.normal(0.0, base * 10.0 ** rng.uniform(-4.0, -2.5), n)
    return Model(level, _no_season, noise, floor=0.05 * base)


def gauge(n: int, clock: F64, rng: Rng) -> Model:
    """A steady reading (a fan's speed, a pressure, a queue that drains; 1-1000): a level
    with short-memory Gaussian noise and at most a slight daily swing: the series a z-score
    against everything seen is made for."""
    base = 10.0 ** rng.uniform(0.0, 3.0)
    sd = base * 10.0 ** rng.uniform(-2.5, -1.0)
    noise = ar1(n, rng.uniform(1.0, 6.0), sd, rng)
    amp, peak = sd * rng.uniform(0.0, 1.5), rng.uniform(0, DAY)

    def season(t: F64) -> F64:
        return amp * np.cos(2.0 * np.pi * (t - peak) / DAY)

    return Model(np.full(n, base), season, noise, floor=3.0 * sd)


def office(n: int, clock: F64, rng: Rng) -> Model:
    """CPU percent of a work machine: busy working hours on weekdays (a plateau with
    half-hour edges), quiet nights and weekends."""
    base, amp = rng.uniform(2.0, 10.0), rng.uniform(25.0, 60.0)
    start, end = rng.uniform(7.5, 10.0) * DAY / 24, rng.uniform(16.5, 19.0) * DAY / 24
    edge = DAY / 48

    def season(t: F64) -> F64:
        row = t % DAY
        on = np.clip((row - start) / edge, 0.0, 1.0) * np.clip((end - row) / edge, 0.0, 1.0)
        return np.asarray(amp * on * ((t // DAY) % 7 < 5))

    noise = rng.normal(0.0, rng.uniform(0.5, 3.0), n)
    return Model(np.full(n, base), season, noise, lo=0.0, hi=100.0, floor=5.0)


@dataclass(frozen=True)
class Kind:
    """A kind of normal series and the anomalies that make sense on it."""

    make: Callable[[int, F64, Rng], Model]
    anomalies: tuple[str, ...]


KINDS: dict[str, Kind] = {
    "cpu": Kind(
        cpu,
        (
            "spike",
            "dip",
            "level",
            "variance",
            "stuck",
            "dropout",
            "drift",
            "period",
            "loss",
            "ramp",
        ),
    ),
    "requests": Kind(
        requests,
        ("spike", "dip", "level", "variance", "stuck", "dropout", "drift", "period", "loss"),
    ),
    "connections": Kind(
        connections, ("spike", "level", "stuck", "dropout", "drift", "period", "loss")
    ),
    "temperature": Kind(
        temperature, ("spike", "dip", "level", "variance", "stuck", "dropout", "drift", "ramp")
    ),
    "quantised": Kind(quantised, ("spike", "dip", "level", "variance", "dropout", "drift", "ramp")),
    "disk_used": Kind(
        disk_used, ("spike", "dip", "level", "variance", "stuck", "dropout", "drift", "ramp")
    ),
    "disk_writes": Kind(
        disk_writes, ("spike", "level", "variance", "stuck", "dropout", "period", "loss")
    ),
    "events": Kind(events, ("spike", "dip", "level", "variance", "stuck", "dropout")),
    "latency": Kind(latency, ("spike", "level", "variance", "stuck", "dropout", "drift", "ramp")),
    "battery": Kind(battery, ("spike", "dip", "stuck", "dropout", "period", "loss")),
    "log_size": Kind(log_size, ("spike", "variance", "stuck", "dropout", "period", "loss")),
    "replicas": Kind(replicas, ("spike", "dip", "level", "variance", "dropout")),
    "supply": Kind(
        supply, ("spike", "dip", "level", "variance", "stuck", "dropout", "drift", "ramp")
    ),
}

#: Kinds added after the corpus above was fixed: kept out of ``KINDS`` (whose order sets the
#: clean files' kinds), so the files above stay byte for byte what they were.
STEADY = "devSteady"
LATE_KINDS: dict[str, Kind] = {
    "gauge": Kind(gauge, ("spike", "dip", "level", "variance", "drift", "ramp")),
}
ALL_KINDS = {**KINDS, **LATE_KINDS}

CATEGORIES: dict[str, tuple[str, ...]] = {
    "devSeasonal": ("cpu", "requests", "connections"),
    "devWalk": ("temperature", "quantised", "disk_used"),
    "devBursty": ("disk_writes", "events", "latency"),
    "devSawtooth": ("battery", "log_size"),
    "devFlat": ("replicas", "supply"),
}


# ---- anomalies -------------------------------------------------------------------------------


@dataclass
class Canvas:
    """One file being drawn: the parts anomalies change, and what their sizes are read from.

    ``normal`` is the series as drawn without anomalies; ``span`` the median daily range of
    its central 95 % (a clearly visible change), ``jitter`` its row-to-row noise (robust sd);
    ``half`` the half-length of a window in rows. ``frozen`` and ``zeroed`` are (onset, rows)
    changes made to the drawn values themselves."""

    model: Model
    clock: F64
    level: F64
    season: F64
    noise: F64
    normal: F64
    span: float
    jitter: float
    half: int
    frozen: list[tuple[int, int]] = field(default_factory=list)
    zeroed: list[tuple[int, int]] = field(default_factory=list)

    @property
    def n(self) -> int:
        return len(self.level)

    def local(self, i: int) -> float:
        """The normal series around row ``i``."""
        return float(np.median(self.normal[max(i - 3, 0) : i + 4]))

    def later(self, i: int) -> tuple[float, float]:
        """The normal series' 5th and 95th percentiles from row ``i`` on."""
        lo, hi = np.percentile(self.normal[i:], [5.0, 95.0])
        return float(lo), float(hi)


def _direction(
    preferred: float, low_ref: float, high_ref: float, size: float, model: Model
) -> tuple[float, float]:
    """(sign, size) of a change: the preferred sign when the bounds leave room for half of it
    or more (then shrunk to fit), else the other sign, else the side with more room."""
    room_up = math.inf if model.hi is None else model.hi - high_ref
    room_down = math.inf if model.lo is None else low_ref - model.lo
    rooms = {1.0: room_up, -1.0: room_down}
    for sign in (preferred, -preferred):
        if rooms[sign] >= 0.5 * size:
            return sign, min(size, 0.95 * rooms[sign])
    sign = 1.0 if room_up >= room_down else -1.0
    return sign, max(0.95 * rooms[sign], 0.0)


def _bump(c: Canvas, i: int, rng: Rng, preferred: float) -> str:
    """A spike (up) or dip (down) of 1-3 rows."""
    rows = int(rng.integers(1, 4))
    size = rng.uniform(1.0, 3.0) * c.span + rng.uniform(2.0, 4.0) * c.jitter
    local = c.local(i)
    sign, size = _direction(preferred, local, local, size, c.model)
    c.level[i : i + rows] += sign * size
    return "spike" if sign > 0 else "dip"


def _spike(c: Canvas, i: int, rng: Rng) -> str:
    return _bump(c, i, rng, 1.0)


def _dip(c: Canvas, i: int, rng: Rng) -> str:
    return _bump(c, i, rng, -1.0)


def _level(c: Canvas, i: int, rng: Rng) -> str:
    """A level shift up or down that persists to the end of the file."""
    size = rng.uniform(0.5, 1.2) * c.span + rng.uniform(2.0, 4.0) * c.jitter
    sign, size = _direction(float(rng.choice([-1.0, 1.0])), *c.later(i), size, c.model)
    c.level[i:] += sign * size
    return "level_up" if sign > 0 else "level_down"


def _variance(c: Canvas, i: int, rng: Rng) -> str:
    """The noise grows 2.5-5 times (and appears where there was none) from ``i`` on."""
    extra = rng.uniform(1.0, 2.0) * max(c.jitter, 0.03 * c.span, c.model.step or 0.0)
    c.noise[i:] = c.noise[i:] * rng.uniform(2.5, 5.0) + rng.normal(0.0, extra, c.n - i)
    return "variance"


def _drift(c: Canvas, i: int, rng: Rng) -> str:
    """A trend starts: 0.3-0.6 spans by the end of the window, levelling off at 1-2 spans."""
    slope = rng.uniform(0.3, 0.6) * c.span / max(c.half, 1)
    size = rng.uniform(1.0, 2.0) * c.span
    sign, size = _direction(float(rng.choice([-1.0, 1.0])), *c.later(i), size, c.model)
    c.level[i:] += sign * np.minimum(np.arange(c.n - i) * slope, size)
    return "drift"


def _ramp(c: Canvas, i: int, rng: Rng) -> str:
    """A gradual ramp to failure: an accelerating rise (or fall) of 1-2.5 spans that ends
    inside the window, then a degraded state (the new level, 1.5-3 times the noise)."""
    rows = max(6, int(rng.uniform(0.5, 1.0) * c.half))
    size = rng.uniform(1.0, 2.5) * c.span
    sign, size = _direction(1.0, *c.later(i), size, c.model)
    c.level[i:] += sign * size * np.minimum(np.arange(c.n - i) / rows, 1.0) ** 2
    c.noise[i + rows :] *= rng.uniform(1.5, 3.0)
    return "ramp"


def _period(c: Canvas, i: int, rng: Rng) -> str:
    """The seasonal pattern runs 0.5-2 times as fast from ``i`` on (continuous at ``i``)."""
    factor = float(rng.choice([0.5, 2.0 / 3.0, 1.5, 2.0]))
    t0 = c.clock[i]
    c.season[i:] = c.model.season(t0 + (c.clock[i:] - t0) * factor)
    return "period"


def _loss(c: Canvas, i: int, rng: Rng) -> str:
    """The seasonal pattern fades to its weekly mean within an hour and stays there."""
    mean = float(c.model.season(c.clock[i] + np.arange(WEEK, dtype=np.float64)).mean())
    fade = np.minimum(np.arange(c.n - i) / max(1, min(c.half, 12)), 1.0)
    c.season[i:] = (1.0 - fade) * c.season[i:] + fade * mean
    return "loss"


def _transient_rows(c: Canvas, rng: Rng, shortest: int) -> int:
    """A duration that ends inside the window (at most ``half`` rows)."""
    most = max(shortest, c.half)
    return int(rng.integers(min(shortest, most), most + 1))


def _stuck(c: Canvas, i: int, rng: Rng) -> str:
    """The sensor freezes at its value at ``i`` for half a window or less."""
    c.frozen.append((i, _transient_rows(c, rng, max(6, c.half // 2))))
    return "stuck"


def _dropout(c: Canvas, i: int, rng: Rng) -> str:
    """The value drops to zero for 3 rows to half a window."""
    c.zeroed.append((i, _transient_rows(c, rng, 3)))
    return "dropout"


INJECT: dict[str, Callable[[Canvas, int, Rng], str]] = {
    "spike": _spike,
    "dip": _dip,
    "level": _level,
    "variance": _variance,
    "stuck": _stuck,
    "dropout": _dropout,
    "drift": _drift,
    "period": _period,
    "loss": _loss,
    "ramp": _ramp,
}
SEASONAL = ("period", "loss")  # at most one of these per file


def pick_kinds(pool: tuple[str, ...], count: int, rng: Rng) -> list[str]:
    """``count`` different anomaly kinds in onset order; a ramp to failure comes last."""
    left, kinds = list(pool), []
    for _ in range(count):
        kind = str(rng.choice(left))
        kinds.append(kind)
        left = [k for k in left if k != kind and not (kind in SEASONAL and k in SEASONAL)]
    rng.shuffle(kinds)
    if "ramp" in kinds:
        kinds.remove("ramp")
        kinds.append("ramp")
    return kinds


def window_half(n: int, count: int) -> int:
    """Half a window's length in rows: NAB's int(10 % of the rows / anomalies) // 2."""
    return int(WINDOW_FRACTION * n / count) // 2


def place_onsets(n: int, count: int, rng: Rng) -> list[int]:
    """Onset rows whose windows start after the probationary 15 %, lie apart by at least half
    a window, and end at least 5 % of the rows before the end of the file."""
    half = window_half(n, count)
    first = math.ceil(PROBATION * n) + half + 1
    last = n - 1 - max(half, int(0.05 * n))
    gap = 2 * half + 1 + max(half, 12)
    free = last - first - (count - 1) * gap
    if free < 0:
        raise ValueError(f"{count} anomalies do not fit in {n} rows")
    offsets = np.sort(rng.integers(0, free + 1, count))
    return [first + int(o) + k * gap for k, o in enumerate(offsets)]


def windows(n: int, onsets: list[int]) -> list[tuple[int, int]]:
    """NAB's windows as (first, last) rows: centred on each onset, clipped to the file."""
    if not onsets:
        return []
    half = window_half(n, len(onsets))
    return [(max(i - half, 0), min(i + half, n - 1)) for i in onsets]


# ---- drawing a file --------------------------------------------------------------------------


@dataclass(frozen=True)
class Injected:
    kind: str
    row: int


@dataclass(frozen=True)
class Drawn:
    """One generated file: its times, values and anomalies (in onset order)."""

    times: list[str]
    values: F64
    anomalies: list[Injected]


def rng_for(seed: int, *key: int) -> Rng:
    """The random stream of one part of the corpus: depends only on the seed and the key."""
    return np.random.default_rng([seed, *key])


def _finish(model: Model, mean: F64, rng: Rng) -> F64:
    """The drawn values of a mean: counted, clipped, rounded."""
    x = rng.poisson(np.maximum(mean, 0.0)).astype(np.float64) if model.counts else mean.copy()
    if model.lo is not None or model.hi is not None:
        x = np.clip(x, model.lo, model.hi)
    if model.step is not None:
        x = np.round(x / model.step) * model.step
    return np.asarray(x, dtype=np.float64)


def with_transients(c: Canvas, values: F64) -> F64:
    """``values`` (drawn from ``c``) with the canvas's stuck readings and dropouts made."""
    for i, rows in c.frozen:
        values[i : i + rows] = values[i]
    for i, rows in c.zeroed:
        values[i : i + rows] = 0.0
    return values


def measure(x: F64, floor: float) -> tuple[float, float]:
    """(span, jitter) of a normal series: the median over whole days of the range of each
    day's central 95 %, and the robust sd of the row-to-row noise."""
    days = len(x) // DAY
    q = np.percentile(x[: days * DAY].reshape(days, DAY), [2.5, 97.5], axis=1)
    d = np.diff(x)
    jitter = 1.4826 * float(np.median(np.abs(d - np.median(d)))) / math.sqrt(2.0)
    tiny = 1e-6 * float(np.median(np.abs(x))) + 1e-12
    return max(float(np.median(q[1] - q[0])), floor, tiny), jitter


def times_text(start: np.datetime64, n: int) -> list[str]:
    """``YYYY-MM-DD HH:MM:SS`` of each row."""
    stamps = (start + np.arange(n) * STEP).astype("datetime64[s]")
    return [t.replace("T", " ") for t in np.datetime_as_string(stamps, unit="s").tolist()]


def _span(shape: Rng, fewest: int, most: int) -> tuple[int, np.datetime64, F64]:
    """A file's length in rows (``fewest``..``most``), its first row's time, and each row's
    seasonal clock."""
    n = int(shape.integers(fewest, most + 1))
    start = FIRST_START + int(shape.integers(START_SPAN_ROWS)) * STEP
    return n, start, (start - EPOCH) / STEP + np.arange(n, dtype=np.float64)


def draw(kind: str, count: int, seed: int, key: int, inject: bool = True) -> Drawn:
    """File ``key`` of the corpus: a ``kind`` series with ``count`` anomalies (none when not
    ``inject``: the same normal series, for comparison)."""
    shape, chance, sampling = (rng_for(seed, key, part) for part in (1, 2, 3))
    n, start, clock = _span(shape, MIN_ROWS, MAX_ROWS)
    model = ALL_KINDS[kind].make(n, clock, shape)
    season = model.season(clock)
    normal = _finish(model, model.level + season + model.noise, rng_for(seed, key, 4))
    span, jitter = measure(normal, model.floor)
    count = count if inject else 0
    onsets = place_onsets(n, count, chance) if count else []
    kinds = pick_kinds(ALL_KINDS[kind].anomalies, count, chance)
    c = Canvas(
        model,
        clock,
        model.level.copy(),
        season.copy(),
        model.noise.copy(),
        normal,
        span,
        jitter,
        window_half(n, max(count, 1)),
    )
    done = [Injected(INJECT[k](c, i, chance), i) for k, i in zip(kinds, onsets, strict=True)]
    values = with_transients(c, _finish(model, c.level + c.season + c.noise, sampling))
    return Drawn(times_text(start, n), values + 0.0, done)  # + 0.0: no "-0" in the file


# ---- incidents of the hour, and servers of many metrics ---------------------------------------

CONTEXT = "devContext"
MULTIVARIATE = "devMultivariate"
#: The categories drawn after the one-series ones, in this order: (category, kind, whether
#: a file's anomaly count is drawn; else one: an incident, or a server's fault plan).
LATER_CATEGORIES = (
    (CONTEXT, "office", False),
    (MULTIVARIATE, "server", False),
    (STEADY, "gauge", True),
)
#: Rows of the day an incident of the hour starts in: 01:00 to 04:00 (quiet every day).
NIGHT_ROWS = (DAY // 24, 4 * DAY // 24)
CONTEXT_ROWS = (5000, 6000)  # 17 to 21 days: two weeks to learn the hours, then the incident
#: Days of one-minute rows per server: the first half normal, faults in the second.
SERVER_DAYS = 8
SERVER_SEED = 10_000  # servers of seed s are bench/multivariate.py's sources of 10,000 + s
SERVER_START = np.datetime64("2026-01-05T00:00", "m")  # a Monday (the load's clock starts here)


def draw_context(seed: int, key: int, inject: bool = True) -> Drawn:
    """File ``key``: an ``office`` series; with ``inject``, one incident of the hour: the
    working hours' level for 1.5 to 4 hours at night, after the first two weeks (a value that
    is usual at 14:00 on a weekday, and was never seen at night)."""
    shape, chance, sampling = (rng_for(seed, key, part) for part in (1, 2, 3))
    n, start, clock = _span(shape, *CONTEXT_ROWS)
    model = office(n, clock, shape)
    season = model.season(clock)
    done: list[Injected] = []
    if inject:
        half = window_half(n, 1)
        first = max(math.ceil(PROBATION * n) + half + 1, 2 * WEEK)
        rows = np.arange(first, n - 1 - max(half, int(0.05 * n)))
        hour = clock[rows] % DAY
        night = rows[(hour >= NIGHT_ROWS[0]) & (hour < NIGHT_ROWS[1])]
        i = int(chance.choice(night))
        busy = float(model.season(np.arange(DAY, dtype=np.float64)).max())  # a Monday's
        season[i : i + int(chance.integers(18, 49))] = busy
        done.append(Injected("night", i))
    values = _finish(model, model.level + season + model.noise, sampling)
    return Drawn(times_text(start, n), values + 0.0, done)


@dataclass(frozen=True)
class DrawnServer:
    """One generated server: its times, metric names, values ``[row, metric]`` and faults."""

    times: list[str]
    names: list[str]
    values: F64
    anomalies: list[Injected]


def draw_server(seed: int, index: int, inject: bool = True) -> DrawnServer:
    """Server ``index``: ``bench/multivariate.py``'s generated server (20 to 40 correlated
    metrics a minute; in the second half a metric that decouples, a leak, a stuck group, a
    shift), for seed ``SERVER_SEED + seed`` (never the multivariate bench's own sources).
    Without ``inject``, the same server's normal rows."""
    from multivariate import generate_source  # it imports ar1 from here

    rows = SERVER_DAYS * 1440
    source = generate_source(SERVER_SEED + seed, index, rows, plan=None if inject else {})
    stamps = (SERVER_START + np.arange(rows) * np.timedelta64(1, "m")).astype("datetime64[s]")
    times = [t.replace("T", " ") for t in np.datetime_as_string(stamps, unit="s").tolist()]
    faults = sorted(source.faults, key=lambda f: f.start)
    return DrawnServer(
        times, source.names, source.values + 0.0, [Injected(f.kind, f.start) for f in faults]
    )


# ---- the corpus ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Planned:
    """One file of the corpus: ``name`` is ``<category>/<file>.csv``; ``key`` seeds it."""

    name: str
    kind: str
    anomalies: int
    key: int


def plan(seed: int, files_per_kind: int) -> list[Planned]:
    """Every file: ``files_per_kind`` per kind with 1-4 anomalies, then ``devNoAnomaly`` with
    about 15 % of the corpus, its kinds in a seeded order; then ``files_per_kind`` offices,
    servers and steady readings, and one clean file of each."""
    rng = rng_for(seed, 0)
    files: list[Planned] = []
    for category, kinds in CATEGORIES.items():
        for kind in kinds:
            for j in range(1, files_per_kind + 1):
                count = int(rng.choice(ANOMALY_COUNTS, p=ANOMALY_COUNT_WEIGHTS))
                files.append(Planned(f"{category}/{kind}_{j:02d}.csv", kind, count, len(files)))
    clean = max(1, round(NO_ANOMALY_SHARE / (1.0 - NO_ANOMALY_SHARE) * len(files)))
    order = [str(k) for k in rng.permutation(list(KINDS))]
    seen: dict[str, int] = {}
    for k in range(clean):
        kind = order[k % len(order)]
        seen[kind] = seen.get(kind, 0) + 1
        files.append(Planned(f"{NO_ANOMALY}/{kind}_{seen[kind]:02d}.csv", kind, 0, len(files)))
    # Then (so the files above stay as they were): incidents of the hour, servers (one
    # fault plan each) and steady readings (1-4 anomalies, drawn as above), each kind with
    # one file without anomalies.
    for category, kind, drawn in LATER_CATEGORIES:
        for j in range(1, files_per_kind + 1):
            count = int(rng.choice(ANOMALY_COUNTS, p=ANOMALY_COUNT_WEIGHTS)) if drawn else 1
            files.append(Planned(f"{category}/{kind}_{j:02d}.csv", kind, count, len(files)))
        files.append(Planned(f"{NO_ANOMALY}/{kind}_01.csv", kind, 0, len(files)))
    return files


def _write_csv(path: Path, drawn: Drawn | DrawnServer) -> None:
    """``timestamp,value`` rows; a server's: ``timestamp`` and one column per metric."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(drawn, DrawnServer):
        header = ",".join(["timestamp", *drawn.names])
        rows = drawn.values.tolist()
        lines = [
            ",".join([t, *(f"{v:{VALUE_FORMAT}}" for v in row)])
            for t, row in zip(drawn.times, rows, strict=True)
        ]
    else:
        header = "timestamp,value"
        pairs = zip(drawn.times, drawn.values, strict=True)
        lines = [f"{t},{v:{VALUE_FORMAT}}" for t, v in pairs]
    path.write_text(header + "\n" + "\n".join(lines) + "\n", encoding="utf-8", newline="\n")


def _write_json(path: Path, data: object) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=4) + "\n", encoding="utf-8", newline="\n")


def _nab_time(text: str) -> str:
    """A row's time as NAB's label files write it."""
    return text + ".000000"


def profiles_json() -> dict[str, dict[str, dict[str, float]]]:
    """NAB's ``config/profiles.json``."""
    keys = ("tpWeight", "fpWeight", "fnWeight", "tnWeight")
    return {
        name: {"CostMatrix": dict(zip(keys, weights, strict=True))}
        for name, weights in PROFILES.items()
    }


@dataclass(frozen=True)
class Summary:
    files: int
    clean: int
    rows: int
    windows: int

    def line(self, out: Path) -> str:
        return (
            f"dev corpus: {self.files} files ({self.clean} without anomalies), "
            f"{self.rows:,} rows, {self.windows} windows -> {out}"
        )


def _draw(f: Planned, seed: int) -> Drawn | DrawnServer:
    if f.kind == "office":
        return draw_context(seed, f.key, inject=f.anomalies > 0)
    if f.kind == "server":
        return draw_server(seed, f.key, inject=f.anomalies > 0)
    return draw(f.kind, f.anomalies, seed, f.key)


def write_corpus(out: Path, seed: int, files_per_kind: int) -> Summary:
    """Write the whole corpus under ``out``."""
    labels: dict[str, list[list[str]]] = {}
    injected: dict[str, list[dict[str, object]]] = {}
    rows = 0
    for f in plan(seed, files_per_kind):
        drawn = _draw(f, seed)
        _write_csv(out / "data" / f.name, drawn)
        spans = windows(len(drawn.times), [a.row for a in drawn.anomalies])
        labels[f.name] = [[_nab_time(drawn.times[a]), _nab_time(drawn.times[b])] for a, b in spans]
        injected[f.name] = [
            {"kind": a.kind, "row": a.row, "time": drawn.times[a.row]} for a in drawn.anomalies
        ]
        rows += len(drawn.times)
    _write_json(out / "labels" / "combined_windows.json", labels)
    _write_json(out / "labels" / "dev_anomalies.json", injected)
    _write_json(out / "config" / "profiles.json", profiles_json())
    clean = sum(1 for w in labels.values() if not w)
    return Summary(len(labels), clean, rows, sum(len(w) for w in labels.values()))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="corpus folder to write")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default: %(default)s)")
    parser.add_argument(
        "--files-per-kind",
        type=int,
        default=3,
        metavar="K",
        help=f"files per kind of series ({len(KINDS)} kinds; default: %(default)s)",
    )
    parser.add_argument(
        "--force", action="store_true", help="replace the data/ of an existing corpus in --out"
    )
    args = parser.parse_args(argv)
    if args.seed < 0 or args.files_per_kind < 1:
        parser.error("--seed must be >= 0 and --files-per-kind >= 1")
    data = args.out / "data"
    if data.exists():
        if not args.force:
            parser.error(f"{data} exists: remove it or pass --force")
        shutil.rmtree(data)
    print(write_corpus(args.out, args.seed, args.files_per_kind).line(args.out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
