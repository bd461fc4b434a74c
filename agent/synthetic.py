"""A realistic synthetic recording for ``vigil demo`` and the benchmarks.

Days of a laptop's life from a fixed start (2026-06-01 00:00 UTC) and seed, so the same call
always gives the same samples. What happens, in sample time from the start of day 0:

* ``system`` every 10 s: quiet nights, busier days; a CPU runaway on day 0 from 14:00:00 to
  14:40:00 (every sample 95-100 %). Outside it, ``cpu_pct`` never exceeds 60 %.
* ``battery`` every 60 s: charging overnight and from 18:00, discharging by day.
* ``location`` every 30 s: home, a commute at 08:15-08:45 to work about 3 km away, a commute
  home at 17:15-17:45. On day 0 the fix is lost from 12:00:00 to 12:20:00 (``status``
  samples ``down`` then ``up``, no fixes between).
* ``apps`` every 5 s from 08:00 to 23:00: the focused application, changing every few minutes,
  and the three busiest and three largest processes; ``ffmpeg`` takes two cores during the
  runaway.
"""

from __future__ import annotations

import heapq
import math
import random
from collections.abc import Iterator

from agent.samples import Sample, Scalar

START_T = 1_780_272_000.0  # 2026-06-01T00:00:00Z
DAY_S = 86_400.0
HOME = (46.05120, 14.50610)
WORK = (46.07340, 14.48020)
RUNAWAY = (14 * 3600.0, 14 * 3600.0 + 40 * 60.0)
LOCATION_OUTAGE = (12 * 3600.0, 12 * 3600.0 + 20 * 60.0)
_APPS = ("firefox", "code", "terminal", "thunderbird", "slack", "evince")


def _activity(day_s: float) -> float:
    """0 at night, about 1 during working hours."""
    hour = day_s / 3600.0
    if hour < 7.0 or hour >= 23.5:
        return 0.0
    return 0.5 + 0.5 * math.sin(math.pi * (hour - 7.0) / 16.5)


def _system(days: int, rng: random.Random) -> Iterator[Sample]:
    t = 0.0
    while t < days * DAY_S:
        day_s = t % DAY_S
        act = _activity(day_s)
        if t < DAY_S and RUNAWAY[0] <= day_s < RUNAWAY[1]:
            cpu = rng.uniform(95.0, 100.0)
        else:
            cpu = min(60.0, max(0.5, 3.0 + 25.0 * act + rng.gauss(0.0, 3.0)))
        yield Sample(
            "system",
            START_T + t,
            {
                "cpu_pct": round(cpu, 1),
                "load1": round(cpu / 100.0 * 2.0 + rng.uniform(0.0, 0.2), 2),
                "mem_used_pct": round(38.0 + 20.0 * act + rng.gauss(0.0, 1.0), 1),
                "net_rx_Bps": round(rng.expovariate(1.0) * (200.0 + 40_000.0 * act), 1),
                "net_tx_Bps": round(rng.expovariate(1.0) * (100.0 + 8_000.0 * act), 1),
                "disk_read_Bps": round(rng.expovariate(1.0) * (1_000.0 + 200_000.0 * act), 1),
                "disk_write_Bps": round(rng.expovariate(1.0) * (5_000.0 + 300_000.0 * act), 1),
                "temp_C": round(38.0 + 0.4 * cpu + rng.gauss(0.0, 0.8), 1),
            },
        )
        t += 10.0


def _battery(days: int, rng: random.Random) -> Iterator[Sample]:
    level, t = 80.0, 0.0
    while t < days * DAY_S:
        hour = (t % DAY_S) / 3600.0
        charging = hour < 7.5 or hour >= 18.0
        power = rng.uniform(18.0, 25.0) if charging and level < 100.0 else rng.uniform(6.0, 12.0)
        level += (power / 50.0 * 100.0 / 60.0) * (1 if charging else -1)
        level = min(100.0, max(3.0, level))
        voltage = 11.1 + 1.5 * level / 100.0
        yield Sample(
            "battery",
            START_T + t,
            {
                "battery_pct": round(level, 1),
                "charging": charging,
                "power_W": round(power, 2),
                "current_A": round(power / voltage, 3),
                "voltage_V": round(voltage, 3),
            },
        )
        t += 60.0


def _position(day_s: float) -> tuple[float, float]:
    def lerp(a: tuple[float, float], b: tuple[float, float], f: float) -> tuple[float, float]:
        return a[0] + (b[0] - a[0]) * f, a[1] + (b[1] - a[1]) * f

    out, back = (8.25 * 3600, 8.75 * 3600), (17.25 * 3600, 17.75 * 3600)
    if day_s < out[0] or day_s >= back[1]:
        return HOME
    if day_s < out[1]:
        return lerp(HOME, WORK, (day_s - out[0]) / (out[1] - out[0]))
    if day_s < back[0]:
        return WORK
    return lerp(WORK, HOME, (day_s - back[0]) / (back[1] - back[0]))


