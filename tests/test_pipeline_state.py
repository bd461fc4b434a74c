"""The stages' saved state is complete: stopping at any sample, saving what the memory keeps
and going on in a new pipeline gives exactly the events of one uninterrupted run. A part
left out (the rules' durations and cooldowns once were) fires again after every restart."""

from __future__ import annotations

import json
from bisect import bisect_left
from typing import Any

import pytest

from agent import synthetic
from agent.config import Config, RuleConfig
from agent.demo import demo_fences
from agent.memory.state_rows import place_from_row, place_row
from agent.pipeline import Pipeline, StageState, Step
from agent.samples import Event, Sample

RULES = (
    RuleConfig(name="busy", stream="system.cpu_pct", above=25.0, hysteresis=10.0, for_s=120.0),
    RuleConfig(name="charge", stream="battery.battery_pct", below=60.0, hysteresis=5.0),
    RuleConfig(name="moved", event="geofence.*", cooldown_s=4 * 3600.0),
    RuleConfig(name="odd", event="anomaly.start", cooldown_s=1800.0, action="wake"),
)


def _config() -> Config:
    return Config(rules=RULES)


def _run(samples: list[Sample], pipeline: Pipeline) -> list[Event]:
    events: list[Event] = []
    for sample in samples:
        events += pipeline.feed(sample).events
    return events


@pytest.fixture(scope="module")
def day() -> tuple[list[Sample], list[Event]]:
    samples = list(synthetic.generate(1, 7))
    return samples, _run(samples, Pipeline(_config(), demo_fences()))


def _as_kept(state: StageState) -> StageState:
    """The state as the memory gives it back: JSON for the machines, rows for the places."""
    return {
        "fence_state": json.loads(json.dumps(state["fence_state"])),
        "detector_state": json.loads(json.dumps(state["detector_state"])),
        "places": [place_from_row(place_row(p)) for p in state["places"]],
        "weights": state["weights"],
    }


def _splits(samples: list[Sample], events: list[Event]) -> dict[str, int]:
    """Places to stop where a rule is in the middle of something."""
    times = [s.t for s in samples]
    fired = {e.subject: e for e in reversed(events) if e.kind == "rule.fired"}
    assert {"busy", "charge", "moved", "odd"} <= fired.keys(), "every rule must fire in the day"
    return {
        "busy counting its for_s": bisect_left(times, fired["busy"].t - 60.0),
        "busy fired, not re-armed": bisect_left(times, fired["busy"].t) + 1,
        "charge fired, not re-armed": bisect_left(times, fired["charge"].t) + 1,
        "moved in its cooldown": bisect_left(times, fired["moved"].t + 600.0),
        "odd in its cooldown": bisect_left(times, fired["odd"].t + 60.0),
    }


def test_stopping_anywhere_and_restoring_gives_the_events_of_one_run(
    day: tuple[list[Sample], list[Event]],
) -> None:
    samples, reference = day
    for where, cut in _splits(samples, reference).items():
        first = Pipeline(_config(), demo_fences())
        before = _run(samples[:cut], first)
        saved = _as_kept(first.snapshot(full=True))  # as the memory keeps it
        second = Pipeline(_config(), demo_fences())
        assert second.restore(saved) == []
        after = _run(samples[cut:], second)
        assert before + after == reference, f"stopped where {where}"


def _restored_midway(samples: list[Sample], cut: int) -> tuple[dict[str, Any], list[Step]]:
    """The anomaly history saved after ``samples[:cut]`` and one uninterrupted run's steps,
    once a pipeline restored from that state has scored the rest exactly as the one run."""
    one = Pipeline(Config())
    whole = [one.feed(s) for s in samples]
    first = Pipeline(Config())
    for s in samples[:cut]:
        first.feed(s)
    saved = _as_kept(first.snapshot(full=True))
    second = Pipeline(Config())
    assert second.restore(saved) == []
    rest = [second.feed(s) for s in samples[cut:]]
    assert [(s.node, s.scores) for s in rest] == [(s.node, s.scores) for s in whole[cut:]]
    history: dict[str, Any] = saved["detector_state"]["anomaly_history"]
    return history, whole


def test_co_movement_restored_midway_gives_the_scores_of_one_run() -> None:
    """The co-movement model and the streams' residual histories are in the saved state: a
    pipeline restored halfway scores the rest exactly as one uninterrupted run."""
    import math
    import random

    rng = random.Random(3)
    samples = []
    for i in range(2 * 1440 + 200):
        load = 50.0 + 30.0 * math.sin(2 * math.pi * i / 300) + rng.gauss(0.0, 2.0)
        data = {f"m{k}": (k + 1) * load + rng.gauss(0.0, 1.0 + k) for k in range(5)}
        samples.append(Sample("system", 1_780_272_000.0 + 60.0 * i, data))
    assert Config().anomaly.co_movement  # on by default
    # past the model's first day: residuals and their histories exist
    history, _ = _restored_midway(samples, 2 * 1440 + 7)
    assert history["comove"]["system"]["names"]
    assert history["joint"]["system"]["nodes"] is None  # 5 streams: not calibrated


