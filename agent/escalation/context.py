"""The context of a wake, gathered from memory at the wake's sample time: the triggers, the
streams involved before and during the incident with their usual ranges, the busiest and the
largest processes, the focused app, the place, the battery, the time, the recent events.

Memory is the daemon's own SQLite database plus the batch not yet committed (``Recall``), so
the live daemon and a replay of its recording build the same context at the same sample.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np

from agent.config import EscalationConfig
from agent.detect.places import distance_m
from agent.escalation.policy import WakeRequest
from agent.memory.recall import F64, Recall, split_stream
from agent.numbers import finite_float
from agent.samples import Sample

_NONE: F64 = np.zeros(0)

#: Points kept of a stream's values before and during the incident (evenly spaced).
POINTS = 12
#: The machine's vitals, looked at at every wake beside the streams the triggers name: what
#: explains what (CPU heats the machine and drains the battery; memory pushes into swap;
#: swapping reads and writes the disk), whichever source's anomaly woke the model.
VITALS = {
    "system": (
        "cpu_pct",
        "load1",
        "mem_used_pct",
        "swap_pct",
        "temp_C",
        "net_rx_Bps",
        "net_tx_Bps",
        "disk_read_Bps",
        "disk_write_Bps",
    ),
    "battery": ("power_W", "battery_pct"),
}
#: A fix or a battery reading this old at the wake still says where and how the device is.
RECENT_S = 600.0
#: The CPU level band within which the usual temperature and power "at this load" are taken.
LOAD_BAND_PCT = 10.0
HOUR_BAND_S = 3600.0


@dataclass(frozen=True)
class StreamFacts:
    """One stream around the incident. ``peak`` is its value during the incident farthest
    from the usual median (for rates, which are spiky, their median during it); ``usual`` the
    (5th, 50th, 95th percentile) of the stream over the ``usual_days`` before the incident;
    ``hour`` the (5th, 95th) of its values within an hour of the same time of day on earlier
    days; ``at_load`` the (50th, 95th) of its values when the CPU was within
    ``LOAD_BAND_PCT`` of the incident's peak CPU (for temperature and power: what this load
    usually gives), with how many values that was; ``stuck_s`` how long the latest value has
    been repeated exactly, and ``longest_run_s`` the longest any one value was repeated in
    the usual period (a sensor that reports whole degrees may sit on one for an hour at
    night). Battery power is the power drawn on battery: readings while charging are left
    out."""

    stream: str
    involved: bool
    before: tuple[float, ...]
    during: tuple[float, ...]
    peak: float | None
    last: float | None
    usual: tuple[float, float, float] | None
    hour: tuple[float, float] | None = None
    at_load: tuple[float, float, int] | None = None
    stuck_s: float = 0.0
    longest_run_s: float = 0.0


@dataclass(frozen=True)
class ProcessFacts:
    """A process in the ``apps`` samples' rankings: mean CPU share (percent of one core;
    polls where it was not ranked count as 0) before and during, and its memory share (percent
    of RAM) at its lowest before and its highest during (0 where it was never ranked)."""

    name: str
    cpu_pct: float
    cpu_before_pct: float
    mem_pct: float
    mem_before_pct: float


@dataclass(frozen=True)
class PlaceFacts:
    name: str | None
    lat: float
    lon: float
    new: bool
    visits: int
    nearest_known_m: float | None


@dataclass(frozen=True)
class BatteryFacts:
    level_pct: float | None
    charging: bool | None
    power_W: float | None
    drain_pct_per_h: float | None


@dataclass(frozen=True)
class Context:
    t: float
    start_t: float
    weekday: str
    hour_utc: float
    triggers: tuple[dict[str, Any], ...]
    streams: tuple[StreamFacts, ...] = ()
    processes: tuple[ProcessFacts, ...] = ()
    focused_app: str | None = None
    place: PlaceFacts | None = None
    battery: BatteryFacts | None = None
    recent: tuple[dict[str, Any], ...] = field(default=())

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    def stream(self, name: str) -> StreamFacts | None:
        return next((s for s in self.streams if s.stream == name), None)


def build_context(recall: Recall, request: WakeRequest, config: EscalationConfig) -> Context:
    t, start = request.t, request.start_t
    causes = [e.data for e in request.triggers]  # rule.fired: {event, subject, data}
    when = datetime.fromtimestamp(start, tz=UTC)
    before_t = start - config.context_before_s
    usual_t = start - config.usual_days * 86_400.0
    involved = _involved_streams(causes)
    streams = _streams(recall, involved, (usual_t, before_t, start, t))
    apps = recall.samples("apps", before_t, t)
    recent = [e for e in recall.events(t - 3600.0, t) if not e.kind.startswith(("rule.", "wake."))]
    return Context(
        t=t,
        start_t=start,
        weekday=when.strftime("%A"),
        hour_utc=round(when.hour + when.minute / 60.0, 3),
        triggers=tuple(
            {
                "t": e.t,
                "rule": e.subject,
                "event": c.get("event"),
                "subject": c.get("subject"),
                "data": c.get("data", {}),
            }
            for e, c in zip(request.triggers, causes, strict=True)
        ),
        streams=tuple(streams),
        processes=_processes([s for s in apps if s.t < start], [s for s in apps if s.t >= start]),
        focused_app=_focused([s for s in apps if s.t >= start - 60.0]),
        place=_place(recall, causes, t),
        battery=_battery(recall, start, t),
        recent=tuple({"t": e.t, "kind": e.kind, "subject": e.subject} for e in recent[-20:]),
    )


def _involved_streams(causes: Iterable[Mapping[str, Any]]) -> list[str]:
    names: list[str] = []
    for cause in causes:
        data = cause.get("data", {})
        if cause.get("event") == "anomaly.start":
            names += [str(s) for s in data.get("streams", [])]
        elif cause.get("event") in ("sensor.stuck", "volume.high", "heat.high"):
            names.append(str(cause.get("subject")))
        elif "stream" in cause:  # a numeric rule
            names.append(str(cause["stream"]))
    return list(dict.fromkeys(names))


def _streams(
    recall: Recall, involved: Sequence[str], span: tuple[float, float, float, float]
) -> list[StreamFacts]:
    """Facts on the streams the triggers name and on the machine's vitals, each sensor's
    read in one pass over the usual period."""
    usual_t, _, start, t = span
    vitals = [f"{sensor}.{f}" for sensor, fields in VITALS.items() for f in fields]
    names = list(dict.fromkeys([*involved, *vitals]))
    by_sensor: dict[str, list[str]] = {}
    for name in names:
        by_sensor.setdefault(split_stream(name)[0], []).append(name)
    series: dict[str, tuple[F64, F64]] = {}
    for sensor, members in by_sensor.items():
        if sensor == "metric":
            series.update({name: recall.series(name, usual_t, t) for name in members})
            continue
        fields = [split_stream(name)[1] for name in members]
        wanted = list(dict.fromkeys([*fields, "charging"] if sensor == "battery" else fields))
        times, columns = recall.columns(sensor, wanted, usual_t, t)
        if "power_W" in columns:  # the drain is what matters: power while charging is not
            columns["power_W"] = np.where(columns["charging"] == 0.0, columns["power_W"], np.nan)
        for name, f in zip(members, fields, strict=True):
            known = ~np.isnan(columns[f])
            series[name] = (times[known], columns[f][known])
    cpu = series.get("system.cpu_pct", (_NONE, _NONE))
    cpu_during = cpu[1][cpu[0] >= start]
    peak_cpu = float(cpu_during.max()) if len(cpu_during) else None
    facts = [_stream_facts(n, n in involved, series[n], span, peak_cpu, cpu) for n in names]
    return [f for f in facts if f.peak is not None]


def _stream_facts(
    name: str,
    involved: bool,
    series: tuple[F64, F64],
    span: tuple[float, float, float, float],
    peak_cpu: float | None,
    cpu: tuple[F64, F64],
) -> StreamFacts:
    _, before_t, start, _ = span
    times, values = series
    split = int(np.searchsorted(times, start))  # the first at or after the start
    old, during = values[:split], values[split:]
    before = old[times[:split] >= before_t]
    usual = _percentiles(old, (5, 50, 95))
    hour_pcts = _percentiles(_same_hour(times[:split], old, start), (5, 95))
    at_load = None
    if peak_cpu is not None and split_stream(name)[1] in ("temp_C", "power_W"):
        at_load = _at_load(times[:split], old, cpu, peak_cpu)
    peak = None
    if len(during) and name.endswith("_Bps"):  # rates are spiky: their level is their median
        peak = float(np.median(during))
    elif len(during):
        centre = usual[1] if usual is not None else during[0]
        peak = float(during[np.argmax(np.abs(during - centre))])  # (the first, if tied)
    return StreamFacts(
        stream=name,
        involved=involved,
        before=_downsample(before),
        during=_downsample(during),
        peak=peak,
        last=float(during[-1]) if len(during) else None,
        usual=(usual[0], usual[1], usual[2]) if usual is not None else None,
        hour=(hour_pcts[0], hour_pcts[1]) if hour_pcts is not None else None,
        at_load=at_load,
        stuck_s=_stuck_s(times, values),
        longest_run_s=_longest_run_s(times[:split], old),
    )


def _at_load(
    times: F64, values: F64, cpu: tuple[F64, F64], peak_cpu: float
) -> tuple[float, float, int] | None:
    """The stream's usual (50th, 95th) when the CPU was near ``peak_cpu``, each value paired
    with the CPU reading nearest in time (within a minute; the earlier one if two are as
    near)."""
    cpu_t, cpu_v = cpu
    if not len(cpu_t):
        return None
    after = np.searchsorted(cpu_t, times)  # the first CPU reading at or after each value
    before = after - 1
    gap_before = np.where(before >= 0, np.abs(cpu_t[np.maximum(before, 0)] - times), np.inf)
    inside = after < len(cpu_t)
    gap_after = np.where(inside, np.abs(cpu_t[np.minimum(after, len(cpu_t) - 1)] - times), np.inf)
    # (never -1 nor past the end: a side that is missing is infinitely far, the other is not)
    nearest = np.where(gap_before <= gap_after, before, after)
    paired = np.minimum(gap_before, gap_after) <= 60.0
    near = values[paired & (np.abs(cpu_v[nearest] - peak_cpu) <= LOAD_BAND_PCT)]
    pcts = _percentiles(near, (50, 95))
    return (pcts[0], pcts[1], len(near)) if pcts is not None else None


def _processes(before: Sequence[Sample], during: Sequence[Sample]) -> tuple[ProcessFacts, ...]:
    cpu_before, mem_before = _rankings(before)
    cpu_during, mem_during = _rankings(during)
    names = sorted(set(cpu_during) | set(mem_during))
    facts = [
        ProcessFacts(
            name=n,
            cpu_pct=round(sum(cpu_during.get(n, [])) / max(len(during), 1), 3),
            cpu_before_pct=round(sum(cpu_before.get(n, [])) / max(len(before), 1), 3),
            mem_pct=max(mem_during.get(n, [0.0])),
            mem_before_pct=min(mem_before.get(n, [0.0])),
        )
        for n in names
    ]
    facts.sort(key=lambda p: (-p.cpu_pct, -p.mem_pct, p.name))
    return tuple(facts)


def _rankings(samples: Iterable[Sample]) -> tuple[dict[str, list[float]], dict[str, list[float]]]:
    """name -> the CPU and the memory shares it was ranked with, poll by poll."""
    cpu: dict[str, list[float]] = {}
    mem: dict[str, list[float]] = {}
    for sample in samples:
        for kind, into in (("cpu", cpu), ("mem", mem)):
            i = 1
            while (name := sample.data.get(f"{kind}{i}_name")) is not None:
                pct = sample.data.get(f"{kind}{i}_pct")
                if isinstance(name, str) and isinstance(pct, int | float):
                    into.setdefault(name, []).append(float(pct))
                i += 1
    return cpu, mem


def _focused(samples: Sequence[Sample]) -> str | None:
    apps = Counter(str(s.data["app"]) for s in samples if isinstance(s.data.get("app"), str))
    if not apps:
        return None
    top = max(apps.values())
    return next(
        a for a in reversed([str(s.data.get("app")) for s in samples]) if apps.get(a) == top
    )


def _place(recall: Recall, causes: Sequence[Mapping[str, Any]], t: float) -> PlaceFacts | None:
    places = recall.places()
    for cause in causes:
        if cause.get("event") == "place.arrive":
            d = cause.get("data", {})
            lat, lon = float(d["lat"]), float(d["lon"])
            others = [p for p in places if p["id"] != d.get("place_id")]
            return PlaceFacts(
                name=str(cause.get("subject")),
                lat=lat,
                lon=lon,
                new=bool(d.get("new", False)),
                visits=int(d.get("visits", 1)),
                nearest_known_m=_nearest_m(others, lat, lon),
            )
    fixes = recall.samples("location", t - RECENT_S, t)
    if not fixes:
        return None
    lat, lon = float(fixes[-1].data["lat"]), float(fixes[-1].data["lon"])  # type: ignore[arg-type]
    inside = [p for p in places if distance_m(lat, lon, p["lat"], p["lon"]) <= p["radius_m"]]
    here = min(inside, key=lambda p: distance_m(lat, lon, p["lat"], p["lon"]), default=None)
    return PlaceFacts(
        name=f"place-{here['id']}" if here is not None else None,
        lat=lat,
        lon=lon,
        new=False,
        visits=int(here["visits"]) if here is not None else 0,
        nearest_known_m=_nearest_m(places, lat, lon),
    )


def _nearest_m(places: Sequence[Mapping[str, Any]], lat: float, lon: float) -> float | None:
    if not places:
        return None
    return round(min(distance_m(lat, lon, p["lat"], p["lon"]) for p in places), 1)


def _battery(recall: Recall, start: float, t: float) -> BatteryFacts | None:
    readings = recall.samples("battery", start - 1800.0, t)
    if not readings or readings[-1].t < t - RECENT_S:
        return None
    last = readings[-1].data
    drain = None
    levels = [
        (s.t, float(v))
        for s in readings
        if s.data.get("charging") is False
        and (v := finite_float(s.data.get("battery_pct"))) is not None
    ]
    if len(levels) >= 2 and levels[-1][0] - levels[0][0] >= 300.0:
        (t0, v0), (t1, v1) = levels[0], levels[-1]
        drain = round((v0 - v1) / ((t1 - t0) / 3600.0), 2)
    charging = last.get("charging")
    return BatteryFacts(
        level_pct=finite_float(last.get("battery_pct")),
        charging=charging if isinstance(charging, bool) else None,
        power_W=finite_float(last.get("power_W")),
        drain_pct_per_h=drain,
    )


def _percentiles(values: Sequence[float] | F64, qs: tuple[int, ...]) -> tuple[float, ...] | None:
    if len(values) < 10:
        return None
    found = np.percentile(np.asarray(values, dtype=np.float64), qs)
    return tuple(round(float(v), 6) for v in found)


def _downsample(values: F64) -> tuple[float, ...]:
    if len(values) <= POINTS:
        return tuple(values.tolist())
    step = (len(values) - 1) / (POINTS - 1)
    return tuple(float(values[round(i * step)]) for i in range(POINTS))


def _same_hour(times: F64, values: F64, start: float) -> F64:
    """The values before ``start`` (by more than the band) within ``HOUR_BAND_S`` of its time
    of day, on any earlier day."""
    apart = np.fmod(np.abs(start - times), 86_400.0)  # how far apart in time of day, 0 to 12 h
    apart = np.minimum(apart, 86_400.0 - apart)
    keep = (times < start - HOUR_BAND_S) & (apart <= HOUR_BAND_S)
    return values[keep]


def _stuck_s(times: F64, values: F64) -> float:
    """How long the latest value has been repeated exactly."""
    if len(values) < 2:
        return 0.0
    other = np.flatnonzero(values != values[-1])
    first = int(other[-1]) + 1 if len(other) else 0
    return float(times[-1] - times[first])


def _longest_run_s(times: F64, values: F64) -> float:
    """The longest time one value was repeated exactly."""
    if len(values) < 2:
        return 0.0
    starts = np.flatnonzero(np.r_[True, values[1:] != values[:-1]])
    ends = np.r_[starts[1:] - 1, len(values) - 1]
    return float((times[ends] - times[starts]).max())
