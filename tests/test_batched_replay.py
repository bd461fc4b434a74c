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
