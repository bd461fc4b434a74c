"""Battery sensor (stage 1): the kernel's power_supply class, psutil as fallback; parse is pure."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import psutil

from agent.config import BatterySensorConfig
from agent.errors import SensorUnavailable
from agent.samples import Sample, Scalar
from agent.sensors.values import brief, kernel_int

logger = logging.getLogger(__name__)

#: The sample's fields, in the order they are written.
FIELDS = ("battery_pct", "charging", "power_W", "current_A", "voltage_V")

#: The attribute files read from each supply directory (Documentation/ABI/testing/
#: sysfs-class-power). Units: µV, µA, µW, µAh, µWh; capacity in percent.
ATTRIBUTES = (
    "type",
    "scope",
    "present",
    "status",
    "capacity",
    "voltage_now",
    "current_now",
    "power_now",
    "energy_now",
    "energy_full",
    "charge_now",
    "charge_full",
)

#: ``status`` -> ``charging``, read as "on external power" like psutil's ``power_plugged``:
#: "Full" and "Not charging" (held by a charge limit) are plugged in. "Unknown" says nothing.
_STATUS_PLUGGED = {"Charging": True, "Full": True, "Not charging": True, "Discharging": False}


@dataclass(frozen=True, slots=True)
class BatteryLevel:
    """What psutil reports: charge in percent, and whether external power is connected."""

    percent: float
    plugged: bool | None


def psutil_level() -> BatteryLevel | None:
    """psutil's battery, or None when it finds none or cannot read it."""
    try:
        battery = psutil.sensors_battery()
    except (OSError, psutil.Error) as exc:  # translated here: psutil's errors stay in this module
        logger.debug("psutil battery unreadable: %s", exc)
        return None
    if battery is None:
        return None
    return BatteryLevel(float(battery.percent), battery.power_plugged)


def read_power_supply(directory: str | Path) -> dict[str, dict[str, str]]:
    """Supply name -> {attribute: stripped text} for the ``ATTRIBUTES`` each supply has.

    Files that are missing or cannot be read (Android denies many: ``PermissionError``) are
    left out; a supply with nothing readable is left out; a missing directory gives ``{}``.
    """
    root = Path(directory)
    try:
        names = sorted(entry.name for entry in root.iterdir())
    except OSError as exc:
        logger.debug("cannot list %s: %s", root, exc)
        return {}
    supplies: dict[str, dict[str, str]] = {}
    for name in names:
        attrs: dict[str, str] = {}
        for attr in ATTRIBUTES:
            try:
                attrs[attr] = (root / name / attr).read_text(encoding="utf-8").strip()
            except FileNotFoundError:
                continue
            except (OSError, UnicodeDecodeError) as exc:
                logger.debug("skipping %s/%s: %s", name, attr, exc)
        if attrs:
            supplies[name] = attrs
    return supplies


def pick_battery(supplies: Mapping[str, Mapping[str, str]]) -> str | None:
    """The name of the machine's own battery among ``supplies``, or None.

    Only ``type`` "Battery" counts. A battery with ``scope`` "Device" powers a peripheral
    (a wireless mouse's ``hid-…-battery``) and one with ``present`` 0 is an empty bay, so both
    are skipped. Batteries that say ``present`` 1 come before ones that don't say; then by name.
    """
    candidates = [
        (attrs.get("present") != "1", name)
        for name, attrs in supplies.items()
        if attrs.get("type") == "Battery"
        and attrs.get("scope") != "Device"
        and attrs.get("present") != "0"
    ]
    return min(candidates)[1] if candidates else None


