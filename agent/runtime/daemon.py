"""run(): the daemon. Upgrade the database, poll sensors, drive the loop, stop cleanly.

SIGTERM and SIGINT stop it gracefully: running polls finish, queued samples are stored, the
last batch is committed, and it exits 0. systemd is told READY once polling has started and
gets WATCHDOG pings while the loop is alive.
"""

from __future__ import annotations

import logging
import signal
import socket
from collections.abc import Iterable, Iterator
from pathlib import Path
from types import FrameType

from sqlalchemy import Engine

from agent.clock import Clock, iso_utc
from agent.config import Config, missing_default_rules
from agent.escalation.backends import make_backend
from agent.escalation.escalator import Escalator
from agent.memory.db import WriterLock, open_engine, upgrade
from agent.memory.fences import FenceStore
from agent.memory.store import MemoryStore
from agent.memory.wakes import WakeStore
from agent.platform import is_termux
from agent.power.ledger import Ledger, machine_readers
from agent.power.meter import MeteredSensor, PowerMeter
from agent.runtime.fence_watch import FenceWatcher, load_fences
from agent.runtime.loop import DriveStats, drive
from agent.runtime.notify import Notifier
from agent.runtime.setup import build_pipeline
from agent.runtime.sources import LiveSource
from agent.runtime.trace import ReadCounts, TraceWriter, new_recording_path, recording_zone
from agent.samples import Sample
from agent.sensors import plan_sensors
from agent.sensors.base import Sensor

logger = logging.getLogger(__name__)


class _Watchdog:
    def __init__(self, notifier: Notifier, clock: Clock) -> None:
        self._notifier = notifier
        self._clock = clock
        self._interval_s = notifier.watchdog_interval_s()
        self._last = clock.monotonic()

    @property
    def every_s(self) -> float | None:
        """How often the loop must look in: twice per watchdog interval, or never."""
        return None if self._interval_s is None else self._interval_s / 2

    def tick(self) -> None:
        if self._interval_s is None:
            return
        now = self._clock.monotonic()
        if now - self._last >= self._interval_s:
            self._notifier.watchdog()
            self._last = now


def _counted(samples: Iterable[Sample], counts: ReadCounts, store: MemoryStore) -> Iterator[Sample]:
    """Move rejection counts into the store as they happen, so they commit with the batch."""
    for sample in samples:
        if counts.rejected:
            store.count_all(counts.rejected, prefix="rejected.")
            counts.rejected.clear()
        yield sample


def run(
    config: Config,
    db_target: str | Path,
    *,
    clock: Clock,
    notifier: Notifier,
    record: Path | None = None,
) -> DriveStats:
    """Run until SIGTERM/SIGINT. Returns what was driven; raises on a bug."""
    engine = open_engine(db_target)
    lock = WriterLock(str(engine.url.database))
    lock.acquire()
    try:
        return _run(config, engine, clock=clock, notifier=notifier, record=record)
    finally:
        lock.release()


class _Signals:
    """SIGTERM/SIGINT stop the daemon and SIGHUP reloads the fences, from the first moment of
    start-up: a signal that comes before the loop runs is kept and acted on once it does
    (Python's default would kill the process halfway through its start)."""

    def __init__(self, notifier: Notifier) -> None:
        self.notifier = notifier
        self.stop_requested = False
        self.source: LiveSource | None = None
        self.fences: FenceWatcher | None = None

    def on_stop(self, signum: int, _frame: FrameType | None) -> None:
        logger.info("%s received: stopping", signal.Signals(signum).name)
        self.notifier.stopping()
        self.stop_requested = True
        if self.source is not None:
            self.source.stop()

    def on_hup(self, _signum: int, _frame: FrameType | None) -> None:
        logger.info("SIGHUP received: reloading fences")
        if self.fences is not None:
            self.fences.request()


