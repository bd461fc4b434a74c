"""One sensor's polling job: read it, and turn outages into ``status`` samples.

A sensor that raises ``SensorUnavailable`` is marked down once (a WARNING and a status
sample), then retried with exponential backoff up to ``retry_max_s``; its first good reading
marks it up again. ``SensorReadError`` skips one reading: counted in ``skipped``, the first
logged at WARNING, the rest at DEBUG. The job decides nothing else; any other exception is
a bug and propagates.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from agent.clock import Clock
from agent.errors import SensorReadError, SensorUnavailable
from agent.samples import Sample
from agent.sensors.base import Sensor

logger = logging.getLogger(__name__)


class Poller:
    def __init__(
        self,
        sensor: Sensor,
        clock: Clock,
        emit: Callable[[Sample], None],
        *,
        retry_max_s: float = 600.0,
    ) -> None:
        self.sensor = sensor
        self._clock = clock
        self._emit = emit
        self._retry_max_s = retry_max_s
        self.down = False
        self._backoff_s = 0.0
        self._retry_at = 0.0
        #: Readings skipped (``SensorReadError``).
        self.skipped = 0

    def poll(self) -> None:
        if self.down and self._clock.monotonic() < self._retry_at:
            return
        now = round(self._clock.now(), 6)  # whole microseconds: what the database keeps
        try:
            sample = self.sensor.read(now)
        except SensorUnavailable as exc:
            self._went_down(now, exc.reason)
            return
        except SensorReadError as exc:
            self.skipped += 1
            if self.skipped == 1:
                logger.warning("%s; reading skipped (the next ones are logged at DEBUG)", exc)
            else:
                logger.debug("%s (%d readings skipped)", exc, self.skipped)
            return
        if self.down:
            self.down, self._backoff_s = False, 0.0
            logger.warning("sensor %s is back", self.sensor.name)
            self._emit(Sample("status", now, {"of": self.sensor.name, "state": "up"}))
        if sample is not None:
            self._emit(sample)

    def _went_down(self, now: float, reason: str) -> None:
        self._backoff_s = min(max(self.sensor.interval_s, self._backoff_s * 2), self._retry_max_s)
        self._retry_at = self._clock.monotonic() + self._backoff_s
        if self.down:
            logger.debug("sensor %s still down: %s", self.sensor.name, reason)
            return
        self.down = True
        logger.warning(
            "sensor %s down: %s (retrying, at most every %.0f s)",
            self.sensor.name,
            reason,
            self._retry_max_s,
        )
        self._emit(
            Sample("status", now, {"of": self.sensor.name, "state": "down", "reason": reason})
        )
