"""Live samples: sensors polled by APScheduler (trace files are read by runtime/trace.py).

Both hand the loop checked samples in arrival order; live ones are written to the recorder
(if any) in exactly that order, so replaying a recording feeds the pipeline the same samples.
"""

from __future__ import annotations

import ctypes
import logging
import math
import queue
import sys
import threading
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.interval import IntervalTrigger

from agent.clock import Clock
from agent.gate import Rejected, SampleGate
from agent.runtime.poller import Poller
from agent.runtime.timeline import SampleClock
from agent.runtime.trace import LOGGED_PER_REASON, ReadCounts, TraceWriter
from agent.samples import Sample
from agent.sensors.base import Sensor

logger = logging.getLogger(__name__)

#: How often the loop hands the C heap's free pages back to the OS (after start-up, then
#: at this interval: what a wake or a long commit freed).
TRIM_EVERY_S = 3600.0

#: How often the waiting loop reads the clock, so a step of the system clock is seen (and the
#: polls rescheduled) even while no poll runs: a step back would otherwise hold every job
#: back by the step, since the scheduler plans in wall-clock time.
CLOCK_CHECK_S = 10.0

#: The names the threads show in ``top -H`` and ``/proc/<pid>/task/*/comm`` (15 bytes at most;
#: other threads whose Python name starts with ``vigil-`` show that name too).
POLL_THREAD = "vigil-poll"
SCHEDULER_THREAD = "vigil-sched"


class _JobCrashed:
    """A sensor job raised something unexpected: a bug, re-raised in the loop's thread."""

    def __init__(self, exc: BaseException) -> None:
        self.exc = exc


class _Stop:
    """Queued by ``stop()``: wakes the waiting loop at once."""


_STOP = _Stop()


class LiveSource:
    """Polls sensors on their intervals (one APScheduler job each) and yields their samples.

    Iterate it to run; ``stop()`` (from a signal handler, say) ends the iteration after the
    jobs have finished and every queued sample has been yielded. ``duration_s`` stops it by
    itself (``vigil record --seconds N``). The loop sleeps until a sample, a stop or the end
    comes; ``on_idle`` is called at each of those and at least every ``idle_every_s``. The
    daemon pings the systemd watchdog from it, so by default that is half the watchdog's
    ping interval. It also reads the clock at least every ``CLOCK_CHECK_S``: samples are
    stamped by a ``SampleClock``, and a step of the system clock is queued as a ``clock``
    sample and replans the polls.
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
        idle_every_s: float | None = None,
        not_before: float | None = None,
    ) -> None:
        self.sensors = list(sensors)
        self._wall = clock  # what the scheduler plans with
        self._clock = SampleClock(clock, not_before=not_before, on_step=self._stepped)
        self._counts = counts
        self._recorder = recorder
        self._duration_s = duration_s
        self._on_idle = on_idle
        self._idle_every_s = idle_every_s
        self._queue: queue.SimpleQueue[Sample | _JobCrashed | _Stop] = queue.SimpleQueue()
        self._stop = threading.Event()
        self._gate = SampleGate()
        #: Live rejections per reason: the first ``LOGGED_PER_REASON`` are logged as warnings.
        self._rejected_seen: Counter[str] = Counter()
        self.pollers = [
            Poller(s, self._clock, self._queue.put, retry_max_s=retry_max_s) for s in self.sensors
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
        self._queue.put(_STOP)  # SimpleQueue.put is safe in a signal handler

    def _stepped(self, t: float, step_s: float) -> None:
        """The system clock stepped (``SampleClock``): a ``clock`` sample, stored and replayed
        like any other, becomes the ``clock.jump`` event; the loop then replans the polls."""
        self._queue.put(Sample("clock", t, {"step_s": step_s}))

    def _replan(self) -> None:
        """Every poll due now: the scheduler's plan was made on the clock before the step."""
        at = datetime.fromtimestamp(self._wall.now(), tz=UTC)
        for job in self._scheduler.get_jobs():
            job.modify(next_run_time=at)
        self._scheduler.wakeup()

    def _job(self, poller: Poller) -> Callable[[], None]:
        def run() -> None:
            if not getattr(_named, "done", False):  # once per worker thread
                _named.done = True
                set_thread_name(POLL_THREAD)
            try:
                poller.poll()
            except Exception as exc:  # a bug: hand it to the loop, which stops the daemon
                self._queue.put(_JobCrashed(exc))

        return run

    def __iter__(self) -> Iterator[Sample]:
        started = self._clock.monotonic()
        self._clock.now()  # the timeline starts here (and says if the clock is behind memory)
        first_poll = datetime.fromtimestamp(self._wall.now(), tz=UTC)
        for poller in self.pollers:
            self._scheduler.add_job(
                self._job(poller),
                SkipAheadInterval(seconds=poller.sensor.interval_s, timezone=UTC),
                id=poller.sensor.name,
                name=f"poll {poller.sensor.name}",
                next_run_time=first_poll,  # at once, then on the interval
            )
        release_free_memory()  # what start-up freed: about 0.5 MB
        trim_at = started + TRIM_EVERY_S
        self._scheduler.start()
        for thread in threading.enumerate():  # APScheduler's, and the daemon's own
            name = SCHEDULER_THREAD if thread.name == "APScheduler" else thread.name
            if name.startswith("vigil-") and thread.ident is not None:
                set_thread_name(name, thread.ident)
        try:
            while not self._stop.is_set():
                if self._clock.monotonic() >= trim_at:
                    release_free_memory()
                    trim_at = self._clock.monotonic() + TRIM_EVERY_S
                timeout = min(self._idle_every_s or CLOCK_CHECK_S, CLOCK_CHECK_S)
                if self._duration_s is not None:
                    left = self._duration_s - (self._clock.monotonic() - started)
                    if left <= 0:
                        break
                    timeout = left if timeout is None else min(timeout, left)
                try:
                    item = self._queue.get(timeout=timeout)
                except queue.Empty:
                    item = None
                    self._clock.now()  # a step is seen here when no poll is running
                if self._on_idle is not None:
                    self._on_idle()
                if item is not None and not isinstance(item, _Stop):
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
            if not isinstance(item, _Stop):
                yield from self._admit(item)

    def _admit(self, item: Sample | _JobCrashed) -> Iterator[Sample]:
        if isinstance(item, _JobCrashed):
            raise item.exc
        if item.sensor == "clock" and self._scheduler.running:
            self._replan()
        try:
            sample = self._gate.admit(item.sensor, item.t, item.data)
        except Rejected as exc:
            self._counts.rejected[exc.reason] += 1
            self._rejected_seen[exc.reason] += 1
            if self._rejected_seen[exc.reason] <= LOGGED_PER_REASON:
                logger.warning("%s sample rejected (%s): %s", item.sensor, exc.reason, exc.detail)
            else:
                logger.debug("%s sample rejected (%s): %s", item.sensor, exc.reason, exc.detail)
            return
        self._counts.read += 1
        if self._recorder is not None:
            self._recorder.write(sample)
            self._recorder.flush()
        yield sample


