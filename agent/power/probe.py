"""The machine's best measured power source, for ``vigil power calibrate``.

Tried in order: RAPL (an energy counter: exact over a block), the battery in
``/sys/class/power_supply`` while it discharges, and Termux:API's ``termux-battery-status``
while the phone is unplugged (both: the mean of instantaneous readings over the block). A
charger hides the machine's draw, so a battery counts only while it runs the machine.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from pathlib import Path
from statistics import fmean
from typing import Any, NamedTuple

from agent import clock as clock_module
from agent.clock import Clock
from agent.config import BatterySensorConfig
from agent.errors import CalibrationError, SensorReadError, SensorUnavailable
from agent.platform import is_termux
from agent.power.rapl import DEFAULT_ROOT, RaplCounter, find_rapl
from agent.sensors.battery import parse_power_supply, pick_battery, read_power_supply
from agent.sensors.termux import run_json
from agent.sensors.termux_battery import COMMAND as TERMUX_COMMAND
from agent.sensors.termux_battery import parse_termux_battery

logger = logging.getLogger(__name__)

Sleep = Callable[[float], None]

_BATTERY_DEFAULTS = BatterySensorConfig()

#: A current this small is in mA, not µA: no phone or laptop runs on under 10 mA while
#: awake, and some drivers (and Termux:API on some phones) report mA.
_MA_BELOW = 10_000


class PowerProbe(ABC):
    """A measured power source: mean watts over a block of time."""

    label: str

    @abstractmethod
    def block_power_w(
        self, duration_s: float, clock: Clock, *, sleep: Sleep = clock_module.sleep
    ) -> float:
        """Mean watts over the next ``duration_s`` seconds (this call takes that long).

        ``CalibrationError`` when the source stops being usable (a charger plugged in).
        """

    @abstractmethod
    def close(self) -> None:
        """Release what the probe holds open."""


class ProbeSearch(NamedTuple):
    """What ``find_probe`` found, and why each source tried before it (or all) is unusable."""

    probe: PowerProbe | None
    reasons: list[str]


class RaplProbe(PowerProbe):
    """ΔE/Δt of a RAPL counter; read at least every ``read_every_s`` so wraps are seen."""

    def __init__(self, counter: RaplCounter, *, read_every_s: float = 10.0) -> None:
        self.label = counter.label
        self._counter = counter
        self._read_every_s = read_every_s

    def block_power_w(
        self, duration_s: float, clock: Clock, *, sleep: Sleep = clock_module.sleep
    ) -> float:
        try:
            start_j = self._counter.read_j()
            start = clock.monotonic()
            end = start + duration_s
            while (left := end - clock.monotonic()) > 0:
                sleep(min(left, self._read_every_s))
                self._counter.read_j()
            end_j = self._counter.read_j()
        except SensorReadError as exc:
            raise CalibrationError(f"{self.label}: {exc.reason}") from exc
        elapsed = clock.monotonic() - start
        if elapsed <= 0:
            raise CalibrationError(f"{self.label}: no time passed in a {duration_s:g} s block")
        return (end_j - start_j) / elapsed

    def close(self) -> None:
        self._counter.close()


class Reading(NamedTuple):
    """One instantaneous power reading: watts, or None and why the source is not usable."""

    watts: float | None
    reason: str


class SampledProbe(PowerProbe):
    """The mean of ``read()``'s readings, one every ``poll_s`` through the block.

    Each reading is taken at the end of its interval, so none belongs to the block before.
    A reading that fails once (``SensorReadError``, e.g. a timeout) is skipped.
    """

    def __init__(self, label: str, read: Callable[[], Reading], poll_s: float) -> None:
        if poll_s <= 0:
            raise ValueError(f"poll_s must be positive, not {poll_s}")
        self.label = label
        self._read = read
        self._poll_s = poll_s

    def block_power_w(
        self, duration_s: float, clock: Clock, *, sleep: Sleep = clock_module.sleep
    ) -> float:
        start = clock.monotonic()
        end = start + duration_s
        readings: list[float] = []
        step = 1
        while True:
            due = min(start + step * self._poll_s, end)
            wait = due - clock.monotonic()
            if wait > 0:
                sleep(wait)
            readings.extend(self._reading())
            if due >= end:
                break
            # A slow reading (termux-battery-status can take a second) skips missed slots.
            step = max(step + 1, int((clock.monotonic() - start) // self._poll_s) + 1)
        if not readings:
            raise CalibrationError(f"{self.label} gave no reading in {duration_s:g} s")
        return fmean(readings)

    def _reading(self) -> list[float]:
        try:
            watts, reason = self._read()
        except SensorReadError as exc:
            logger.warning("%s: reading skipped: %s", self.label, exc.reason)
            return []
        except SensorUnavailable as exc:
            raise CalibrationError(f"{self.label}: {exc.reason}") from exc
        if watts is None:
            raise CalibrationError(f"{self.label}: {reason}")
        return [watts]

    def close(self) -> None:
        pass  # nothing held open: each reading opens what it reads


def find_probe(
    *,
    powercap_root: str | Path = DEFAULT_ROOT,
    power_supply_dir: str | Path = _BATTERY_DEFAULTS.power_supply_dir,
    termux: bool | None = None,
    termux_path: str | None = None,
    termux_timeout_s: float = _BATTERY_DEFAULTS.termux_timeout_s,
    battery_poll_s: float = 1.0,
    termux_poll_s: float = 5.0,
) -> ProbeSearch:
    """The first usable of RAPL, a discharging battery, and Termux:API's battery.

    ``termux``: None tries ``termux-battery-status`` only on Termux; ``termux_path`` is the
    PATH it is looked up in (None: the process's). The reasons name every source passed over.
    """
    reasons: list[str] = []
    counter, reason = find_rapl(powercap_root)
    if counter is not None:
        return ProbeSearch(RaplProbe(counter), reasons)
    reasons.append(reason)

    directory = Path(power_supply_dir)
    first = battery_reading(directory)
    if first.watts is not None:
        name = pick_battery(read_power_supply(directory))
        probe = SampledProbe(f"battery {name}", lambda: battery_reading(directory), battery_poll_s)
        return ProbeSearch(probe, reasons)
    reasons.append(first.reason)

    if not (is_termux() if termux is None else termux):
        reasons.append(f"{TERMUX_COMMAND}: not running on Termux")
        return ProbeSearch(None, reasons)

    def read_termux() -> Reading:
        reply = run_json("battery", [TERMUX_COMMAND], termux_timeout_s, path=termux_path)
        return termux_reading(reply)

    try:
        first = read_termux()
    except (SensorUnavailable, SensorReadError) as exc:
        first = Reading(None, exc.reason)
    if first.watts is not None:
        return ProbeSearch(SampledProbe(TERMUX_COMMAND, read_termux, termux_poll_s), reasons)
    reasons.append(f"{TERMUX_COMMAND}: {first.reason}")
    return ProbeSearch(None, reasons)


def battery_reading(power_supply_dir: str | Path) -> Reading:
    """The machine's battery's draw from the kernel's power_supply class, while discharging.

    ``battery.py`` picks the battery and computes its ``power_W`` (``power_now``, else
    |current| × voltage); a ``current_now`` in mA is first scaled to the µA the ABI says.
    """
    directory = Path(power_supply_dir)
    supplies = read_power_supply(directory)
    name = pick_battery(supplies)
    if name is None:
        return Reading(None, f"no battery in {directory}")
    attrs = _current_in_ua(supplies[name], "current_now")
    status = attrs.get("status", "Unknown")
    if status != "Discharging":
        return Reading(
            None, f"battery {name} is not discharging ({status}): unplug the charger to use it"
        )
    watts = parse_power_supply(attrs).get("power_W")
    if not isinstance(watts, float):
        return Reading(
            None, f"battery {name} reports no power (no power_now, current_now or voltage_now)"
        )
    return Reading(watts, "")


def termux_reading(reply: Mapping[str, Any]) -> Reading:
    """The phone's draw from a ``termux-battery-status`` reply, while unplugged.

    ``termux_battery.py`` computes ``power_W`` as |current| × voltage (µA, mV); a current in
    mA (some phones) is first scaled to µA.
    """
    data = parse_termux_battery(_current_in_ua(reply, "current"))
    if data.get("charging") is not False:
        plugged = reply.get("plugged", "unknown")
        return Reading(None, f"the phone is not on battery (plugged: {plugged}): unplug it")
    watts = data.get("power_W")
    if not isinstance(watts, float):
        return Reading(None, "no current or voltage in the reply (Termux:API too old?)")
    return Reading(watts, "")


def _current_in_ua(fields: Mapping[str, Any], key: str) -> dict[str, Any]:
    """``fields`` with ``key`` scaled from mA to µA when it is too small to be µA."""
    out = dict(fields)
    value = out.get(key)
    number: Any = value
    if isinstance(value, str):
        try:
            number = int(value)
        except ValueError:
            return out
    if isinstance(number, int | float) and not isinstance(number, bool):
        if 0 < abs(number) < _MA_BELOW:
            scaled = number * 1000
            out[key] = str(int(scaled)) if isinstance(value, str) else scaled
    return out
