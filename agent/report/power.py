"""build_report(): what vigil cost over a period, from the ledger, the wakes and the battery.

The report is a plain dict in the versioned JSON shape ``SCHEMA`` (README, "Power report"):
the terminal view, the CSV and the HTML page are all drawn from it.

Energy comes from the best source the database holds, and says which:

* **attributed**: the daemon's ledger carries RAPL energy. Each hour's energy above an idle
  floor (the period's 5th percentile of hourly power) is shared by CPU time: the agent gets
  its CPU seconds' share of the machine's busy CPU seconds.
* **estimated (calibrated)**: a coefficient ``vigil power calibrate`` measured on this device
  (watts per busy core, with its 95 % interval) × the agent's CPU seconds.
* **estimated**: a published coefficient band × the agent's CPU seconds.

The device's drain is **measured** from the battery sensor's power readings while
discharging, where there are any.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, func, select

from agent.memory import schema
from agent.memory.store import MemoryStore
from agent.memory.wakes import WakeStore
from agent.numbers import finite_float
from agent.platform import is_termux
from agent.power.calibrate import cpu_model
from agent.power.calibrations import latest_calibration
from agent.power.coefficients import PUBLISHED_VCPU
from agent.power.ledger import HOUR_S, NODE, PROCESS, STARTUP, hour_of
from agent.power.meter import HELPERS, LARGE_MODEL

SCHEMA = "vigil.power-report/1"
#: Stages run in child processes: charged from their rusage, not part of ``process``.
CHILD_STAGES = frozenset({LARGE_MODEL, HELPERS})
UNATTRIBUTED = "unattributed"
#: At most this many device readings on the timeline (evenly thinned).
MAX_DEVICE_POINTS = 2000


@dataclass(frozen=True)
class Joules:
    """Joules per CPU-second: the central figure and its band, and where it comes from."""

    value: float
    low: float
    high: float
    provenance: str
    source: str
    banner: str
    coefficient: dict[str, Any] | None


def build_report(
    engine: Engine,
    *,
    generated: float,
    window_s: float | None = None,
    start: float | None = None,
) -> dict[str, Any]:
    """The report of the ``window_s`` seconds up to the newest record, or from ``start``, or
    of everything. The newest record, not the wall clock, ends the period: a replay's day
    lies in the past. ``generated`` is the wall time the report is made (shown only)."""
    store = MemoryStore(engine)  # its reader: an unreadable database is a StorageError
    end = _newest_t(store)
    if end is None:
        end = generated
    if start is None:
        start = end - window_s if window_s is not None else _oldest_t(store, end)
    period_s = max(end - start, 1.0)
    meta = store.meta()
    ledger = _ledger_rows(store, start, end)
    per_hour = _per_hour(ledger)
    totals = _totals(ledger)
    cores = os.cpu_count() or 1
    process = totals.get(PROCESS, _Sum())
    node = totals.get(NODE, _Sum())
    covered = process.covered_s
    in_process = {
        n: s for n, s in totals.items() if n not in (PROCESS, NODE) and n not in CHILD_STAGES
    }
    children = {n: s for n, s in totals.items() if n in CHILD_STAGES}
    unattributed = _unattributed(totals)
    agent_cpu = process.cpu_s + sum(s.cpu_s for s in children.values())
    joules = _joules(store, meta, per_hour, node, agent_cpu)
    battery = _battery(store, start, end)
    agent_j = agent_cpu * joules.value
    components = _components(in_process, children, unattributed, agent_cpu, joules)
    wakes = _wakes(store, start, end, joules)
    report: dict[str, Any] = {
        "schema": SCHEMA,
        "generated": _iso(generated),
        "period": {"start": _iso(start), "end": _iso(end), "hours": period_s / HOUR_S},
        "device": _device(meta, cores),
        "coverage": {
            "ledger_hours": covered / HOUR_S,
            "share": min(1.0, covered / period_s),
            "origins": sorted({r["origin"] for r in ledger}),
        },
        "energy": {
            "provenance": joules.provenance,
            "source": joules.source,
            "banner": joules.banner,
            "coefficient": joules.coefficient,
        },
        "agent": _agent(
            agent_cpu, agent_j, covered, joules, battery, totals.get(STARTUP, _Sum()).cpu_s
        ),
        "device_drain": battery.drain() if battery is not None else None,
        "components": components,
        "wakes": wakes,
        "tiering": _tiering(store, totals, agent_cpu, covered, cores, joules, wakes),
        "timeline": _timeline(store, per_hour, start, end, joules, battery),
        "method": _method(joules, battery, {r["origin"] for r in ledger}),
    }
    return report


# -- the ledger -------------------------------------------------------------------------------
@dataclass
class _Sum:
    cpu_s: float = 0.0
    calls: int = 0
    covered_s: float = 0.0
    energy_j: float | None = None


def _ledger_rows(store: MemoryStore, start: float, end: float) -> list[dict[str, Any]]:
    table = schema.power_ledger
    query = select(table).where(table.c.hour_us >= hour_of(start), table.c.hour_us <= end * 1e6)
    return [dict(r._mapping) for r in store.query(query)]


def _totals(rows: Iterable[dict[str, Any]]) -> dict[str, _Sum]:
    totals: dict[str, _Sum] = defaultdict(_Sum)
    for row in rows:
        _add(totals[row["component"]], row)
    return dict(totals)


def _per_hour(rows: Iterable[dict[str, Any]]) -> dict[int, dict[str, _Sum]]:
    hours: dict[int, dict[str, _Sum]] = defaultdict(lambda: defaultdict(_Sum))
    for row in rows:
        _add(hours[row["hour_us"]][row["component"]], row)
    return {h: dict(c) for h, c in sorted(hours.items())}


def _add(total: _Sum, row: dict[str, Any]) -> None:
    total.cpu_s += row["cpu_s"]
    total.calls += row["calls"]
    total.covered_s += row["covered_s"] or 0.0
    if row["energy_j"] is not None:
        total.energy_j = (total.energy_j or 0.0) + row["energy_j"]


def _unattributed(components: dict[str, _Sum]) -> float:
    """The process's CPU that no in-process stage owns. ``/proc`` counts whole clock ticks
    (10 ms), so an hour's figure can dip a few ticks below zero: it is shown as it is."""
    own = sum(s.cpu_s for n, s in components.items() if n not in (PROCESS, NODE, *CHILD_STAGES))
    return components.get(PROCESS, _Sum()).cpu_s - own


