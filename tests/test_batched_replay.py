"""Replay's batched path (the tiny model scoring thousands of windows per call) gives the
one-at-a-time live path's scores within 1e-6 and exactly its events."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.config import Config
from agent.demo import write_synthetic_trace
from agent.detect.tflite import load_or_explain
from agent.pipeline import Pipeline
from agent.runtime import replay as replay_module
from agent.runtime.trace import ReadCounts, read_trace


def test_batched_equals_live(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    trace = tmp_path / "day.jsonl.gz"
    write_synthetic_trace(trace)
    samples = list(read_trace([trace], ReadCounts()))
    model = load_or_explain()
    assert model is not None  # LiteRT is installed for the tests: never skip

    # One interpreter each: personalisation rounds change the weights as the day goes on.
    live = Pipeline(Config(), (), model)
    live_steps = [live.feed(s) for s in samples]

    monkeypatch.setattr(replay_module, "LOOKAHEAD", 1000)  # several chunks, one partial
    batched = Pipeline(Config(), (), load_or_explain())
    fed = list(replay_module.batched(iter(samples), batched))
    assert fed == samples
    assert batched.anomaly is not None
    batched_steps = []
    for s in samples:
        batched_steps.append(batched.feed(s))
    # The batch was computed before the samples were fed; every prefetched score was used.
    assert batched.anomaly.prefetched == {}

    assert [e for st in batched_steps for e in st.events] == [
        e for st in live_steps for e in st.events
    ]
    worst = max(
        abs(b.tiny[k] - a.tiny[k])
        for a, b in zip(live_steps, batched_steps, strict=True)
        for k in a.tiny
    )
    assert worst <= 1e-6
    assert sum(len(st.tiny) for st in live_steps) > 10_000  # the model really scored


def test_batched_equals_live_when_streams_come_and_go(monkeypatch: pytest.MonkeyPatch) -> None:
    """Interfaces renamed every few hours, one coming back after it was dropped as gone: the
    batched path's keys and windows stay those of the stage."""
    import dataclasses
    import random

    from agent.samples import Sample

    rng = random.Random(5)
    samples = []
    for i in range(3 * 24 * 60):  # three days, a sample a minute
        t = 1_780_272_000.0 + 60.0 * i
        iface = f"veth{(i // 240) % 12}"  # a new name every 4 h; names come back after 2 days
        data = {"cpu_pct": 20 + 10 * rng.random(), f"net.{iface}.rx_Bps": 1000 * rng.random()}
        samples.append(Sample("system", t, data))
    config = Config()
    config = dataclasses.replace(
        config, anomaly=dataclasses.replace(config.anomaly, history_s=86_400.0)
    )
    live = Pipeline(config, (), load_or_explain())
    live_steps = [live.feed(s) for s in samples]
    monkeypatch.setattr(replay_module, "LOOKAHEAD", 500)
    batched = Pipeline(config, (), load_or_explain())
    fed = list(replay_module.batched(iter(samples), batched))
    batched_steps = [batched.feed(s) for s in fed]
    assert batched.anomaly is not None and batched.anomaly.prefetched == {}  # all used
    assert [sorted(st.tiny) for st in batched_steps] == [sorted(st.tiny) for st in live_steps]
    worst = max(
        abs(b.tiny[k] - a.tiny[k])
        for a, b in zip(live_steps, batched_steps, strict=True)
        for k in a.tiny
    )
    assert worst <= 1e-6
    assert [e for st in batched_steps for e in st.events] == [
        e for st in live_steps for e in st.events
    ]
    assert live.anomaly is not None and len(live.anomaly.positions()) < 1 + 12
