"""Live samples: sensors polled by APScheduler (trace files are read by runtime/trace.py).

Both hand the loop checked samples in arrival order; live ones are written to the recorder
(if any) in exactly that order, so replaying a recording feeds the pipeline the same samples.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler

from agent.clock import Clock
from agent.gate import Rejected, SampleGate
from agent.runtime.poller import Poller
from agent.runtime.trace import ReadCounts, TraceWriter
from agent.samples import Sample
from agent.sensors.base import Sensor

logger = logging.getLogger(__name__)

#: How often the waiting loop wakes to check for a stop or a due watchdog ping.
_WAKE_S = 0.5


class _JobCrashed:
    """A sensor job raised something unexpected: a bug, re-raised in the loop's thread."""

    def __init__(self, exc: BaseException) -> None:
        self.exc = exc


class LiveSource:
    """Polls sensors on their intervals (one APScheduler job each) and yields their samples.

    Iterate it to run; ``stop()`` (from a signal handler, say) ends the iteration after the
    jobs have finished and every queued sample has been yielded. ``duration_s`` stops it by
    itself (``vigil record --seconds N``). ``on_idle`` is called at least every half second
    (the daemon pings the systemd watchdog from it).
    """

    def __init__(
        self,
        sensors: Sequence[Sensor],
        clock: Clock,
        counts: ReadCounts,
        *,
        recorder: TraceWriter | None = None,
        misfire_grace_s: float = 30.0,
        retry_max_s: float = 600.0,
        duration_s: float | None = None,
        on_idle: Callable[[], None] | None = None,
    ) -> None:
        self.sensors = list(sensors)
        self._clock = clock
        self._counts = counts
        self._recorder = recorder
        self._duration_s = duration_s
        self._on_idle = on_idle
        self._queue: queue.SimpleQueue[Sample | _JobCrashed] = queue.SimpleQueue()
        self._stop = threading.Event()
        self._gate = SampleGate()
        self.pollers = [
            Poller(s, clock, self._queue.put, retry_max_s=retry_max_s) for s in self.sensors
        ]
        workers = max(1, min(len(self.sensors), 4))
        self._scheduler = BackgroundScheduler(
            executors={"default": ThreadPoolExecutor(workers)},
            job_defaults={
                "coalesce": True,
                "max_instances": 1,
                "misfire_grace_time": max(1, round(misfire_grace_s)),
            },
            timezone="UTC",
        )

    def stop(self) -> None:
        self._stop.set()

    def _job(self, poller: Poller) -> Callable[[], None]:
        def run() -> None:
            try:
                poller.poll()
            except Exception as exc:  # a bug: hand it to the loop, which stops the daemon
                self._queue.put(_JobCrashed(exc))

        return run

    def __iter__(self) -> Iterator[Sample]:
        started = self._clock.monotonic()
        first_poll = datetime.fromtimestamp(self._clock.now(), tz=UTC)
        for poller in self.pollers:
            self._scheduler.add_job(
                self._job(poller),
                "interval",
                seconds=poller.sensor.interval_s,
                id=poller.sensor.name,
                name=f"poll {poller.sensor.name}",
                next_run_time=first_poll,  # at once, then on the interval
            )
        self._scheduler.start()
        try:
            while not self._stop.is_set():
                if self._duration_s is not None:
                    if self._clock.monotonic() - started >= self._duration_s:
                        break
                try:
                    item = self._queue.get(timeout=_WAKE_S)
                except queue.Empty:
                    item = None
                if self._on_idle is not None:
                    self._on_idle()
                if item is not None:
                    yield from self._admit(item)
        finally:
            self._scheduler.shutdown(wait=True)  # let running polls finish...
            for sensor in self.sensors:
                sensor.close()
        while True:  # ...and hand on what they produced
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            yield from self._admit(item)

    def _admit(self, item: Sample | _JobCrashed) -> Iterator[Sample]:
        if isinstance(item, _JobCrashed):
            raise item.exc
        try:
            sample = self._gate.admit(item.sensor, item.t, item.data)
        except Rejected as exc:
            self._counts.rejected[exc.reason] += 1
            logger.warning("%s sample rejected (%s): %s", item.sensor, exc.reason, exc.detail)
            return
        self._counts.read += 1
        if self._recorder is not None:
            self._recorder.write(sample)
            self._recorder.flush()
        yield sample
