"""bench/context.py: the events sit where the bench says, at the same values, and the run
gives one score per system sample (the bench measures vigil; it asserts nothing about its
verdicts)."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
from _tools import load_script

SCRIPT = Path(__file__).resolve().parents[1] / "bench" / "context.py"


@pytest.fixture(scope="module")
def context() -> ModuleType:
    return load_script(SCRIPT)


def test_the_same_values_at_night_in_the_afternoon_on_a_sunday_and_on_battery(
    context: ModuleType,
) -> None:
    samples, events = context.generate(1)
    system = [s for s in samples if s.sensor == "system"]
    battery = [s for s in samples if s.sensor == "battery"]
    assert len(system) == len(battery) == context.DAYS * context.DAY
    assert [s.t for s in system] == [s.t for s in battery]  # a battery sample a minute
    assert [e.name for e in events] == ["night", "afternoon", "weekend", "battery"]
    cpu = np.array([s.data["cpu_pct"] for s in system])
    spans = [cpu[e.start : e.start + context.EVENT_ROWS] for e in events]
    for span in spans:  # an ordinary busy afternoon's level, in every event
        assert 55.0 <= span.min() and span.max() <= 90.0
    hours = [(system[e.start].t - context.START_T) % 86400 / 3600 for e in events]
    assert hours == [2.0, 15.0, 15.0, 14.0]
    weekdays = [int((system[e.start].t - context.START_T) // 86400) % 7 for e in events]
    assert weekdays == [1, 2, 6, 3]  # Tuesday, Wednesday, Sunday, Thursday
    charging = [battery[e.start].data["charging"] for e in events]
    assert charging == [True, True, True, False]  # only the last on battery, in its meeting
    before = cpu[events[0].start - 60 : events[0].start]
    assert before.max() <= 10.0  # the night around the night event is quiet
    meeting = events[3].start - 30  # half an hour into the meeting: quiet, on battery
    assert cpu[meeting] <= 10.0 and battery[meeting].data["charging"] is False
    again, _ = context.generate(1)
    assert [s.data for s in again] == [s.data for s in samples]


def test_a_run_scores_every_sample(context: ModuleType) -> None:
    samples, _ = context.generate(2)
    part = samples[: 2 * context.DAY]  # a day: a battery and a system sample a minute
    scores, starts = context.run(part, context.configs()["default"])
    assert scores.shape == (context.DAY,)
    assert np.all((scores >= 0.0) & (scores < 1.0))
    assert all(0 <= i < context.DAY for i in starts)
