"""A sensor's polling job: outages become status samples, retried with backoff."""

from __future__ import annotations

from conftest import ManualClock

from agent.errors import SensorReadError, SensorUnavailable
from agent.runtime.poller import Poller
from agent.samples import Sample
from agent.sensors.fake import FakeSensor


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
