"""FakeSensor: a sensor whose readings come from a function, for tests."""

from __future__ import annotations

from collections.abc import Callable

from agent.samples import Sample


class FakeSensor:
    """Calls ``handler(now)`` on each read; the handler may return a Sample, None, or raise."""

    def __init__(
        self, name: str, handler: Callable[[float], Sample | None], interval_s: float = 1.0
    ) -> None:
        self.name = name
        self.interval_s = interval_s
        self._handler = handler
        self.closed = False

    def read(self, now: float) -> Sample | None:
        return self._handler(now)

    def close(self) -> None:
        self.closed = True
