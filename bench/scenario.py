"""Benchmark data for the escalation stage (bench/): a laptop trace with incidents of known cause.

Two weeks (by default) of one laptop from Monday 2026-06-01 00:00 UTC, the same for the same
seed. The user lives at UTC+0 (Reykjavík): weekdays at an office 4 km away, evenings and
nights at home, weekends at home, at the shop or a friend's. One simulated process table
drives both the ``apps`` rankings (every 5 s) and the ``system`` fields (10 s), heat, load and
battery (60 s); ``location`` fixes come every 30 s. From day 3 on, two incidents of each cause
in ``CAUSES``, at least two hours apart, each naming its culprit; at least three days stay
free of them (``normal_days``). Benign bursts of a few minutes happen on every day.

    python bench/scenario.py -o TRACE.jsonl.gz [--incidents incidents.json] [--days 14] [--seed 1]
"""

from __future__ import annotations

import argparse
import json
import math
import random
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from agent.runtime.trace import TraceWriter
from agent.samples import Sample, Scalar

START_T = 1_780_272_000.0  # Monday 2026-06-01T00:00:00Z
#: A laptop with one network interface and one disk, as the system sensor reports it with
#: ``per_device = true`` (its default): each device's rates beside the totals, equal to them.
PER_DEVICE = {
    "net_rx_Bps": "net.wlan0.rx_Bps",
    "net_tx_Bps": "net.wlan0.tx_Bps",
    "disk_read_Bps": "disk.nvme0n1.read_Bps",
    "disk_write_Bps": "disk.nvme0n1.write_Bps",
}
DAY_S = 86_400.0
HOUR_S = 3_600.0
MINUTE_S = 60.0
TICK_S = 5.0  # the apps sensor's interval; the other sensors sample every few ticks
SYSTEM_EVERY, LOCATION_EVERY, BATTERY_EVERY = 2, 6, 12
TICKS_PER_DAY = int(DAY_S / TICK_S)
WARMUP_DAYS = 3
MIN_DAYS = 12
MIN_GAP_S = 2 * HOUR_S
CORES = 4

CAUSES = (
    "cpu_runaway",
    "memory_growth",
    "swap_pressure",
    "network_burst",
    "disk_burst",
    "overheating",
    "battery_drain",
    "unusual_place",
    "sensor_fault",
)

# Laptop states: lid closed or in a bag (suspend-like), open but unattended, in use.
OFF, IDLE, ACTIVE = 0, 1, 2
# Where an open laptop is being used, for the mix of focused applications.
HOME_USE, OFFICE_USE, AWAY_USE = 0, 1, 2

# Typical daytime rates, the yardstick of the bursts (bytes per second).
USUAL_RX, USUAL_TX = 45_000.0, 8_000.0
USUAL_READ, USUAL_WRITE = 280_000.0, 390_000.0

BATTERY_J = 57.0 * 3600.0  # a 57 Wh pack, three Li-ion cells in series
CHARGE_W = 36.0
LEAK_CEILING_PCT = 92.0  # a leak is killed or swaps before RAM in use passes this
CPU_QUANTUM = 100.0 * 0.01 / TICK_S  # one clock tick (10 ms) in percent of a core over a poll


@dataclass(frozen=True)
class Incident:
    """One injected incident: what caused it, what to blame, and when (UNIX seconds, UTC)."""

    start_t: float
    end_t: float
    cause: str
    culprit: str
    culprit_kind: str
    note: str
    lat: float | None = None
    lon: float | None = None


@dataclass(frozen=True)
class Place:
    name: str
    lat: float
    lon: float


HOME = Place("home", 64.13548, -21.89541)
OFFICE = Place("office", 64.10010, -21.88300)
SHOP = Place("shop", 64.13170, -21.87520)
FRIEND = Place("friend", 64.10500, -21.85000)
DESKS = (HOME, OFFICE)  # where a charger is at hand


@dataclass(frozen=True)
class Leg:
    """Where the laptop is from ``start`` to ``end`` (seconds from START_T): at ``origin``
    when it is ``dest``, else on the way."""

    start: float
    end: float
    origin: Place
    dest: Place


@dataclass(frozen=True)
class Episode:
    """A process doing something for a while: an incident's culprit or a benign burst.

    ``pid`` None attaches the effect to the running process called ``target``; ``window`` is
    the application the user keeps in front meanwhile (None: the user may be elsewhere)."""

    start: float
    end: float
    kind: str
    target: str
    params: Mapping[str, float]
    pid: int | None = None
    window: str | None = None


@dataclass(frozen=True)
class Trip:
    arrive: float
    depart: float
    place: Place
    travel_s: float


@dataclass(frozen=True)
class Fault:
    start: float
    end: float
    stream: str
    value: float | None  # None: held at the last good reading


@dataclass
class Schedule:
    """The incidents and what the simulation needs to inject them."""

    incidents: list[Incident] = field(default_factory=list)
    episodes: list[Episode] = field(default_factory=list)
    trips: dict[int, Trip] = field(default_factory=dict)
    faults: list[Fault] = field(default_factory=list)
    unplugged: list[tuple[float, float]] = field(default_factory=list)


# --------------------------------------------------------------------------- incident slots


@dataclass(frozen=True)
class Slot:
    """Where one incident may go: its cause, culprit candidates, kind of day, start hours
    and duration in minutes."""

    cause: str
    culprits: tuple[str, ...]
    days: str  # "weekday", "weekend" or "any"
    hours: tuple[float, float]
    minutes: tuple[float, float]


SLOTS: tuple[Slot, ...] = (
    Slot("cpu_runaway", ("tracker-miner-fs", "node"), "any", (1.0, 4.0), (30, 90)),
    Slot("cpu_runaway", ("node", "python3", "chrome", "ffmpeg"), "weekday", (10.0, 15.5), (15, 60)),
    Slot("memory_growth", ("python3", "node", "java"), "weekday", (9.75, 14.5), (40, 90)),
    Slot("memory_growth", ("Discord", "gjs"), "any", (19.0, 21.5), (30, 80)),
    Slot("swap_pressure", ("qemu-system-x86",), "weekday", (10.0, 15.0), (30, 75)),
    Slot("swap_pressure", ("java",), "weekend", (13.0, 17.5), (30, 90)),
    Slot("network_burst", ("rclone", "rsync"), "any", (0.5, 4.0), (30, 90)),
    Slot("network_burst", ("steam", "dropbox"), "weekend", (10.0, 18.5), (20, 60)),
    Slot("disk_burst", ("btrfs", "updatedb"), "any", (1.5, 4.5), (20, 60)),
    Slot("disk_burst", ("tar", "baloo_file"), "weekday", (11.0, 15.5), (15, 45)),
    Slot("overheating", ("supertuxkart", "factorio"), "weekend", (14.0, 19.0), (30, 80)),
    Slot("overheating", ("blender",), "any", (21.0, 22.75), (20, 60)),
    Slot("battery_drain", ("zoom",), "weekday", (19.25, 20.75), (30, 60)),
    Slot("battery_drain", ("teams-for-linux", "chrome"), "weekday", (10.5, 14.5), (30, 60)),
    Slot("unusual_place", ("new-place",), "weekend", (11.0, 15.0), (90, 180)),
    Slot("unusual_place", ("new-place",), "weekday", (13.0, 14.25), (60, 120)),
    Slot("sensor_fault", ("system.temp_C",), "weekday", (9.75, 14.0), (60, 180)),
    Slot("sensor_fault", ("battery.battery_pct",), "weekend", (13.0, 16.5), (60, 150)),
)

#: The application window of a culprit the user works in, by process name.
WINDOWS = {
    "qemu-system-x86": "qemu",
    "java": "Minecraft",
    "supertuxkart": "supertuxkart",
    "factorio": "factorio",
    "blender": "Blender",
    "zoom": "zoom",
    "teams-for-linux": "teams-for-linux",
    "chrome": "Google-chrome",
    "Discord": "discord",
}


def _is_weekend(day: int) -> bool:
    return day % 7 in (5, 6)  # day 0 is a Monday


def _fits(day: int, days: str) -> bool:
    return days == "any" or (days == "weekend") == _is_weekend(day)


def _incident_days(days: int, rng: random.Random) -> list[int]:
    """Days that may hold incidents; the rest of days 3.. stay normal (at least three). Of
    the random choices tried, the one keeping most weekend days (up to 3) and weekdays (up
    to 5) for the incidents that need them."""
    eligible = list(range(WARMUP_DAYS, days))
    n_normal = max(3, len(eligible) - 12)
    best: tuple[tuple[int, int], list[int]] | None = None
    for _ in range(200):
        normal = set(rng.sample(eligible, n_normal))
        rest = [d for d in eligible if d not in normal]
        weekend = sum(_is_weekend(d) for d in rest)
        score = (min(weekend, 3), min(len(rest) - weekend, 5))
        if best is None or score > best[0]:
            best = (score, rest)
    assert best is not None
    return best[1]


