"""Stuck readings: a battery gauge frozen while discharging, against its own runs per state."""

from __future__ import annotations

import csv
import json
from datetime import UTC, datetime

from agent.detect.stuck import MIN_REPEATS, StuckReadings
from agent.samples import Sample
from tests._tools import feed_stage, shared

T0 = 1_780_272_000.0  # a Monday, 00:00 UTC
DAY, H, M = 86_400.0, 3_600.0, 60.0


def battery(t: float, pct: float, charging: bool) -> Sample:
    return Sample("battery", t, {"battery_pct": round(pct, 1), "charging": charging})


def laptop_day(day: int) -> list[Sample]:
    """A minute a sample. On the charger overnight, held at 60 % until 02:00 (adaptive
    charging waits), then up by 0.2 % a minute to its 80 % limit; discharging 0.1 % a minute
    (a new value every reading) from 08:00 to 18:00; then charging back to 60 %, held there."""
    out: list[Sample] = []
    pct = 60.0
    for minute in range(24 * 60):
        t = T0 + day * DAY + minute * M
        discharging = 8 * 60 <= minute < 18 * 60
        if discharging:
            pct -= 0.1
        elif minute >= 18 * 60:
            pct = min(60.0, pct + 0.2)
        elif minute >= 2 * 60:
            pct = min(80.0, pct + 0.2)
        out.append(battery(t, pct, not discharging))
    return out


def frozen(start: float, minutes: int, pct: float) -> list[Sample]:
    """The gauge repeating ``pct`` every minute while the laptop discharges."""
    return [battery(start + i * M, pct, False) for i in range(minutes)]


def test_a_gauge_frozen_while_discharging_is_stuck_and_a_charge_limit_is_not() -> None:
    stuck = StuckReadings()
    assert feed_stage(stuck, laptop_day(0) + laptop_day(1)) == []  # hours at 60 % while charging
    start = T0 + 2 * DAY + 8 * H
    events = feed_stage(stuck, [*frozen(start, 30, 64.3), battery(start + 30 * M, 61.3, False)])
    assert [(e.kind, e.subject) for e in events] == [
        ("sensor.stuck", "battery.battery_pct"),
        ("sensor.unstuck", "battery.battery_pct"),
    ]
    said = events[0]
    assert said.t == start + MIN_REPEATS * M  # its ninth reading: eight repeats, 8 minutes
    assert said.data == {
        "value": 64.3,
        "held_s": MIN_REPEATS * M,
        "longest_s": 0.0,  # discharging, it never held a value past one reading
        "state": "charging=0",
    }
    assert events[1].t == start + 30 * M and events[1].data["held_s"] == 29 * M


def test_a_new_install_judges_nothing_for_a_day() -> None:
    stuck = StuckReadings()
    half = [s for s in laptop_day(0) if s.t < T0 + 12 * H]
    assert feed_stage(stuck, [*half, *frozen(T0 + 12 * H, 60, 70.0)]) == []


def test_a_run_at_the_streams_floor_is_no_fault() -> None:
    """A network rate at zero for hours (offline) is a real reading: the stream's floor."""
    stuck = StuckReadings()
    samples = []
    for i in range(3 * 24 * 60):
        t = T0 + i * M
        offline = i % (24 * 60) >= 20 * 60  # every night from 20:00
        rx = 0.0 if offline else 1000.0 + (i * 37) % 500
        samples.append(Sample("system", t, {"net_rx_Bps": rx}))
    assert feed_stage(stuck, samples) == []


def test_a_pause_in_sampling_ends_a_run() -> None:
    """A suspended laptop reads the same value before and after its sleep: not stuck."""
    stuck = StuckReadings()
    feed_stage(stuck, laptop_day(0) + laptop_day(1))
    start = T0 + 2 * DAY + 8 * H
    asleep = [battery(start, 64.3, False), *frozen(start + 2 * H, MIN_REPEATS, 64.3)]
    assert feed_stage(stuck, asleep) == []


def test_a_restart_keeps_what_the_runs_showed() -> None:
    first = StuckReadings()
    feed_stage(first, laptop_day(0) + laptop_day(1))
    start = T0 + 2 * DAY + 8 * H
    feed_stage(first, frozen(start, 4, 64.3))
    second = StuckReadings()
    second.restore(json.loads(json.dumps(first.state())))
    rest = frozen(start + 4 * M, 10, 64.3)
    assert feed_stage(second, rest) == feed_stage(first, rest)
    assert [e.kind for e in feed_stage(StuckReadings(), rest)] == []  # afresh it would know nothing


def test_nab_flatline_is_the_only_stuck_reading_among_its_artificial_series() -> None:
    """NAB's artificial series (real files of the benchmark, every 5 minutes): the one whose
    labelled anomaly is a flat stretch is found inside its window; the others, noisy or
    noise-free, give nothing."""
    labels = json.loads(shared("nab", "labels", "combined_windows.json").read_text())
    found: dict[str, list[float]] = {}
    for name in ("art_daily_flatmiddle", "art_daily_jumpsup", "art_daily_nojump", "art_noisy"):
        folder = "artificialNoAnomaly" if name == "art_noisy" else "artificialWithAnomaly"
        stuck, times = StuckReadings(), []
        with shared("nab", "data", folder, f"{name}.csv").open() as f:
            for row in csv.DictReader(f):
                t = datetime.fromisoformat(row["timestamp"]).replace(tzinfo=UTC).timestamp()
                value = float(row["value"])
                sample = Sample("metric", t, {"name": name, "value": value})
                events = stuck.feed(sample, {name: value})
                times += [e.t for e in events if e.kind == "sensor.stuck"]
        found[name] = times
    assert {n: len(ts) for n, ts in found.items()} == {
        "art_daily_flatmiddle": 1,
        "art_daily_jumpsup": 0,
        "art_daily_nojump": 0,
        "art_noisy": 0,
    }
    ((lo, hi),) = labels["artificialWithAnomaly/art_daily_flatmiddle.csv"]
    when = datetime.fromtimestamp(found["art_daily_flatmiddle"][0], UTC).strftime("%Y-%m-%d %H")
    assert lo[:13] <= when <= hi[:13]
