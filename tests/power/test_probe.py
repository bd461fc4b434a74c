"""The measured power sources, tried in order: RAPL on a powercap tree, a discharging battery
on the power_supply fixtures, termux-battery-status as a stand-in script on PATH printing the
outputs in tests/data/termux. Time is the test's clock; sleeping advances it."""

from __future__ import annotations

import json
import shutil
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from conftest import DATA, ManualClock

from agent.errors import CalibrationError, SensorReadError
from agent.power.probe import (
    ProbeSearch,
    RaplProbe,
    Reading,
    SampledProbe,
    battery_reading,
    find_probe,
    termux_reading,
)

POWERCAP = DATA / "powercap"
SUPPLIES = DATA / "power_supply"
TERMUX = DATA / "termux"


def _find_without_sysfs(tmp_path: Path, **termux: Any) -> ProbeSearch:
    """find_probe where neither RAPL nor a battery directory exists."""
    return find_probe(
        powercap_root=tmp_path / "no-powercap",
        power_supply_dir=tmp_path / "no-power-supply",
        **termux,
    )


def _termux_command(bin_dir: Path, body: str) -> str:
    bin_dir.mkdir(parents=True, exist_ok=True)
    script = bin_dir / "termux-battery-status"
    script.write_text("#!/bin/sh\n" + body)
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return str(bin_dir)


def _printing(tmp_path: Path, reply: dict[str, object] | str) -> str:
    """A termux-battery-status that prints ``reply`` (a fixture's name or an object)."""
    source = TERMUX / reply if isinstance(reply, str) else tmp_path / "reply.json"
    if not isinstance(reply, str):
        source.write_text(json.dumps(reply))
    return _termux_command(tmp_path / "bin", f"cat {source}\n")


def _sleeper(clock: ManualClock, each: Callable[[float], None]) -> Callable[[float], None]:
    def sleep(seconds: float) -> None:
        each(seconds)
        clock.advance(seconds)

    return sleep


def test_rapl_comes_first_and_measures_energy_over_time(tmp_path: Path, clock: ManualClock) -> None:
    root = tmp_path / "powercap"
    shutil.copytree(POWERCAP / "intel_laptop", root)
    energy = root / "intel-rapl:1" / "energy_uj"
    search = find_probe(powercap_root=root, power_supply_dir=SUPPLIES / "thinkpad")
    assert isinstance(search.probe, RaplProbe)
    assert (search.probe.label, search.reasons) == ("RAPL psys", [])

    def draw_12_w(seconds: float) -> None:
        energy.write_text(f"{int(energy.read_text()) + round(12e6 * seconds)}\n")

    sleep = _sleeper(clock, draw_12_w)
    assert search.probe.block_power_w(20.0, clock, sleep=sleep) == pytest.approx(12.0)
    assert clock.mono == 20.0  # read every 10 s (wraps), no longer than the block
    search.probe.close()


def test_a_discharging_battery_when_rapl_is_missing(tmp_path: Path, clock: ManualClock) -> None:
    root = tmp_path / "power_supply"
    shutil.copytree(SUPPLIES / "thinkpad", root)
    search = find_probe(powercap_root=tmp_path / "none", power_supply_dir=root, termux=False)
    assert search.probe is not None
    assert search.probe.label == "battery BAT0"
    assert len(search.reasons) == 1 and "no RAPL" in search.reasons[0]
    reads: list[float] = []

    def power_rises(seconds: float) -> None:  # 8.123 W for 2 s, then 10.123 W
        reads.append(clock.mono + seconds)
        if clock.mono + seconds > 2.0:
            (root / "BAT0" / "power_now").write_text("10123000\n")

    sleep = _sleeper(clock, power_rises)
    watts = search.probe.block_power_w(5.0, clock, sleep=sleep)
    assert reads == [1.0, 2.0, 3.0, 4.0, 5.0]  # a reading at the end of each second
    assert watts == pytest.approx((2 * 8.123 + 3 * 10.123) / 5)


@pytest.mark.parametrize(
    ("layout", "watts", "reason"),
    [
        ("thinkpad", 8.123, ""),  # power_now
        ("android", 1.597, ""),  # |current_now| x voltage_now: 0.412 A x 3.876 V
        ("laptop_charge", None, "battery BAT1 is not discharging (Charging): unplug"),
        ("desktop_mouse", None, "no battery in "),  # only peripherals' batteries
    ],
)
def test_battery_reading(layout: str, watts: float | None, reason: str) -> None:
    reading = battery_reading(SUPPLIES / layout)
    assert reading.watts == watts
    assert reading.reason.startswith(reason)