def _location(days: int, rng: random.Random) -> Iterator[Sample]:
    t = 0.0
    while t < days * DAY_S:
        day_s = t % DAY_S
        if t < DAY_S and day_s == LOCATION_OUTAGE[0]:
            yield Sample(
                "status", START_T + t, {"of": "location", "state": "down", "reason": "no fix"}
            )
        if t < DAY_S and LOCATION_OUTAGE[0] <= day_s < LOCATION_OUTAGE[1]:
            t += 30.0
            continue
        if t < DAY_S and day_s == LOCATION_OUTAGE[1]:
            yield Sample("status", START_T + t, {"of": "location", "state": "up"})
        lat, lon = _position(day_s)
        accuracy = rng.uniform(4.0, 20.0)
        # Scatter of about the accuracy, in degrees (1e-5 deg of latitude is about 1.1 m).
        lat += rng.gauss(0.0, accuracy / 2.0) * 9e-6
        lon += rng.gauss(0.0, accuracy / 2.0) * 1.3e-5
        yield Sample(
            "location",
            START_T + t,
            {
                "lat": round(lat, 7),
                "lon": round(lon, 7),
                "accuracy_m": round(accuracy, 1),
                "provider": "gps",
            },
        )
        t += 30.0


def _apps(days: int, rng: random.Random) -> Iterator[Sample]:
    t, app, switch_at = 0.0, _APPS[0], 0.0
    while t < days * DAY_S:
        hour = (t % DAY_S) / 3600.0
        if 8.0 <= hour < 23.0:
            if t >= switch_at:
                app = rng.choice(_APPS)
                switch_at = t + rng.uniform(30.0, 900.0)
            yield Sample("apps", START_T + t, {"app": app, **_processes(t, rng)})
        t += 5.0


def _processes(t: float, rng: random.Random) -> dict[str, Scalar]:
    """The top 3 processes by CPU (percent of one core) and by memory (percent of RAM), as
    the apps sensor ranks them; ``ffmpeg`` takes two cores during the runaway."""
    act = _activity(t % DAY_S)
    cpu = {
        "firefox": 30.0 * act + rng.uniform(0.0, 10.0),
        "code": 15.0 * act + rng.uniform(0.0, 5.0),
        "Xorg": 3.0 + 5.0 * act + rng.uniform(0.0, 2.0),
        "pipewire": rng.uniform(0.5, 2.0),
    }
    if t < DAY_S and RUNAWAY[0] <= t % DAY_S < RUNAWAY[1]:
        cpu["ffmpeg"] = rng.uniform(190.0, 199.0)
    mem = {
        "firefox": 8.0 + 4.0 * act + rng.uniform(0.0, 0.5),
        "code": 5.0 + 2.0 * act + rng.uniform(0.0, 0.3),
        "Xorg": 2.5 + rng.uniform(0.0, 0.1),
    }
    data: dict[str, Scalar] = {}
    for kind, shares in (("cpu", cpu), ("mem", mem)):
        top = sorted(shares, key=lambda n: (-shares[n], n))[:3]
        for i, name in enumerate(top, start=1):
            data[f"{kind}{i}_name"], data[f"{kind}{i}_pct"] = name, round(shares[name], 3)
    return data


def generate(days: int = 1, seed: int = 7) -> Iterator[Sample]:
    """All sensors of ``days`` synthetic days, merged in time order."""
    streams = [
        gen(days, random.Random(f"{seed}-{name}"))
        for name, gen in (
            ("system", _system),
            ("battery", _battery),
            ("location", _location),
            ("apps", _apps),
        )
    ]
    return heapq.merge(*streams, key=lambda s: s.t)


#: The routine trace's stream and its incidents on the last day, (start, end) seconds into
#: that day: a runaway writer, the reading stuck, a spike, the backup job not running.
ROUTINE_STREAM = "disk_write_MBps"
ROUTINE_INCIDENTS = (
    (3 * 3600.0, 3 * 3600.0 + 40 * 60.0),
    (10 * 3600.0, 12 * 3600.0),
    (15 * 3600.0, 15 * 3600.0 + 60.0),
    (17 * 3600.0, 19 * 3600.0),
)


def routine(days: int = 6, seed: int = 1) -> Iterator[Sample]:
    """A machine with a routine the shipped model has not seen, one ``metric`` sample a
    minute: disk writes whose normal level shifts from about 10 to 40 MB/s at 08:00 and back
    at 20:00, with a backup burst (+60 MB/s for two minutes) every ten minutes. On the last
    day, the ``ROUTINE_INCIDENTS``: +3 standard deviations for 40 minutes, the reading stuck
    for two hours, one reading +8 standard deviations, no backup for two hours."""
    rng = random.Random(f"{seed}-routine")
    last_day = (days - 1) * DAY_S
    n = int(days * DAY_S / 60.0)
    values = []
    for i in range(n):
        day_s = (i * 60.0) % DAY_S
        level = 40.0 if 8 * 3600.0 <= day_s < 20 * 3600.0 else 10.0
        values.append(level + rng.gauss(0.0, 2.0) + (60.0 if i % 10 < 2 else 0.0))
    normal = values[: int(last_day / 60.0)]
    mean = sum(normal) / len(normal)
    sd = math.sqrt(sum((v - mean) ** 2 for v in normal) / len(normal))
    (runaway, stuck, spike, no_backup) = (
        (int((last_day + a) / 60.0), int((last_day + b) / 60.0)) for a, b in ROUTINE_INCIDENTS
    )
    for i in range(*runaway):
        values[i] += 3.0 * sd
    for i in range(*stuck):
        values[i] = values[stuck[0] - 1]
    values[spike[0]] += 8.0 * sd
    for i in range(*no_backup):
        if i % 10 < 2:
            values[i] -= 60.0
    for i, v in enumerate(values):
        yield Sample("metric", START_T + i * 60.0, {"name": ROUTINE_STREAM, "value": v})
