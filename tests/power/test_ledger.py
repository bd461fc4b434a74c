"""The ledger against known CPU burns, and the process's own CPU from /proc."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from agent.config import Config
from agent.detect.tflite import load_model
from agent.memory import schema
from agent.memory.db import open_engine, upgrade
from agent.memory.store import MemoryStore
from agent.pipeline import Pipeline
from agent.power.ledger import PROCESS, STARTUP, Ledger, ProcessCpu, hour_of
from agent.power.meter import METERING, MeteredSensor, PowerMeter
from agent.runtime.loop import drive
from agent.samples import Sample

T0 = 1_780_000_000.0


def burn(cpu_s: float) -> None:
    """Spin until this thread has used ``cpu_s`` more CPU seconds."""
    end = time.thread_time() + cpu_s
    while time.thread_time() < end:
        pass


def test_laps_charge_each_stage_its_burn() -> None:
    meter = PowerMeter()
    meter.skip()
    for _ in range(5):
        burn(0.010)
        meter.lap("a")
        burn(0.030)
        meter.lap("b")
    taken = meter.take()
    assert taken["a"].cpu_s == pytest.approx(0.050, rel=0.05)
    assert taken["b"].cpu_s == pytest.approx(0.150, rel=0.05)
    assert taken["a"].calls == taken["b"].calls == 5
    assert taken[METERING].calls == 10
    assert 0 < taken[METERING].cpu_s < 0.001
    assert meter.take() == {}  # taken once


class Clocks:
    """A CPU clock and a wall clock the test moves (the meter's arithmetic, exactly)."""

    def __init__(self) -> None:
        self.cpu_s = self.wall_s = 0.0

    def cpu(self) -> float:
        return self.cpu_s

    def wall(self) -> float:
        return self.wall_s

    def at(self, cpu_s: float, wall_s: float) -> None:
        self.cpu_s, self.wall_s = cpu_s, wall_s


def test_splits_share_their_interval_by_wall_time_and_plain_laps_stay_exact() -> None:
    clocks = Clocks()
    meter = PowerMeter(cpu_time=clocks.cpu, wall_time=clocks.wall)
    clocks.at(1.0, 10.0)
    meter.lap("source", calls=2)  # no split before: its CPU as read
    clocks.at(1.0, 11.0)
    meter.split("a", calls=2)
    clocks.at(1.0, 14.0)
    meter.split("b", calls=2)
    clocks.at(3.5, 15.0)  # 5 s of wall, 2.5 s of CPU: the thread was preempted half the time
    meter.lap("c", calls=2)
    clocks.at(4.0, 20.0)  # a lap with no split since the last: exact, whatever the wall
    meter.lap("source")
    taken = meter.take()
    assert taken["source"].cpu_s == pytest.approx(1.5)
    assert taken["a"].cpu_s == pytest.approx(0.5)  # 1 s of the interval's 5
    assert taken["b"].cpu_s == pytest.approx(1.5)
    assert taken["c"].cpu_s == pytest.approx(0.5)
    assert (taken["a"].calls, taken["b"].calls, taken["c"].calls) == (2, 2, 2)
    assert taken[METERING].calls == 5  # three laps, two splits


def test_a_take_between_a_split_and_a_lap_leaves_the_rest_to_the_lap() -> None:
    clocks = Clocks()
    meter = PowerMeter(cpu_time=clocks.cpu, wall_time=clocks.wall)
    clocks.at(2.0, 2.0)
    meter.split("a")
    clocks.at(4.0, 4.0)
    first = meter.take()  # the CPU up to the split is a's; the rest, the next lap's
    clocks.at(5.0, 5.0)
    meter.lap("b")
    second = meter.take()
    assert first["a"].cpu_s == pytest.approx(2.0)
    assert "b" not in first
    assert second["b"].cpu_s == pytest.approx(3.0)
    assert "a" not in second


def test_splits_and_laps_charge_the_thread_its_whole_burn() -> None:
    meter = PowerMeter()
    meter.skip()
    for _ in range(5):
        burn(0.010)
        meter.split("a")
        burn(0.030)
        meter.split("b")
        burn(0.010)
        meter.lap("c")
    taken = meter.take()
    # Each stage's share is its wall time's, which a busy machine's preemption moves; the
    # total is the thread's CPU clock's.
    charged = sum(taken[name].cpu_s for name in "abc")
    assert charged == pytest.approx(0.250, rel=0.05)
    assert all(taken[name].cpu_s > 0 for name in "abc")
    assert taken["b"].calls == 5
    assert taken[METERING].calls == 15


class BurningSensor:
    """A sensor whose read burns a known amount of CPU on the polling thread."""

    name = "burner"
    interval_s = 1.0

    def __init__(self, cpu_s: float) -> None:
        self.cpu_s = cpu_s

    def read(self, now: float) -> Sample | None:
        burn(self.cpu_s)
        return Sample("system", now, {"cpu_pct": 1.0})

    def close(self) -> None:
        pass


def test_another_threads_reads_are_charged_to_their_sensor() -> None:
    meter = PowerMeter()
    sensor = MeteredSensor(BurningSensor(0.020), meter)

    def poll() -> None:
        for i in range(10):
            sensor.read(T0 + i)

    thread = threading.Thread(target=poll)
    thread.start()
    thread.join()
    taken = meter.take()
    assert taken["sensor.burner"].cpu_s == pytest.approx(0.200, rel=0.05)
    assert taken["sensor.burner"].calls == 10


def test_the_ledger_adds_up_to_the_process_cpu_from_proc(tmp_path: Path) -> None:
    engine = open_engine(tmp_path / "v.db")
    upgrade(engine)
    store = MemoryStore(engine, commit_interval_s=None, max_batch=10_000)
    pipeline = Pipeline(Config(), model=load_model("tiny"))
    proc = ProcessCpu()
    before = proc()
    ledger = Ledger(PowerMeter(), "replay", process_cpu=proc)

    def samples() -> Iterator[Sample]:  # 2 ms of CPU to produce each sample: the "trace"
        for i in range(400):
            burn(0.002)
            yield Sample("system", T0 + 10 * i, {"cpu_pct": 20.0 + i % 7, "mem_pct": 40.0})

    drive(([s] for s in samples()), pipeline=pipeline, store=store, ledger=ledger, source="trace")
    store.close()
    after = proc()
    with engine.connect() as conn:
        rows = [dict(r._mapping) for r in conn.execute(select(schema.power_ledger))]
    engine.dispose()
    totals: dict[str, float] = {}
    for row in rows:
        totals[row["component"]] = totals.get(row["component"], 0.0) + row["cpu_s"]
    assert {r["origin"] for r in rows} == {"replay"}
    assert {r["hour_us"] for r in rows} == {hour_of(T0 + 10 * i) for i in range(0, 400, 50)}
    assert totals["trace"] == pytest.approx(0.800, rel=0.05)
    for stage in ("features", "anomaly", "tiny_model", "triggers", "storage", METERING):
        assert totals[stage] > 0, stage
    # The process row is the /proc figure: start-up (all before the ledger) plus the run.
    assert totals[PROCESS] == pytest.approx(after, abs=0.03)
    assert totals[STARTUP] == pytest.approx(before, abs=0.03)
    stages = sum(v for k, v in totals.items() if k != PROCESS)
    unattributed = totals[PROCESS] - stages
    # /proc counts in 10 ms ticks; what the stages miss is small and never negative.
    assert -0.03 <= unattributed <= 0.05 + 0.05 * totals[PROCESS]
    covered = sum(r["covered_s"] for r in rows if r["component"] == PROCESS)
    assert covered == pytest.approx(10 * 399)


#: Run in a fresh interpreter, where no other thread of a test suite can spend CPU.
ONE_THREAD = """
import json, os, threading, time
from agent.detect.tflite import load_model  # vigil first, as its command does
import numpy as np
model = load_model("tiny")
windows = model.scale(np.random.default_rng(1).normal(size=(2048, model.window)))
model.infer(windows)
tasks = len(os.listdir("/proc/self/task"))
process0, thread0 = time.process_time(), time.thread_time()
for _ in range(1500):
    model.infer(windows)
print(json.dumps({"process": time.process_time() - process0,
                  "thread": time.thread_time() - thread0,
                  "tasks": [tasks, len(os.listdir("/proc/self/task"))]}))
"""


def test_the_tiny_model_works_on_the_calling_thread_alone() -> None:
    """No library pool does the model's work out of the meter's sight: the process's CPU
    during many calls is the calling thread's, and no thread is started for it."""
    out = subprocess.run(
        [sys.executable, "-c", ONE_THREAD], capture_output=True, text=True, check=True
    ).stdout
    found = json.loads(out.splitlines()[-1])
    assert found["thread"] > 0.05
    assert found["process"] == pytest.approx(found["thread"], rel=0.05, abs=0.01)
    assert found["tasks"][0] == found["tasks"][1]


def test_a_refused_commit_keeps_the_ledger_rows_for_the_next(tmp_path: Path) -> None:
    path = tmp_path / "v.db"
    engine = open_engine(path, busy_timeout_s=0.05)
    upgrade(engine)
    store = MemoryStore(engine, commit_interval_s=None)
    meter = PowerMeter()
    ledger = Ledger(meter, "daemon", process_cpu=lambda: 1.0)
    store.attach_ledger(ledger)
    ledger.at(T0)
    meter.add("sensor.x", 0.5)
    store.record(Sample("system", T0, {"cpu_pct": 1.0}))
    blocker = sqlite3.connect(path)
    blocker.execute("BEGIN EXCLUSIVE")
    assert not store.try_flush()
    blocker.rollback()
    blocker.close()
    meter.add("sensor.x", 0.25)
    ledger.at(T0 + 5)
    store.record(Sample("system", T0 + 5, {"cpu_pct": 1.0}))
    assert store.try_flush()
    store.close()
    with engine.connect() as conn:
        rows = {r.component: r for r in conn.execute(select(schema.power_ledger))}
    assert rows["sensor.x"].cpu_s == pytest.approx(0.75)
    assert rows["sensor.x"].calls == 2
    assert rows[PROCESS].cpu_s == pytest.approx(1.0)  # the total at start-up, counted once
    assert rows[PROCESS].covered_s == pytest.approx(5.0)
