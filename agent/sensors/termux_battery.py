"""Battery on Android through ``termux-battery-status`` (Termux:API), polled rarely.

Android hides /sys/class/power_supply from apps on most phones and psutil finds no battery
there, so the Termux:API app is the honest source. It wakes that app on every call, which
costs power of its own: the sensor polls at most every ``termux_interval_s``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from agent.config import BatterySensorConfig
from agent.errors import SensorReadError
from agent.numbers import finite_float
from agent.samples import Sample, Scalar
from agent.sensors.commands import cap_timeout
from agent.sensors.termux import run_json
from agent.sensors.values import brief

logger = logging.getLogger(__name__)

COMMAND = "termux-battery-status"


def parse_termux_battery(reply: Mapping[str, Any]) -> dict[str, Scalar]:
    """Sample fields from termux-battery-status's JSON object.

    The fields, as termux-api's BatteryStatusAPI writes them: ``percentage`` (%), ``plugged``
    (UNPLUGGED, PLUGGED_AC, PLUGGED_USB, PLUGGED_WIRELESS, PLUGGED_DOCK), ``status``,
    ``temperature`` (°C), and in newer versions ``voltage`` (mV) and ``current`` (µA; positive
    into the battery by Android's contract, though some phones report the opposite sign:
    kept as reported). Older versions send no voltage, so no power either. A field that is
    not a number, is NaN or infinite, or is beyond any battery (a percentage outside 0-100,
    a voltage outside 0-1 kV) is left out.
    """
    data: dict[str, Scalar] = {}
    percent = finite_float(reply.get("percentage"))
    if percent is not None and 0.0 <= percent <= 100.0:
        data["battery_pct"] = percent
    plugged = reply.get("plugged")
    if isinstance(plugged, str):
        data["charging"] = plugged != "UNPLUGGED"
    current_uA, voltage_mV = finite_float(reply.get("current")), finite_float(reply.get("voltage"))
    if voltage_mV is not None and not 0.0 < voltage_mV < 1e6:
        voltage_mV = None  # no battery is at 0 V, or at 1 kV
    if current_uA is not None and not abs(current_uA) < 1e12:
        current_uA = None  # a megaampere is no phone's
    if current_uA is not None and voltage_mV is not None:
        data["power_W"] = round(abs(current_uA) * 1e-6 * voltage_mV * 1e-3, 3)
    if current_uA is not None:
        data["current_A"] = round(current_uA * 1e-6, 6)
    if voltage_mV is not None:
        data["voltage_V"] = round(voltage_mV * 1e-3, 3)
    temperature = finite_float(reply.get("temperature"))
    if temperature is not None and -40.0 < temperature < 150.0:
        data["temp_C"] = temperature
    return data


class TermuxBatterySensor:
    """``battery`` from Termux:API, at most every ``termux_interval_s``."""

    def __init__(self, config: BatterySensorConfig, *, path: str | None = None) -> None:
        self.name = "battery"
        self.interval_s = max(config.interval_s, config.termux_interval_s)
        self._timeout_s = cap_timeout(COMMAND, config.termux_timeout_s)
        self._path = path

    def read(self, now: float) -> Sample:
        reply = run_json(self.name, [COMMAND], self._timeout_s, path=self._path)
        data = parse_termux_battery(reply)
        if not data:
            raise SensorReadError(self.name, f"{COMMAND} gave no usable field: {brief(reply)}")
        return Sample(self.name, now, data)

    def close(self) -> None:
        pass
