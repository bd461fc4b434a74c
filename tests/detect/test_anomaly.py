"""The always-on tier on bad input: no crash, no NaN, each case handled as stated in
agent/detect/anomaly.py; and its events on a clear incident."""

from __future__ import annotations

import math
import random

import pytest

from agent.config import Config
from agent.detect.anomaly import AnomalyDetector, AnomalySettings
from agent.detect.tflite import load_or_explain
from agent.gate import Rejected, SampleGate
from agent.pipeline import Pipeline
from agent.samples import Sample


def _run(values: list[float], times: list[float] | None = None) -> list[tuple[float, float]]:
    model, p99 = load_or_explain()
    assert model is not None  # LiteRT is installed for the tests: never skipped
    det = AnomalyDetector(model, p99, AnomalySettings())
    out = []
    for i, v in enumerate(values):
        t = times[i] if times is not None else float(i)
        step = det.feed(t, "m", {"m": v})
        out.append((step.scores["m"], step.node if step.node is not None else 0.0))
    return out


def _finite(scores: list[tuple[float, float]]) -> bool:
    return all(math.isfinite(a) and 0.0 <= a <= 1.0 and 0.0 <= b <= 1.0 for a, b in scores)


def test_nan_and_infinity_never_reach_the_stage() -> None:
    gate = SampleGate()
    for bad in (float("nan"), float("inf"), -float("inf")):
        with pytest.raises(Rejected, match="non_finite"):
            gate.admit("metric", 1.0, {"name": "m", "value": bad})


def test_constant_stream_is_quiet() -> None:
    scores = _run([42.0] * 400)
    assert _finite(scores) and max(s for s, _ in scores) < 0.5


def test_huge_jump_is_one_finite_alarm() -> None:
    rng = random.Random(1)
    values = [10.0 + rng.gauss(0.0, 1.0) for _ in range(300)] + [1e300] + [10.0] * 50
    scores = _run(values)
    assert _finite(scores)
    assert scores[300][0] == 1.0  # the jump itself is as anomalous as it gets


def test_repeated_out_of_order_and_gappy_times_do_not_matter() -> None:
    """The stage counts samples, not seconds: equal times, a step back (which the gate
    refuses per sensor, but a stage must not break on) and a week-long gap change nothing."""
    rng = random.Random(2)
    values = [50.0 + rng.gauss(0.0, 2.0) for _ in range(400)]
    plain = _run(values)
    times = [float(i // 3) for i in range(400)]  # every time repeated three times
    times[200] = -5.0
    times[300:] = [t + 7 * 86400 for t in times[300:]]
    assert _run(values, times) == plain


def test_an_incident_starts_and_ends_once_naming_its_stream() -> None:
    model, p99 = load_or_explain()
    pipeline = Pipeline(Config(), (), model, p99)
    rng = random.Random(3)
    events = []
    for i in range(600):
        v = 30.0 + rng.gauss(0.0, 1.0) + (40.0 if 400 <= i < 420 else 0.0)
        events += pipeline.feed(Sample("system", 1000.0 + 10 * i, {"cpu_pct": v})).events
    kinds = [(e.kind, e.subject) for e in events if e.kind.startswith("anomaly.")]
    assert kinds == [("anomaly.start", "system"), ("anomaly.end", "system")]
    start = next(e for e in events if e.kind == "anomaly.start")
    assert start.t == 1000.0 + 10 * 400 and start.data["streams"] == ["system.cpu_pct"]
