"""Battery on Android through ``termux-battery-status`` (Termux:API), polled rarely.

Android hides /sys/class/power_supply from apps on most phones and psutil finds no battery
there, so the Termux:API app is the honest source. It wakes that app on every call, which
costs power of its own: the sensor polls at most every ``termux_interval_s``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, TypeGuard

from agent.config import BatterySensorConfig
from agent.samples import Sample, Scalar
from agent.sensors.termux import run_json

logger = logging.getLogger(__name__)

COMMAND = "termux-battery-status"


def parse_termux_battery(reply: Mapping[str, Any]) -> dict[str, Scalar]:
    """Sample fields from termux-battery-status's JSON object.

    The fields, as termux-api's BatteryStatusAPI writes them: ``percentage`` (%), ``plugged``
    (UNPLUGGED, PLUGGED_AC, PLUGGED_USB, PLUGGED_WIRELESS, PLUGGED_DOCK), ``status``,
    ``temperature`` (°C), and in newer versions ``voltage`` (mV) and ``current`` (µA; positive
    into the battery by Android's contract, though some phones report the opposite sign:
    kept as reported). Older versions send no voltage, so no power either.
    """
    data: dict[str, Scalar] = {}
    percent = reply.get("percentage")
    if _number(percent):
        data["battery_pct"] = float(percent)
    plugged = reply.get("plugged")
    if isinstance(plugged, str):
        data["charging"] = plugged != "UNPLUGGED"
    current_uA, voltage_mV = reply.get("current"), reply.get("voltage")
    if _number(current_uA) and _number(voltage_mV) and voltage_mV > 0:
        data["power_W"] = round(abs(current_uA) * 1e-6 * voltage_mV * 1e-3, 3)
    if _number(current_uA):
        data["current_A"] = round(current_uA * 1e-6, 6)
    if _number(voltage_mV) and voltage_mV > 0:
        data["voltage_V"] = round(voltage_mV * 1e-3, 3)
    temperature = reply.get("temperature")
    if _number(temperature) and -40.0 < temperature < 150.0:
        data["temp_C"] = float(temperature)
    return data


def _number(value: object) -> TypeGuard[int | float]:
    return isinstance(value, int | float) and not isinstance(value, bool)


class TermuxBatterySensor:
    """``battery`` from Termux:API, at most every ``termux_interval_s``."""

    def __init__(self, config: BatterySensorConfig, *, path: str | None = None) -> None:
        self.name = "battery"
        self.interval_s = max(config.interval_s, config.termux_interval_s)
        self._timeout_s = config.termux_timeout_s
        self._path = path

    def read(self, now: float) -> Sample:
        reply = run_json(self.name, [COMMAND], self._timeout_s, path=self._path)
        return Sample(self.name, now, parse_termux_battery(reply))

    def close(self) -> None:
        pass
