"""PowerMeter.stage(name): CPU seconds and calls per stage, on the thread's CPU clock.

Reading a CPU clock is not reading the time of day: nothing here decides anything by it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass


@dataclass
class StageCost:
    cpu_s: float = 0.0
    calls: int = 0


class PowerMeter:
    """Accumulates the CPU time spent inside each named stage."""

    def __init__(self, cpu_time: Callable[[], float] = time.thread_time) -> None:
        self._cpu_time = cpu_time
        self.stages: dict[str, StageCost] = {}

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        start = self._cpu_time()
        try:
            yield
        finally:
            cost = self.stages.setdefault(name, StageCost())
            cost.cpu_s += self._cpu_time() - start
            cost.calls += 1
