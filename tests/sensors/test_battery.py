"""The battery sensor: power_supply fixtures with exact values; read() on this machine."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import psutil
import pytest

from agent.config import BatterySensorConfig
from agent.errors import SensorUnavailable
from agent.samples import Scalar
from agent.sensors.battery import (
    BatteryLevel,
    BatterySensor,
    parse_power_supply,
    pick_battery,
    read_power_supply,
)

LAYOUTS = Path(__file__).parent.parent / "data" / "power_supply"  # see its README.md
T = 1_700_000_000.0
#: ARCHITECTURE.md's fields for "battery", in its order (samples write them in this order).
BATTERY_FIELDS = ["battery_pct", "charging", "power_W", "current_A", "voltage_V"]


def sensor(directory: Path, level: BatteryLevel | None = None) -> BatterySensor:
    """The sensor over a fixture; psutil (which reads the real machine) is replaced by
    ``level``, so fixture results don't depend on the machine the tests run on."""
    config = BatterySensorConfig(interval_s=30.0, power_supply_dir=str(directory))
    return BatterySensor(config, level=lambda: level)


@pytest.mark.parametrize(
    ("layout", "chosen", "expected"),
    [
        (
            "thinkpad",
            "BAT0",  # BAT1's bay is empty (present 0); AC is Mains
            {
                "battery_pct": 87.0,  # capacity
                "charging": False,  # Discharging
                "power_W": 8.123,  # power_now 8_123_000 µW
                "voltage_V": 12.345,  # voltage_now 12_345_000 µV; no current_now
            },
        ),
        (
            "laptop_charge",
            "BAT1",  # ADP1 is Mains
            {
                "battery_pct": 54.0,  # capacity
                "charging": True,  # Charging
                "power_W": 14.623,  # no power_now: 1.234 A x 11.85 V = 14.6229 W
                "current_A": 1.234,  # current_now 1_234_000 µA
                "voltage_V": 11.85,  # voltage_now 11_850_000 µV
            },
        ),
        (
            "android",
            "battery",  # usb is type USB
            {
                "battery_pct": 63.0,  # capacity
                "charging": False,  # Discharging
                "power_W": 1.597,  # no power_now: |-0.412 A| x 3.876 V = 1.596912 W
                "current_A": -0.412,  # current_now -412_000 µA, sign as the kernel gives it
                "voltage_V": 3.876,  # voltage_now 3_876_000 µV
            },
        ),
    ],
)
def test_layouts(layout: str, chosen: str, expected: dict[str, Scalar]) -> None:
    supplies = read_power_supply(LAYOUTS / layout)
    assert pick_battery(supplies) == chosen
    assert parse_power_supply(supplies[chosen]) == expected
    sample = sensor(LAYOUTS / layout).read(T)
    assert (sample.sensor, sample.t) == ("battery", T)
    assert dict(sample.data) == expected
    assert list(sample.data) == [k for k in BATTERY_FIELDS if k in expected]


def test_read_power_supply_keeps_the_documented_attributes() -> None:
    supplies = read_power_supply(LAYOUTS / "android")
    assert supplies == {
        "battery": {
            "type": "Battery",
            "present": "1",
            "status": "Discharging",
            "capacity": "63",
            "voltage_now": "3876000",
            "current_now": "-412000",
            "charge_full": "3989000",
        },
        "usb": {"type": "USB", "present": "0", "voltage_now": "0"},
    }


def test_mouse_batteries_are_not_the_machines() -> None:
    supplies = read_power_supply(LAYOUTS / "desktop_mouse")
    assert supplies["hid-e4:17:d8:3a:5c:01-battery"]["scope"] == "Device"
    assert pick_battery(supplies) is None
    with pytest.raises(SensorUnavailable, match="no battery found"):
        sensor(LAYOUTS / "desktop_mouse").read(T)
    # psutil takes the first BAT*/*battery* by name, so on this desktop it would report the
    # mouse's 70 %: the sensor must not believe it.
    with pytest.raises(SensorUnavailable, match="no battery found"):
        sensor(LAYOUTS / "desktop_mouse", BatteryLevel(70.0, False)).read(T)


def test_unreadable_attribute_is_skipped(tmp_path: Path) -> None:
    """Android's SELinux denies some attribute files (PermissionError): skip them, don't die.

    chmod 000 denies an ordinary user; root reads through it, so there the file is replaced
    by a directory, whose read fails with another OSError (IsADirectoryError) the same way.
    """
    root = tmp_path / "power_supply"
    shutil.copytree(LAYOUTS / "android", root)
    denied = root / "battery" / "current_now"
    denied.chmod(0)
    if os.access(denied, os.R_OK):
        denied.unlink()
        denied.mkdir()
    try:
        supplies = read_power_supply(root)
        assert "current_now" not in supplies["battery"]
        assert sensor(root).read(T).data == {
            "battery_pct": 63.0,
            "charging": False,
            "voltage_V": 3.876,  # no current: no current_A and no power_W
        }
    finally:
        denied.chmod(0o755)


def test_missing_directory_falls_back_to_psutil(tmp_path: Path) -> None:
    # Not Linux, or Android denying /sys/class/power_supply: only psutil can say anything.
    assert read_power_supply(tmp_path / "absent") == {}
    data = sensor(tmp_path / "absent", BatteryLevel(55.5, True)).read(T).data
    assert data == {"battery_pct": 55.5, "charging": True}
    with pytest.raises(SensorUnavailable, match="no battery found"):
        sensor(tmp_path / "absent").read(T)