def test_battery_current_in_milliamps_is_scaled(tmp_path: Path) -> None:
    root = tmp_path / "power_supply"
    shutil.copytree(SUPPLIES / "android", root)
    (root / "battery" / "current_now").write_text("-412\n")  # a driver that reports mA
    assert battery_reading(root) == Reading(1.597, "")


def test_battery_without_power_or_current(tmp_path: Path) -> None:
    root = tmp_path / "power_supply"
    shutil.copytree(SUPPLIES / "android", root)
    (root / "battery" / "current_now").unlink()
    assert battery_reading(root).reason.startswith("battery battery reports no power")


def test_a_charger_plugged_in_mid_block_stops_the_measurement(
    tmp_path: Path, clock: ManualClock
) -> None:
    root = tmp_path / "power_supply"
    shutil.copytree(SUPPLIES / "thinkpad", root)
    search = find_probe(powercap_root=tmp_path / "none", power_supply_dir=root, termux=False)
    assert search.probe is not None

    def plug_in(seconds: float) -> None:
        (root / "BAT0" / "status").write_text("Charging\n")

    with pytest.raises(CalibrationError, match="not discharging .Charging.: unplug"):
        search.probe.block_power_w(5.0, clock, sleep=_sleeper(clock, plug_in))


def test_termux_when_nothing_else(tmp_path: Path, clock: ManualClock) -> None:
    path = _printing(tmp_path, "battery-status-2025.json")
    search = _find_without_sysfs(tmp_path, termux=True, termux_path=path, termux_poll_s=5.0)
    assert search.probe is not None
    assert search.probe.label == "termux-battery-status"
    assert len(search.reasons) == 2  # RAPL and the battery directory
    # 0.412 A x 3.871 V, four readings in 20 s (one every 5 s: each wakes the Termux:API app)
    assert search.probe.block_power_w(20.0, clock, sleep=clock.advance) == 1.595


@pytest.mark.parametrize(
    ("reply", "watts", "reason"),
    [
        ("battery-status-2025.json", 1.595, ""),
        ("battery-status-2020.json", None, "the phone is not on battery (plugged: PLUGGED_USB)"),
        ({"plugged": "UNPLUGGED", "current": 1250000}, None, "no current or voltage"),
        ({"plugged": "UNPLUGGED", "current": -412, "voltage": 3871}, 1.595, ""),  # mA
        ({"current": -412000, "voltage": 3871}, None, "the phone is not on battery"),
    ],
)
def test_termux_reading(reply: str | dict[str, object], watts: float | None, reason: str) -> None:
    parsed = json.loads((TERMUX / reply).read_text()) if isinstance(reply, str) else reply
    reading = termux_reading(parsed)
    assert reading.watts == watts
    assert reading.reason.startswith(reason)


def test_termux_errors_are_reasons(tmp_path: Path) -> None:
    def reasons(path: str, timeout_s: float = 15.0) -> list[str]:
        search = _find_without_sysfs(
            tmp_path, termux=True, termux_path=path, termux_timeout_s=timeout_s
        )
        assert search.probe is None
        return search.reasons

    charging = reasons(_printing(tmp_path / "charging", "battery-status-2020.json"))
    assert charging[-1].startswith("termux-battery-status: the phone is not on battery")
    error = reasons(_printing(tmp_path / "error", "battery-status-error.json"))
    assert "Battery status not available" in error[-1]
    missing = reasons(str(tmp_path / "empty"))
    assert "termux-battery-status not found" in missing[-1]
    hanging = _termux_command(tmp_path / "hang", "sleep 30\n")
    assert "gave no answer in 0.5 s" in reasons(hanging, timeout_s=0.5)[-1]


def test_nothing_measured_says_why_for_each_source(tmp_path: Path) -> None:
    search = _find_without_sysfs(tmp_path, termux=False)
    assert search.probe is None
    rapl, battery, termux = search.reasons
    assert "no RAPL" in rapl and "no battery in" in battery
    assert termux == "termux-battery-status: not running on Termux"


def test_sampled_probe_skips_a_failed_reading_and_slow_ones(clock: ManualClock) -> None:
    calls: list[float] = []

    def read() -> Reading:
        calls.append(clock.mono)
        clock.advance(2.5)  # each reading takes 2.5 s (a slow Termux:API)
        if len(calls) == 2:
            raise SensorReadError("battery", "timed out")
        return Reading(2.0 * len(calls), "")

    probe = SampledProbe("slow", read, poll_s=1.0)
    # Readings due at 1, 2, 3, ... s; each ends 2.5 s later, so the next due slot is taken.
    assert probe.block_power_w(10.0, clock, sleep=clock.advance) == pytest.approx((2 + 6 + 8) / 3)
    assert calls == [1.0, 4.0, 7.0, 10.0]  # the second failed: skipped
    with pytest.raises(ValueError, match="poll_s"):
        SampledProbe("bad", read, poll_s=0)
