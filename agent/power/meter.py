"""PowerMeter: CPU seconds and calls per stage, on the CPU clock of the thread doing the work.

The loop's thread measures by *laps*: ``lap(name)`` charges the CPU time since the previous
lap to ``name``, so one clock read closes one stage and opens the next, and every CPU
nanosecond of that thread between two laps belongs to exactly one stage. Other threads (the
sensors' pollers) measure their own work and ``add`` it; work done in child processes (the
larger model) is added from the child's rusage.

Reading a CPU clock is not reading the time of day: nothing here decides anything by it.
"""

from __future__ import annotations

import resource
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from agent.samples import Sample

#: The name under which the meter charges its own clock reads.
METERING = "metering"
#: The larger model's child processes, from their rusage.
LARGE_MODEL = "large_model"


@dataclass
class StageCost:
    cpu_s: float = 0.0
    calls: int = 0


class PowerMeter:
    """Accumulates the CPU time spent in each named stage until ``take``."""

    def __init__(self, cpu_time: Callable[[], float] = time.thread_time) -> None:
        self._cpu_time = cpu_time
        self._lock = threading.Lock()
        self._laps: dict[str, StageCost] = {}
        self._added: dict[str, StageCost] = {}
        self._last = cpu_time()
        self.lap_count = 0
        self.lap_cost_s = 0.0
        self.lap_cost_s = _lap_cost(self)

    def lap(self, name: str, calls: int = 1) -> None:
        """Charge the loop thread's CPU time since the last lap to ``name``: ``calls`` is the
        number of samples that lap did the work of (a chunk's)."""
        now = self._cpu_time()
        cost = self._laps.get(name)
        if cost is None:
            cost = self._laps[name] = StageCost()
        # The interval holds one lap's own work: that is the meter's, charged in ``take``.
        cost.cpu_s += now - self._last - self.lap_cost_s
        cost.calls += calls
        self.lap_count += 1
        self._last = now

    def skip(self) -> None:
        """Start the next lap now, charging the time since the last one to nobody (it is
        counted elsewhere, or is the meter's own)."""
        self._last = self._cpu_time()

    def add(self, name: str, cpu_s: float, calls: int = 1) -> None:
        """Charge CPU measured elsewhere (another thread, a child process). Thread-safe."""
        with self._lock:
            cost = self._added.setdefault(name, StageCost())
            cost.cpu_s += cpu_s
            cost.calls += calls

    def take(self) -> dict[str, StageCost]:
        """What was charged since the last ``take``, and start afresh. The laps' own cost is
        charged to ``metering``: laps × the cost of one lap, measured when the meter was
        made."""
        with self._lock:
            added, self._added = self._added, {}
        taken, self._laps = self._laps, {}
        for name, cost in added.items():
            mine = taken.setdefault(name, StageCost())
            mine.cpu_s += cost.cpu_s
            mine.calls += cost.calls
        if self.lap_count:
            taken[METERING] = StageCost(self.lap_count * self.lap_cost_s, self.lap_count)
            self.lap_count = 0
        return taken


def _lap_cost(meter: PowerMeter, n: int = 2000) -> float:
    """The CPU cost of one lap on this machine: ``n`` laps timed, then forgotten."""
    start = meter._cpu_time()
    for _ in range(n):
        meter.lap("_")
    cost = (meter._cpu_time() - start) / n
    meter._laps.clear()
    meter.lap_count = 0
    meter._last = meter._cpu_time()
    return max(cost, 0.0)


class NullMeter(PowerMeter):
    """A meter that measures nothing (tests and tools that build a pipeline by hand)."""

    def __init__(self) -> None:
        super().__init__(cpu_time=_zero)
        self.lap_cost_s = 0.0

    def lap(self, name: str, calls: int = 1) -> None:
        return None


def _zero() -> float:
    return 0.0


if TYPE_CHECKING:
    from agent.sensors.base import Sensor


class MeteredSensor:
    """A sensor whose reads are charged to ``sensor.<name>``: the polling thread's CPU, and
    the CPU of helper programs the read ran and waited for (``termux-location``...), which
    the kernel adds to this process's children once they are reaped."""

    def __init__(self, sensor: Sensor, meter: PowerMeter) -> None:
        self._sensor = sensor
        self._meter = meter
        self.name = sensor.name
        self.interval_s = sensor.interval_s
        self._stage = f"sensor.{sensor.name}"

    def read(self, now: float) -> Sample | None:
        cpu0, children0 = time.thread_time(), _children_cpu()
        try:
            return self._sensor.read(now)
        finally:
            self._meter.add(self._stage, time.thread_time() - cpu0)
            spawned = _children_cpu() - children0
            if spawned > 0:
                self._meter.add(HELPERS, spawned)

    def close(self) -> None:
        self._sensor.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sensor, name)


#: CPU of programs the sensors ran (a child process's, like the larger model's).
HELPERS = "sensor.helpers"


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime
