"""The diagnosis on contexts written by hand: each cause, its culprit, and the order in which
root causes win over their consequences."""

from __future__ import annotations

from typing import Any

import pytest

from agent.escalation.context import (
    BatteryFacts,
    Context,
    PlaceFacts,
    ProcessFacts,
    StreamFacts,
)
from agent.escalation.diagnosis import CAUSES, HOT_OVER_MEDIAN_C, diagnose

BUSY = ProcessFacts("ffmpeg", cpu_pct=190.0, cpu_before_pct=0.0, mem_pct=2.0, mem_before_pct=2.0)
BROWSER = ProcessFacts("firefox", 20.0, 18.0, 9.0, 8.0)
LEAK = ProcessFacts("java", 12.0, 10.0, 38.0, 3.0)


def stream(
    name: str,
    peak: float,
    usual: tuple[float, float, float] | None,
    *,
    involved: bool = True,
    at_load: tuple[float, float, int] | None = None,
    stuck_s: float = 0.0,
    before: tuple[float, ...] = (),
) -> StreamFacts:
    return StreamFacts(name, involved, before, (peak,), peak, peak, usual, None, at_load, stuck_s)


def found(rule: str, event: str, subject: str, **data: float) -> dict[str, Any]:
    """A trigger as the escalation passes it on: the rule, and the event that fired it."""
    return {"t": 0.0, "rule": rule, "event": event, "subject": subject, "data": data}


def context(*streams: StreamFacts, processes=(BUSY, BROWSER), **extra) -> Context:  # type: ignore[no-untyped-def]
    extra.setdefault("triggers", (found("anomaly", "anomaly.start", "system"),))
    return Context(
        t=60.0,
        start_t=0.0,
        weekday="Monday",
        hour_utc=14.0,
        streams=streams,
        processes=tuple(processes),
        **extra,
    )


CPU_USUAL = (2.0, 12.0, 30.0)
TEMP_USUAL = (40.0, 45.0, 52.0)


def test_a_runaway_names_the_busiest_process_and_the_heat_is_its_consequence() -> None:
    # 99 % CPU was never seen: what the temperature usually is at this load is unknown, so
    # the CPU explains the heat.
    d = diagnose(
        context(
            stream("system.cpu_pct", 99.0, CPU_USUAL), stream("system.temp_C", 80.0, TEMP_USUAL)
        )
    )
    assert (d.cause, d.culprit, d.culprit_kind) == ("cpu_runaway", "ffmpeg", "process")
    assert "ffmpeg" in d.summary and "99 %" in d.summary
    assert any("ffmpeg used 190 % CPU" in f for f in d.facts)
    assert d.facts[0].startswith("At 14:00 UTC on Monday")


def test_heat_beyond_what_this_load_usually_gives_is_overheating() -> None:
    d = diagnose(
        context(
            stream("system.cpu_pct", 45.0, CPU_USUAL, involved=False),
            stream("system.temp_C", 80.0, TEMP_USUAL, at_load=(55.0, 60.0, 400)),
            processes=(ProcessFacts("blender", 90.0, 0.0, 4.0, 0.0), BROWSER),
        )
    )
    assert (d.cause, d.culprit) == ("overheating", "blender")


def test_an_earlier_blocked_fan_at_this_load_does_not_hide_the_next() -> None:
    """Yesterday's blocked fan at this load put the week's 95th percentile there at 92 °C,
    the median at 66 °C: 82 °C is past the median by more than ``HOT_OVER_MEDIAN_C``, and
    overheating; 78 °C is within both, and the CPU explains it."""
    cpu = stream("system.cpu_pct", 30.0, (0.0, 1.0, 11.0), involved=False)
    blender = (ProcessFacts("blender", 94.0, 0.0, 12.0, 0.0), BROWSER)
    found = []
    for peak in (82.0, 78.0):
        temp = stream("system.temp_C", peak, (32.0, 40.0, 51.0), at_load=(66.0, 92.0, 1300))
        found.append(diagnose(context(cpu, temp, processes=blender)).cause)
    assert 82.0 > 66.0 + HOT_OVER_MEDIAN_C > 78.0
    assert found == ["overheating", "cpu_runaway"]