class SkipAheadInterval(IntervalTrigger):  # type: ignore[misc]  # APScheduler is untyped
    """A poll's interval that, when the wall clock has run past more than one of its runs
    (a step forward, a suspend), goes on from now. APScheduler's own steps through every
    missed run one by one to find the next: 2.6 million of them after a 30-day step at 1 s,
    seconds of CPU in which nothing is polled."""

    def get_next_fire_time(
        self, previous_fire_time: datetime | None, now: datetime
    ) -> datetime | None:
        if previous_fire_time is not None and now - previous_fire_time > 2 * self.interval:
            missed = math.ceil((now - previous_fire_time) / self.interval)
            previous_fire_time += self.interval * (missed - 1)  # the next run is at or after now
        fire: datetime | None = super().get_next_fire_time(previous_fire_time, now)
        return fire


_named = threading.local()


def set_thread_name(name: str, ident: int | None = None) -> bool:
    """Give a thread (this one, or the one whose ``threading`` ident is ``ident``: a pthread
    handle on Linux) a name the OS shows; Python's thread names stay inside Python. True
    when it took; False where the C library offers no way (not Linux or Android)."""
    if not sys.platform.startswith(("linux", "android")):
        return False  # macOS's pthread_setname_np names only the calling thread
    try:
        libc = ctypes.CDLL(None)
        raw = name.encode()[:15]
        if ident is None:
            done = libc.prctl(15, raw, 0, 0, 0) == 0  # PR_SET_NAME
        else:
            done = libc.pthread_setname_np(ctypes.c_ulong(ident), raw) == 0
    except (OSError, AttributeError):
        return False
    return bool(done)


_malloc_trim: Callable[[int], int] | None = None


def release_free_memory() -> bool:
    """Hand the C heap's free pages back to the OS (glibc's ``malloc_trim``), which otherwise
    keeps them resident. True when it ran; a no-op where the C library has no such call
    (musl, Android's bionic, macOS)."""
    global _malloc_trim
    if _malloc_trim is None:
        try:
            _malloc_trim = ctypes.CDLL(None).malloc_trim
        except (OSError, AttributeError):
            _malloc_trim = _no_trim
    return _malloc_trim(0) >= 0


def _no_trim(_pad: int) -> int:
    return -1