def parse_power_supply(attrs: Mapping[str, str]) -> dict[str, Scalar]:
    """The sample fields from one battery's attribute files (kernel units -> SI).

    - ``battery_pct``: ``capacity``; without it, ``energy_now/energy_full`` or
      ``charge_now/charge_full`` (capped at 100: a gauge may count past its last full charge).
    - ``charging``: from ``status``, meaning on external power (see ``_STATUS_PLUGGED``).
    - ``power_W``: ``power_now`` (µW), else ``|current_now| × voltage_now``; always a magnitude.
    - ``current_A``: ``current_now`` (µA) with the kernel's sign. The ABI says negative while
      discharging, but many laptop drivers (ACPI) report a positive magnitude either way and
      Android phones differ by vendor; some phone drivers even report mA. The value is
      converted as µA and otherwise passed on as given; read the direction from ``charging``.
    - ``voltage_V``: ``voltage_now`` (µV).

    Values that are not integers as the kernel writes them (64-bit decimals) are left out.
    Rounded to 3 decimals (mW, mA, mV).
    """
    data: dict[str, Scalar] = {}
    pct = _percent(attrs)
    if pct is not None:
        data["battery_pct"] = pct
    plugged = _STATUS_PLUGGED.get(attrs.get("status", ""))
    if plugged is not None:
        data["charging"] = plugged
    power_uW = _int(attrs, "power_now")
    current_uA = _int(attrs, "current_now")
    voltage_uV = _int(attrs, "voltage_now")
    if voltage_uV is not None and voltage_uV <= 0:
        voltage_uV = None  # a battery at 0 V is a driver with nothing to say
    if power_uW is not None:
        data["power_W"] = round(abs(power_uW) / 1e6, 3)
    elif current_uA is not None and voltage_uV is not None:
        data["power_W"] = round(abs(current_uA) * voltage_uV / 1e12, 3)
    if current_uA is not None:
        data["current_A"] = round(current_uA / 1e6, 3)
    if voltage_uV is not None:
        data["voltage_V"] = round(voltage_uV / 1e6, 3)
    return data


def _percent(attrs: Mapping[str, str]) -> float | None:
    capacity = _int(attrs, "capacity")
    if capacity is not None and 0 <= capacity <= 100:
        return float(capacity)
    for now_key, full_key in (("energy_now", "energy_full"), ("charge_now", "charge_full")):
        now, full = _int(attrs, now_key), _int(attrs, full_key)
        if now is not None and full and now >= 0 and full > 0:
            return round(min(100.0, 100.0 * now / full), 3)
    return None


def _int(attrs: Mapping[str, str], key: str) -> int | None:
    text = attrs.get(key)
    if text is None:
        return None
    value = kernel_int(text)
    if value is None:
        logger.debug("ignoring %s=%s: not a 64-bit integer", key, brief(text))
    return value


class BatterySensor:
    """Battery level, charging, power, current and voltage of the machine's own battery.

    The kernel's power_supply directory is read first, because there we can tell the
    machine's battery from a mouse's; psutil (``level``) is the fallback where that directory
    tells nothing (not Linux, or Android denying it). psutil itself reads the same directory
    on Linux but takes the first ``BAT*``/``*battery*`` by name, which may be a peripheral.
    With no battery at all ``read`` raises ``SensorUnavailable`` (expected on a desktop).
    """

    def __init__(
        self,
        config: BatterySensorConfig,
        level: Callable[[], BatteryLevel | None] = psutil_level,
    ) -> None:
        self.name = "battery"
        self.interval_s = config.interval_s
        self._dir = config.power_supply_dir
        self._level = level

    def read(self, now: float) -> Sample:
        supplies = read_power_supply(self._dir)
        chosen = pick_battery(supplies)
        data = parse_power_supply(supplies[chosen]) if chosen is not None else {}
        peripheral_only = chosen is None and any(
            attrs.get("type") == "Battery" for attrs in supplies.values()
        )
        if "battery_pct" not in data and not peripheral_only:  # psutil fills the gap
            level = self._level()
            if level is not None:
                data["battery_pct"] = round(level.percent, 3)
                if "charging" not in data and level.plugged is not None:
                    data["charging"] = level.plugged
        if not data:
            reason = "no battery found" if chosen is None else f"{chosen}: nothing readable"
            raise SensorUnavailable(self.name, reason)
        logger.debug("battery %s: %s", chosen or "psutil", data)
        return Sample(self.name, now, {key: data[key] for key in FIELDS if key in data})

    def close(self) -> None:
        pass