def _run(
    config: Config,
    engine: Engine,
    *,
    clock: Clock,
    notifier: Notifier,
    record: Path | None,
) -> DriveStats:
    signals = _Signals(notifier)
    previous = {s: signal.signal(s, signals.on_stop) for s in (signal.SIGTERM, signal.SIGINT)}
    previous[signal.SIGHUP] = signal.signal(signal.SIGHUP, signals.on_hup)
    try:
        return _serve(
            config, engine, clock=clock, notifier=notifier, record=record, signals=signals
        )
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _serve(
    config: Config,
    engine: Engine,
    *,
    clock: Clock,
    notifier: Notifier,
    record: Path | None,
    signals: _Signals,
) -> DriveStats:
    upgrade(engine)
    store = MemoryStore(
        engine,
        commit_interval_s=config.daemon.commit_interval_s,
        retention_s=config.daemon.retention_days * 86_400.0,
    )
    store.commit_spill()  # what the last stop could not write (a full disk)
    plans = plan_sensors(config, termux=is_termux())
    meter = PowerMeter()
    sensors: list[Sensor] = [MeteredSensor(p.sensor, meter) for p in plans if p.sensor]
    for plan in plans:  # one line per sensor: which source it uses, or why it is off
        state = "on" if plan.sensor is not None else "off"
        logger.info("sensor %s %s: %s", plan.name, state, plan.reason)
    counts = ReadCounts()
    if record is not None and (free := new_recording_path(record)) != record:
        logger.warning("%s exists and is kept: this run records into %s", record, free)
        record = free
    recorder = (
        TraceWriter(
            record,
            created=clock.now(),
            host=socket.gethostname(),
            source="vigil run",
            timezone=recording_zone(config),
        )
        if record is not None
        else None
    )
    fence_store = FenceStore(engine)
    pipeline = build_pipeline(config, load_fences(fence_store))
    dropped = pipeline.restore(store.load_state())
    for part in dropped:
        store.count(f"state.dropped.{part}")
    store.attach_state(pipeline.snapshot)
    newest = store.newest_sample_t()
    if newest is None:
        logger.info("a new memory: nothing stored yet")
    else:
        lost = f" (started afresh: {', '.join(dropped)})" if dropped else ""
        logger.info(
            "resuming: the memory's newest sample is from %s; its stages' state restored%s",
            iso_utc(newest),
            lost,
        )
    fences = FenceWatcher(fence_store, pipeline, check_every_s=config.daemon.commit_interval_s)
    backend, about = make_backend(config.escalation, clock)
    logger.info("larger model: %s", about)
    missing = [r.name for r in missing_default_rules(config.rules)]
    if missing:
        logger.info(
            "the config's rules leave out the default %s (vigil init --add-rules adds them)",
            ", ".join(missing),
        )
    wakes = WakeStore(engine)
    store.record_events(wakes.lost_events())  # a kill between a wake and its event's commit
    interrupted = wakes.close_interrupted()  # this daemon is the only writer
    if interrupted:
        logger.warning("%d wake(s) cut short by the last stop marked stopped", interrupted)
    escalator = Escalator(config.escalation, store, backend, origin="daemon", background=True)
    watchdog = _Watchdog(notifier, clock)
    source = LiveSource(
        sensors,
        clock,
        counts,
        recorder=recorder,
        misfire_grace_s=config.daemon.misfire_grace_s,
        retry_max_s=config.daemon.retry_max_s,
        on_idle=watchdog.tick,
        idle_every_s=watchdog.every_s,
        not_before=newest,  # sample time never goes back, across restarts
    )

    signals.source, signals.fences = source, fences
    if signals.stop_requested:  # asked to stop while starting: stop as soon as the loop runs
        source.stop()
    logger.info(
        "vigil running: %s; database %s",
        ", ".join(f"{s.name} every {s.interval_s:g} s" for s in sensors) or "no sensors",
        engine.url.database,
    )
    machine = machine_readers()
    logger.info("energy: %s", machine.about)
    ledger = Ledger(meter, "daemon", machine=machine)
    notifier.ready()
    stats = DriveStats()
    try:
        stats = drive(
            ([sample] for sample in fences.watch(_counted(source, counts, store))),
            pipeline=pipeline,
            store=store,
            ledger=ledger,
            on_event=lambda e: logger.info("event %s %s at %s", e.kind, e.subject, iso_utc(e.t)),
            escalator=escalator,
        )
    finally:
        store.record_events(escalator.close())
        store.count_all(counts.rejected, prefix="rejected.")
        store.close()
        if recorder is not None:
            recorder.close()
    logger.info("vigil stopped: %d samples, %d events stored", stats.samples, stats.events)
    return stats
