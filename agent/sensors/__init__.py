"""Sensors: raw input from the OS. ``plan_sensors`` decides which run here, and why."""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from agent.config import Config
from agent.errors import SensorUnavailable
from agent.sensors.base import Sensor

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class SensorPlan:
    """One sensor's fate on this machine: built (``sensor``) or off, and the reason."""

    name: str
    sensor: Sensor | None
    reason: str
    #: The config asked for it outright, so being unable to run is a problem (doctor fails).
    required: bool


def _system(config: Config, termux: bool, environ: Mapping[str, str]) -> SensorPlan:
    from agent.sensors.system import SystemSensor

    if not config.sensors.system.enabled:
        return SensorPlan("system", None, "off in config", False)
    return SensorPlan("system", SystemSensor(config.sensors.system), "psutil", True)


def _battery(config: Config, termux: bool, environ: Mapping[str, str]) -> SensorPlan:
    from agent.sensors.battery import BatterySensor
    from agent.sensors.termux_battery import COMMAND, TermuxBatterySensor

    settings = config.sensors.battery
    if not settings.enabled:
        return SensorPlan("battery", None, "off in config", False)
    if termux and shutil.which(COMMAND, path=environ.get("PATH")):
        return SensorPlan("battery", TermuxBatterySensor(settings), COMMAND, True)
    sensor = BatterySensor(settings)
    try:
        sensor.read(0.0)
    except SensorUnavailable as exc:
        # A desktop or server has no battery and never will: off, not down, and not an error.
        return SensorPlan("battery", None, exc.reason, False)
    return SensorPlan("battery", sensor, settings.power_supply_dir + " and psutil", True)


def _location(config: Config, termux: bool, environ: Mapping[str, str]) -> SensorPlan:
    from agent.sensors.location_source import build_location_sensor, describe_location

    settings = config.sensors.location
    sensor = build_location_sensor(settings, termux=termux)
    _, why = describe_location(settings, termux)
    return SensorPlan("location", sensor, why, settings.source not in ("auto", "none"))


def _apps(config: Config, termux: bool, environ: Mapping[str, str]) -> SensorPlan:
    from agent.sensors.apps import AppsSensor
    from agent.sensors.focus import describe_focus, open_focus

    settings = config.sensors.apps
    if not settings.enabled:
        return SensorPlan("apps", None, "off in config", False)
    _, why = describe_focus(environ, termux)
    focus = open_focus(environ, termux)
    return SensorPlan("apps", AppsSensor(settings, focus=focus), why, True)


#: Registry key -> planner. The key is the name used in config sections, traces, logs and
#: the database.
SENSORS: dict[str, Callable[[Config, bool, Mapping[str, str]], SensorPlan]] = {
    "system": _system,
    "battery": _battery,
    "location": _location,
    "apps": _apps,
}


def plan_sensors(
    config: Config, *, termux: bool, environ: Mapping[str, str] | None = None
) -> list[SensorPlan]:
    env = os.environ if environ is None else environ
    plans = [planner(config, termux, env) for planner in SENSORS.values()]
    for plan in plans:
        logger.debug("sensor %s %s: %s", plan.name, "on" if plan.sensor else "off", plan.reason)
    return plans


def enabled_sensors(config: Config, *, termux: bool | None = None) -> list[Sensor]:
    """The sensors that run here, built and ready to read."""
    from agent.platform import is_termux

    here = is_termux() if termux is None else termux
    return [p.sensor for p in plan_sensors(config, termux=here) if p.sensor is not None]
