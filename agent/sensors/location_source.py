"""Which location source a machine uses (``sensors.location.source``): gpsd, Termux's
``termux-location``, a static place, or none; ``auto`` probes gpsd, then Termux."""

from __future__ import annotations

import logging
import shutil

from agent.config import LOCATION_SOURCES, LocationSensorConfig
from agent.errors import ConfigError
from agent.sensors.base import Sensor
from agent.sensors.commands import MAX_TIMEOUT_S
from agent.sensors.gpsd import GpsdSensor
from agent.sensors.location import (
    TERMUX_COMMAND,
    TERMUX_MISSING,
    StaticLocationSensor,
    gpsd_answers,
)
from agent.sensors.termux_location import TermuxLocationSensor

logger = logging.getLogger(__name__)


def build_location_sensor(
    config: LocationSensorConfig, *, termux: bool, path: str | None = None
) -> Sensor | None:
    """The sensor for ``config.source``, or None when location is off here.

    ``auto`` takes gpsd when it accepts a connection within ``PROBE_TIMEOUT_S``, else
    termux-location on Termux when the command is on ``path`` (PATH when None), else none.
    """
    source = config.source
    if source not in LOCATION_SOURCES:
        raise ConfigError("config", "sensors.location.source", f"unknown source {source!r}")
    if source == "none":
        return None
    if source == "static":
        return StaticLocationSensor(config)
    if source == "gpsd":
        return GpsdSensor(config)
    if source == "termux":
        return TermuxLocationSensor(config, path=path)
    where = f"{config.gpsd_host}:{config.gpsd_port}"
    why_not = gpsd_answers(config.gpsd_host, config.gpsd_port)
    if why_not is None:
        logger.debug("location from gpsd on %s", where)
        return GpsdSensor(config)
    if termux and shutil.which(TERMUX_COMMAND, path=path):
        logger.debug("location from %s (no gpsd on %s)", TERMUX_COMMAND, where)
        return TermuxLocationSensor(config, path=path)
    if termux:
        logger.debug("location off: no gpsd on %s, %s", where, TERMUX_MISSING)
    else:
        logger.debug("location off: no gpsd on %s, not Termux", where)
    return None


def describe_location(
    config: LocationSensorConfig, termux: bool, *, path: str | None = None
) -> tuple[bool, str]:
    """(available here?, why) for ``vigil doctor``: the same choice ``build`` makes."""
    source = config.source
    where = f"{config.gpsd_host}:{config.gpsd_port}"
    if source == "none":
        return False, "off in config (source = none)"
    if source == "static":
        if config.static_lat is None or config.static_lon is None:
            return False, "source = static needs static_lat, static_lon"
        return True, (
            f"static place {config.static_lat}, {config.static_lon}"
            f" (±{config.static_accuracy_m:g} m)"
        )
    if source in ("gpsd", "auto"):
        why_not = gpsd_answers(config.gpsd_host, config.gpsd_port)
        if why_not is None:
            return True, f"gpsd answers on {where}"
        if source == "gpsd":
            return False, f"gpsd not answering on {where}: {why_not}"
    command = shutil.which(TERMUX_COMMAND, path=path)
    if source == "termux" or termux:
        if command is None:
            prefix = "" if source == "termux" else f"no gpsd on {where}, "
            return False, prefix + TERMUX_MISSING
        timeout_s = min(config.termux_timeout_s, MAX_TIMEOUT_S)
        return True, (
            f"{command} -p {config.termux_provider} -r {config.termux_request}"
            f" (killed after {timeout_s:g} s)"
        )
    return False, f"no gpsd on {where}, not Termux"