def _agent_cpu(components: dict[str, _Sum]) -> float:
    """An hour's agent CPU: the process's own and its children's."""
    own = components.get(PROCESS, _Sum()).cpu_s
    return own + sum(s.cpu_s for n, s in components.items() if n in CHILD_STAGES)


# -- energy -----------------------------------------------------------------------------------
def _joules(
    store: MemoryStore,
    meta: dict[str, str],
    per_hour: dict[int, dict[str, _Sum]],
    node: _Sum,
    agent_cpu: float,
) -> Joules:
    if node.energy_j is not None and node.cpu_s > 0 and agent_cpu > 0:
        label = meta.get("energy_source", "RAPL")
        attributed = _attributed(label, per_hour, agent_cpu)
        if attributed is not None:
            return attributed
    calibration = latest_calibration(store.engine)
    if calibration is not None:
        when = datetime.fromtimestamp(calibration.created_t, tz=UTC).date().isoformat()
        source = f"{calibration.source}, calibrated {when} on {calibration.device}"
        return Joules(
            calibration.k_w,
            calibration.ci_low_w,
            calibration.ci_high_w,
            "estimated",
            f"CPU time x {calibration.k_w:.2f} W per busy core ({source})",
            f"ESTIMATE: CPU time x {calibration.k_w:.2f} W per busy core "
            f"[{calibration.ci_low_w:.2f}-{calibration.ci_high_w:.2f}, 95 %], "
            f"measured by vigil power calibrate against {calibration.source}",
            {
                "value": calibration.k_w,
                "low": calibration.ci_low_w,
                "high": calibration.ci_high_w,
                "unit": "W per busy core",
                "source": source,
            },
        )
    c = PUBLISHED_VCPU
    return Joules(
        c.value,
        c.low,
        c.high,
        "estimated",
        f"CPU time x {c.value:.2f} W per busy core (published band)",
        f"ESTIMATE: no hardware energy counter or calibration here; CPU time x {c.value:.2f} "
        f"W per busy core [{c.low:.2f}-{c.high:.2f}]",
        {"value": c.value, "low": c.low, "high": c.high, "unit": c.unit, "source": c.source},
    )


