"""A sample from ``vigil run`` and one from ``vigil replay`` take the same road: each reaches
``Pipeline.feed_chunk`` from ``drive()``, the loop both share (ARCHITECTURE.md, data flow)."""

from __future__ import annotations

import inspect
import os
import signal
import threading
from collections.abc import Sequence
from pathlib import Path

import pytest
from _tools import SYSTEM_SENSOR_ONLY, new_database

from agent import config as config_mod
from agent.clock import SystemClock
from agent.pipeline import Pipeline, Step
from agent.runtime.daemon import run
from agent.runtime.notify import Notifier
from agent.runtime.replay import replay_files
from agent.runtime.trace import TraceWriter
from agent.samples import Sample

CONFIG = (
    """
[daemon]
commit_interval_s = 1.0
[sensors.system]
interval_s = 0.5
"""
    + SYSTEM_SENSOR_ONLY
)


def _roads(monkeypatch: pytest.MonkeyPatch) -> dict[str, list[tuple[str, ...]]]:
    """The functions on the stack each time a sensor's sample reaches the pipeline."""
    seen: dict[str, list[tuple[str, ...]]] = {}
    feed_chunk = Pipeline.feed_chunk

    def spy(self: Pipeline, samples: Sequence[Sample]) -> list[Step]:
        stack = tuple(f.function for f in inspect.stack()[1:8])
        for sample in samples:
            seen.setdefault(sample.sensor, []).append(stack)
        return feed_chunk(self, samples)

    monkeypatch.setattr(Pipeline, "feed_chunk", spy)
    return seen


def test_live_and_replayed_samples_meet_in_the_same_function(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config_path = tmp_path / "config.toml"
    config_path.write_text(CONFIG)
    config = config_mod.load(config_path)
    live = _roads(monkeypatch)
    stop = threading.Timer(3.0, os.kill, (os.getpid(), signal.SIGTERM))
    stop.start()
    try:
        db = new_database(tmp_path / "vigil.db")
        run(config, db, clock=SystemClock(), notifier=Notifier(None))
    finally:
        stop.cancel()
    assert live.get("system"), "the daemon read no system sample in 3 s"
    live_road = set(live["system"])

    trace = tmp_path / "trace.jsonl"
    with TraceWriter(trace, created=0.0, host="test", source="test") as writer:
        for i in range(5):
            writer.write(Sample("system", 1_780_000_000.0 + i, {"cpu_pct": float(i)}))
    monkeypatch.undo()
    replayed = _roads(monkeypatch)
    replay_files([trace], config)
    replay_road = set(replayed["system"])

    # Both arrive from the loop's one function for a part of a chunk, called by drive().
    for road in (live_road, replay_road):
        assert all(stack[:2] == ("_one_part", "drive") for stack in road), road
