"""The pipeline takes samples in chunks (replay: thousands; the live daemon: one): the events,
and every score, are the same whatever the chunk size."""

from __future__ import annotations

import dataclasses
import math
import random
from collections.abc import Sequence
from pathlib import Path

import pytest

from agent.config import Config
from agent.demo import write_synthetic_trace
from agent.detect.tflite import load_or_explain
from agent.pipeline import Pipeline, Step
from agent.runtime.trace import ReadCounts, read_trace
from agent.samples import Sample


class Run(list[Step]):
    """A run's steps, and the anomaly stage's saved state after it."""

    saved: object = None


def _run(samples: Sequence[Sample], config: Config, chunk: int) -> Run:
    model = load_or_explain()
    assert model is not None  # LiteRT is installed for the tests: never skip
    pipeline = Pipeline(config, (), model, keep_scores=True)
    steps = Run()
    for i in range(0, len(samples), chunk):
        steps += pipeline.feed_chunk(samples[i : i + chunk])
    assert pipeline.anomaly is not None
    steps.saved = (pipeline.anomaly.state(), pipeline.anomaly.history_state())
    return steps


def _same(a: Run, b: Run) -> None:
    """The same events and scores, and the same state to save (what a restart resumes)."""
    assert [s.events for s in a] == [s.events for s in b]
    assert [(s.node, s.scores, s.tiny) for s in a] == [(s.node, s.scores, s.tiny) for s in b]
    assert a.saved == b.saved


@pytest.fixture(scope="module")
def day(tmp_path_factory: pytest.TempPathFactory) -> list[Sample]:
    trace = tmp_path_factory.mktemp("day") / "day.jsonl.gz"
    write_synthetic_trace(trace)
    return list(read_trace([trace], ReadCounts()))


def test_the_demo_day_in_chunks_of_1_7_and_4096(day: list[Sample]) -> None:
    one = _run(day, Config(), 1)
    assert sum(len(s.tiny) for s in one) > 10_000  # the model really scored
    assert any(e.kind == "anomaly.start" for s in one for e in s.events)
    _same(one, _run(day, Config(), 7))
    _same(one, _run(day, Config(), 4096))


def test_streams_that_come_and_go_in_chunks(tmp_path: Path) -> None:
    """Interfaces renamed every few hours, coming back after they were dropped as gone (the
    hourly sweep falls inside chunks)."""
    rng = random.Random(5)
    samples = []
    for i in range(3 * 24 * 60):  # three days, a sample a minute
        t = 1_780_272_000.0 + 60.0 * i
        iface = f"veth{(i // 240) % 12}"  # a new name every 4 h; names come back after 2 days
        data = {"cpu_pct": 20 + 10 * rng.random(), f"net.{iface}.rx_Bps": 1000 * rng.random()}
        if i % 500 == 0:
            data["cpu_pct"] = 400.0  # a burst now and then: episodes across chunk edges
        samples.append(Sample("system", t, data))
    config = Config()
    config = dataclasses.replace(
        config, anomaly=dataclasses.replace(config.anomaly, history_s=86_400.0)
    )
    one = _run(samples, config, 1)
    assert any(e.kind == "anomaly.start" for s in one for e in s.events)
    _same(one, _run(samples, config, 7))
    _same(one, _run(samples, config, 4096))


