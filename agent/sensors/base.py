"""The Sensor protocol: the only code that touches the OS for input implements it."""

from __future__ import annotations

from typing import Protocol

from agent.samples import Sample


class Sensor(Protocol):
    """Produces Samples when polled.

    ``read`` is given the time by the caller and stamps the sample with it; it must not ask
    the clock itself. Raise ``SensorUnavailable`` for problems that last (the runtime marks
    the sensor down and retries with backoff) and ``SensorReadError`` for one failed reading;
    return None when there is simply nothing new.
    """

    name: str
    interval_s: float

    def read(self, now: float) -> Sample | None: ...

    def close(self) -> None: ...
