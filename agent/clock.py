"""The only module that reads or waits on time. Everything else is told the time."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Protocol


class Clock(Protocol):
    def now(self) -> float:
        """UNIX seconds, UTC: the time a sensor reading is taken."""
        ...

    def monotonic(self) -> float:
        """Seconds on a clock that never steps and counts suspend, for intervals (watchdog,
        backoff) and for telling a step of ``now`` from time passing."""
        ...


class SystemClock:
    """The machine's clocks."""

    def now(self) -> float:
        return time.time()

    def monotonic(self) -> float:
        # CLOCK_BOOTTIME counts suspend, so a laptop's sleep is not mistaken for a step of the
        # system clock (``runtime/timeline.py``); Linux and Android have it.
        return time.clock_gettime(_BOOTTIME) if _BOOTTIME is not None else time.monotonic()


_BOOTTIME: int | None = getattr(time, "CLOCK_BOOTTIME", None)


def sleep(seconds: float) -> None:
    """Wait; the daemon's only pause outside blocking queue reads."""
    time.sleep(seconds)


def let_others_run() -> None:
    """Hand the interpreter lock to any thread waiting for it. A loop of many short numpy
    calls (each drops and retakes the lock) can starve other threads for as long as it runs:
    CPython's waiter sees the lock change hands and never asks for its turn."""
    try:
        time.sleep(0)
    except OSError:  # a sleep of zero refused (libfaketime's): no turn given, no harm
        pass


def iso_utc(t: float) -> str:
    """Sample time ``t`` as people read it: ``2026-06-01T14:07:00Z``."""
    return datetime.fromtimestamp(t, tz=UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