def test_context_restored_midway_gives_the_scores_of_one_run() -> None:
    """The hours' profiles (with the open hour's rows) and the context histories are in the
    saved state: restored inside an hour, days after the slots became ready, the rest is
    scored exactly as in one uninterrupted run."""
    import random

    rng = random.Random(6)
    samples = []
    for i in range(5 * 720):  # five days, a sample every 2 minutes
        hour = (i % 720) / 30.0
        cpu = rng.uniform(55.0, 90.0) if 13.0 <= hour < 18.0 else rng.uniform(2.0, 10.0)
        if i >= 4 * 720 + 60:
            cpu = rng.uniform(55.0, 90.0)  # the last day busy at every hour
        samples.append(Sample("system", 1_780_272_000.0 + 120.0 * i, {"cpu_pct": cpu}))
    cut = 4 * 720 + 45  # 01:30 on the fifth day: inside an hour, before the busy night
    history, whole = _restored_midway(samples, cut)
    assert history["context"]["system"]["names"]
    assert any(s.events for s in whole[cut:])  # the busy night was an anomaly for the hour


def test_a_rule_changed_since_the_save_starts_afresh(
    day: tuple[list[Sample], list[Event]],
) -> None:
    samples, reference = day
    cut = _splits(samples, reference)["busy fired, not re-armed"]
    first = Pipeline(_config(), demo_fences())
    _run(samples[:cut], first)
    saved = _as_kept(first.snapshot(full=True))
    assert saved["detector_state"]["rules"]["busy"]["armed"] is False
    changed = Config(rules=(RuleConfig(name="busy", stream="system.cpu_pct", above=30.0),))
    second = Pipeline(changed, demo_fences())
    second.restore(saved)
    assert second.rules.state()["busy"]["armed"] is True


@pytest.mark.parametrize(
    "bad",
    [
        {"busy": {"config": repr(RULES[0]), "armed": "no", "since": None}},
        {"busy": {"config": repr(RULES[0]), "armed": True, "since": float("nan")}},
        {"moved": {"config": repr(RULES[2]), "last_t": {"x": "soon"}}},
        {"moved": {"config": repr(RULES[2])}},
    ],
)
def test_unreadable_rule_state_is_dropped_whole_and_said(bad: dict[str, object]) -> None:
    pipeline = Pipeline(_config(), demo_fences())
    pipeline.rules.restore({"charge": {"config": repr(RULES[1]), "armed": False, "since": None}})
    saved = _as_kept(pipeline.snapshot(full=True))
    saved["detector_state"]["rules"] = {**saved["detector_state"]["rules"], **bad}
    fresh = Pipeline(_config(), demo_fences())
    assert fresh.restore(saved) == ["rules"]
    assert fresh.rules.state() == Pipeline(_config(), demo_fences()).rules.state()


def test_a_source_of_many_streams_restored_midway_gives_the_scores_of_one_run() -> None:
    """A source of many streams ranks its surprise among its own past ones: that history
    is in the saved state, and a pipeline restored halfway scores the rest as one run."""
    import math
    import random

    rng = random.Random(6)
    samples = []
    for i in range(1440 + 300):
        load = 50.0 + 30.0 * math.sin(2 * math.pi * i / 300) + rng.gauss(0.0, 2.0)
        data = {f"m{k:02d}": (k + 1) * load + rng.expovariate(0.2) for k in range(12)}
        samples.append(Sample("system", 1_780_272_000.0 + 60.0 * i, data))
    history, _ = _restored_midway(samples, 1440 + 11)
    assert history["joint"]["system"]["nodes"]


def _frozen_gauge() -> tuple[list[Sample], Config, list[Event]]:
    """Two laptop days, then a battery gauge frozen at 64.3 % for 30 readings; the config
    without rules, and the events of one run through it."""
    from tests.detect.test_stuck import frozen, laptop_day

    start = laptop_day(2)[8 * 60].t
    samples = [*laptop_day(0), *laptop_day(1), *frozen(start, 30, 64.3)]
    config = Config(rules=())
    return samples, config, _run(samples, Pipeline(config))


def test_a_stuck_reading_restored_midway_gives_the_events_of_one_run() -> None:
    """Stopped while a battery gauge is frozen, before and after it was said stuck: the
    stream's runs per state and its open run come back, so the restored pipeline says
    ``sensor.stuck`` once, when one run would."""
    samples, config, reference = _frozen_gauge()
    assert [e.kind for e in reference if e.kind.startswith("sensor.")] == ["sensor.stuck"]
    for cut in (len(samples) - 26, len(samples) - 10):  # 4 and 20 readings into the run
        first = Pipeline(config)
        before = _run(samples[:cut], first)
        second = Pipeline(config)
        assert second.restore(_as_kept(first.snapshot(full=True))) == []
        assert before + _run(samples[cut:], second) == reference