def _attributed(
    label: str, per_hour: dict[int, dict[str, _Sum]], agent_cpu: float
) -> Joules | None:
    """RAPL energy above the idle floor, shared by CPU time, as J per agent CPU-second."""
    hours = [
        (c[NODE], _agent_cpu(c))
        for c in per_hour.values()
        if NODE in c and c[NODE].energy_j is not None and c[NODE].covered_s > 0
    ]
    if not hours:
        return None
    powers = sorted(n.energy_j / n.covered_s for n, _ in hours if n.energy_j is not None)

    def share(floor_w: float) -> float:
        total = 0.0
        for n, agent in hours:
            if n.cpu_s <= 0 or n.energy_j is None:
                continue
            dynamic = max(0.0, n.energy_j - floor_w * n.covered_s)
            total += dynamic * min(1.0, agent / n.cpu_s)
        return total / agent_cpu

    central = share(_percentile(powers, 5))
    low, high = share(_percentile(powers, 25)), share(0.0)
    return Joules(
        central,
        min(low, central),
        max(high, central),
        "attributed",
        f"{label}: energy above an idle floor, shared by CPU time",
        f"ATTRIBUTED: {label} measured the machine; the agent's share is its CPU time's "
        "share of the energy above the idle floor",
        None,
    )


def _percentile(values: Sequence[float], pct: float) -> float:
    if not values:
        return 0.0
    index = min(len(values) - 1, max(0, round(pct / 100 * (len(values) - 1))))
    return values[index]


# -- the battery ------------------------------------------------------------------------------
@dataclass
class _Battery:
    points: list[tuple[float, float | None, float | None, bool | None]]  # t, W, %, charging
    energy_j: float
    discharging_s: float
    capacity_wh: float | None
    volts: float | None

    def drain(self) -> dict[str, Any] | None:
        if self.discharging_s <= 0:
            return None
        return {
            "energy_j": self.energy_j,
            "avg_power_w": self.energy_j / self.discharging_s,
            "source": "battery sensor (power while discharging)",
            "discharging_hours": self.discharging_s / HOUR_S,
            "capacity_wh": self.capacity_wh,
        }


#: Readings further apart than this are not bridged when the drain is summed up.
_GAP_S = 600.0


def _battery(store: MemoryStore, start: float, end: float) -> _Battery | None:
    table = schema.samples
    query = (
        select(table.c.t_us, table.c.data)
        .where(
            table.c.sensor == "battery",
            table.c.t_us >= start * 1e6,
            table.c.t_us <= end * 1e6,
        )
        .order_by(table.c.t_us)
    )
    rows = store.query(query)
    if not rows:
        return None
    points = []
    volts = []
    for t_us, text in rows:
        data = json.loads(text)
        watts = finite_float(data.get("power_W"))
        pct = finite_float(data.get("battery_pct"))
        charging = data.get("charging")
        points.append((t_us / 1e6, watts, pct, charging if isinstance(charging, bool) else None))
        if v := finite_float(data.get("voltage_V")):
            volts.append(v)
    energy = seconds = 0.0
    drop_pct = drop_j = 0.0
    for (t0, w0, p0, c0), (t1, w1, _p1, _c1) in zip(points, points[1:], strict=False):
        dt = t1 - t0
        if c0 is not False or w0 is None or w1 is None or not 0 < dt <= _GAP_S:
            continue
        step = (w0 + w1) / 2 * dt
        energy += step
        seconds += dt
        if p0 is not None and _p1 is not None and _p1 <= p0:
            drop_pct += p0 - _p1
            drop_j += step
    capacity = drop_j / 3600 / (drop_pct / 100) if drop_pct >= 5 else None
    volts_mean = statistics.fmean(volts) if volts else None
    return _Battery(points, energy, seconds, capacity, volts_mean)


