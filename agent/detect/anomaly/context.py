"""Context: each stream's value against what is usual for this hour of the day, on working
days or at the weekend, on battery or on external power, and at this place.

A CPU at 70 % is routine on a Tuesday afternoon and an incident at 02:00 or on a quiet Sunday;
ranks against the last days know no time of day. A build that is routine at the desk, plugged
in, drains the battery in a meeting. For each stream vigil keeps, per *slot* (the local hour
of every day; the hour of working days and of weekends apart; and those again on battery and
on power apart: 168 slots), what the stream did in that slot on the last ``VISITS_KEPT`` times
it was seen there (a *visit*: the slot's hour on one day, for as long as the power stayed as
it was): the visit's mean and spread. A value is judged by its hour on working days or at the
weekend and its power once that slot has ``READY_VISITS`` visits, until then by its hour on
working days or at the weekend, until then by its hour on every day (a young install, a
series without weekly habits, a machine always on one power, is not left without context).
A machine with no battery, or none that says whether it charges, is on power.

At a learned place (``places.py``: the stay in progress has arrived there), each of those
day hours has a slot of that place too, which judges once it has ``READY_VISITS`` visits,
before all the others: the office's load is routine at the office at 14:00 and unusual at
home at 14:00 on a day of working from home, though both are working days' 14:00 on power.
Slots are kept for the ``PLACES_KEPT`` places visited last (a place visited less recently
gives its slots to a new one). Where a row's level is its place's own slot's (``placed``),
the stage also lets that slot explain a value new to the last days (a weekly routine).

A value's *context residual* is how far it lies above the slot's usual level (the median of the
visits' means), in units of the slot's usual spread (within a visit and from visit to visit),
never less than ``RANGE_FLOOR`` of the stream's recent range. The stage ranks these residuals
among the stream's own (``stage.py``), so one threshold means the same everywhere; a residual
under ``MIN_RESIDUAL`` never counts. A *run* of residuals held at ``MIN_RESIDUAL`` or more
for ``SUSTAIN_S`` has a *sustained* residual, its lowest so far (``HourProfiles.sustained``),
which the stage ranks among the stream's own too: a runaway held at night stands out among
the runs of days where the night's short jobs make none.

Only *above* counts: an idle afternoon is no incident. A visit joins its slots when the hour,
the power or the place changes (when a row of a later hour, another power or another place
comes): the hour being judged never explains itself, and the rows are scored the same
whatever chunks they came in. Byte rates are compared on a log scale, as in ``comove.py``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import numpy.typing as npt

from agent.detect.anomaly.comove import (
    RATE_SUFFIX,
    Mask,
    from_b64,
    log_rates,
    rate_columns,
    to_b64,
)

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]

HOURS = 24
#: A row's *day hour*: its hour of day, plus ``HOURS`` at the weekend, plus ``2 * HOURS`` on
#: battery (``day_hour`` below; ``LocalTime`` gives the first two, the stage the power).
DAY_HOURS = 4 * HOURS
#: Hour-of-day slots: every day's (a day hour's ``% HOURS``), then working days' and the
#: weekend's (``% (2 * HOURS)``), then those on power and on battery (the day hour itself).
SLOTS = HOURS + 2 * HOURS + DAY_HOURS
#: Where the slots of working days and weekends, and of power, start.
_SPLIT, _POWERED = HOURS, 3 * HOURS
#: Places with slots of their own (``DAY_HOURS`` each, after the ``SLOTS``): home, work and
#: two more.
PLACES_KEPT = 4
#: A row's place when it is at none (not in a stay at a learned place, or no location).
NO_PLACE = -1
#: A row's *key*, which its judgement is looked up by: its day hour, plus ``DAY_HOURS`` times
#: one more than its place's ring (0 at no place).
KEYS = DAY_HOURS * (1 + PLACES_KEPT)
#: What a day hour adds on battery.
ON_BATTERY = 2 * HOURS
#: The battery's stream that says whether the machine is on external power (1) or on its
#: battery (0) (``agent/sensors/battery.py``); the stage follows it to know the power.
CHARGING = "battery.charging"
#: Past visits a slot remembers (a week of working days; three and a half weekends).
VISITS_KEPT = 7
#: Visits a slot needs before its values are judged by it.
READY_VISITS = 3
#: A visit of fewer rows than this (the machine asleep most of the hour) is not kept.
MIN_VISIT_ROWS = 3
#: The slot's spread is at least this share of the stream's recent range (its values
#: history's edges), so a slot that was flat on every visit does not make any wobble an
#: incident.
RANGE_FLOOR = 0.05
#: A value less than this many of its slot's spreads above the slot's usual level is never
#: unusual for the hour, however its residual ranks (a young history's edge is tight).
MIN_RESIDUAL = 4.0
#: Local offsets are looked up once per this much time (zones change offset on whole
#: quarter hours).
_OFFSET_STEP_S = 900.0
_LOCAL = "local"
#: Sources not judged by the hour: their values are not loads. A position is no more
#: "above usual" (``places.py`` judges where the device is), and the battery follows the
#: charging routine (plugged in at an unusual hour is no incident). Their values follow
#: routines, weekly ones too (the commute on office days, the charger unplugged for Tuesday's
#: meeting), which the values history's last 4 days may not hold: a value of theirs less
#: than ``MIN_RESIDUAL`` of its hour's spreads from the hour's usual level (either way) is
#: *explained by the hour*, and no more surprising than ``EXPLAINED_SURPRISE``; so is every
#: value of theirs while its hour has no usual level yet (a new install's first unplug, first
#: commute, first fixes' noise are the routine being learned; the places stage still says
#: when the device is somewhere new). A sample whose values are all explained is no more
#: surprising than that either, however many of them moved at once.
NOT_BY_HOUR = ("location", "battery")
#: Streams that hold a level by nature (memory in use, swap, a process's share of memory):
#: five minutes above their hour's level are one sample's worth of evidence there, not five
#: minutes', and a level held into an hour whose usual level is lower is the same level, not
#: news; so the stage judges only the other streams by their hour (``stage.py``'s
#: ``_context``) and leaves these to their other judgements.
LEVEL_STREAMS = ("system.mem_used_pct", "system.swap_pct", "apps.mem")
#: A *run*: a stream's context residual staying at ``MIN_RESIDUAL`` or more, with no gap
#: between its samples longer than this; once a run is this old, its lowest residual so far
#: is the stream's *sustained* residual (0 outside such runs). The day's bursts (an update,
#: an indexer at 90 % for a minute or two, at any hour) make no run; a runaway does. The
#: stage ranks it among the stream's own (``stage.py``'s ``_sustained``).
SUSTAIN_S = 300.0
#: ... and at least this many samples: a run of two 5-minute values is no sustained level.
SUSTAIN_N = 8
#: A one-in-twenty number (log10 20).
EXPLAINED_SURPRISE = 1.3
#: A position's spread is never less than this many degrees (about 100 m of latitude, the
#: places stage's stay radius): a fix's noise within it is the same position, not a
#: position new to the hour (a few metres of noise have extremes too, after days at home).
POSITION_FLOOR = {"location.lat": 0.0009, "location.lon": 0.0009}


class LocalTime:
    """Sample times as local hours: ``timezone`` is ``"local"`` (the machine's zone, as the C
    library knows it) or an IANA name (``"Europe/Berlin"``, ``"UTC"``)."""

    def __init__(self, timezone: str) -> None:
        self._zone = None if timezone == _LOCAL else ZoneInfo(timezone)
        self._offsets: dict[int, float] = {}

    def hours(self, t: F64) -> tuple[I64, I64]:
        """For each time: the local hour it falls in (hours since 1970-01-01 local: a visit's
        key) and its *day hour*: the hour of day, plus ``HOURS`` on Saturdays and Sundays."""
        if len(t) == 1:
            hour, day_hour = self.hour(float(t[0]))
            return np.array([hour]), np.array([day_hour])
        buckets = np.floor(t / _OFFSET_STEP_S).astype(np.int64)
        keys, where = np.unique(buckets, return_inverse=True)
        offsets = np.array([self._offset(int(b)) for b in keys])[where.reshape(-1)]
        hour = np.floor((t + offsets) / 3600.0).astype(np.int64)
        day = np.floor_divide(hour, HOURS)
        weekend = (day + 3) % 7 >= 5  # 1970-01-01 was a Thursday: Monday is 0
        return hour, hour % HOURS + HOURS * weekend

    def hour(self, t: float) -> tuple[int, int]:
        """``hours`` of one time (the live daemon's sample), with the same arithmetic."""
        hour = math.floor((t + self._offset(math.floor(t / _OFFSET_STEP_S))) / 3600.0)
        weekend = (hour // HOURS + 3) % 7 >= 5
        return hour, hour % HOURS + HOURS * weekend

    def _offset(self, bucket: int) -> float:
        offset = self._offsets.get(bucket)
        if offset is None:
            t = bucket * _OFFSET_STEP_S
            if self._zone is None:
                offset = float(time.localtime(t).tm_gmtoff)
            else:
                delta = datetime.fromtimestamp(t, self._zone).utcoffset()
                offset = delta.total_seconds() if delta is not None else 0.0
            if len(self._offsets) > 4096:  # a long replay: keep the cache small
                self._offsets.clear()
            self._offsets[bucket] = offset
        return offset


@dataclass
class HourProfiles:
    """One source's slots, per stream (in ``names`` order): the last visits' means and
    variances ``[stream, slot, visit]`` (NaN where none yet) and the next visit's place in
    each ring; the open visit's hour, day hour and place. The ``SLOTS`` first, then
    ``DAY_HOURS`` for each place in ``places`` (its *ring*; ``place_used``: the hour a visit
    there last began). The open visit's rows wait in ``_rows`` (as (model columns, values)
    pairs) until it closes: a visit's numbers are the same whatever chunks its rows came
    in."""

    names: list[str] = field(default_factory=list)
    means: F64 = field(default_factory=lambda: np.full((0, SLOTS, VISITS_KEPT), np.nan))
    variances: F64 = field(default_factory=lambda: np.full((0, SLOTS, VISITS_KEPT), np.nan))
    head: I64 = field(default_factory=lambda: np.zeros((0, SLOTS), dtype=np.int64))
    open_hour: int | None = None
    open_slot: int = 0  # the open visit's day hour
    last_t: float | None = None
    #: The streams' context histories take an entry on this grid (the stage's).
    entry_t: float | None = None
    places: list[int] = field(default_factory=list)
    place_used: list[int] = field(default_factory=list)
    open_place: int = NO_PLACE
    #: Each stream's run (``SUSTAIN_S``): its start, its lowest residual and its last
    #: sample's time (NaN: none).
    run_start: F64 = field(default_factory=lambda: np.zeros(0))
    run_low: F64 = field(default_factory=lambda: np.zeros(0))
    run_t: F64 = field(default_factory=lambda: np.zeros(0))
    run_n: F64 = field(default_factory=lambda: np.zeros(0))

    def __post_init__(self) -> None:
        self._index = {n: j for j, n in enumerate(self.names)}
        #: The open visit's rows, by the model columns they carry.
        self._rows: dict[bytes, tuple[I64, list[F64]]] = {}
        self._layouts: dict[tuple[str, ...], tuple[I64, Mask | None]] = {}
        self._kept: F64 = np.zeros((1, 0))  # the row ``keep`` kept last, on the model's scale
        d = len(self.names)
        self._rates = np.array([n.endswith(RATE_SUFFIX) for n in self.names], dtype=np.bool_)
        self._least = np.array([POSITION_FLOOR.get(n, 0.0) for n in self.names])  # ``floor``
        for runs in _RUNS:
            if len(getattr(self, runs)) != d:
                setattr(self, runs, np.full(d, np.nan))
        self._running = bool(np.count_nonzero(~np.isnan(self.run_start)))
        #: Per key, each stream's usual level and spread where a slot of it is ready, and
        #: the raw value below which it cannot be ``MIN_RESIDUAL`` spreads above (inf where no
        #: slot is ready; a margin of 1e-6 keeps rounding on the safe side).
        self._center = np.full((KEYS, d), np.nan)
        self._spread = np.full((KEYS, d), np.nan)
        self._ceiling = np.full((KEYS, d), np.inf)
        #: Per key, the streams whose usual level there is its place's own slot's (``placed``).
        self._own = np.zeros((KEYS, d), dtype=np.bool_)
        #: For the rows ``usual`` judged last: their key (one for all), or ``placed``'s answer.
        self._placed: int | npt.NDArray[np.bool_] = 0
        #: Per slot, each stream's usual level and spread (NaN: not ready).
        all_slots = SLOTS + DAY_HOURS * PLACES_KEPT
        self._slot_level = np.full((all_slots, d), np.nan)
        self._slot_spread = np.full((all_slots, d), np.nan)
        #: The open visit's key (``keep_one``'s row's).
        self._open_key = self.open_slot + DAY_HOURS * (self._ring_of(self.open_place) + 1)
        used = SLOTS + DAY_HOURS * len(self.places)
        self._refresh(np.arange(used), np.arange(DAY_HOURS * (1 + len(self.places))))

    # -- scoring --------------------------------------------------------------------------------
    def usual(
        self,
        names: Sequence[str],
        x: F64,
        hours: I64,
        day_hours: I64,
        places: I64 | None = None,
    ) -> tuple[F64, F64, F64]:
        """For rows ``x`` ``[m, k]`` of the streams ``names`` (NaN where absent) in local
        ``hours`` and ``day_hours`` (``LocalTime.hours``, with the power; the hours
        non-decreasing) at ``places`` (ids, ``NO_PLACE``; None: at none): the values on the
        model's scale, and each cell's usual level and spread for its key (NaN where no slot
        of it is ready; ``[k]`` when all rows share one). The rows then count in their
        visits."""
        columns, rates = self._layout(names)
        x = log_rates(x, rates)
        changed = (np.diff(hours) != 0) | (np.diff(day_hours) != 0)
        if places is not None:
            changed |= np.diff(places) != 0

        def place(a: int) -> int:
            return NO_PLACE if places is None else int(places[a])

        changes = np.flatnonzero(changed)
        if not len(changes):  # one level per stream: [k] broadcasts
            level, spread = self._part(columns, x, int(hours[0]), int(day_hours[0]), place(0))
            self._placed = self._open_key
            return x, level, spread
        centers, spreads = np.empty(x.shape), np.empty(x.shape)
        self._placed = np.empty(x.shape, dtype=np.bool_)
        cuts = (changes + 1).tolist()
        for a, b in zip([0, *cuts], [*cuts, len(x)], strict=True):
            centers[a:b], spreads[a:b] = self._part(
                columns, x[a:b], int(hours[a]), int(day_hours[a]), place(a)
            )
            self._placed[a:b] = self._own[self._open_key][columns]
        return x, centers, spreads

    def placed(self, names: Sequence[str]) -> npt.NDArray[np.bool_]:
        """For the cells of the streams ``names`` that ``usual`` (or ``usual_of``) judged
        last, whether their usual level was their learned place's own slot's (``[k]`` when
        the rows shared one key)."""
        if isinstance(self._placed, int):
            columns, _ = self._layout(names)
            own: npt.NDArray[np.bool_] = self._own[self._placed][columns]
            return own
        return self._placed

    def floor(self, names: Sequence[str], edges: F64) -> F64:
        """Each cell's least spread: ``RANGE_FLOOR`` of its values history's range before it
        (``edges`` ``[m, k, 2]``, smallest and largest, on the model's scale here), and for
        a position ``POSITION_FLOOR``."""
        columns, rates = self._layout(names)
        if rates is not None:  # both edges of a rate's cells
            edges = log_rates(edges, rates[:, None])
        floor: F64 = RANGE_FLOOR * (edges[:, :, 1] - edges[:, :, 0])
        least = self._least[columns]
        return np.fmax(floor, least) if least.any() else floor

    def keep(
        self, names: Sequence[str], x: F64, hour: int, day_hour: int, place: int = NO_PLACE
    ) -> I64:
        """One row (``x`` ``[1, k]``, the live daemon's sample) joins its visit, as ``usual``
        keeps rows; its model columns."""
        columns, rates = self._layout(names)
        self._kept = log_rates(x, rates)
        self._visit(columns, self._kept, hour, day_hour, place)
        return columns

    def keep_one(
        self, names: Sequence[str], x: F64, hour: int, day_hour: int, place: int = NO_PLACE
    ) -> bool:
        """``keep``, and whether the row is quiet: no value of it can be ``MIN_RESIDUAL``
        spreads above its key's level (then nothing more need be asked of it; else
        ``usual_of`` says what ``usual`` would)."""
        columns = self.keep(names, x, hour, day_hour, place)
        # the key's row, then its columns: a third of [key, columns]'s cost (and
        # np.count_nonzero less than .any()'s)
        return not np.count_nonzero(x[0] >= self._ceiling[self._open_key][columns])

    def ready(self, names: Sequence[str]) -> bool:
        """Whether any of the streams ``names`` has a usual level for the last row kept."""
        columns, _ = self._layout(names)
        return not np.isnan(self._center[self._open_key][columns]).all()

    def usual_of(self, names: Sequence[str]) -> tuple[F64, F64, F64]:
        """``usual``'s numbers for the row of the streams ``names`` that ``keep`` (or
        ``keep_one``) kept last."""
        columns, _ = self._layout(names)
        key = self._placed = self._open_key
        level, spread = self._center[key][columns], self._spread[key][columns]
        return self._kept, level, spread

    def sustained(self, names: Sequence[str], t: F64, residual: F64) -> F64:
        """Each cell's sustained residual (``SUSTAIN_S``) for the rows ``residual`` ``[m, k]``
        of the streams ``names`` at times ``t`` (NaN: no residual there, which neither breaks
        nor extends a run), in order, carrying each stream's run across calls: 0 where the
        stream is in no run ``SUSTAIN_S`` old (and where NaN)."""
        columns, _ = self._layout(names)
        out = np.zeros(residual.shape)
        on = residual >= MIN_RESIDUAL  # (False where NaN)
        active = on.any(axis=0)
        if self._running:  # a residual under the floor breaks a run
            broken = ~active & (residual == residual).any(axis=0)
            self._end_runs(columns[broken])
        for j in np.flatnonzero(active).tolist():
            self._follow_run(int(columns[j]), t, residual[:, j], out[:, j])
        self._end_stale_runs(float(t[-1]))  # (and counts the runs still open)
        return out

    def _follow_run(self, c: int, t: F64, residual: F64, out: F64) -> None:
        """``sustained`` for column ``c``, whose ``residual`` reaches ``MIN_RESIDUAL`` in
        some row: ``out`` filled in place, the run's state kept."""
        rows = np.flatnonzero(~np.isnan(residual))
        r, times = residual[rows], t[rows]
        on = r >= MIN_RESIDUAL
        start, low, last, n = (
            float(self.run_start[c]),
            float(self.run_low[c]),
            float(self.run_t[c]),
            float(self.run_n[c]),
        )
        before = -2 if math.isnan(start) else -1  # the row of the run's last sample
        for i in np.flatnonzero(on).tolist():
            at = float(times[i])
            if before != i - 1 or at - last > SUSTAIN_S:
                start, low, n = at, float(r[i]), 1.0
            else:
                low, n = min(low, float(r[i])), n + 1.0
            last, before = at, i
            if at - start >= SUSTAIN_S and n >= SUSTAIN_N:
                out[rows[i]] = low
        if on[-1]:
            self.run_start[c], self.run_low[c], self.run_t[c], self.run_n[c] = start, low, last, n
        else:
            self._end_runs(np.array([c]))

    def stop_runs(
        self, names: Sequence[str], x: F64, judged: npt.NDArray[np.bool_], t: float
    ) -> None:
        """The row ``x`` at ``t`` that ``keep_one`` kept last (the live daemon's sample) lies
        under ``MIN_RESIDUAL`` where the streams ``names`` are ``judged``: the runs of those
        with a value and a usual level there end (``sustained``: a residual breaks a run,
        its absence does not), and so does every run without a sample for ``SUSTAIN_S``."""
        if self._running:
            columns, _ = self._layout(names)
            broken = judged & ~np.isnan(x[0]) & np.isfinite(self._ceiling[self._open_key][columns])
            self._end_runs(columns[broken])
            self._end_stale_runs(t)

    def _end_stale_runs(self, t: float) -> None:
        """End the runs whose last sample is more than ``SUSTAIN_S`` before ``t`` (their
        stream's next residual would start a new one anyway: a stream gone quiet, or whose
        hour is not known, leaves no run open for the live path to carry)."""
        self._end_runs(np.flatnonzero(t - self.run_t > SUSTAIN_S))
        self._running = bool(np.count_nonzero(~np.isnan(self.run_start)))

    def _end_runs(self, columns: I64) -> None:
        for runs in _RUNS:
            getattr(self, runs)[columns] = np.nan

    def _part(self, columns: I64, x: F64, hour: int, day_hour: int, place: int) -> tuple[F64, F64]:
        """Rows of one hour, power and place: their usual level and spread of each column."""
        self._visit(columns, x, hour, day_hour, place)
        key = self._open_key
        return self._center[key][columns], self._spread[key][columns]

    def _visit(self, columns: I64, x: F64, hour: int, day_hour: int, place: int) -> None:
        """Rows of one hour, power and place join its visit (the last one's closes first)."""
        if hour != self.open_hour or day_hour != self.open_slot or place != self.open_place:
            self._close()
            self.open_hour, self.open_slot, self.open_place = hour, day_hour, place
            ring = self._take_ring(place, hour) if place != NO_PLACE else -1
            self._open_key = day_hour + DAY_HOURS * (ring + 1)
        key = columns.tobytes()
        group = self._rows.get(key)
        if group is None:
            group = self._rows[key] = (columns, [])
        group[1].append(x)

    def _layout(self, names: Sequence[str]) -> tuple[I64, Mask | None]:
        """The model columns of ``names`` (streams new to it join) and which are byte rates."""
        key = tuple(names)
        layout = self._layouts.get(key)
        if layout is None:
            for name in names:
                if name not in self._index:
                    self._join(name)
            columns = np.array([self._index[n] for n in names], dtype=np.int64)
            layout = self._layouts[key] = (columns, rate_columns(names))
        return layout

    def _join(self, name: str) -> None:
        self._index[name] = len(self.names)
        self.names.append(name)
        used = self.head.shape[1]
        nan_ring = np.full((1, used, VISITS_KEPT), np.nan)
        self.means = np.concatenate([self.means, nan_ring])
        self.variances = np.concatenate([self.variances, nan_ring])
        self.head = np.concatenate([self.head, np.zeros((1, used), dtype=np.int64)])
        nan_column = np.full((KEYS, 1), np.nan)
        self._center = np.concatenate([self._center, nan_column], axis=1)
        self._spread = np.concatenate([self._spread, nan_column], axis=1)
        self._ceiling = np.concatenate([self._ceiling, np.full((KEYS, 1), np.inf)], axis=1)
        self._own = np.concatenate([self._own, np.zeros((KEYS, 1), dtype=np.bool_)], axis=1)
        nan_slots = np.full((len(self._slot_level), 1), np.nan)
        self._slot_level = np.concatenate([self._slot_level, nan_slots], axis=1)
        self._slot_spread = np.concatenate([self._slot_spread, nan_slots], axis=1)
        self._rates = np.append(self._rates, name.endswith(RATE_SUFFIX))
        self._least = np.append(self._least, POSITION_FLOOR.get(name, 0.0))
        for runs in _RUNS:
            setattr(self, runs, np.append(getattr(self, runs), np.nan))

    # -- learning -------------------------------------------------------------------------------
    def _close(self) -> None:
        """The open visit joins its two slots (for the streams seen enough in it)."""
        x, self._rows = self._pending(), {}
        if self.open_hour is None or not len(x):
            return
        # Each stream's numbers in order of size (NaN last): the sums are the same whatever
        # order the rows waited in (a restore puts them back as one block).
        x = np.sort(x, axis=0)
        seen = ~np.isnan(x)
        count = seen.sum(axis=0)
        kept = np.flatnonzero(count >= MIN_VISIT_ROWS)
        if not len(kept):
            return
        values, seen, n = x[:, kept], seen[:, kept], count[kept]
        mean = np.where(seen, values, 0.0).sum(axis=0) / n
        var = np.where(seen, (values - mean) ** 2, 0.0).sum(axis=0) / n
        day_hour = self.open_slot
        slots = [day_hour % HOURS, _SPLIT + day_hour % (2 * HOURS), _POWERED + day_hour]
        ring = self._ring_of(self.open_place)
        if ring >= 0:
            slots.append(SLOTS + DAY_HOURS * ring + day_hour)
        for slot in slots:
            at_ = self.head[kept, slot]
            self.means[kept, slot, at_] = mean
            self.variances[kept, slot, at_] = var
            self.head[kept, slot] = (at_ + 1) % VISITS_KEPT
        # every key of this hour of the day: each falls back on the slots just changed
        keys = np.arange(day_hour % HOURS, DAY_HOURS * (1 + len(self.places)), HOURS)
        self._refresh(np.array(slots), keys)

    def _ring_of(self, place: int) -> int:
        """The ring of ``place``'s slots (-1: none, or no place)."""
        return self.places.index(place) if place in self.places else -1

    def _take_ring(self, place: int, hour: int) -> int:
        """``place``'s ring, where a visit begins at ``hour``: its own, a new one while fewer
        than ``PLACES_KEPT``, else that of the place whose last visit began longest ago
        (emptied)."""
        ring = self._ring_of(place)
        if ring >= 0:
            self.place_used[ring] = hour
            return ring
        if len(self.places) < PLACES_KEPT:
            ring = len(self.places)
            self.places.append(place)
            self.place_used.append(hour)
            d = len(self.names)
            nan_ring = np.full((d, DAY_HOURS, VISITS_KEPT), np.nan)
            self.means = np.concatenate([self.means, nan_ring], axis=1)
            self.variances = np.concatenate([self.variances, nan_ring], axis=1)
            self.head = np.concatenate([self.head, np.zeros((d, DAY_HOURS), np.int64)], axis=1)
        else:
            ring = self.place_used.index(min(self.place_used))
            self.places[ring], self.place_used[ring] = place, hour
            own = slice(SLOTS + DAY_HOURS * ring, SLOTS + DAY_HOURS * (ring + 1))
            self.means[:, own] = np.nan
            self.variances[:, own] = np.nan
            self.head[:, own] = 0
        first = SLOTS + DAY_HOURS * ring
        keys = DAY_HOURS * (ring + 1) + np.arange(DAY_HOURS)
        self._refresh(np.arange(first, first + DAY_HOURS), keys)
        return ring

    def _pending(self) -> F64:
        """The open visit's rows ``[n, d]`` (NaN where a row lacks a stream), by layout."""
        parts = [(columns, np.concatenate(xs)) for columns, xs in self._rows.values()]
        out = np.full((sum(len(p) for _, p in parts), len(self.names)), np.nan)
        at = 0
        for columns, part in parts:
            out[at : at + len(part), columns] = part
            at += len(part)
        return out

    def _refresh(self, slots: I64, keys: I64) -> None:
        """The slots' usual levels and spreads, then the keys': the key's place's slot of its
        day hour where that has ``READY_VISITS`` visits, else the day hour's own slot's (its
        power's), else its working-day or weekend slot's, else its every-day slot's, else
        NaN; and their ceilings. (On one power the power's and the working day's or weekend's
        slots have the same visits: a machine without a battery is judged as before.)"""
        d = len(self.names)
        if not d:
            return
        shape = (len(slots), d)
        level, spread = _usual(
            self.means[:, slots].transpose(1, 0, 2).reshape(-1, VISITS_KEPT),
            self.variances[:, slots].transpose(1, 0, 2).reshape(-1, VISITS_KEPT),
        )
        self._slot_level[slots], self._slot_spread[slots] = (
            level.reshape(shape),
            spread.reshape(shape),
        )
        day_hours, rings = keys % DAY_HOURS, keys // DAY_HOURS - 1
        center, scale = self._slot_level[day_hours % HOURS], self._slot_spread[day_hours % HOURS]
        own = np.where(rings >= 0, SLOTS + DAY_HOURS * rings + day_hours, _POWERED + day_hours)
        for first in (_SPLIT + day_hours % (2 * HOURS), _POWERED + day_hours, own):
            ready = ~np.isnan(self._slot_level[first])
            center = np.where(ready, self._slot_level[first], center)
            scale = np.where(ready, self._slot_spread[first], scale)
        spread = np.maximum(scale, 1e-9 + 1e-6 * np.abs(center))
        top = center + MIN_RESIDUAL * spread
        top -= 1e-6 * (np.abs(center) + MIN_RESIDUAL * spread)
        rates = self._rates
        with np.errstate(over="ignore"):  # a level past e**709: no byte rate reaches it
            top[:, rates] = np.expm1(top[:, rates]) * (1.0 - 1e-6) - 1e-6
        self._center[keys], self._spread[keys] = center, spread
        self._ceiling[keys] = np.where(np.isnan(top), np.inf, top)
        self._own[keys] = (rings >= 0)[:, None] & ~np.isnan(self._slot_level[own])

    # -- state ----------------------------------------------------------------------------------
    def encode(self) -> dict[str, Any]:
        """Plain data (arrays as base64 float64 bytes: exact, NaN included)."""
        return {
            "names": list(self.names),
            "means": to_b64(self.means),
            "variances": to_b64(self.variances),
            "head": to_b64(self.head.astype(np.float64)),
            "open_hour": self.open_hour,
            "open_slot": self.open_slot,
            "pending": to_b64(self._pending()),
            "last_t": self.last_t,
            "entry_t": self.entry_t,
            "places": list(self.places),
            "place_used": list(self.place_used),
            "open_place": self.open_place,
            **self._open_runs(),
        }

    def _open_runs(self) -> dict[str, str]:
        """The runs' state, those without a sample for ``SUSTAIN_S`` before ``last_t``
        written as none: whether a path has ended them yet changes no score, so the state is
        the same whichever path fed the rows."""
        stale = np.isnan(self.run_t)
        if self.last_t is not None:
            stale |= self.last_t - self.run_t > SUSTAIN_S
        return {runs: to_b64(np.where(stale, np.nan, getattr(self, runs))) for runs in _RUNS}

    @classmethod
    def decode(cls, saved: Mapping[str, Any]) -> HourProfiles:
        """``encode``'s data back; ``ValueError``/``KeyError``/``TypeError`` if damaged."""
        names = [str(n) for n in saved["names"]]
        d = len(names)
        if len(set(names)) != d:
            raise ValueError("context streams repeated")
        places = [int(p) for p in saved.get("places", [])]
        place_used = [int(h) for h in saved.get("place_used", [])]
        open_place = int(saved.get("open_place", NO_PLACE))
        if len(places) != len(place_used) or len(places) > PLACES_KEPT:
            raise ValueError("context places do not fit")
        if len(set(places)) != len(places) or NO_PLACE in places:
            raise ValueError("context places repeated")
        if open_place != NO_PLACE and open_place not in places:
            raise ValueError("context open place unknown")
        used = SLOTS + DAY_HOURS * len(places)
        head = from_b64(saved["head"], (d, -1)) if d else np.zeros((0, used))
        slots = head.shape[1]
        # (_POWERED: saved before the power had slots, and then the places)
        if slots != used and (slots != _POWERED or places):
            raise ValueError("context slots do not fit")
        if ((head < 0) | (head >= VISITS_KEPT) | (head != np.round(head))).any():
            raise ValueError("context ring position out of range")
        slot = int(saved["open_slot"])
        if not 0 <= slot < (DAY_HOURS if slots == used else 2 * HOURS):
            raise ValueError("context slot out of range")
        means = from_b64(saved["means"], (d, slots, VISITS_KEPT), nan_ok=True)
        variances = from_b64(saved["variances"], (d, slots, VISITS_KEPT), nan_ok=True)
        if slots == _POWERED:
            means, variances, head = _with_power(means, variances, head)
        profiles = cls(
            names,
            means,
            variances,
            head.astype(np.int64),
            None if saved["open_hour"] is None else int(saved["open_hour"]),
            slot,
            None if saved["last_t"] is None else float(saved["last_t"]),
            None if saved["entry_t"] is None else float(saved["entry_t"]),
            places,
            place_used,
            open_place,
            *(  # (saved before runs were kept: none)
                from_b64(saved[runs], (d,), nan_ok=True) if runs in saved else np.full(d, np.nan)
                for runs in _RUNS
            ),
        )
        pending = from_b64(saved["pending"], (-1, d), nan_ok=True) if d else np.zeros((0, 0))
        if len(pending):
            everything = np.arange(d, dtype=np.int64)
            profiles._rows = {everything.tobytes(): (everything, [pending])}
        return profiles


#: A run's state, per stream (``HourProfiles``).
_RUNS = ("run_start", "run_low", "run_t", "run_n")


def _with_power(means: F64, variances: F64, head: F64) -> tuple[F64, F64, F64]:
    """Slots saved before the power had its own: the working-day and weekend slots' visits
    become those on power (a machine without a battery, always on power, goes on as a fresh
    replay would; a laptop's mixed visits fade out of them), none yet on battery."""
    d = len(means)
    new_means = np.full((d, SLOTS, VISITS_KEPT), np.nan)
    new_variances = np.full((d, SLOTS, VISITS_KEPT), np.nan)
    new_head = np.zeros((d, SLOTS))
    powered = slice(_POWERED, _POWERED + 2 * HOURS)
    for new, old in ((new_means, means), (new_variances, variances), (new_head, head)):
        new[:, :_POWERED] = old
        new[:, powered] = old[:, _SPLIT:_POWERED]
    return new_means, new_variances, new_head


def _usual(means: F64, variances: F64) -> tuple[F64, F64]:
    """Per stream, from its last visits to a slot ``[stream, visit]`` (NaN: none): the usual
    level (the median of the visits' means) and spread (the median variance within a visit,
    plus the variance of the visits' means), NaN where fewer than ``READY_VISITS``. Between
    visits it is the standard deviation, not a median deviation: of three visits one is the
    median itself, and the median deviation of three is the smaller of two (a slot of a
    routine that drifts through the day looked flat, and its next visit an incident)."""
    d = len(means)
    center, scale = np.full(d, np.nan), np.full(d, np.nan)
    ready = (~np.isnan(means)).sum(axis=1) >= READY_VISITS
    if ready.any():
        m, v = means[ready], variances[ready]
        level = _median(m)
        seen = ~np.isnan(m)
        n = seen.sum(axis=1)
        mean = np.where(seen, m, 0.0).sum(axis=1) / n
        between = np.sqrt(np.where(seen, (m - mean[:, None]) ** 2, 0.0).sum(axis=1) / (n - 1))
        center[ready] = level
        scale[ready] = np.sqrt(_median(v) + between * between)
    return center, scale


def _median(a: F64) -> F64:
    """Each row's median of its numbers (NaN: none; every row has some): ``np.nanmedian``'s
    values, without its cost (a slot's refresh took a millisecond)."""
    ordered = np.sort(a, axis=1)  # NaN last
    n = (~np.isnan(a)).sum(axis=1)
    rows = np.arange(len(a))
    low, high = ordered[rows, (n - 1) // 2], ordered[rows, n // 2]
    out: F64 = (low + high) / 2.0
    return out
