"""The live source: the loop sleeps until a sample, a stop or a due idle call, never polls."""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from agent.clock import SystemClock
from agent.runtime.sources import (
    POLL_THREAD,
    SCHEDULER_THREAD,
    LiveSource,
    SkipAheadInterval,
    release_free_memory,
    set_thread_name,
)
from agent.runtime.trace import ReadCounts
from agent.samples import Sample
from agent.sensors.fake import FakeSensor


def reading(name: str = "system") -> FakeSensor:
    return FakeSensor(name, lambda now: Sample("system", now, {"load1": 1.0}), interval_s=3600.0)


def thread_names() -> set[str]:
    names = set()
    for tid in os.listdir("/proc/self/task"):
        names.add(Path(f"/proc/self/task/{tid}/comm").read_text().strip())
    return names


def first_then_stop(source: LiveSource) -> Iterator[Sample]:
    """The samples of a source stopped from another thread once the first has come."""
    for sample in source:
        yield sample
        threading.Timer(0.2, source.stop).start()


def test_stop_wakes_the_loop_at_once_and_the_polls_are_named(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("WATCHDOG_USEC", raising=False)
    idle: list[int] = []
    sensor = reading()
    source = LiveSource([sensor], SystemClock(), ReadCounts(), on_idle=lambda: idle.append(1))
    seen: list[Sample] = []
    names: set[str] = set()
    done = threading.Event()

    def run() -> None:
        for sample in first_then_stop(source):
            seen.append(sample)
            names.update(thread_names() if sys.platform.startswith("linux") else ())
        done.set()

    worker = threading.Thread(target=run)
    worker.start()
    # Nothing else would wake it for an hour: no watchdog here, so no idle wake-ups either.
    assert done.wait(20.0), "stop() did not wake the loop"
    worker.join()
    assert len(seen) == 1 and sensor.closed
    assert len(idle) == 2  # the sample's wake and the stop's
    if sys.platform.startswith("linux"):
        assert {POLL_THREAD, SCHEDULER_THREAD} <= names


def test_idle_calls_come_at_their_interval_without_samples() -> None:
    idle: list[float] = []
    clock = SystemClock()
    source = LiveSource(
        [FakeSensor("system", lambda now: None, interval_s=3600.0)],
        clock,
        ReadCounts(),
        on_idle=lambda: idle.append(clock.monotonic()),
        idle_every_s=0.2,
        duration_s=1.5,
    )
    assert list(source) == []
    assert 4 <= len(idle) <= 10


def test_the_daemon_looks_in_twice_per_watchdog_interval(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from agent.runtime.daemon import _Watchdog
    from agent.runtime.notify import Notifier

    monkeypatch.setenv("WATCHDOG_USEC", "30000000")
    monkeypatch.delenv("WATCHDOG_PID", raising=False)
    assert _Watchdog(Notifier.from_environ(), SystemClock()).every_s == 7.5
    monkeypatch.delenv("WATCHDOG_USEC")
    assert _Watchdog(Notifier.from_environ(), SystemClock()).every_s is None


def test_duration_ends_a_recording_without_idle_calls() -> None:
    clock = SystemClock()
    start = clock.monotonic()
    source = LiveSource([reading()], clock, ReadCounts(), duration_s=0.5)
    assert len(list(source)) == 1
    assert 0.5 <= clock.monotonic() - start < 10.0


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc and prctl are Linux's")
def test_thread_names_and_the_heap_trim_work_here() -> None:
    names: list[str] = []

    def named() -> None:
        set_thread_name("vigil-test-name-too-long")  # cut to the kernel's 15 bytes
        names.append(Path(f"/proc/self/task/{threading.get_native_id()}/comm").read_text())

    thread = threading.Thread(target=named)
    thread.start()
    thread.join()
    assert names == ["vigil-test-name\n"]
    try:
        glibc = bool(os.confstr("CS_GNU_LIBC_VERSION"))
    except (ValueError, OSError):
        glibc = False  # musl: no malloc_trim, and nothing to trim
    assert release_free_memory() == glibc


def test_the_poll_interval_goes_on_from_now_after_the_clock_ran_far_ahead() -> None:
    trigger = SkipAheadInterval(seconds=1.0, timezone=UTC)
    before = datetime(2026, 1, 1, tzinfo=UTC)
    assert trigger.get_next_fire_time(before, before + timedelta(seconds=1.5)) == before + (
        timedelta(seconds=1)  # on time: the next run on the interval, as APScheduler's
    )
    after_step = before + timedelta(days=30, milliseconds=400)
    fire = trigger.get_next_fire_time(before, after_step)
    assert after_step <= fire <= after_step + timedelta(seconds=1)


def test_a_scheduler_far_behind_the_clock_polls_at_once() -> None:
    """The real scheduler with a job last due three years ago (a step forward, a long
    suspend): APScheduler's own interval lists every missed run first (about 95 million at
    1 s), and nothing is polled for minutes."""
    from apscheduler.schedulers.background import BackgroundScheduler

    ran = threading.Event()
    scheduler = BackgroundScheduler(timezone="UTC")
    due = datetime.now(UTC) - timedelta(days=3 * 365)
    scheduler.add_job(
        ran.set,
        SkipAheadInterval(seconds=1.0, timezone=UTC),
        next_run_time=due,
        misfire_grace_time=None,
        coalesce=True,
    )
    scheduler.start()
    try:
        assert ran.wait(timeout=60)
    finally:
        scheduler.shutdown(wait=False)