# -- sections ---------------------------------------------------------------------------------
def _agent(
    cpu_s: float,
    energy_j: float,
    covered_s: float,
    j: Joules,
    battery: _Battery | None,
    startup_s: float,
) -> dict[str, Any]:
    span = max(covered_s, 1.0)
    agent: dict[str, Any] = {
        "cpu_s": cpu_s,
        "cpu_pct_of_core": 100 * cpu_s / span,
        # Running, start-ups (imports, the model's load) left out: what a long run tends to.
        "cpu_pct_running": 100 * (cpu_s - startup_s) / span,
        "energy_j": energy_j,
        "energy_band_j": [cpu_s * j.low, cpu_s * j.high],
        "avg_power_w": energy_j / span,
        "avg_power_band_w": [cpu_s * j.low / span, cpu_s * j.high / span],
        "share_of_device": None,
        "battery_pct_per_day": None,
        "battery_mah_per_day": None,
    }
    drain = battery.drain() if battery is not None else None
    if drain is not None and drain["avg_power_w"] > 0:
        agent["share_of_device"] = agent["avg_power_w"] / drain["avg_power_w"]
    if battery is not None:
        per_day_j = agent["avg_power_w"] * 86_400
        if battery.capacity_wh:
            agent["battery_pct_per_day"] = 100 * per_day_j / 3600 / battery.capacity_wh
        if battery.volts:
            agent["battery_mah_per_day"] = per_day_j / (3.6 * battery.volts)
    return agent


def _components(
    in_process: dict[str, _Sum],
    children: dict[str, _Sum],
    unattributed: float,
    agent_cpu: float,
    j: Joules,
) -> list[dict[str, Any]]:
    rows = []
    named = sorted({**in_process, **children}.items(), key=lambda kv: -kv[1].cpu_s)
    for name, total in [*named, (UNATTRIBUTED, _Sum(unattributed, 0))]:
        provenance = f"{j.provenance} (child's rusage)" if name in CHILD_STAGES else j.provenance
        rows.append(
            {
                "name": name,
                "cpu_s": total.cpu_s,
                "calls": total.calls,
                "energy_j": total.cpu_s * j.value,
                "energy_band_j": [total.cpu_s * j.low, total.cpu_s * j.high],
                "share": total.cpu_s / agent_cpu if agent_cpu > 0 else 0.0,
                "provenance": provenance,
            }
        )
    return rows


def _wakes(store: MemoryStore, start: float, end: float, j: Joules) -> dict[str, Any]:
    rows = [r for r in WakeStore(store.engine).findings(start) if r["t"] <= end]
    items = []
    for r in rows:
        cpu = r["cpu_s"]
        items.append(
            {
                "id": r["wake_id"],
                "t": _iso(r["t"]),
                "triggers": [t.get("rule") for t in r["triggers"]],
                "cause": r["cause"],
                "culprit": r["culprit"],
                "status": r["status"],
                "wall_s": r["wall_s"],
                "cpu_s": cpu,
                "energy_j": cpu * j.value if cpu is not None else None,
                "energy_band_j": [cpu * j.low, cpu * j.high] if cpu is not None else None,
                "tokens_in": r["tokens_in"],
                "tokens_out": r["tokens_out"],
                "peak_rss_kb": r["peak_rss_kb"],
            }
        )
    cpus = sorted(i["cpu_s"] for i in items if i["cpu_s"] is not None)
    walls = sorted(i["wall_s"] for i in items if i["wall_s"] is not None)
    return {
        "count": len(items),
        "cpu_s_median": statistics.median(cpus) if cpus else None,
        "cpu_s_p90": _percentile(cpus, 90) if cpus else None,
        "wall_s_median": statistics.median(walls) if walls else None,
        "energy_j_median": statistics.median(cpus) * j.value if cpus else None,
        "items": items,
    }