def _arrange(days: int, rng: random.Random) -> list[tuple[Slot, float, float]]:
    """Every slot placed on the incident days, trying other days and times when one does
    not fit."""
    for _ in range(50):
        try:
            return _place_slots(_incident_days(days, rng), rng)
        except ValueError:
            continue
    raise ValueError(f"the incidents do not fit in {days} days; try more days")


def _clear(start: float, end: float, taken: Sequence[tuple[float, float]]) -> bool:
    return all(end + MIN_GAP_S <= s or e + MIN_GAP_S <= start for s, e in taken)


def _place_slots(days: list[int], rng: random.Random) -> list[tuple[Slot, float, float]]:
    """A start and end (seconds from START_T, whole minutes) for every slot, apart enough."""
    order = sorted(SLOTS, key=lambda s: ("weekend", "weekday", "any").index(s.days))
    taken: list[tuple[float, float]] = []
    per_day: Counter[int] = Counter()
    placed: list[tuple[Slot, float, float]] = []
    for slot in order:
        spot = _find_spot(slot, days, taken, per_day, rng)
        if spot is None:  # too few days of its kind: let it go anywhere
            spot = _find_spot(replace(slot, days="any"), days, taken, per_day, rng)
        if spot is None:
            raise ValueError(f"no room for a {slot.cause} incident")
        day, start, end = spot
        taken.append((start, end))
        per_day[day] += 1
        placed.append((slot, start, end))
    return sorted(placed, key=lambda p: p[1])


def _find_spot(
    slot: Slot,
    days: list[int],
    taken: list[tuple[float, float]],
    per_day: Counter[int],
    rng: random.Random,
) -> tuple[int, float, float] | None:
    candidates = [d for d in days if _fits(d, slot.days)]
    rng.shuffle(candidates)
    candidates.sort(key=lambda d: per_day[d])  # spread the incidents over the days
    for day in candidates:
        for _ in range(40):
            start = day * DAY_S + round(rng.uniform(*slot.hours) * 60.0) * MINUTE_S
            end = start + round(rng.uniform(*slot.minutes)) * MINUTE_S
            if end <= (day + 1) * DAY_S - 10 * MINUTE_S and _clear(start, end, taken):
                return day, start, end
    return None


# --------------------------------------------------------------------------- incident details

Params = tuple[str, dict[str, float], str]  # episode kind, its parameters, a note


def _runaway(culprit: str, rng: random.Random) -> Params:
    cpu = rng.uniform(100.0, 200.0)
    note = f"{culprit} stuck in a loop at about {cpu:.0f} % of one core"
    return "runaway", {"cpu": cpu, "mem": rng.uniform(0.8, 3.0)}, note


def _leak(culprit: str, rng: random.Random) -> Params:
    peak = rng.uniform(35.0, 45.0)
    note = f"{culprit} leaking memory, from 2 % of RAM to about {peak:.0f} %"
    return "leak", {"cpu": rng.uniform(5.0, 25.0), "peak": peak}, note


def _swap(culprit: str, rng: random.Random) -> Params:
    used, swap = rng.uniform(93.0, 96.5), rng.uniform(30.0, 70.0)
    note = f"{culprit} takes RAM until {used:.0f} % is in use and swap fills to {swap:.0f} %"
    params = {"cpu": rng.uniform(40.0, 120.0), "used": used, "swap": swap}
    return "swap", {**params, "kswapd": rng.uniform(8.0, 30.0)}, note


def _transfer(culprit: str, rng: random.Random) -> Params:
    rx = culprit in ("steam",) or (culprit == "dropbox" and rng.random() < 0.5)
    times = rng.uniform(20.0, 100.0)
    way = "downloading" if rx else "uploading"
    note = f"{culprit} {way} at about {times:.0f}x the usual rate"
    return "transfer", {"cpu": rng.uniform(15.0, 35.0), "times": times, "rx": float(rx)}, note


def _disk(culprit: str, rng: random.Random) -> Params:
    times = rng.uniform(20.0, 100.0)
    write = {"tar": 0.6, "baloo_file": 0.15}.get(culprit, 0.02)
    note = f"{culprit} reading the disk at about {times:.0f}x the usual rate"
    return "disk", {"cpu": rng.uniform(12.0, 35.0), "times": times, "write": write}, note


def _heat(culprit: str, rng: random.Random) -> Params:
    cpu, heat = rng.uniform(60.0, 120.0), rng.uniform(20.0, 30.0)
    note = f"fan blocked while {culprit} runs at {cpu:.0f} % of a core: {heat:.0f} °C hotter"
    params = {"cpu": cpu, "heat": heat, "tau": rng.uniform(240.0, 420.0)}
    return "heat", {**params, "mem": rng.uniform(6.0, 14.0)}, note


def _drain(culprit: str, rng: random.Random) -> Params:
    cpu = {"zoom": rng.uniform(80.0, 130.0)}.get(culprit, rng.uniform(60.0, 100.0))
    note = f"{culprit} (camera and video) on battery at {cpu:.0f} % of a core"
    return "drain", {"cpu": cpu, "watts": rng.uniform(3.5, 5.0), "mem": 5.0}, note


PROCESS_CAUSES: dict[str, Callable[[str, random.Random], Params]] = {
    "cpu_runaway": _runaway,
    "memory_growth": _leak,
    "swap_pressure": _swap,
    "network_burst": _transfer,
    "disk_burst": _disk,
    "overheating": _heat,
    "battery_drain": _drain,
}


def _schedule(days: int, seed: int) -> Schedule:
    rng = random.Random(f"{seed}-schedule")
    placed = _arrange(days, rng)
    culprits = _pick_culprits([slot for slot, _, _ in placed], rng)
    schedule, known = Schedule(), [HOME, OFFICE, SHOP, FRIEND]
    for k, ((slot, start, end), culprit) in enumerate(zip(placed, culprits, strict=True)):
        if slot.cause in PROCESS_CAUSES:
            _add_process_incident(schedule, slot.cause, culprit, start, end, 40_000 + 97 * k, rng)
        elif slot.cause == "unusual_place":
            place = _new_place(f"new-place-{len(schedule.trips) + 1}", known, rng)
            known.append(place)
            _add_trip(schedule, place, start, end, rng)
        else:
            _add_fault(schedule, culprit, start, end, rng)
    schedule.incidents.sort(key=lambda i: i.start_t)
    return schedule


def _pick_culprits(slots: list[Slot], rng: random.Random) -> list[str]:
    """One culprit per slot, no process blamed twice while candidates last; the slots with
    the fewest candidates choose first."""
    chosen: dict[int, str] = {}
    used: set[str] = set()
    for k in sorted(range(len(slots)), key=lambda k: len(slots[k].culprits)):
        free = [c for c in slots[k].culprits if c not in used] or list(slots[k].culprits)
        chosen[k] = rng.choice(free)
        used.add(chosen[k])
    return [chosen[k] for k in range(len(slots))]


def _add_process_incident(
    schedule: Schedule,
    cause: str,
    culprit: str,
    start: float,
    end: float,
    pid: int,
    rng: random.Random,
) -> None:
    kind, params, note = PROCESS_CAUSES[cause](culprit, rng)
    own = None if culprit == "tracker-miner-fs" else pid  # that one is already running
    window = WINDOWS.get(culprit) if kind in ("swap", "heat", "drain") else None
    schedule.episodes.append(Episode(start, end, kind, culprit, params, own, window))
    schedule.incidents.append(
        Incident(START_T + start, START_T + end, cause, culprit, "process", note)
    )
    if cause == "battery_drain":
        early, late = rng.uniform(5.0, 15.0) * MINUTE_S, rng.uniform(5.0, 15.0) * MINUTE_S
        schedule.unplugged.append((start - early, end + late))