def test_heat_the_pipeline_found_past_its_loads_usual_is_overheating() -> None:
    """A game at a quarter of the CPU with the fan blocked, ten minutes in: 72 °C is within
    the week's 95th percentile at this load (an earlier blocked fan filled it) and under its
    median by ``HOT_OVER_MEDIAN_C``, so the vitals name no cause; the pipeline's
    ``heat.high`` (this load's band usually runs at 58 °C) names it."""
    cpu = stream("system.cpu_pct", 25.0, (0.0, 1.0, 30.0))
    temp = stream(
        "system.temp_C", 72.0, (32.0, 40.0, 60.0), at_load=(60.0, 90.0, 900), involved=False
    )
    game = (ProcessFacts("factorio", 95.0, 0.0, 8.0, 0.0), BROWSER)
    assert diagnose(context(cpu, temp, processes=game)).cause == "unknown"
    hot = found("heat_high", "heat.high", "system.temp_C", temp_C=72.0, usual_C=58.0)
    d = diagnose(context(cpu, temp, processes=game, triggers=(hot,)))
    assert (d.cause, d.culprit) == ("overheating", "factorio")


def test_swap_pressure_comes_before_memory_growth_and_names_the_largest() -> None:
    d = diagnose(
        context(
            stream("system.mem_used_pct", 95.0, (40.0, 50.0, 60.0)),
            stream("system.swap_pct", 45.0, (0.0, 1.0, 3.0)),
            processes=(BROWSER, ProcessFacts("qemu-system-x86", 30.0, 30.0, 55.0, 50.0), LEAK),
        )
    )
    assert (d.cause, d.culprit) == ("swap_pressure", "qemu-system-x86")


def test_a_level_held_since_before_the_incident_is_not_its_cause() -> None:
    """Swap still in use hours after a storm (5 %, usual 0-2 %) through the half hour before:
    no swap pressure now, and the process the pipeline found busy in the background is the
    cause. Swap that rose into the incident is swap pressure, whatever else is busy."""
    cpu = stream("system.cpu_pct", 30.0, (2.0, 12.0, 35.0))
    zoom = ProcessFacts("zoom", 55.0, 50.0, 4.0, 4.0)
    busy = found("process_busy", "process.busy", "zoom", mean_pct=52.4, record_pct=19.4)
    held = stream("system.swap_pct", 5.3, (0.2, 0.6, 1.7), before=(5.3, 5.2, 5.3))
    d = diagnose(context(cpu, held, processes=(zoom, BROWSER), triggers=(busy,)))
    assert (d.cause, d.culprit) == ("cpu_runaway", "zoom")
    rose = stream("system.swap_pct", 5.3, (0.2, 0.6, 1.7), before=(1.0, 2.5, 4.0))
    d = diagnose(context(cpu, rose, processes=(zoom, BROWSER), triggers=(busy,)))
    assert (d.cause, d.culprit) == ("swap_pressure", "firefox")


def test_memory_growth_names_the_process_that_grew() -> None:
    d = diagnose(
        context(
            stream("system.mem_used_pct", 80.0, (40.0, 50.0, 60.0)),
            stream("system.swap_pct", 1.0, (0.0, 1.0, 3.0), involved=False),
            processes=(BROWSER, ProcessFacts("qemu", 5.0, 5.0, 40.0, 39.0), LEAK),
        )
    )
    assert (d.cause, d.culprit) == ("memory_growth", "java")
    assert "java grew from 3 % to 38 %" in " ".join(d.facts)


@pytest.mark.parametrize(
    ("name", "cause"),
    [("system.net_rx_Bps", "network_burst"), ("system.disk.sda.write_Bps", "disk_burst")],
)
def test_bursts_name_the_process_whose_cpu_rose(name: str, cause: str) -> None:
    d = diagnose(
        context(
            stream("system.cpu_pct", 35.0, CPU_USUAL, involved=False),
            stream(name, 40e6, (1e3, 2e4, 5e5)),
            processes=(
                ProcessFacts("firefox", 25.0, 24.0, 9.0, 9.0),
                ProcessFacts("rsync", 20.0, 0.0, 1.0, 0.0),
            ),
        )
    )
    assert (d.cause, d.culprit) == (cause, "rsync")


def test_battery_drain_needs_the_battery_and_more_power_than_the_load_draws() -> None:
    power = stream("battery.power_W", 30.0, (6.0, 9.0, 12.0), at_load=(9.0, 12.0, 200))
    zoom = ProcessFacts("zoom", 60.0, 0.0, 5.0, 0.0)
    on_battery = BatteryFacts(50.0, False, 30.0, 40.0)
    d = diagnose(context(power, processes=(zoom,), battery=on_battery))
    assert (d.cause, d.culprit) == ("battery_drain", "zoom")
    charging = BatteryFacts(50.0, True, 30.0, None)
    assert diagnose(context(power, processes=(zoom,), battery=charging)).cause != "battery_drain"