def _tiering(
    store: MemoryStore,
    totals: dict[str, _Sum],
    agent_cpu: float,
    covered_s: float,
    cores: int,
    j: Joules,
    wakes: dict[str, Any],
) -> dict[str, Any] | None:
    """The same ticks with the larger model asked at every one, at its measured cost."""
    ticks = totals.get("storage", _Sum()).calls  # one storage lap per sample judged
    costs = sorted(c for c in _measured_wake_cpu(store) if c > 0)
    if not ticks or not costs:
        return None
    in_period = wakes["cpu_s_median"] is not None
    per_wake = statistics.median(costs)
    low_cpu, high_cpu = _percentile(costs, 10), _percentile(costs, 90)
    large_cpu = totals.get(LARGE_MODEL, _Sum()).cpu_s
    # Always on: the agent as it is, less its wakes, plus one call of the larger model a tick.
    base_cpu = max(0.0, agent_cpu - large_cpu)
    always_cpu = base_cpu + ticks * per_wake
    capacity = cores * max(covered_s, 1.0)
    tiered_j = agent_cpu * j.value
    always_j = always_cpu * j.value
    always_band = [(base_cpu + ticks * low_cpu) * j.low, (base_cpu + ticks * high_cpu) * j.high]
    source = (
        f"median of {len(costs)} measured wake(s)"
        if in_period
        else f"median of {len(costs)} wake(s) measured before this period"
    )
    return {
        "ticks": ticks,
        "per_wake_cpu_s": per_wake,
        "per_wake_source": source,
        "tiered_energy_j": tiered_j,
        "tiered_band_j": [agent_cpu * j.low, agent_cpu * j.high],
        "always_on_cpu_s": always_cpu,
        "always_on_energy_j": always_j,
        "always_on_band_j": always_band,
        "always_on_capped": always_cpu > capacity,
        "saved_energy_j": always_j - tiered_j,
        "saved_band_j": [max(0.0, always_band[0] - tiered_j), always_band[1] - tiered_j],
        "saved_share": (always_j - tiered_j) / always_j if always_j > 0 else 0.0,
        "assumptions": [
            f"the larger model asked once at each of the {ticks:,} samples the always-on tier "
            "judged in this period, instead of at its wakes",
            f"each call costs what a wake cost here: {per_wake:.2f} CPU s ({source}; "
            f"p10-p90 {low_cpu:.2f}-{high_cpu:.2f}), the prompt of a wake and one sentence out",
            "sensing, storage and the rest of the agent cost the same in both",
            (
                f"it would need {always_cpu / max(covered_s, 1.0):.1f} cores all the time: "
                f"more than this machine's {cores}, so it could not keep up"
                if always_cpu > capacity
                else f"it fits in this machine's {cores} core(s)"
            ),
            "energy per CPU second as for the agent itself (see Energy)",
        ],
    }


def _measured_wake_cpu(store: MemoryStore) -> list[float]:
    table = schema.wakes
    query = select(table.c.cpu_s).where(table.c.cpu_s.is_not(None))
    return [float(r[0]) for r in store.query(query)]