def test_a_volume_restored_midway_gives_the_events_of_one_run() -> None:
    """Stopped in the middle of an upload: the rate's record and its open window come back,
    so the restored pipeline says ``volume.high`` when one run would."""
    from tests.detect.test_volume import four_days, upload

    _, days = four_days()
    samples = [*days, *upload(days[-1].t + 10.0, 40, 300e3)]
    config = Config(rules=())
    reference = _run(samples, Pipeline(config))
    assert [e.kind for e in reference if e.kind.startswith("volume.")] == ["volume.high"]
    cut = len(days) + 12  # two minutes into the upload
    first = Pipeline(config)
    before = _run(samples[:cut], first)
    second = Pipeline(config)
    assert second.restore(_as_kept(first.snapshot(full=True))) == []
    assert before + _run(samples[cut:], second) == reference
    light = Pipeline(config)  # the record is small and goes with every commit's state
    assert light.restore(_as_kept(first.snapshot(full=False))) == []
    volumes = [e for e in reference if e.kind.startswith("volume.")]
    assert [e for e in _run(samples[cut:], light) if e.kind.startswith("volume.")] == volumes


def test_a_background_process_restored_midway_gives_the_events_of_one_run() -> None:
    """Stopped two minutes into an encoder's run in the background: the processes' records
    and the open window come back, so the restored pipeline says ``process.busy`` when one
    run would."""
    from tests.detect.test_processes import four_days, running

    _, days = four_days()
    samples = [*days, *running(days[-1].t + 5.0, 40, "ffmpeg", 115.0)]
    config = Config(rules=())
    reference = _run(samples, Pipeline(config))
    assert [e.kind for e in reference if e.kind.startswith("process.")] == ["process.busy"]
    cut = len(days) + 24  # two minutes in
    first = Pipeline(config)
    before = _run(samples[:cut], first)
    second = Pipeline(config)
    assert second.restore(_as_kept(first.snapshot(full=True))) == []
    assert before + _run(samples[cut:], second) == reference


def test_a_leak_restored_midway_gives_the_events_of_one_run() -> None:
    """Stopped three minutes into a leak: each process's shares of the last ten minutes and
    its record come back, so the restored pipeline says ``process.grow`` when one run
    would."""
    from tests.detect.test_growth import leaking, settled

    _, days = settled()
    samples = [*days, *leaking(days[-1].t + 5.0, 30, "python3", 0.4)]
    config = Config(rules=())
    reference = _run(samples, Pipeline(config))
    assert [e.kind for e in reference if e.kind.startswith("process.grow")] == ["process.grow"]
    cut = len(days) + 37  # three minutes in, in the middle of a minute
    first = Pipeline(config)
    before = _run(samples[:cut], first)
    second = Pipeline(config)
    assert second.restore(_as_kept(first.snapshot(full=True))) == []
    assert before + _run(samples[cut:], second) == reference


def test_unreadable_stuck_and_volume_entries_are_skipped_said_and_counted(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A malformed entry of the stuck readings' or the volumes' state is skipped with one
    warning per stage and the part named as dropped (the daemon counts it); the readable
    entries are kept: the frozen gauge restored midway is still said stuck once."""
    samples, config, reference = _frozen_gauge()
    cut = len(samples) - 10
    first = Pipeline(config)
    before = _run(samples[:cut], first)
    saved = _as_kept(first.snapshot(full=True))
    stuck, volumes = saved["detector_state"]["stuck"], saved["detector_state"]["volumes"]
    stuck["seen"].append(["system.cpu_pct", "", "yesterday", None, None, 0.0, 1])
    stuck["runs"].append(["battery.power_W", 1.0])
    volumes["system.net_rx_Bps"] = {"first_t": "not a time"}
    second = Pipeline(config)
    with caplog.at_level("WARNING", logger="agent.pipeline"):
        assert second.restore(saved) == ["stuck", "volumes"]
    said = [r.getMessage() for r in caplog.records]
    assert "stuck state: 2 unreadable entries skipped, the rest kept" in said
    assert "volumes state: 1 unreadable entries skipped, the rest kept" in said
    assert before + _run(samples[cut:], second) == reference


@pytest.mark.parametrize(
    ("part", "bad"),
    [
        ("stuck", {"seen": 5}),
        ("volumes", {"x": {"minute": 5}}),
        ("processes", {"minute": 5}),
        ("processes", {"first_t": 0.0}),
        ("growth", {"minute": [0.0, None]}),
        ("growth", {"names": 3}),
    ],
)
def test_a_stuck_volume_or_process_state_of_the_wrong_shape_starts_afresh(
    part: str, bad: dict[str, object]
) -> None:
    pipeline = Pipeline(_config(), demo_fences())
    saved = _as_kept(pipeline.snapshot(full=True))
    saved["detector_state"][part] = bad
    fresh = Pipeline(_config(), demo_fences())
    assert fresh.restore(saved) == [part]
    assert getattr(fresh, part).state() == getattr(Pipeline(_config()), part).state()
