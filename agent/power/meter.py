"""PowerMeter: CPU seconds and calls per stage, on the CPU clock of the thread doing the work.

The loop's thread measures by *laps*: ``lap(name)`` charges the CPU time since the previous
lap to ``name``, so one clock read closes one stage and opens the next, and every CPU
nanosecond of that thread between two laps belongs to exactly one stage. Other threads (the
sensors' pollers) measure their own work and ``add`` it; work done in child processes (the
larger model) is added from the child's rusage.

The thread's CPU clock is a system call (0.6 us here; a live sample's nine laps took 8 %
of its work), so stages that never wait (the pipeline's: pure computation) mark their end
with ``split`` on the monotonic clock instead (0.2-0.3 us with its bookkeeping). The CPU of
every interval between two laps that holds splits is pooled with its wall time, and ``take``
charges each split stage (and the part of such a lap after its last split) its wall time at
the pool's CPU per wall second. Between two laps the thread only computes, so the two clocks
differ by the moments it was preempted, spread over the stages running then; the total
stays exact.

Reading a CPU clock or the monotonic one is not reading the time of day: nothing here decides
anything by them.
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

    def __init__(
        self,
        cpu_time: Callable[[], float] = time.thread_time,
        wall_time: Callable[[], float] = time.perf_counter,
    ) -> None:
        self._cpu_time = cpu_time
        self._wall_time = wall_time
        self._lock = threading.Lock()
        self._laps: dict[str, StageCost] = {}
        self._added: dict[str, StageCost] = {}
        #: the split stages' wall seconds (in ``cpu_s`` until ``take`` converts them) and calls
        self._walls: dict[str, StageCost] = {}
        self._pooled_cpu_s = self._pooled_wall_s = 0.0  # the intervals with splits
        self._last = cpu_time()
        self._lap_wall = self._mark = wall_time()  # the last lap's wall time; the last mark's
        self.lap_count = self.split_count = 0
        self.lap_cost_s = self.split_cost_s = 0.0
        self.lap_cost_s, self.split_cost_s = _lap_cost(self)

    def lap(self, name: str, calls: int = 1) -> None:
        """Charge the loop thread's CPU time since the last lap to ``name``: ``calls`` is the
        number of samples that lap did the work of (a chunk's). An interval with splits is
        pooled instead, this lap's part by its wall time."""
        pooled = self._mark != self._lap_wall  # splits since the last lap
        if pooled:  # (its wall time ends before the CPU clock's system call: not this stage's)
            wall = self._wall_time()
            self._pooled_wall_s += wall - self._lap_wall
            _charge(self._walls, name, wall - self._mark, calls)
        now = self._cpu_time()
        # The interval holds one lap's own work: that is the meter's, charged in ``take``.
        cpu_s = now - self._last - self.lap_cost_s
        if pooled:
            self._pooled_cpu_s += cpu_s
        else:
            _charge(self._laps, name, cpu_s, calls)
        self.lap_count += 1
        self._last = now
        self._lap_wall = self._mark = self._wall_time()

    def split(self, name: str, calls: int = 1) -> None:
        """``lap`` for a stage that never waits: its end marked on the wall clock, its CPU
        its wall time at the pool's rate (``take``)."""
        wall = self._wall_time()
        _charge(self._walls, name, wall - self._mark, calls)
        self._mark = wall
        self.split_count += 1

    def skip(self) -> None:
        """Start the next lap now, charging the time since the last one to nobody (it is
        counted elsewhere, or is the meter's own); splits since the last lap are pooled."""
        if self._mark != self._lap_wall:
            self._pool_to_mark()
        self._last = self._cpu_time()
        self._lap_wall = self._mark = self._wall_time()

    def _pool_to_mark(self) -> None:
        """Pool the splits since the last lap on a fresh CPU reading, as if a lap had come
        at the last split: the time since then is the next lap's."""
        now, wall = self._cpu_time(), self._wall_time()
        spent = wall - self._lap_wall
        to_mark = self._mark - self._lap_wall
        cpu_s = (now - self._last) * (to_mark / spent if spent > 0.0 else 1.0)
        self._pooled_cpu_s += cpu_s
        self._pooled_wall_s += to_mark
        self._last += cpu_s
        self._lap_wall = self._mark

    def add(self, name: str, cpu_s: float, calls: int = 1) -> None:
        """Charge CPU measured elsewhere (another thread, a child process). Thread-safe."""
        with self._lock:
            cost = self._added.setdefault(name, StageCost())
            cost.cpu_s += cpu_s
            cost.calls += calls

    def take(self) -> dict[str, StageCost]:
        """What was charged since the last ``take``, and start afresh: the split stages their
        wall time at the pool's CPU per wall second. The laps' and splits' own cost is
        charged to ``metering``: their counts × the cost of one, measured when the meter was
        made."""
        if self._mark != self._lap_wall:  # (a take between a split and the next lap)
            self._pool_to_mark()
        with self._lock:
            added, self._added = self._added, {}
        taken, self._laps = self._laps, {}
        if self._walls:
            cpu_s = self._pooled_cpu_s - self.split_count * self.split_cost_s
            rate = cpu_s / self._pooled_wall_s if self._pooled_wall_s > 0.0 else 0.0
            for name, wall in self._walls.items():
                mine = taken.setdefault(name, StageCost())
                mine.cpu_s += wall.cpu_s * rate
                mine.calls += wall.calls
            self._walls = {}
            self._pooled_cpu_s = self._pooled_wall_s = 0.0
        for name, cost in added.items():
            mine = taken.setdefault(name, StageCost())
            mine.cpu_s += cost.cpu_s
            mine.calls += cost.calls
        if self.lap_count or self.split_count:
            own = self.lap_count * self.lap_cost_s + self.split_count * self.split_cost_s
            taken[METERING] = StageCost(own, self.lap_count + self.split_count)
            self.lap_count = self.split_count = 0
        return taken


def _charge(costs: dict[str, StageCost], name: str, seconds: float, calls: int) -> None:
    """Add ``seconds`` and ``calls`` to ``name``'s cost in ``costs`` (a lap's CPU, or a split
    stage's wall time until ``take``)."""
    cost = costs.get(name)
    if cost is None:
        cost = costs[name] = StageCost()
    cost.cpu_s += seconds
    cost.calls += calls


def _lap_cost(meter: PowerMeter, n: int = 2000) -> tuple[float, float]:
    """The CPU cost of one lap and of one split on this machine: ``n`` of each timed, as the
    loop makes them (a lap after a few splits), then forgotten."""
    start = meter._cpu_time()
    for _ in range(n):
        meter.lap("_")
    lap = (meter._cpu_time() - start) / n
    start = meter._cpu_time()
    for _ in range(n // 4):
        meter.split("_")
        meter.split("_")
        meter.split("_")
        meter.lap("_")
    split = ((meter._cpu_time() - start) / (n // 4) - lap) / 3
    meter._laps.clear()
    meter._walls.clear()
    meter._pooled_cpu_s = meter._pooled_wall_s = 0.0
    meter.lap_count = meter.split_count = 0
    meter._last = meter._cpu_time()
    meter._lap_wall = meter._mark = meter._wall_time()
    return max(lap, 0.0), max(split, 0.0)


class NullMeter(PowerMeter):
    """A meter that measures nothing (tests and tools that build a pipeline by hand)."""

    def __init__(self) -> None:
        super().__init__(cpu_time=_zero)
        self.lap_cost_s = 0.0

    def lap(self, name: str, calls: int = 1) -> None:
        return None

    def split(self, name: str, calls: int = 1) -> None:
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
