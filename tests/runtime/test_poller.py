"""A sensor's polling job: outages become status samples, retried with backoff."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from conftest import ManualClock

from agent.config import LocationSensorConfig
from agent.errors import SensorReadError, SensorUnavailable
from agent.runtime.poller import Poller
from agent.samples import Sample
from agent.sensors.fake import FakeSensor
from agent.sensors.termux_location import TermuxLocationSensor


def test_down_once_backoff_then_up(clock: ManualClock) -> None:
    calls: list[float] = []
    broken = {"yes": True}

    def handler(now: float) -> Sample | None:
        calls.append(now)
        if broken["yes"]:
            raise SensorUnavailable("gps", "no device")
        return Sample("location", now, {"lat": 1.0, "lon": 2.0})

    out: list[Sample] = []
    poller = Poller(FakeSensor("gps", handler, interval_s=10.0), clock, out.append, retry_max_s=40)
    for _ in range(12):  # a poll every 10 s for 120 s
        poller.poll()
        clock.advance(10.0)
    # Read at 0 (down, retry in 10), 10 (retry in 20), 30 (in 40), 70 (in 40 = max), 110.
    start = 1_780_272_000.0
    assert [c - start for c in calls] == [0.0, 10.0, 30.0, 70.0, 110.0]
    assert out == [Sample("status", start, {"of": "gps", "state": "down", "reason": "no device"})]
    broken["yes"] = False
    clock.advance(40.0)
    poller.poll()
    t = clock.now()
    assert out[1:] == [
        Sample("status", t, {"of": "gps", "state": "up"}),
        Sample("location", t, {"lat": 1.0, "lon": 2.0}),
    ]
    assert not poller.down


def test_read_error_skips_one_reading(clock: ManualClock) -> None:
    def handler(now: float) -> Sample | None:
        raise SensorReadError("system", "busy")

    out: list[Sample] = []
    Poller(FakeSensor("system", handler), clock, out.append).poll()
    assert out == []


def test_time_is_whole_microseconds(clock: ManualClock) -> None:
    clock.t = 1_780_272_000.123456789
    out: list[Sample] = []
    Poller(FakeSensor("system", lambda now: Sample("system", now, {})), clock, out.append).poll()
    assert out[0].t == 1_780_272_000.123457


def test_read_errors_are_counted_and_the_first_is_a_warning(
    clock: ManualClock, caplog: pytest.LogCaptureFixture
) -> None:
    def handler(now: float) -> Sample | None:
        raise SensorReadError("battery", "termux-battery-status printed no JSON")

    poller = Poller(FakeSensor("battery", handler), clock, [].append)
    with caplog.at_level(logging.DEBUG, logger="agent.runtime.poller"):
        for _ in range(3):
            poller.poll()
    assert poller.skipped == 3 and not poller.down
    assert [r.levelno for r in caplog.records] == [logging.WARNING, logging.DEBUG, logging.DEBUG]


def test_a_hanging_termux_location_marks_the_sensor_down_and_backs_off(
    clock: ManualClock, tmp_path: Path
) -> None:
    """Regression: a termux-location that never answers was killed after 60 s, longer than
    the poll interval, and each time only one reading was skipped: APScheduler's "skipped"
    warnings, no ``sensor.down``, and a hang at every poll."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    script = bin_dir / "termux-location"
    calls = tmp_path / "calls"
    script.write_text(f"#!/bin/sh\necho called >> {calls}\nexec sleep 1000\n")
    script.chmod(0o755)
    config = LocationSensorConfig(interval_s=30.0, termux_timeout_s=0.5)
    out: list[Sample] = []
    poller = Poller(TermuxLocationSensor(config, path=str(bin_dir)), clock, out.append)
    poller.poll()
    reason = "termux-location gave no fix in 0.5 s (killed)"
    assert out == [Sample("status", clock.t, {"of": "location", "state": "down", "reason": reason})]
    assert poller.down
    clock.advance(15.0)
    poller.poll()  # backing off: not run again before the interval
    assert calls.read_text() == "called\n"
    clock.advance(15.0)
    poller.poll()  # retried, still hanging: still down, no second status sample
    assert calls.read_text() == "called\ncalled\n"
    assert len(out) == 1 and poller.down