def _add_trip(
    schedule: Schedule, place: Place, start: float, end: float, rng: random.Random
) -> None:
    day = int(start // DAY_S)
    origin = HOME if _is_weekend(day) else OFFICE
    km = _distance_m(origin, place) / 1000.0
    travel = round(km / rng.uniform(55.0, 70.0) * 60.0 + rng.uniform(5.0, 10.0)) * MINUTE_S
    schedule.trips[day] = Trip(start, end, place, travel)
    note = f"a first visit to a place {km:.0f} km from the {origin.name}"
    schedule.incidents.append(
        Incident(
            START_T + start,
            START_T + end,
            "unusual_place",
            place.name,
            "place",
            note,
            place.lat,
            place.lon,
        )
    )


def _add_fault(
    schedule: Schedule, stream: str, start: float, end: float, rng: random.Random
) -> None:
    if stream == "system.temp_C":
        value = rng.choice((None, 127.0, 0.0))
        what = "its last reading" if value is None else f"{value}"
    else:
        value, what = None, "its last reading while discharging"
        schedule.unplugged.append((start - 20 * MINUTE_S, end + 10 * MINUTE_S))
    schedule.faults.append(Fault(start, end, stream, value))
    note = f"{stream} stuck at {what}"
    schedule.incidents.append(
        Incident(START_T + start, START_T + end, "sensor_fault", stream, "sensor", note)
    )


# --------------------------------------------------------------------------- geography


def _metres_per_degree(lat: float) -> tuple[float, float]:
    return 111_320.0, 111_320.0 * math.cos(math.radians(lat))


def _distance_m(a: Place, b: Place) -> float:
    north, east = _metres_per_degree((a.lat + b.lat) / 2.0)
    return math.hypot((b.lat - a.lat) * north, (b.lon - a.lon) * east)


def _offset(lat: float, lon: float, north_m: float, east_m: float) -> tuple[float, float]:
    north, east = _metres_per_degree(lat)
    return lat + north_m / north, lon + east_m / east


def _new_place(label: str, known: list[Place], rng: random.Random) -> Place:
    """A place 15-50 km east of home (inland: the sea is west and north), 10 km from any
    place seen before."""
    for _ in range(1000):
        bearing = math.radians(rng.uniform(70.0, 115.0))
        dist = rng.uniform(15_000.0, 50_000.0)
        lat, lon = _offset(HOME.lat, HOME.lon, dist * math.cos(bearing), dist * math.sin(bearing))
        place = Place(label, round(lat, 5), round(lon, 5))
        if all(_distance_m(place, k) >= 10_000.0 for k in known):
            return place
    raise ValueError("no room for another new place")


# --------------------------------------------------------------------------- day plans


@dataclass
class DayPlan:
    """One day's routine, in seconds from START_T."""

    legs: list[Leg]
    open: list[tuple[float, float, int]]  # laptop open with the user about: (start, end, use)
    unattended: list[tuple[float, float]]  # open but left alone (lunch, meetings)
    plugged: list[tuple[float, float]]
    bedtime: float


@dataclass
class _Needs:
    """What a day's incidents ask of its routine."""

    windows: list[tuple[float, float]]  # every incident: no outing near them
    busy: list[tuple[float, float]]  # process incidents: the laptop must be open
    unplugged: list[tuple[float, float]]
    trip: Trip | None

    def free(self, start: float, end: float, margin: float = 30 * MINUTE_S) -> bool:
        return all(end + margin <= s or e + margin <= start for s, e in self.windows)

    def last_end(self, lo: float, hi: float, default: float) -> float:
        return max([e for s, e in self.busy if lo <= s < hi], default=default)


class _Legs:
    """Builds a day's legs in order: stay somewhere until a time, then go somewhere."""

    def __init__(self, start: float, place: Place) -> None:
        self.legs: list[Leg] = []
        self.t, self.place = start, place

    def stay(self, until: float) -> None:
        if until > self.t:
            self.legs.append(Leg(self.t, until, self.place, self.place))
            self.t = until

    def go(self, dest: Place, travel_s: float) -> float:
        self.legs.append(Leg(self.t, self.t + travel_s, self.place, dest))
        self.t += travel_s
        self.place = dest
        return self.t


def _minutes(rng: random.Random, lo: float, hi: float) -> float:
    return round(rng.uniform(lo, hi)) * MINUTE_S


def _subtract(
    spans: list[tuple[float, float]], cut: tuple[float, float]
) -> list[tuple[float, float]]:
    out = []
    for s, e in spans:
        if cut[1] <= s or e <= cut[0]:
            out.append((s, e))
            continue
        if s < cut[0]:
            out.append((s, cut[0]))
        if cut[1] < e:
            out.append((cut[1], e))
    return out


def _bedtime(day: int, needs: _Needs, rng: random.Random, hours: tuple[float, float]) -> float:
    base = day * DAY_S
    usual = base + rng.uniform(*hours) * HOUR_S
    late = needs.last_end(base + 18 * HOUR_S, base + DAY_S, usual) + _minutes(rng, 10, 25)
    return min(base + 23.9 * HOUR_S, max(usual, late))


def _weekday_plan(day: int, needs: _Needs, rng: random.Random) -> DayPlan:
    base = day * DAY_S

    def at(hour: float) -> float:
        return base + hour * HOUR_S

    wake, legs = at(rng.uniform(6.6, 7.3)), _Legs(base, HOME)
    legs.stay(at(rng.uniform(8.0, 8.5)))
    leave = legs.t
    arrive = legs.go(OFFICE, _minutes(rng, 22, 28))
    leave_work = max(at(rng.uniform(16.75, 17.4)), needs.last_end(at(9), at(17), 0.0) + 900.0)
    open_: list[tuple[float, float, int]] = []
    office = [(arrive + 5 * MINUTE_S, 0.0)]
    if needs.trip is not None:
        trip = needs.trip
        legs.stay(trip.arrive - trip.travel_s)
        office = [(office[0][0], legs.t - 5 * MINUTE_S)]
        legs.go(trip.place, trip.travel_s)
        legs.stay(trip.depart)
        back = legs.go(OFFICE, trip.travel_s)
        open_.append((trip.arrive + 10 * MINUTE_S, trip.depart - 10 * MINUTE_S, AWAY_USE))
        leave_work = max(leave_work, back + _minutes(rng, 20, 40))
        office.append((back + 5 * MINUTE_S, 0.0))
    office[-1] = (office[-1][0], leave_work - 5 * MINUTE_S)
    legs.stay(leave_work)
    if day == 1 or rng.random() < 0.3:  # groceries on the way home
        legs.go(SHOP, _minutes(rng, 18, 22))
        legs.stay(legs.t + _minutes(rng, 12, 25))
        home_at = legs.go(HOME, _minutes(rng, 5, 8))
    else:
        home_at = legs.go(HOME, _minutes(rng, 22, 28))
    bedtime = _bedtime(day, needs, rng, (22.4, 23.4))
    evening = [(home_at + _minutes(rng, 15, 40), bedtime)]
    visit_at = at(rng.uniform(19.0, 19.5))
    travel, stay = _minutes(rng, 12, 16), _minutes(rng, 90, 150)
    back_at = visit_at + 2 * travel + stay
    if (
        (day == 2 or rng.random() < 0.2)
        and back_at < bedtime - 1800
        and needs.free(visit_at, back_at)
    ):
        legs.stay(visit_at)
        legs.go(FRIEND, travel)
        legs.stay(legs.t + stay)
        legs.go(HOME, travel)
        evening = _subtract(evening, (visit_at - 300.0, back_at + 300.0))
    legs.stay(base + DAY_S)
    if rng.random() < 0.6:
        open_.append((wake + 10 * MINUTE_S, leave - 5 * MINUTE_S, HOME_USE))
    open_ += [(s, e, OFFICE_USE) for s, e in office] + [(s, e, HOME_USE) for s, e in evening]
    lunch = at(rng.uniform(11.75, 12.25))
    unattended = [(lunch, lunch + _minutes(rng, 30, 50))]
    meetings = _meetings(office, needs, unattended, rng)
    plugged = [(base, leave), (bedtime, base + DAY_S)]
    for s, e in office:
        desk = [(s, e + 2 * MINUTE_S)]
        for cut in meetings:
            desk = _subtract(desk, cut)
        plugged += desk
    return DayPlan(legs.legs, open_, unattended + meetings, plugged, bedtime)


def _meetings(
    office: list[tuple[float, float]],
    needs: _Needs,
    taken: list[tuple[float, float]],
    rng: random.Random,
) -> list[tuple[float, float]]:
    """Zero to two meetings the laptop is carried to, unplugged, then left alone."""
    out: list[tuple[float, float]] = []
    for _ in range(rng.choice((0, 1, 1, 2))):
        s, e = rng.choice(office)
        length = _minutes(rng, 30, 60)
        if e - s < length + HOUR_S:
            continue
        start = s + round(rng.uniform(0.0, e - s - length) / MINUTE_S) * MINUTE_S
        span = (start, start + length)
        if needs.free(*span, margin=15 * MINUTE_S) and _clear_of(span, taken + out):
            out.append(span)
    return out


def _clear_of(span: tuple[float, float], others: list[tuple[float, float]]) -> bool:
    return all(span[1] <= s or e <= span[0] for s, e in others)


def _weekend_plan(day: int, needs: _Needs, rng: random.Random) -> DayPlan:
    base = day * DAY_S

    def at(hour: float) -> float:
        return base + hour * HOUR_S

    wake = at(rng.uniform(8.0, 9.5))
    bedtime = _bedtime(day, needs, rng, (23.0, 23.8))
    legs = _Legs(base, HOME)
    outing = _weekend_outing(day, needs, legs, rng)
    legs.stay(base + DAY_S)
    open_ = [(wake + _minutes(rng, 15, 45), bedtime)]
    if outing is not None:
        open_ = _subtract(open_, (outing[0] - 300.0, outing[1] + 300.0))
    plugged = [(base, wake + _minutes(rng, 30, 90)), (bedtime, base + DAY_S)]
    afternoon = at(rng.uniform(15.5, 18.5))
    span = (afternoon, afternoon + _minutes(rng, 60, 120))
    avoid = needs.unplugged + ([outing] if outing else [])
    if rng.random() < 0.6 and _clear_of(span, avoid):
        plugged.append(span)
    return DayPlan(legs.legs, [(s, e, HOME_USE) for s, e in open_], [], plugged, bedtime)


def _weekend_outing(
    day: int, needs: _Needs, legs: _Legs, rng: random.Random
) -> tuple[float, float] | None:
    """The day trip of an unusual_place incident, else a walk to the shop in the morning or
    an afternoon at the friend's, whichever keeps clear of the day's incidents."""
    base = day * DAY_S
    if needs.trip is not None:
        trip = needs.trip
        legs.stay(trip.arrive - trip.travel_s)
        leave = legs.t
        legs.go(trip.place, trip.travel_s)
        legs.stay(trip.depart)
        return leave, legs.go(HOME, trip.travel_s)
    options = [
        (SHOP, rng.uniform(10.0, 11.5), _minutes(rng, 12, 15), _minutes(rng, 25, 50)),
        (FRIEND, rng.uniform(14.0, 16.0), _minutes(rng, 14, 18), _minutes(rng, 120, 180)),
    ]
    rng.shuffle(options)
    for place, hour, travel, stay in options:
        leave = base + round(hour * 60.0) * MINUTE_S
        back = leave + 2 * travel + stay
        if needs.free(leave, back):
            legs.stay(leave)
            legs.go(place, travel)
            legs.stay(legs.t + stay)
            return leave, legs.go(HOME, travel)
    return None


def _needs(day: int, schedule: Schedule) -> _Needs:
    lo, hi = day * DAY_S - DAY_S, day * DAY_S + 2 * DAY_S

    def near(s: float, e: float) -> bool:
        return s < hi and e > lo

    windows = [(i.start_t - START_T, i.end_t - START_T) for i in schedule.incidents]
    busy = [(ep.start, ep.end) for ep in schedule.episodes]
    return _Needs(
        [w for w in windows if near(*w)],
        [b for b in busy if near(*b)],
        [u for u in schedule.unplugged if near(*u)],
        schedule.trips.get(day),
    )


def _plan_day(day: int, schedule: Schedule, rng: random.Random) -> DayPlan:
    needs = _needs(day, schedule)
    plan = (_weekend_plan if _is_weekend(day) else _weekday_plan)(day, needs, rng)
    for cut in needs.unplugged:
        plan.plugged = _subtract(plan.plugged, cut)
    return plan


# --------------------------------------------------------------------------- benign bursts


def _pick(
    spans: Sequence[tuple[float, float]],
    length: float,
    avoid: Sequence[tuple[float, float]],
    rng: random.Random,
) -> float | None:
    """A start in one of ``spans`` with ``length`` to spare, 20 minutes clear of ``avoid``."""
    roomy = [(s, e) for s, e in spans if e - s > length]
    for _ in range(20):
        if not roomy:
            return None
        s, e = rng.choice(roomy)
        start = round(rng.uniform(s, e - length) / TICK_S) * TICK_S
        if all(start + length + 1200.0 <= a or b + 1200.0 <= start for a, b in avoid):
            return start
    return None


#: The ordinary bursts: process (started for the burst, or already running), when in the
#: day, how many seconds.
BENIGN: dict[str, tuple[str, bool, str, tuple[float, float]]] = {
    "tab": ("Isolated Web Co", False, "open", (60, 240)),  # a busy web page
    "index": ("tracker-miner-fs", False, "open", (60, 240)),  # new files indexed
    "update": ("packagekitd", True, "open", (90, 240)),  # download, then unpack
    "build": ("cc1plus", True, "office", (45, 180)),  # a compile on every core
    "call": ("zoom", True, "office", (1500, 3000)),  # a video call at the desk
    "video": ("Isolated Web Co", False, "evening", (600, 1800)),  # a video in a tab
    "locate": ("updatedb", True, "night", (40, 90)),  # the nightly locate database
}


def _benign(
    day: int,
    plan: DayPlan,
    avoid: list[tuple[float, float]],
    pids: Iterator[int],
    rng: random.Random,
) -> list[Episode]:
    """One day's ordinary bursts, 20 minutes clear of the incidents and of each other."""
    base = day * DAY_S
    open_all = [(s, e) for s, e, _ in plan.open]
    spans = {
        "open": open_all,
        "office": [(s, e) for s, e, use in plan.open if use == OFFICE_USE],
        "evening": [(max(s, base + 19.5 * HOUR_S), e) for s, e in open_all],
        "night": [(base + 5 * MINUTE_S, base + 55 * MINUTE_S)],
    }
    counts = {
        "tab": rng.randint(1, 3),
        "index": rng.randint(0, 2),
        "update": int(rng.random() < 0.35),
        "build": rng.randint(0, 2),
        "call": int(day == 1 or rng.random() < 0.35),
        "video": int(rng.random() < 0.45),
        "locate": 1,
    }
    out: list[Episode] = []
    for kind, count in counts.items():
        target, own, when, seconds = BENIGN[kind]
        for _ in range(count):
            length = round(rng.uniform(*seconds) / TICK_S) * TICK_S
            start = _pick(spans[when], length, avoid + [(ep.start, ep.end) for ep in out], rng)
            if start is None:
                continue
            window = {"call": "zoom", "video": "firefox"}.get(kind)
            params = {"x": rng.random(), "y": rng.random()}
            pid = next(pids) if own else None
            out.append(Episode(start, start + length, kind, target, params, pid, window))
    return out


# --------------------------------------------------------------------------- timeline


@dataclass
class Timeline:
    """Per tick (5 s) what the user and the laptop are doing, painted from the day plans."""

    state: bytearray
    use: bytearray
    logged_in: bytearray
    plugged: bytearray
    no_plug: bytearray
    at_desk: bytearray
    focus: list[str | None]
    login_t: list[float]
    busyness: list[float]
    legs: list[Leg]


def _ticks(start: float, end: float) -> tuple[int, int]:
    return max(0, math.ceil(start / TICK_S)), max(0, math.ceil(end / TICK_S))


def _paint(arr: bytearray, start: float, end: float, value: int) -> None:
    i, j = _ticks(start, end)
    j = min(j, len(arr))
    if j > i:
        arr[i:j] = bytes([value]) * (j - i)


def _timeline(
    days: int, plans: list[DayPlan], schedule: Schedule, episodes: list[Episode], seed: int
) -> Timeline:
    n = days * TICKS_PER_DAY
    rng = random.Random(f"{seed}-timeline")
    tl = Timeline(
        bytearray(n),
        bytearray(n),
        bytearray(n),
        bytearray(n),
        bytearray(n),
        bytearray(n),
        [None] * n,
        [],
        [],
        [leg for plan in plans for leg in plan.legs],
    )
    for day, plan in enumerate(plans):
        _paint_day(tl, day, plan, rng)
    for s, e in schedule.unplugged:
        _paint(tl.no_plug, s, e, 1)
    for leg in tl.legs:
        if leg.origin is leg.dest and leg.dest in DESKS:
            _paint(tl.at_desk, leg.start, leg.end, 1)
    for ep in episodes:
        if ep.window is not None:
            _paint(tl.state, ep.start, ep.end, ACTIVE)
    _paint_focus(tl, episodes, rng)
    return tl


def _paint_day(tl: Timeline, day: int, plan: DayPlan, rng: random.Random) -> None:
    weekend = _is_weekend(day)
    tl.busyness.append(rng.uniform(0.6, 1.1) if weekend else rng.uniform(0.75, 1.3))
    first = min((s for s, _, _ in plan.open), default=plan.bedtime)
    tl.login_t.append(first)
    _paint(tl.logged_in, first, plan.bedtime, 1)
    for s, e, use in plan.open:
        _paint(tl.use, s, e, use)
        _paint_bouts(tl.state, s, e, use, weekend, rng)
    for s, e in plan.unattended:
        _paint(tl.state, s, e, IDLE)
    for s, e in plan.plugged:
        _paint(tl.plugged, s, e, 1)


def _paint_bouts(
    state: bytearray, start: float, end: float, use: int, weekend: bool, rng: random.Random
) -> None:
    """Spells of use and of the laptop left alone, alternating."""
    active_s, idle_s = {OFFICE_USE: (1500, 300), AWAY_USE: (900, 600)}.get(
        use, (1500, 1200) if weekend else (1200, 900)
    )
    t, active = start, rng.random() < 0.75
    while t < end:
        mean = active_s if active else idle_s
        length = max(120.0 if active else 60.0, rng.expovariate(1.0 / mean))
        _paint(state, t, min(end, t + length), ACTIVE if active else IDLE)
        t += length
        active = not active


FOCUS_MIX = {
    (OFFICE_USE, False): (
        ("Code", 35),
        ("firefox", 30),
        ("Gnome-terminal", 15),
        ("Slack", 12),
        ("thunderbird", 8),
    ),
    (HOME_USE, False): (
        ("firefox", 70),
        ("thunderbird", 10),
        ("Gnome-terminal", 8),
        ("Slack", 6),
        ("org.gnome.Nautilus", 6),
    ),
    (HOME_USE, True): (
        ("firefox", 78),
        ("thunderbird", 8),
        ("Gnome-terminal", 7),
        ("org.gnome.Nautilus", 7),
    ),
    (AWAY_USE, False): (("firefox", 50), ("Code", 30), ("Gnome-terminal", 20)),
}


def _paint_focus(tl: Timeline, episodes: list[Episode], rng: random.Random) -> None:
    """The focused application of every tick in use: a mix by place, changing every few
    minutes; during an episode with a window, mostly that window."""
    windows = sorted((ep for ep in episodes if ep.window), key=lambda ep: ep.start)
    k, app, switch_at, forced_before = 0, None, 0.0, None
    for i, state in enumerate(tl.state):
        if state != ACTIVE:
            app = None
            continue
        t = i * TICK_S
        while k < len(windows) and windows[k].end <= t:
            k += 1
        forced = windows[k].window if k < len(windows) and windows[k].start <= t else None
        if app is None or t >= switch_at or forced != forced_before:
            weekend = _is_weekend(i // TICKS_PER_DAY)
            mix = FOCUS_MIX.get((tl.use[i], weekend)) or FOCUS_MIX[(tl.use[i], False)]
            names, weights = zip(*mix, strict=True)
            app = forced if forced and rng.random() < 0.85 else rng.choices(names, weights)[0]
            switch_at = t + min(1200.0, max(15.0, rng.expovariate(1.0 / 180.0)))
        forced_before = forced
        tl.focus[i] = app


# --------------------------------------------------------------------------- processes


@dataclass(frozen=True)
class ProcSpec:
    """A process of the normal desktop. ``cpu`` is its mean share of one core with the lid
    closed, open but idle, in use, and in use with its window in front; memory in percent
    of RAM grows from ``mem`` by ``growth`` an hour since login up to ``cap``."""

    name: str
    pid: int
    cpu: tuple[float, float, float, float]
    mem: float
    growth: float = 0.0
    cap: float = 0.0
    user: bool = False  # runs only while the user is logged in
    weekday: bool = False  # work apps: weekdays only
    spiky: bool = False  # interactive: heavy-tailed CPU
    window: str | None = None  # the application whose window drives it


DESKTOP: tuple[ProcSpec, ...] = (
    ProcSpec("systemd", 1, (0.01, 0.03, 0.06, 0.06), 0.08),
    ProcSpec("rcu_preempt", 15, (0.1, 0.15, 0.3, 0.3), 0.0),  # kernel threads: no memory
    ProcSpec("kworker/u8:2-events_unbound", 187, (0.06, 0.1, 0.4, 0.4), 0.0),
    ProcSpec("systemd-journal", 298, (0.01, 0.03, 0.08, 0.08), 0.15),
    ProcSpec("NetworkManager", 812, (0.01, 0.02, 0.05, 0.05), 0.12),
    ProcSpec("Xorg", 1497, (0.02, 0.15, 2.5, 2.5), 0.9, spiky=True),
    ProcSpec("gnome-shell", 1623, (0.05, 0.6, 4.5, 4.5), 2.6, spiky=True),
    ProcSpec("pipewire", 1688, (0.0, 0.05, 0.4, 0.4), 0.09),
    ProcSpec("tracker-miner-fs", 1804, (0.0, 0.02, 0.1, 0.1), 0.55),
    ProcSpec("evolution-data-server", 1840, (0.0, 0.02, 0.06, 0.06), 0.6),
)


def _app(
    name: str,
    pid: int,
    cpu: tuple[float, float, float, float],
    mem: tuple[float, float, float],
    window: str,
    work: bool = False,
) -> ProcSpec:
    """A program the user runs: interactive, its memory (start, growth an hour, cap)
    growing through the day; ``work``: opened on weekdays only."""
    start, growth, cap = mem
    return ProcSpec(name, pid, cpu, start, growth, cap, True, work, True, window)


USER_APPS: tuple[ProcSpec, ...] = (
    _app("firefox", 2410, (0.0, 0.8, 2.2, 9.0), (4.5, 0.8, 10.0), "firefox"),
    _app("Isolated Web Co", 2533, (0.0, 0.5, 1.2, 7.0), (2.2, 0.4, 5.0), "firefox"),
    _app("Isolated Web Co", 2618, (0.0, 0.2, 0.6, 3.0), (1.5, 0.3, 3.5), "firefox"),
    _app("code", 2790, (0.0, 0.3, 0.9, 7.0), (3.5, 0.35, 6.0), "Code", work=True),
    _app("slack", 2875, (0.0, 0.4, 0.8, 3.0), (2.8, 0.1, 3.5), "Slack", work=True),
    _app("thunderbird", 2950, (0.0, 0.2, 0.4, 2.5), (2.5, 0.08, 3.0), "thunderbird"),
    _app("gnome-terminal-server", 3012, (0.0, 0.02, 0.05, 1.5), (0.4, 0.0, 0.4), "Gnome-terminal"),
    _app("nautilus", 3090, (0.0, 0.0, 0.02, 1.0), (0.6, 0.0, 0.6), "org.gnome.Nautilus"),
)
PROCESSES = DESKTOP + USER_APPS
#: The process a focused window belongs to (the apps sensor names it from the window's pid):
#: a browser's window is its main process, not its content processes.
PROCESS_OF_WINDOW = {
    **{w: p for p, w in WINDOWS.items()},
    **{w: p for p, w in reversed([(s.name, s.window) for s in USER_APPS])},
}
UNLISTED_CPU = (0.2, 0.8, 3.0)  # hundreds of small processes and the kernel, % of a core
KSWAPD_PID = 98


@dataclass
class Effect:
    """What episodes add in one tick, to their process and to the machine."""

    cpu: float = 0.0  # the target, % of one core
    mem: float | None = None  # the target's share of RAM (None: its own)
    fill: float = 0.0  # swap pressure: how far the target has pushed RAM toward ``used``
    used: float = 0.0
    rx: float = 0.0
    tx: float = 0.0
    read: float = 0.0
    write: float = 0.0
    blocked: float = 0.0  # tasks in uninterruptible sleep (load average)
    heat: float = 0.0  # °C the cooling falls short by
    watts: float = 0.0  # power beyond what the CPU draws (camera, GPU, radio)
    squeeze: float = 0.0  # share of the other processes' memory pushed out to swap
    swap: float = 0.0  # swap in use the episode drives toward, %
    kswapd: float = 0.0

    def add(self, other: Effect) -> None:
        for name in ("rx", "tx", "read", "write", "blocked", "heat", "watts", "kswapd"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.squeeze = max(self.squeeze, other.squeeze)
        self.swap = max(self.swap, other.swap)


def _progress(ep: Episode, t: float) -> float:
    return (t - ep.start) / (ep.end - ep.start)


def _ramp(ep: Episode, t: float, seconds: float = 30.0) -> float:
    return min(1.0, (t - ep.start + TICK_S) / seconds)


def _fx_runaway(ep: Episode, t: float, rng: random.Random) -> Effect:
    return Effect(cpu=ep.params["cpu"] * rng.uniform(0.97, 1.0), mem=ep.params.get("mem"))


def _fx_leak(ep: Episode, t: float, rng: random.Random) -> Effect:
    f = _progress(ep, t)
    mem = 2.0 + (ep.params["peak"] - 2.0) * f + 0.3 * math.sin(t / 97.0)
    return Effect(cpu=ep.params["cpu"] * rng.uniform(0.5, 1.5), mem=max(2.0, mem))


def _fx_swap(ep: Episode, t: float, rng: random.Random) -> Effect:
    f = _progress(ep, t)
    swapping = f > 0.15
    return Effect(
        cpu=ep.params["cpu"] * rng.uniform(0.6, 1.3),
        fill=min(1.0, f / 0.35),
        used=ep.params["used"] + rng.gauss(0.0, 0.3),
        squeeze=0.3 * min(1.0, f / 0.5),
        swap=ep.params["swap"] * min(1.0, max(0.0, (f - 0.1) / 0.5)),
        kswapd=ep.params["kswapd"] * rng.uniform(0.5, 1.5) if swapping else 0.0,
        read=rng.uniform(3e6, 20e6) if swapping else 0.0,
        write=rng.uniform(8e6, 40e6) if 0.1 < f < 0.7 else rng.uniform(1e6, 8e6),
        blocked=rng.uniform(1.0, 3.0) if swapping else 0.0,
    )


def _fx_transfer(ep: Episode, t: float, rng: random.Random) -> Effect:
    rate = ep.params["times"] * _ramp(ep, t) * rng.uniform(0.8, 1.2)
    cpu = ep.params["cpu"] * rng.uniform(0.7, 1.3)
    if ep.params["rx"]:
        rx = rate * USUAL_RX
        return Effect(cpu=cpu, mem=1.5, rx=rx, tx=rx * 0.02, write=rx * 0.95, blocked=0.3)
    tx = rate * USUAL_TX
    return Effect(cpu=cpu, mem=0.8, tx=tx, rx=tx * 0.03, read=tx * 0.9)


def _fx_disk(ep: Episode, t: float, rng: random.Random) -> Effect:
    read = ep.params["times"] * USUAL_READ * _ramp(ep, t) * rng.uniform(0.75, 1.25)
    return Effect(
        cpu=ep.params["cpu"] * rng.uniform(0.7, 1.3),
        mem=0.4,
        read=read,
        write=read * ep.params["write"],
        blocked=rng.uniform(0.8, 1.4),
    )


def _fx_heat(ep: Episode, t: float, rng: random.Random) -> Effect:
    heat = ep.params["heat"] * (1.0 - math.exp(-(t - ep.start) / ep.params["tau"]))
    cpu = ep.params["cpu"] * rng.uniform(0.85, 1.15)
    return Effect(cpu=cpu, mem=ep.params["mem"], heat=heat, watts=2.0)


def _fx_drain(ep: Episode, t: float, rng: random.Random) -> Effect:
    cpu = ep.params["cpu"] * rng.uniform(0.85, 1.15)
    watts = ep.params["watts"] * rng.uniform(0.9, 1.1)
    rx, tx = rng.uniform(150e3, 300e3), rng.uniform(80e3, 180e3)
    return Effect(cpu=cpu, mem=ep.params["mem"], watts=watts, rx=rx, tx=tx)


def _fx_benign(ep: Episode, t: float, rng: random.Random) -> Effect:
    """The benign bursts, parametrised by the episode's two random numbers x and y."""
    x, y = ep.params["x"], ep.params["y"]
    wobble = rng.uniform(0.8, 1.2)
    if ep.kind == "tab":
        return Effect(cpu=(60.0 + 40.0 * x) * wobble)
    if ep.kind == "index":
        return Effect(cpu=(15.0 + 25.0 * x) * wobble, read=(1.5e6 + 3.5e6 * y) * wobble)
    if ep.kind == "update":
        if _progress(ep, t) < 0.4:
            return Effect(cpu=12.0 * wobble, mem=0.8, rx=(1.5e6 + 2.5e6 * x) * wobble)
        write = (8e6 + 17e6 * y) * wobble
        return Effect(cpu=(40.0 + 50.0 * x) * wobble, mem=1.2, write=write, blocked=0.5)
    if ep.kind == "build":
        return Effect(cpu=min(390.0, (280.0 + 100.0 * x) * wobble), mem=2.5, write=2e6 * wobble)
    if ep.kind == "call":
        cpu = (60.0 + 40.0 * x) * wobble
        return Effect(cpu=cpu, mem=4.5, rx=2e5 * wobble, tx=1.2e5 * wobble, watts=3.0)
    if ep.kind == "video":
        return Effect(cpu=(25.0 + 20.0 * x) * wobble, rx=(4e5 + 4e5 * y) * wobble, watts=1.5)
    return Effect(cpu=(20.0 + 20.0 * x) * wobble, mem=0.3, read=(3e6 + 5e6 * y), blocked=0.8)


EFFECTS: dict[str, Callable[[Episode, float, random.Random], Effect]] = {
    "runaway": _fx_runaway,
    "leak": _fx_leak,
    "swap": _fx_swap,
    "transfer": _fx_transfer,
    "disk": _fx_disk,
    "heat": _fx_heat,
    "drain": _fx_drain,
}

Row = list[Any]  # [name, pid, cpu % of a core, mem % of RAM]


@dataclass
class Moment:
    """What the process table needs to know about one tick."""

    t: float
    state: int
    focus: str | None
    logged_in: bool
    weekday: bool
    busyness: float
    hours_in: float
    mem_scale: float
    kernel_mem: float


def _normal_rows(m: Moment, rng: random.Random) -> list[Row]:
    rows: list[Row] = []
    for spec in PROCESSES:
        if (spec.user and not m.logged_in) or (spec.weekday and not m.weekday):
            continue
        level = spec.cpu[3] if m.focus is not None and m.focus == spec.window else spec.cpu[m.state]
        if spec.spiky:
            cpu = level * m.busyness * rng.expovariate(1.0)
        else:
            cpu = level * (0.5 + rng.random())
        mem = spec.mem
        if spec.user:
            mem = min(spec.cap, spec.mem + spec.growth * m.hours_in) * m.mem_scale
        rows.append([spec.name, spec.pid, cpu, mem * (1.0 + 0.004 * (rng.random() - 0.5))])
    return rows


def _apply_episodes(
    rows: list[Row], m: Moment, episodes: list[Episode], rng: random.Random, wobble: random.Random
) -> tuple[Effect, list[tuple[Row, Effect]]]:
    """Each running episode's CPU and memory on its process (started if it is its own), and
    the sum of their effects on the machine; the rows whose memory depends on the rest. A
    process of its own wobbles its memory as the table's others do (``wobble``, apart from
    ``rng`` so that nothing else of the trace changes with it): a call's or a game's share
    held to the last digit for minutes is no program's."""
    total, pending = Effect(), []
    for ep in episodes:
        eff = EFFECTS.get(ep.kind, _fx_benign)(ep, m.t, rng)
        total.add(eff)
        row = None
        if ep.pid is None:
            row = next((r for r in rows if r[0] == ep.target), None)
        elif eff.cpu > 0.0 or eff.mem:
            row = [
                ep.target,
                ep.pid,
                0.0,
                (eff.mem or 0.3) * (1.0 + 0.004 * (wobble.random() - 0.5)),
            ]
            rows.append(row)
        if row is None:
            continue
        row[2] += eff.cpu
        if ep.kind in ("leak", "swap"):
            pending.append((row, eff))
    if total.kswapd > 0.0:
        rows.append(["kswapd0", KSWAPD_PID, total.kswapd, 0.0])
    return total, pending


def _fit_memory(
    rows: list[Row], pending: list[tuple[Row, Effect]], total: Effect, base: float
) -> float:
    """Squeezes the other processes into swap, sizes the swapping and leaking processes
    against the rest, and returns the RAM in use (%)."""
    mine = {id(row) for row, _ in pending}
    keep = 1.0 - total.squeeze
    rest = base * keep
    for row in rows:
        if id(row) not in mine:
            row[3] *= keep
            rest += row[3]
    for row, eff in pending:
        if eff.fill > 0.0:
            row[3] = max(2.0, (eff.used - rest) * eff.fill)
        else:
            row[3] = max(0.5, min(eff.mem or 0.0, LEAK_CEILING_PCT - rest))
        rest += row[3]
    return rest


def _quantise(rows: list[Row], rng: random.Random) -> float:
    """CPU shares as whole clock ticks over the poll, as /proc counts them; their sum."""
    total = 0.0
    for row in rows:
        ticks = row[2] / CPU_QUANTUM
        whole = int(ticks)
        whole += rng.random() < ticks - whole
        row[2] = whole * CPU_QUANTUM
        total += row[2]
    return total


# --------------------------------------------------------------------------- the machine


class Machine:
    """What carries from tick to tick: heat, load average, charge, swap, the last readings."""

    FAST_K = 1.0 - math.exp(-TICK_S / 20.0)  # CPU die
    SLOW_K = 1.0 - math.exp(-TICK_S / 300.0)  # heat sink and chassis
    LOAD_K = math.exp(-TICK_S / 60.0)  # the kernel's 1-minute load average

    def __init__(self) -> None:
        self.fast = self.slow = 36.0
        self.load = 0.05
        self.energy = 0.85 * BATTERY_J
        self.power_W = 0.0
        self.plugged = True
        self.swap = 1.0
        self.swap_peak_end = (0.0, -1e9)  # (peak, time) when swap pressure last ended
        self.prev_cpu = 0.0
        self.rescue_until = -1.0
        self.rates = (0.0, 0.0)

    def heat(self, pct: float, state: int, heat: float, ambient: float) -> None:
        target = ambient + (9.0 if state == OFF else 15.0) + 50.0 * (1.0 - math.exp(-pct / 35.0))
        target += heat
        self.fast += (target - self.fast) * self.FAST_K
        self.slow += (target - self.slow) * self.SLOW_K

    def temperature(self, rng: random.Random) -> float:
        return min(100.0, 0.5 * (self.fast + self.slow) + rng.gauss(0.0, 0.3))

    def run_queue(self, cores_busy: float, blocked: float, state: int, rng: random.Random) -> None:
        waiting = cores_busy + blocked + rng.random() * (0.05 if state == OFF else 0.3)
        self.load = self.load * self.LOAD_K + waiting * (1.0 - self.LOAD_K)

    def battery(self, plugged: bool, draw_W: float, rng: random.Random) -> None:
        soc = self.energy / BATTERY_J
        self.plugged = plugged
        if plugged:
            taper = 1.0 if soc < 0.8 else max(0.0, (0.998 - soc) / 0.198)
            self.power_W = CHARGE_W * taper * rng.uniform(0.96, 1.04)
            self.energy = min(BATTERY_J, self.energy + self.power_W * TICK_S)
        else:
            self.power_W = draw_W * rng.uniform(0.97, 1.03)
            self.energy = max(0.02 * BATTERY_J, self.energy - self.power_W * TICK_S)

    def swap_step(self, t: float, driven: float, base: float) -> None:
        peak, ended = self.swap_peak_end
        if driven > 0.0:
            self.swap_peak_end = (max(driven, self.swap), t)
            target = max(base, driven)
        else:
            # The culprit's own pages go when it exits; the others' come back as they are used.
            target = base + 0.25 * peak * math.exp(-(t - ended) / (1.5 * HOUR_S))
        self.swap += (target - self.swap) * (1.0 - math.exp(-TICK_S / 60.0))


def _draw_W(state: int, pct: float, net_Bps: float, watts: float) -> float:
    """What the laptop draws: platform and screen, CPU package, radio, camera or GPU."""
    return (1.1, 3.2, 5.2)[state] + 0.32 * pct + 4e-7 * net_Bps + watts


# --------------------------------------------------------------------------- samples


def _system_data(
    m: Machine,
    cpu_pct: float,
    mem_pct: float,
    eff: Effect,
    state: int,
    busy: float,
    rng: random.Random,
) -> dict[str, Scalar]:
    rx, tx, read, write = _base_io(state, busy, rng)
    m.rates = (rx + eff.rx, tx + eff.tx)
    return {
        "cpu_pct": round(min(100.0, max(0.0, cpu_pct + rng.gauss(0.0, 0.15))), 1),
        "load1": round(m.load, 2),
        "mem_used_pct": round(min(99.5, mem_pct + rng.gauss(0.0, 0.15)), 1),
        "swap_pct": round(max(0.0, m.swap), 1),
        "net_rx_Bps": round(rx + eff.rx, 1),
        "net_tx_Bps": round(tx + eff.tx, 1),
        "disk_read_Bps": round(read + eff.read, 1),
        "disk_write_Bps": round(write + eff.write, 1),
        "temp_C": round(m.temperature(rng), 1),
    }


def _base_io(state: int, busy: float, rng: random.Random) -> tuple[float, float, float, float]:
    """Ordinary network and disk rates (B/s) over 10 s: keep-alives and journal flushes with
    the lid closed, mail and chat syncs when idle, page loads and cache writes in use."""
    expo = rng.expovariate
    if state == OFF:
        read = expo(1 / 8e3) if rng.random() < 0.1 else 0.0
        write = expo(1 / 20e3) if rng.random() < 0.3 else 0.0
        return expo(1 / 120.0), expo(1 / 60.0), read, write
    if state == IDLE:
        rx = expo(1 / 1500.0) + (expo(1 / 30e3) if rng.random() < 0.05 else 0.0)
        read = expo(1 / 5e3) if rng.random() < 0.3 else 0.0
        return rx, expo(1 / 700.0), read, expo(1 / 40e3)
    rx = busy * (expo(1 / 200e3) if rng.random() < 0.2 else expo(1 / 6e3))
    read = busy * (expo(1 / 2.5e6) if rng.random() < 0.1 else expo(1 / 30e3))
    write = busy * (expo(1 / 2.5e6) if rng.random() < 0.12 else expo(1 / 100e3))
    return rx, 0.12 * rx + expo(1 / 2e3), read, write


def _apps_data(focus: str | None, rows: list[Row], first: bool) -> dict[str, Scalar]:
    """The apps sensor's fields: the focused app, the top 3 by CPU since the last poll (none
    at zero) and the top 3 by resident memory, ties by name then pid."""
    data: dict[str, Scalar] = {} if focus is None else {"app": focus}
    process = PROCESS_OF_WINDOW.get(focus or "")
    if process is not None and any(row[0] == process for row in rows):
        data["app_process"] = process
    if not first:
        busy = sorted((r for r in rows if r[2] > 0.0), key=lambda r: (-r[2], r[0], r[1]))
        for i, row in enumerate(busy[:3], start=1):
            data[f"cpu{i}_name"], data[f"cpu{i}_pct"] = row[0], round(row[2], 3)
    big = sorted((r for r in rows if r[3] > 0.0), key=lambda r: (-r[3], r[0], r[1]))
    for i, row in enumerate(big[:3], start=1):
        data[f"mem{i}_name"], data[f"mem{i}_pct"] = row[0], round(row[3], 3)
    return data


def _battery_data(m: Machine, rng: random.Random) -> dict[str, Scalar]:
    soc = m.energy / BATTERY_J
    volts_open = 10.6 + 2.1 * soc
    amps = m.power_W / volts_open
    volts = min(13.05, volts_open + (0.15 if m.plugged else -0.1) * amps)
    return {
        "battery_pct": round(100.0 * soc, 1),
        "charging": m.plugged,
        "power_W": round(m.power_W, 2),
        "current_A": round(m.power_W / volts, 3),
        "voltage_V": round(volts + rng.gauss(0.0, 0.005), 3),
    }


class _Locator:
    """Fixes along the legs: a few metres of scatter at a stay (Wi-Fi positioning indoors,
    now and then GPS), GPS on the move along a route that bends the same way every time."""

    def __init__(self, legs: list[Leg], seed: int) -> None:
        self.legs, self.k, self.seed = legs, 0, seed
        self.bends: dict[tuple[str, str], float] = {}

    def fix(self, t: float, rng: random.Random) -> dict[str, Scalar]:
        while self.legs[self.k].end <= t:
            self.k += 1
        leg = self.legs[self.k]
        if leg.origin is leg.dest:
            gps = rng.random() < 0.2
            accuracy = rng.uniform(4.0, 12.0) if gps else rng.uniform(10.0, 30.0)
            lat, lon, spread = leg.dest.lat, leg.dest.lon, rng.uniform(2.0, 5.0)
        else:
            gps, accuracy = True, rng.uniform(4.0, 15.0)
            lat, lon = self._along(leg, t)
            spread = accuracy / 2.5
        lat, lon = _offset(lat, lon, rng.gauss(0.0, spread), rng.gauss(0.0, spread))
        return {
            "lat": round(lat, 7),
            "lon": round(lon, 7),
            "accuracy_m": round(accuracy, 1),
            "provider": "gps" if gps else "network",
        }

    def _along(self, leg: Leg, t: float) -> tuple[float, float]:
        f = (t - leg.start) / (leg.end - leg.start)
        f = 0.5 * f + 0.5 * f * f * (3.0 - 2.0 * f)  # slower getting going and arriving
        a, b = leg.origin, leg.dest
        key = (min(a.name, b.name), max(a.name, b.name))
        if key not in self.bends:
            self.bends[key] = random.Random(f"{self.seed}-route-{key}").uniform(-0.15, 0.15)
        bend = self.bends[key] * (1 if a.name < b.name else -1)
        mid_lat = (a.lat + b.lat) / 2.0 - bend * (b.lon - a.lon) * math.cos(math.radians(a.lat))
        mid_lon = (a.lon + b.lon) / 2.0 + bend * (b.lat - a.lat) / math.cos(math.radians(a.lat))
        if f < 0.5:
            g = f / 0.5
            return a.lat + (mid_lat - a.lat) * g, a.lon + (mid_lon - a.lon) * g
        g = (f - 0.5) / 0.5
        return mid_lat + (b.lat - mid_lat) * g, mid_lon + (b.lon - mid_lon) * g


class _Faults:
    """Overrides a stream while its fault lasts: a fixed value, or the last good reading."""

    def __init__(self, faults: list[Fault]) -> None:
        self.faults = faults
        self.last: dict[str, float] = {}

    def apply(self, sensor: str, t: float, data: dict[str, Scalar]) -> None:
        for fault in self.faults:
            name = fault.stream.split(".", 1)
            if name[0] != sensor:
                continue
            if fault.start <= t < fault.end:
                held = self.last.get(fault.stream, 0.0)
                data[name[1]] = fault.value if fault.value is not None else held
                continue
            value = data.get(name[1])
            if isinstance(value, float):
                self.last[fault.stream] = value


# --------------------------------------------------------------------------- simulation


@dataclass
class Days:
    """What varies from day to day: how busy the user is (in the timeline), how big the
    apps get, the kernel's memory, the room temperature, the swap left in use."""

    mem_scale: list[float]
    kernel_mem: list[float]
    ambient: list[float]
    swap_base: Callable[[float], float]

    @classmethod
    def draw(cls, days: int, rng: random.Random) -> Days:
        return cls(
            [rng.uniform(0.85, 1.15) for _ in range(days)],
            [rng.uniform(8.0, 9.5) for _ in range(days)],
            [rng.uniform(22.5, 26.0) for _ in range(days)],
            _swap_baseline(days, rng),
        )


def _moment(tl: Timeline, i: int, days: Days) -> Moment:
    day = i // TICKS_PER_DAY
    t = i * TICK_S
    return Moment(
        t=t,
        state=tl.state[i],
        focus=tl.focus[i],
        logged_in=bool(tl.logged_in[i]),
        weekday=not _is_weekend(day),
        busyness=tl.busyness[day],
        hours_in=max(0.0, (t - tl.login_t[day]) / HOUR_S),
        mem_scale=days.mem_scale[day],
        kernel_mem=days.kernel_mem[day],
    )


class _Running:
    """The episodes running at a tick, walking forward in time."""

    def __init__(self, episodes: list[Episode]) -> None:
        self.pending = sorted(episodes, key=lambda ep: ep.start)
        self.k = 0
        self.now: list[Episode] = []

    def at(self, t: float) -> list[Episode]:
        while self.k < len(self.pending) and self.pending[self.k].start <= t:
            self.now.append(self.pending[self.k])
            self.k += 1
        self.now = [ep for ep in self.now if ep.end > t]
        return self.now


def _table(
    m: Moment, episodes: list[Episode], rng: random.Random, wobble: random.Random
) -> tuple[list[Row], Effect, float, float]:
    """The process table of one tick, what its episodes do to the machine, the RAM in use
    (%) and the cores busy."""
    rows = _normal_rows(m, rng)
    eff, pending = _apply_episodes(rows, m, episodes, rng, wobble)
    tail = 4.8 + (1.2 if m.logged_in else 0.0)  # the many small processes
    mem_pct = _fit_memory(rows, pending, eff, m.kernel_mem + tail)
    unlisted = UNLISTED_CPU[m.state] * (0.5 + rng.random())
    return rows, eff, mem_pct, (_quantise(rows, rng) + unlisted) / 100.0


def _simulate(
    days: int, tl: Timeline, schedule: Schedule, episodes: list[Episode], seed: int
) -> Iterator[Sample]:
    rng = random.Random(f"{seed}-machine")
    wobble = random.Random(f"{seed}-episode-memory")
    varying = Days.draw(days, random.Random(f"{seed}-days"))
    machine, running = Machine(), _Running(episodes)
    locator, faults = _Locator(tl.legs, seed), _Faults(schedule.faults)
    for i in range(days * TICKS_PER_DAY):
        m = _moment(tl, i, varying)
        rows, eff, mem_pct, cores = _table(m, running.at(m.t), rng, wobble)
        pct = min(100.0, 100.0 * cores / CORES)
        machine.heat(pct, m.state, eff.heat, varying.ambient[i // TICKS_PER_DAY])
        machine.run_queue(cores, eff.blocked, m.state, rng)
        machine.swap_step(m.t, eff.swap, varying.swap_base(m.t))
        draw = _draw_W(m.state, pct, sum(machine.rates), eff.watts)
        machine.battery(_plugged(tl, i, machine), draw, rng)
        t = START_T + m.t
        if i % SYSTEM_EVERY == 0:
            cpu_pct = 0.5 * (pct + machine.prev_cpu)  # the two polls since the last sample
            data = _system_data(machine, cpu_pct, mem_pct, eff, m.state, m.busyness, rng)
            faults.apply("system", m.t, data)
            yield Sample("system", t, data)
        machine.prev_cpu = pct
        yield Sample("apps", t, _apps_data(m.focus if m.state == ACTIVE else None, rows, i == 0))
        if i % BATTERY_EVERY == 0:
            data = _battery_data(machine, rng)
            faults.apply("battery", m.t, data)
            yield Sample("battery", t, data)
        if i % LOCATION_EVERY == 0:
            yield Sample("location", t, locator.fix(m.t, rng))


def _plugged(tl: Timeline, i: int, machine: Machine) -> bool:
    """On the charger as planned, or plugged in at a desk when the battery runs low."""
    if tl.plugged[i]:
        return True
    t = i * TICK_S
    low = machine.energy / BATTERY_J < 0.15
    if low and tl.state[i] != OFF and tl.at_desk[i] and not tl.no_plug[i]:
        machine.rescue_until = t + 2 * HOUR_S
    return t < machine.rescue_until and bool(tl.at_desk[i]) and not tl.no_plug[i]


def _swap_baseline(days: int, rng: random.Random) -> Callable[[float], float]:
    """Swap in use on an ordinary day: a few percent, drifting from day to day."""
    levels = [rng.uniform(0.5, 2.5)]
    for _ in range(days):
        levels.append(min(4.5, max(0.2, levels[-1] + rng.gauss(0.0, 0.6))))

    def base(t: float) -> float:
        day = int(t // DAY_S)
        f = (t - day * DAY_S) / DAY_S
        return levels[day] + (levels[day + 1] - levels[day]) * f

    return base


# --------------------------------------------------------------------------- public API


def with_device_rates(sample: Sample) -> Sample:
    """A system sample with its devices' rates added (``PER_DEVICE``); others as they are:
    the generated laptop's 9 system streams become the 13 a real one with per-device rates
    has."""
    if sample.sensor != "system":
        return sample
    data = dict(sample.data)
    data.update({PER_DEVICE[k]: v for k, v in sample.data.items() if k in PER_DEVICE})
    return Sample(sample.sensor, sample.t, data)


def generate(days: int = 14, seed: int = 1) -> tuple[list[Sample], list[Incident]]:
    """All samples of ``days`` days in time order (ties in a fixed sensor order), and the
    injected incidents by start."""
    if days < MIN_DAYS:
        raise ValueError(f"a scenario needs at least {MIN_DAYS} days, not {days}")
    schedule = _schedule(days, seed)
    plans = [_plan_day(d, schedule, random.Random(f"{seed}-day-{d}")) for d in range(days)]
    episodes = _all_episodes(days, plans, schedule, seed)
    timeline = _timeline(days, plans, schedule, episodes, seed)
    samples = list(_simulate(days, timeline, schedule, episodes, seed))
    return samples, list(schedule.incidents)


def _all_episodes(days: int, plans: list[DayPlan], schedule: Schedule, seed: int) -> list[Episode]:
    avoid = [(i.start_t - START_T, i.end_t - START_T) for i in schedule.incidents]
    pids = iter(range(60_000, 10_000_000, 113))
    benign = [
        ep
        for day in range(days)
        for ep in _benign(day, plans[day], avoid, pids, random.Random(f"{seed}-benign-{day}"))
    ]
    return sorted(schedule.episodes + benign, key=lambda ep: ep.start)


def normal_days(days: int, incidents: Sequence[Incident]) -> list[int]:
    """Days (UTC, from the start) after the warm-up that no incident touches."""
    touched: set[int] = set()
    for inc in incidents:
        first = int((inc.start_t - START_T) // DAY_S)
        last = int((inc.end_t - START_T - 1e-6) // DAY_S)
        touched.update(range(first, last + 1))
    return [d for d in range(WARMUP_DAYS, days) if d not in touched]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-o", "--output", type=Path, required=True, help="trace to write")
    parser.add_argument("--incidents", type=Path, help="write the incidents here as JSON")
    parser.add_argument("--days", type=int, default=14)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    began = time.perf_counter()
    samples, incidents = generate(args.days, args.seed)
    with TraceWriter(
        args.output, created=START_T, host="scenario", source="bench/scenario.py"
    ) as writer:
        for sample in samples:
            writer.write(sample)
    if args.incidents is not None:
        args.incidents.write_text(json.dumps([asdict(i) for i in incidents], indent=1) + "\n")
    causes = Counter(i.cause for i in incidents)
    print(f"{len(samples):,} samples over {args.days} days -> {args.output}")
    print(f"{len(incidents)} incidents: " + ", ".join(f"{c} {causes[c]}" for c in CAUSES))
    print(f"normal days: {normal_days(args.days, incidents)}")
    print(f"took {time.perf_counter() - began:.1f} s")


if __name__ == "__main__":
    main()
