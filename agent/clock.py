"""The only module that reads or waits on time. Everything else is told the time."""

from __future__ import annotations

import time
from typing import Protocol


class Clock(Protocol):
    def now(self) -> float:
        """UNIX seconds, UTC: the time a sensor reading is taken."""
        ...

    def monotonic(self) -> float:
        """Seconds on a clock that never jumps, for intervals (watchdog, backoff)."""
        ...


class SystemClock:
    """The machine's clocks."""

    def now(self) -> float:
        return time.time()

    def monotonic(self) -> float:
        return time.monotonic()


def sleep(seconds: float) -> None:
    """Wait; the daemon's only pause outside blocking queue reads."""
    time.sleep(seconds)