def test_a_process_draining_the_battery_is_named_within_the_usual_power() -> None:
    """chrome in front at 90 % on battery: 17 W is within the evenings' usual discharge, so
    the power names no drain; the pipeline's ``process.drain`` (past its own 4-day record,
    on battery) does, and its process even where another is busier. Plugged in, it names
    nothing."""
    power = stream("battery.power_W", 17.0, (3.0, 9.0, 16.0), involved=False)
    chrome = ProcessFacts("chrome", 90.0, 0.0, 6.0, 0.0)
    build = ProcessFacts("cc1plus", 95.0, 90.0, 1.0, 1.0)
    on_battery = BatteryFacts(70.0, False, 17.0, 3.0)
    drain = (found("process_drain", "process.drain", "chrome", mean_pct=88.0, record_pct=0.0),)
    procs = (build, chrome)
    assert diagnose(context(power, processes=procs, battery=on_battery)).cause == "unknown"
    d = diagnose(context(power, processes=procs, battery=on_battery, triggers=drain))
    assert (d.cause, d.culprit, d.culprit_kind) == ("battery_drain", "chrome", "process")
    charging = BatteryFacts(70.0, True, 17.0, None)
    plugged = diagnose(context(power, processes=procs, battery=charging, triggers=drain))
    assert plugged.cause != "battery_drain"


def test_a_stuck_sensor_is_a_fault_not_a_fact() -> None:
    d = diagnose(context(stream("system.temp_C", 47.0, TEMP_USUAL, stuck_s=3600.0)))
    assert (d.cause, d.culprit, d.culprit_kind) == ("sensor_fault", "system.temp_C", "sensor")
    assert "for 60 minutes" in d.facts[0]
    impossible = diagnose(context(stream("system.temp_C", 250.0, TEMP_USUAL)))
    assert impossible.cause == "sensor_fault"


def test_a_reading_the_pipeline_said_stuck_is_a_fault_whatever_its_long_runs() -> None:
    """A battery gauge frozen while discharging: 8 minutes is short of twice the hours it
    holds while charging near full, which the diagnosis's own check counts; the pipeline's
    ``sensor.stuck`` judged the run against the discharging runs."""
    gauge = StreamFacts(
        "battery.battery_pct",
        True,
        (),
        (68.0,),
        68.0,
        68.0,
        (40.0, 80.0, 99.7),
        None,
        None,
        stuck_s=480.0,
        longest_run_s=4 * 3600.0,
    )
    assert diagnose(context(gauge)).cause != "sensor_fault"
    said = {"t": 0.0, "rule": "sensor_stuck", "event": "sensor.stuck", "data": {}}
    d = diagnose(context(gauge, triggers=({**said, "subject": "battery.battery_pct"},)))
    assert (d.cause, d.culprit, d.culprit_kind) == ("sensor_fault", "battery.battery_pct", "sensor")
    assert "has read exactly 68 % for 8 minutes" in d.facts[0]


def test_a_volume_the_pipeline_found_names_its_burst_before_the_cpu_it_takes() -> None:
    """tar reading and writing for a quarter of an hour: its CPU is far beyond the usual
    range (widths), its writes only 8 times the usual 95th percentile (under a factor of
    ten); the ``volume.high`` on the writes says what happened."""
    tar = ProcessFacts("tar", cpu_pct=30.0, cpu_before_pct=0.0, mem_pct=0.4, mem_before_pct=0.0)
    cpu = stream("system.cpu_pct", 60.0, CPU_USUAL)
    writes = stream("system.disk_write_Bps", 4e6, (1e4, 1e5, 5e5))
    assert diagnose(context(cpu, writes, processes=(tar, BROWSER))).cause == "cpu_runaway"
    writes_found = found(
        "volume_high", "volume.high", "system.disk_write_Bps", mean_Bps=4e6, record_Bps=2e6
    )
    d = diagnose(context(cpu, writes, processes=(tar, BROWSER), triggers=(writes_found,)))
    assert (d.cause, d.culprit) == ("disk_burst", "tar")