def test_without_the_kernel_the_same_events(
    day: list[Sample], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Where the C kernel could not be compiled (a phone without clang), the Python reference
    of the same loop gives the same events and scores."""
    from agent.detect import novelty
    from agent.detect.anomaly import codec, stage

    fast = _run(day, Config(), 4096)
    monkeypatch.setattr(novelty, "_ranks", None)
    monkeypatch.setattr(stage, "ValueHistory", novelty.ReferenceHistory)
    monkeypatch.setattr(codec, "ValueHistory", novelty.ReferenceHistory)
    slow = _run(day, Config(), 4096)
    assert any(e.kind == "anomaly.start" for s in fast for e in s.events)
    _same(fast, slow)


def _co_moving_source(days: float = 2.0) -> list[Sample]:
    """Six system streams driven by one load (a sample a minute), one of them turning against
    the others on the second day, then two frozen; new interfaces join on the way."""
    rng = random.Random(11)
    samples = []
    for i in range(int(days * 1440)):
        load = 50.0 + 30.0 * math.sin(2 * math.pi * i / 300) + rng.gauss(0.0, 2.0)
        data = {f"m{k}": (k + 1) * load + rng.gauss(0.0, 1.0 + k) for k in range(6)}
        if 2400 <= i < 2460:
            data["m2"] = 3.0 * (100.0 - load) + rng.gauss(0.0, 3.0)  # down when the rest go up
        if 2600 <= i < 2660:  # two streams frozen at their last values (across chunks)
            data["m4"], data["m5"] = samples[2599].data["m4"], samples[2599].data["m5"]
        if i % 97 == 0:
            del data["m1"]  # a stream missing now and then: its last value is from before
        if i >= 2000:
            data[f"net.veth{i // 300}.rx_Bps"] = 100.0 * rng.random()
        samples.append(Sample("system", 1_780_272_000.0 + 60.0 * i, data))
    return samples


def test_co_movement_in_chunks_of_1_7_and_4096() -> None:
    """The co-movement model (on by default) folds at fixed points of sample time and takes
    new streams only then, and a frozen reading is compared with the stream's last value
    whichever chunk that came in: the same scores whatever the chunks."""
    samples = _co_moving_source()
    one = _run(samples, Config(), 1)
    starts = [e for s in one for e in s.events if e.kind == "anomaly.start"]
    assert any("system.m2" in e.data["streams"] for e in starts)  # it judged, and named m2
    _same(one, _run(samples, Config(), 7))
    _same(one, _run(samples, Config(), 4096))
    anomaly = dataclasses.replace(Config().anomaly, co_movement=False)
    without = _run(samples, dataclasses.replace(Config(), anomaly=anomaly), 4096)
    assert [s.scores for s in without] != [s.scores for s in one]  # the option changed scores


def test_a_source_of_many_streams_in_chunks_of_1_7_and_4096() -> None:
    """A server's twelve metrics: its surprise is ranked among its own past ones (an entry
    on the values' grid), the same whatever the chunks."""
    rng = random.Random(21)
    samples = []
    for i in range(int(1.5 * 1440)):
        load = 50.0 + 30.0 * math.sin(2 * math.pi * i / 300) + rng.gauss(0.0, 2.0)
        data = {f"m{k:02d}": (k + 1) * load + rng.expovariate(0.2) for k in range(12)}
        if 1900 <= i < 1920:
            data["m03"] = 0.0  # a metric drops out
        samples.append(Sample("system", 1_780_272_000.0 + 60.0 * i, data))
    one = _run(samples, Config(), 1)
    assert any(e.kind == "anomaly.start" for s in one for e in s.events)
    _same(one, _run(samples, Config(), 7))
    _same(one, _run(samples, Config(), 4096))


def _hours_routine(days: int = 6) -> list[Sample]:
    """A sample every 2 minutes: busy working-day afternoons, quiet nights; on the last
    night, an afternoon's level for 40 minutes (an anomaly for the hour, not for the day)."""
    rng = random.Random(8)
    samples = []
    for i in range(days * 720):
        hour, day = (i % 720) / 30.0, i // 720
        busy = day % 7 < 5 and 13.0 <= hour < 18.0
        cpu = rng.uniform(55.0, 90.0) if busy else rng.uniform(2.0, 10.0)
        if day == days - 1 and 2.0 <= hour < 2.7:
            cpu = rng.uniform(60.0, 85.0)
        load = cpu / 25.0 + rng.gauss(0.0, 0.05)
        samples.append(
            Sample("system", 1_780_272_000.0 + 120.0 * i, {"cpu_pct": cpu, "load1": load})
        )
    return samples


def test_context_in_chunks_of_1_7_and_4096(monkeypatch: pytest.MonkeyPatch) -> None:
    """Visits join their slots when their hour is over, and the context histories take
    entries on a grid of sample time: the same scores whatever the chunks; and without the
    kernel, the same again."""
    samples = _hours_routine()
    one = _run(samples, Config(), 1)
    night = 1_780_272_000.0 + 120.0 * (5 * 720 + 60)
    starts = [e.t for s in one for e in s.events if e.kind == "anomaly.start"]
    assert any(night <= t < night + 2400.0 for t in starts)  # the hour's anomaly was judged
    _same(one, _run(samples, Config(), 7))
    _same(one, _run(samples, Config(), 4096))
    config = Config()
    off = dataclasses.replace(config, anomaly=dataclasses.replace(config.anomaly, context=False))
    assert [s.scores for s in _run(samples, off, 4096)] != [s.scores for s in one]

    from agent.detect import novelty
    from agent.detect.anomaly import codec, stage

    monkeypatch.setattr(novelty, "_ranks", None)
    monkeypatch.setattr(stage, "ValueHistory", novelty.ReferenceHistory)
    monkeypatch.setattr(codec, "ValueHistory", novelty.ReferenceHistory)
    _same(one, _run(samples, Config(), 4096))
