"""Sensors: raw input from the OS. ``SENSORS`` maps a registry key to a factory."""

from __future__ import annotations

from collections.abc import Callable

from agent.config import Config
from agent.sensors.base import Sensor
from agent.sensors.battery import BatterySensor
from agent.sensors.system import SystemSensor

#: Registry key -> factory building the sensor from the whole config. The key is the name
#: used in config sections, traces, logs and the database.
SENSORS: dict[str, Callable[[Config], Sensor]] = {
    "system": lambda c: SystemSensor(c.sensors.system),
    "battery": lambda c: BatterySensor(c.sensors.battery),
}


def enabled_sensors(config: Config) -> list[Sensor]:
    """The sensors the config switches on, built and ready to read."""
    switches = {"system": config.sensors.system.enabled, "battery": config.sensors.battery.enabled}
    return [factory(config) for name, factory in SENSORS.items() if switches[name]]
