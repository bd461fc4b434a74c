"""The anomaly stage judges values by the learned place the device is at: the places stage's
stay, once it has arrived, for as long as its last usable fix is fresh."""

from __future__ import annotations

import dataclasses

from agent.config import Config
from agent.detect.anomaly.context import NO_PLACE
from agent.pipeline import Pipeline
from agent.samples import Sample

START = 1_767_571_200.0  # 2026-01-05 00:00 UTC
HOME = (52.52, 13.405)


def _config() -> Config:
    anomaly = dataclasses.replace(Config().anomaly, timezone="UTC")
    return dataclasses.replace(Config(), anomaly=anomaly)


def _samples() -> list[Sample]:
    """A fix a minute at home for 20 minutes, then none; a system sample a minute for an
    hour."""
    samples = []
    for minute in range(60):
        t = START + 60.0 * minute
        if minute < 20:
            fix = {"lat": HOME[0], "lon": HOME[1], "accuracy_m": 10.0}
            samples.append(Sample("location", t, fix))
        samples.append(Sample("system", t, {"cpu_pct": 5.0 + minute % 3}))
    return samples


def test_the_place_counts_from_the_arrival_until_the_last_fix_is_stale() -> None:
    pipeline = Pipeline(_config())
    seen = []
    for sample in _samples():
        pipeline.feed(sample)
        if sample.sensor == "system":
            assert pipeline.anomaly is not None
            seen.append(pipeline.anomaly.context["system"].open_place)
    assert pipeline.places is not None
    (home,) = pipeline.places.places
    last_fix = 19  # minutes
    arrived = 5  # minutes: the places stage's 300 s stay
    stale = last_fix + 15  # its 900 s gap
    expected = [home.id if arrived <= minute <= stale else NO_PLACE for minute in range(len(seen))]
    assert seen == expected


def test_the_place_is_the_same_live_and_in_chunks() -> None:
    samples = _samples()
    live, chunked = Pipeline(_config()), Pipeline(_config())
    for sample in samples:
        live.feed(sample)
    for a in range(0, len(samples), 13):
        chunked.feed_chunk(samples[a : a + 13])
    assert live.anomaly is not None and chunked.anomaly is not None
    assert live.anomaly.history_state() == chunked.anomaly.history_state()
    assert live.anomaly.context["system"].places == [1]
