"""Ledger: the meter's stage costs, summed per hour of sample time, ready for the store.

Nothing here writes: the store asks for ``rows()`` inside the transaction of its normal
commit and calls ``written()`` once it has committed, so the ledger costs no extra writes and
a failed commit loses nothing (the rows are asked for again, grown, next time).

Besides the stages, each hour gets two totals:

* ``process``: this process's own CPU time, read from ``/proc/self/stat`` (``os.times`` where
  that is unreadable). The stages run in this process, so their sum falls short of it by
  what no stage owns (start-up before the loop, the scheduler's thread, the interpreter):
  the report's *unattributed* line. Child processes (the larger model) are charged apart,
  from their rusage, and are not in it.
* ``node`` (the daemon only: a replay's CPU is not the machine's at the sample's time): the
  whole machine's busy CPU seconds and, where RAPL is readable, its measured energy.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from agent.errors import SensorReadError
from agent.power.meter import PowerMeter

logger = logging.getLogger(__name__)

HOUR_S = 3600.0
#: The totals' names in the ledger (the rest are stages).
PROCESS, NODE, STARTUP = "process", "node", "startup"


@dataclass
class _Row:
    cpu_s: float = 0.0
    calls: int = 0
    covered_s: float | None = None
    energy_j: float | None = None


@dataclass(frozen=True)
class MachineReaders:
    """The whole machine's counters, each None where this machine cannot read it."""

    busy_cpu_s: Callable[[], float | None]
    energy_j: Callable[[], float | None] | None = None
    #: What ``energy_j`` reads ("RAPL psys"), or None.
    energy_label: str | None = None
    #: One line for the log: the source, or why there is none.
    about: str = ""


def machine_readers(powercap: str | None = None) -> MachineReaders:
    """This machine's busy CPU (``/proc/stat``) and RAPL energy, where readable."""
    from agent.power.rapl import DEFAULT_ROOT, NodeCpu, find_rapl

    node = NodeCpu()
    found = find_rapl(powercap or DEFAULT_ROOT)
    counter = found.counter
    if counter is None:
        return MachineReaders(node.read, about=f"no measured energy source ({found.reason})")

    def energy_j() -> float | None:
        try:
            return counter.read_j()
        except SensorReadError as exc:
            logger.debug("%s unreadable: %s", counter.label, exc)
            return None

    return MachineReaders(node.read, energy_j, counter.label, f"measured by {counter.label}")


class ProcessCpu:
    """This process's user + system CPU seconds, from a kept-open ``/proc/self/stat``."""

    def __init__(self, path: str = "/proc/self/stat") -> None:
        self._tick = os.sysconf("SC_CLK_TCK")
        try:
            self._fd: int | None = os.open(path, os.O_RDONLY)
        except OSError:
            self._fd = None

    def __call__(self) -> float:
        if self._fd is not None:
            try:
                text = os.pread(self._fd, 4096, 0)
                fields = text[text.rindex(b")") + 2 :].split()
                return (int(fields[11]) + int(fields[12])) / self._tick
            except (OSError, ValueError, IndexError):
                self.close()
        times = os.times()
        return times.user + times.system

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def hour_of(t: float) -> int:
    """The start of ``t``'s hour, in UTC microseconds (the ledger's key)."""
    return int(t // HOUR_S) * int(HOUR_S) * 1_000_000


class Ledger:
    def __init__(
        self,
        meter: PowerMeter,
        origin: str,
        *,
        process_cpu: Callable[[], float] | None = None,
        machine: MachineReaders | None = None,
    ) -> None:
        self.meter = meter
        self.origin = origin
        self._process_cpu = process_cpu or ProcessCpu()
        self._machine = machine
        self._pending: dict[tuple[int, str], _Row] = {}
        self._hour: int | None = None
        self._next_hour_t = float("-inf")
        self._t: float | None = None  # the latest sample time
        self._closed_t: float | None = None  # sample time of the last close
        # Everything the process spent before the ledger began is start-up's.
        self._startup_s: float | None = self._process_cpu()
        self._cpu0 = 0.0  # the first hour's process row includes start-up, as its stages do
        self._busy0 = machine.busy_cpu_s() if machine else None
        self._energy0 = machine.energy_j() if machine and machine.energy_j else None

    @property
    def energy_label(self) -> str | None:
        """The measured energy source of the ``node`` rows ("RAPL psys"), or None."""
        return self._machine.energy_label if self._machine is not None else None

    @property
    def hour_end_t(self) -> float:
        """Where the current hour of sample time ends (-inf before the first sample)."""
        return self._next_hour_t

    def at(self, t: float) -> None:
        """The loop is at sample time ``t``: an hour that ended is closed (in memory)."""
        if self._t is None or t > self._t:
            self._t = t
        if t >= self._next_hour_t:
            if self._hour is not None:
                self._close()
            self._hour = hour_of(t)
            self._next_hour_t = (self._hour / 1_000_000) + HOUR_S
            if self._closed_t is None:
                self._closed_t = t

    def rows(self) -> list[dict[str, Any]]:
        """The rows not yet committed (the current hour closed up to now), to be *added* to
        the table's rows of the same key."""
        if self._hour is not None:
            self._close()
        return [
            {
                "hour_us": hour,
                "origin": self.origin,
                "component": name,
                "cpu_s": row.cpu_s,
                "calls": row.calls,
                "covered_s": row.covered_s,
                "energy_j": row.energy_j,
            }
            for (hour, name), row in sorted(self._pending.items())
        ]

    def written(self) -> None:
        """The rows from ``rows()`` are committed."""
        self._pending.clear()

    def _close(self) -> None:
        """Move what the meter holds, and the totals' growth, into the current hour."""
        hour = self._hour
        assert hour is not None
        for name, cost in self.meter.take().items():
            row = self._row(hour, name)
            row.cpu_s += cost.cpu_s
            row.calls += cost.calls
        if self._startup_s is not None:
            row = self._row(hour, STARTUP)
            row.cpu_s += self._startup_s
            row.calls += 1
            self._startup_s = None
        cpu = self._process_cpu()
        process = self._row(hour, PROCESS)
        process.cpu_s += cpu - self._cpu0
        process.calls += 1
        self._cpu0 = cpu
        covered = 0.0
        if self._t is not None and self._closed_t is not None:
            covered = max(0.0, self._t - self._closed_t)
            self._closed_t = self._t
        process.covered_s = (process.covered_s or 0.0) + covered
        if self._machine is not None:
            self._close_machine(hour, covered)

    def _close_machine(self, hour: int, covered: float) -> None:
        assert self._machine is not None
        node = self._row(hour, NODE)
        node.calls += 1
        node.covered_s = (node.covered_s or 0.0) + covered
        busy = self._machine.busy_cpu_s()
        if busy is not None and self._busy0 is not None:
            node.cpu_s += max(0.0, busy - self._busy0)
        self._busy0 = busy
        if self._machine.energy_j is not None:
            energy = self._machine.energy_j()
            if energy is not None and self._energy0 is not None:
                node.energy_j = (node.energy_j or 0.0) + max(0.0, energy - self._energy0)
            self._energy0 = energy

    def _row(self, hour: int, name: str) -> _Row:
        row = self._pending.get((hour, name))
        if row is None:
            row = self._pending[(hour, name)] = _Row()
        return row
