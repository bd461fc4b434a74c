"""bench/context.py: the events sit where the bench says, at the same values, and the run
gives one score per system sample (the bench measures vigil; it asserts nothing about its
verdicts)."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
from _tools import load_script

from agent.samples import Sample

SCRIPT = Path(__file__).resolve().parents[1] / "bench" / "context.py"


@pytest.fixture(scope="module")
def context() -> ModuleType:
    return load_script(SCRIPT)


def _where(fix: Sample, context: ModuleType) -> str:
    at = (fix.data["lat"], fix.data["lon"])
    for name, spot in (("home", context.HOME), ("office", context.OFFICE)):
        if abs(at[0] - spot[0]) < 0.001 and abs(at[1] - spot[1]) < 0.001:
            return name
    return "road"


def test_the_same_values_at_night_in_the_afternoon_at_home_on_a_sunday_and_on_battery(
    context: ModuleType,
) -> None:
    samples, events = context.generate(1)
    system = [s for s in samples if s.sensor == "system"]
    battery = [s for s in samples if s.sensor == "battery"]
    fixes = [s for s in samples if s.sensor == "location"]
    assert len(system) == len(battery) == context.DAYS * context.DAY
    assert [s.t for s in system] == [s.t for s in battery]  # a battery sample a minute
    assert [s.t for s in fixes] == [s.t for s in system[:: context.FIX_EVERY]]
    assert [e.name for e in events] == ["night", "afternoon", "place", "weekend", "battery"]
    cpu = np.array([s.data["cpu_pct"] for s in system])
    spans = [cpu[e.start : e.start + context.EVENT_ROWS] for e in events]
    for span in spans:  # an ordinary busy afternoon's level, in every event
        assert 55.0 <= span.min() and span.max() <= 90.0
    hours = [(system[e.start].t - context.START_T) % 86400 / 3600 for e in events]
    assert hours == [2.0, 15.0, 14.0, 15.0, 14.0]
    weekdays = [int((system[e.start].t - context.START_T) // 86400) % 7 for e in events]
    assert weekdays == [1, 0, 4, 6, 3]  # Tuesday, Monday, Friday, Sunday, Thursday
    charging = [battery[e.start].data["charging"] for e in events]
    assert charging == [True, True, True, True, False]  # the last in its meeting
    where = [_where(fixes[e.start // context.FIX_EVERY], context) for e in events]
    assert where == ["home", "office", "home", "home", "home"]
    before = cpu[events[0].start - 60 : events[0].start]
    assert before.max() <= 10.0  # the night around the night event is quiet
    meeting = events[4].start - 30  # half an hour into the meeting: quiet, on battery
    assert cpu[meeting] <= 10.0 and battery[meeting].data["charging"] is False
    # the Friday before the place event, at home: light; the Monday before it, at the office
    friday, monday = events[2].start - 7 * context.DAY, events[2].start - 4 * context.DAY
    assert cpu[friday : friday + 60].max() <= 25.0 < 55.0 <= cpu[monday : monday + 60].min()
    assert _where(fixes[friday // context.FIX_EVERY], context) == "home"
    assert _where(fixes[monday // context.FIX_EVERY], context) == "office"
    again, _ = context.generate(1)
    assert [s.data for s in again] == [s.data for s in samples]


def test_a_run_scores_every_sample(context: ModuleType) -> None:
    samples, _ = context.generate(2)
    part = [s for s in samples if s.t < context.START_T + 86400.0]  # a day
    result = context.run(part, context.configs()["default"])
    assert result.scores.shape == (context.DAY,)
    assert np.all((result.scores >= 0.0) & (result.scores < 1.0))
    assert all(0 <= i < context.DAY for i in result.starts)
    day_end = context.START_T + 86400.0
    assert all(context.START_T <= t < day_end for t in result.routine)


def test_the_routine_alone_has_no_event(context: ModuleType) -> None:
    """``--routine``'s trace: the same samples' times and sources, and at each event's
    minutes the routine's own level (the night's quiet, the office's busy afternoon)."""
    with_events, events = context.generate(1)
    routine, none = context.generate(1, ())
    assert none == []
    assert [(s.sensor, s.t) for s in routine] == [(s.sensor, s.t) for s in with_events]
    cpu = np.array([s.data["cpu_pct"] for s in routine if s.sensor == "system"])
    night, afternoon = (cpu[e.start : e.start + context.EVENT_ROWS] for e in events[:2])
    assert night.max() <= 10.0 and afternoon.min() >= 55.0