def test_psutil_fills_only_what_sysfs_lacks(tmp_path: Path) -> None:
    # A battery without capacity, energy or charge files: level comes from psutil, while
    # status, current and voltage still come from the kernel.
    root = tmp_path / "power_supply"
    shutil.copytree(LAYOUTS / "android", root)
    (root / "battery" / "capacity").unlink()
    (root / "battery" / "charge_full").unlink()
    data = sensor(root, BatteryLevel(61.0, True)).read(T).data
    assert data == {
        "battery_pct": 61.0,
        "charging": False,  # the kernel's Discharging wins over psutil's plugged
        "power_W": 1.597,
        "current_A": -0.412,
        "voltage_V": 3.876,
    }


@pytest.mark.parametrize(
    ("attrs", "expected"),
    [
        # No capacity: energy_now / energy_full = 43_210_000 / 49_660_000 = 87.0117...%
        ({"energy_now": "43210000", "energy_full": "49660000"}, {"battery_pct": 87.012}),
        # No capacity: charge_now / charge_full = 2_430_000 / 4_500_000 = 54 %
        ({"charge_now": "2430000", "charge_full": "4500000"}, {"battery_pct": 54.0}),
        # A gauge counting past its last full charge is capped at 100 %
        ({"energy_now": "50100000", "energy_full": "50000000"}, {"battery_pct": 100.0}),
        # capacity outside 0..100 is not a percentage; the energy ratio is used instead
        (
            {"capacity": "255", "energy_now": "1", "energy_full": "4"},
            {"battery_pct": 25.0},
        ),
        ({"status": "Full"}, {"charging": True}),
        ({"status": "Not charging"}, {"charging": True}),  # plugged in, held by a charge limit
        ({"status": "Unknown"}, {}),
        # power_now wins over current x voltage, and power is a magnitude
        (
            {"power_now": "-5000000", "current_now": "-1000000", "voltage_now": "4000000"},
            {"power_W": 5.0, "current_A": -1.0, "voltage_V": 4.0},
        ),
        ({"voltage_now": "0", "current_now": "0"}, {"current_A": 0.0}),  # 0 V: no voltage
        ({"capacity": "n/a", "current_now": "12.5"}, {}),  # not integers: left out
        ({}, {}),
    ],
)
def test_parse_power_supply(attrs: dict[str, str], expected: dict[str, Scalar]) -> None:
    assert parse_power_supply(attrs) == expected


def test_pick_battery_order() -> None:
    supplies = {
        "AC": {"type": "Mains"},
        "BAT0": {"type": "Battery"},  # does not say whether present
        "BAT1": {"type": "Battery", "present": "1"},
        "BAT2": {"type": "Battery", "present": "0"},
        "axp20x-battery": {"type": "Battery", "present": "1", "scope": "System"},
        "a-mouse-battery": {"type": "Battery", "present": "1", "scope": "Device"},
    }
    assert pick_battery(supplies) == "BAT1"
    del supplies["BAT1"], supplies["axp20x-battery"]
    assert pick_battery(supplies) == "BAT0"
    del supplies["BAT0"]
    assert pick_battery(supplies) is None


def test_read_on_this_machine() -> None:
    """The real sysfs and the real psutil; what to expect is worked out from the machine."""
    config = BatterySensorConfig()
    root = Path(config.power_supply_dir)
    types: dict[str, tuple[str, str, str]] = {}
    if root.is_dir():
        for supply in root.iterdir():
            types[supply.name] = (
                _cat(supply / "type"),
                _cat(supply / "scope"),
                _cat(supply / "present"),
            )
    own = [
        n
        for n, (kind, scope, present) in types.items()
        if kind == "Battery" and scope != "Device" and present != "0"
    ]
    any_battery = any(kind == "Battery" for kind, _, _ in types.values())
    psutil_battery = psutil.sensors_battery()

    battery_sensor = BatterySensor(config)
    assert (battery_sensor.name, battery_sensor.interval_s) == ("battery", 60.0)
    if not own and (psutil_battery is None or any_battery):
        # A desktop or server (this CI machine has no /sys/class/power_supply at all).
        with pytest.raises(SensorUnavailable, match="battery"):
            battery_sensor.read(T)
        return
    data = battery_sensor.read(T).data
    assert set(data) <= set(BATTERY_FIELDS)
    if "battery_pct" in data:
        assert isinstance(data["battery_pct"], float) and 0.0 <= data["battery_pct"] <= 100.0
    if "charging" in data:
        assert isinstance(data["charging"], bool)
    if "power_W" in data:
        assert isinstance(data["power_W"], float) and 0.0 <= data["power_W"] < 500.0
    if "voltage_V" in data:
        assert isinstance(data["voltage_V"], float) and 0.0 < data["voltage_V"] < 100.0


def _cat(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8").strip()
    except OSError:
        return ""


def test_attributes_beyond_64_bits_are_left_out(tmp_path: Path) -> None:
    """Regression: an attribute file holding a number beyond any float (a driver bug, or a
    corrupt file) made the power computation overflow: an exception out of ``read``."""
    supply = tmp_path / "BAT0"
    supply.mkdir()
    for attr, text in {
        "type": "Battery",
        "status": "Discharging",
        "capacity": "57",
        "power_now": "1" + "0" * 400,
        "voltage_now": "11400000",
        "current_now": "\xff\xfe",
    }.items():
        (supply / attr).write_text(text, encoding="latin-1")
    sample = BatterySensor(BatterySensorConfig(power_supply_dir=str(tmp_path))).read(T)
    assert dict(sample.data) == {"battery_pct": 57.0, "charging": False, "voltage_V": 11.4}
    assert parse_power_supply({"capacity": "١٢", "current_now": "+5", "voltage_now": "-0"}) == {}