def test_a_process_busy_in_the_background_is_a_runaway_within_the_usual_cpu() -> None:
    """ffmpeg at a core on a four-core machine: 30 % CPU is within an afternoon's usual
    range, so the vitals name no cause; the pipeline's ``process.busy`` (out of focus, past
    its 4-day record) names the runaway, and its process even where another is busier."""
    cpu = stream("system.cpu_pct", 30.0, (2.0, 12.0, 35.0))
    game = ProcessFacts("factorio", 150.0, 140.0, 6.0, 6.0)
    ffmpeg = ProcessFacts("ffmpeg", 100.0, 0.0, 1.0, 0.0)
    assert diagnose(context(cpu, processes=(game, ffmpeg))).cause == "unknown"
    busy = found("process_busy", "process.busy", "ffmpeg", mean_pct=98.0, record_pct=0.0)
    d = diagnose(context(cpu, processes=(game, ffmpeg), triggers=(busy,)))
    assert (d.cause, d.culprit, d.culprit_kind) == ("cpu_runaway", "ffmpeg", "process")


def test_a_process_the_pipeline_found_leaking_is_memory_growth_within_the_usual_memory() -> None:
    """python3 taking two points of RAM in ten minutes: the machine's memory is still within
    its usual range, so the vitals name no cause; the pipeline's ``process.grow`` names the
    leak, and its process even where another grew as much before."""
    memory = stream("system.mem_used_pct", 55.0, (40.0, 50.0, 60.0))
    browser = ProcessFacts("firefox", 5.0, 5.0, 9.0, 6.0)
    python = ProcessFacts("python3", 10.0, 10.0, 5.0, 2.0)
    assert diagnose(context(memory, processes=(browser, python))).cause == "unknown"
    grew = found("process_grow", "process.grow", "python3", grew_pct=2.1, record_pct=0.0)
    d = diagnose(context(memory, processes=(browser, python), triggers=(grew,)))
    assert (d.cause, d.culprit, d.culprit_kind) == ("memory_growth", "python3", "process")


def test_a_new_place_is_unusual_and_named() -> None:
    place = PlaceFacts("place-7", 46.5, 15.6, new=True, visits=1, nearest_known_m=23_400.0)
    d = diagnose(context(place=place))
    assert (d.cause, d.culprit, d.culprit_kind) == ("unusual_place", "place-7", "place")
    assert "23.4 km from the nearest known place" in d.facts[0]


def test_usual_for_the_day_but_not_for_the_hour_is_an_unusual_time() -> None:
    night = StreamFacts("system.cpu_pct", True, (), (25.0,), 25.0, 25.0, CPU_USUAL, (1.0, 4.0))
    d = diagnose(context(night, processes=(ProcessFacts("backup", 80.0, 0.0, 2.0, 0.0),)))
    assert (d.cause, d.culprit) == ("unusual_time", "backup")


def test_nothing_beyond_the_usual_is_unknown_with_no_culprit() -> None:
    d = diagnose(context(stream("system.cpu_pct", 25.0, CPU_USUAL)))
    assert (d.cause, d.culprit, d.culprit_kind) == ("unknown", None, None)
    assert d.cause in CAUSES and d.advice


def test_no_process_data_names_the_app_in_front() -> None:
    d = diagnose(
        context(stream("system.cpu_pct", 99.0, CPU_USUAL), processes=(), focused_app="code")
    )
    assert (d.cause, d.culprit, d.culprit_kind) == ("cpu_runaway", "code", "app")


def test_coordinates_never_go_into_the_facts() -> None:
    lat = StreamFacts(
        "location.lat", True, (), (46.07,), 46.0734, 46.0734, (46.051, 46.0512, 46.0514)
    )
    d = diagnose(context(lat, processes=()))
    assert d.cause == "unknown"
    assert "46.0" not in " ".join(d.facts) and "position was outside" in " ".join(d.facts)


@pytest.mark.parametrize(
    ("name", "cause"),
    [
        ("apps.mem2_pct", "memory_growth"),
        ("apps.cpu1_pct", "cpu_runaway"),
        ("system.swap_pct", "swap_pressure"),
        ("battery.battery_pct", "unknown"),  # a level is no cause of its own
    ],
)
def test_when_nothing_is_far_beyond_the_triggering_stream_names_the_cause(
    name: str, cause: str
) -> None:
    # Just above its usual 95th percentile (less than a width): no vital is beyond enough.
    named = stream(name, 10.5, (2.0, 6.0, 10.0))
    growing = ProcessFacts("node", 20.0, 6.0, 9.0, 3.5)
    d = diagnose(context(named, processes=(growing,)))
    assert d.cause == cause