def _timeline(
    store: MemoryStore,
    per_hour: dict[int, dict[str, _Sum]],
    start: float,
    end: float,
    j: Joules,
    battery: _Battery | None,
) -> dict[str, Any]:
    hours = sorted(per_hour)
    names = sorted({n for c in per_hour.values() for n in c if n not in (PROCESS, NODE)})
    names.append(UNATTRIBUTED)
    components: dict[str, list[float]] = {n: [] for n in names}
    cpu: dict[str, list[float]] = {n: [] for n in names}
    power = []
    for hour in hours:
        c = {**per_hour[hour], UNATTRIBUTED: _Sum(_unattributed(per_hour[hour]))}
        for name in names:
            cpu[name].append(c.get(name, _Sum()).cpu_s)
            components[name].append(cpu[name][-1] * j.value)
        covered = c.get(PROCESS, _Sum()).covered_s
        power.append(_agent_cpu(c) * j.value / covered if covered > 0 else 0.0)
    device = []
    if battery is not None:
        step = max(1, len(battery.points) // MAX_DEVICE_POINTS)
        for t, watts, pct, charging in battery.points[::step]:
            device.append(
                {"t": _iso(t), "power_w": watts, "battery_pct": pct, "charging": charging}
            )
    anomalies = _events(store, "anomaly.start", start, end)
    wakes = [t for t, _ in _events(store, "wake.done", start, end)]
    return {
        "hours": [_iso(h / 1e6) for h in hours],
        "agent_power_w": power,
        "components_j": components,
        "components_cpu_s": cpu,
        "device": device,
        "wakes": wakes,
        "anomalies": [{"t": t, "subject": s} for t, s in anomalies],
    }


def _events(store: MemoryStore, kind: str, start: float, end: float) -> list[tuple[str, str]]:
    table = schema.events
    query = (
        select(table.c.t_us, table.c.subject)
        .where(table.c.kind == kind, table.c.t_us >= start * 1e6, table.c.t_us <= end * 1e6)
        .order_by(table.c.t_us)
    )
    return [(_iso(t / 1e6), s) for t, s in store.query(query)]


def _method(j: Joules, battery: _Battery | None, origins: set[str]) -> list[str]:
    method = [
        "CPU time is measured: each stage of the agent is timed on the CPU clock of the thread "
        "that runs it; the loop's stages by laps, so each CPU second of the loop's thread "
        "belongs to exactly one stage; the sensors' reads on their own threads.",
        "The larger model runs in a child process and is charged from the child's rusage "
        "(all its threads); the tiny model runs single-threaded on the loop's thread.",
        "The process's own CPU time, read from /proc, is the total: what no stage owns "
        "(start-up is its own line; the scheduler's thread, the interpreter) is the "
        "unattributed line, so the components add up to it. /proc counts whole clock ticks "
        "(10 ms), so the line can dip a few ticks below zero.",
        "The meter's own cost is the number of laps times the CPU cost of one lap, measured "
        "when the agent starts.",
    ]
    if j.provenance == "attributed":
        method.append(
            "Energy is attributed: the machine's measured energy above an idle floor (the 5th "
            "percentile of hourly power; the band takes the 25th percentile and no floor) is "
            "shared by CPU time, hour by hour."
        )
    else:
        method.append(
            "Energy is an estimate: CPU seconds x a coefficient in watts per busy core, shown "
            "with its band. It ignores CPU frequency, SIMD and idle-state effects, and the "
            "screen, radios and the location stack outside the agent."
        )
    if battery is not None and battery.discharging_s > 0:
        method.append(
            "The device's drain is measured: the battery sensor's power readings while "
            "discharging, summed over time (gaps over 10 minutes not bridged)."
        )
    else:
        method.append("No battery readings while discharging: the device's drain is unknown.")
    if "replay" in origins:
        method.append(
            "Replayed periods: the CPU is what replaying cost (trace reading instead of sensor "
            "reads, the tiny model batched), a measure of the pipeline, not of a live daemon."
        )
    method.append(
        "Tiering saved: the same samples with the larger model asked at every one, at the "
        "median CPU cost of the wakes measured here; always an estimate."
    )
    return method


# -- small readers ----------------------------------------------------------------------------
def _newest_t(store: MemoryStore) -> float | None:
    hour = store.query(select(func.max(schema.power_ledger.c.hour_us)))[0][0]
    newest = store.query(select(func.max(schema.samples.c.t_us)))[0][0]
    candidates = [v / 1e6 for v in (newest,) if v is not None]
    if hour is not None:
        candidates.append(hour / 1e6 + (0.0 if candidates else HOUR_S))
    return max(candidates) if candidates else None


def _oldest_t(store: MemoryStore, end: float) -> float:
    hour = store.query(select(func.min(schema.power_ledger.c.hour_us)))[0][0]
    oldest = store.query(select(func.min(schema.samples.c.t_us)))[0][0]
    candidates = [v / 1e6 for v in (hour, oldest) if v is not None]
    return min(candidates) if candidates else end - HOUR_S


def _device(meta: dict[str, str], cores: int) -> dict[str, Any]:
    return {
        "host": meta.get("host", platform.node()),
        "platform": "android" if is_termux() else platform.system().lower(),
        "cpu": cpu_model(),
        "cores": cores,
    }


def _iso(t: float) -> str:
    return datetime.fromtimestamp(t, tz=UTC).isoformat(timespec="seconds")
