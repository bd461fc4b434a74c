"""Garbage, NaN, far-off times and silence from gpsd: a stand-in gpsd on a loopback port
(the network peer played by the test, speaking gpsd's JSON protocol) sends what a broken or
hostile gpsd could. Nothing may escape the sensor but ``SensorUnavailable`` (silence) and
nothing may stop the poller; every refusal is counted and logged once per kind."""

from __future__ import annotations

import json
import logging
import socket
import time
from collections.abc import Iterator
from typing import Any

import pytest
from conftest import ManualClock

from agent.config import LocationSensorConfig
from agent.errors import SensorUnavailable
from agent.runtime.poller import Poller
from agent.samples import Sample
from agent.sensors.gpsd import NO_FIX_DOWN_S, WATCH, GpsdSensor

#: What gpsd 3.22 says to a client that asks to watch (recorded from the real one).
GREETING = (
    b'{"class":"VERSION","release":"3.22","rev":"3.22","proto_major":3,"proto_minor":14}\r\n'
    b'{"class":"DEVICES","devices":[]}\r\n'
    b'{"class":"WATCH","enable":true,"json":true,"nmea":false,"raw":0,"scaled":false,'
    b'"timing":false,"split24":false,"pps":false}\r\n'
)

T = 1_780_272_000.0  # 2026-06-01T00:00:00Z


def tpv(fix_t: float = T, **fields: Any) -> bytes:
    """A 3D TPV as gpsd writes it, at ``fix_t``, with ``fields`` changed."""
    report = {
        "class": "TPV",
        "device": "/dev/ttyUSB0",
        "mode": 3,
        "time": time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(fix_t)),
        "lat": 46.0512,
        "lon": 14.506,
        "altHAE": 351.3,
        "eph": 6.2,
        "speed": 0.4,
        "track": 271.5,
        **fields,
    }
    return json.dumps(report).encode()


class FakeGpsd:
    """A stand-in gpsd: takes one client, checks its ``?WATCH``, greets it like gpsd 3.22,
    then sends what the test gives it, each line ended by CR LF as gpsd does."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(10.0)
        self.port: int = self.listener.getsockname()[1]
        self.conn: socket.socket | None = None
        self.sensors: list[GpsdSensor] = []  # its clients, closed with it

    def accept(self) -> None:
        self.conn, _ = self.listener.accept()
        self.conn.settimeout(10.0)
        assert self.conn.recv(4096) == WATCH
        self.conn.sendall(GREETING)

    def send(self, *lines: bytes) -> None:
        assert self.conn is not None
        self.conn.sendall(b"".join(line + b"\r\n" for line in lines))

    def close(self) -> None:
        for sensor in self.sensors:
            sensor.close()
        if self.conn is not None:
            self.conn.close()
        self.listener.close()


@pytest.fixture
def gpsd() -> Iterator[FakeGpsd]:
    fake = FakeGpsd()
    yield fake
    fake.close()


def connected(gpsd: FakeGpsd, **config: Any) -> GpsdSensor:
    sensor = GpsdSensor(LocationSensorConfig(gpsd_port=gpsd.port, **config))
    gpsd.sensors.append(sensor)
    sensor.client.connect()
    gpsd.accept()
    return sensor


def read_until_refused(sensor: GpsdSensor, now: float, total: int) -> None:
    """Read at ``now`` (getting no fix) until ``total`` reports have been refused."""
    deadline = time.monotonic() + 20.0
    while sum(sensor.rejected.values()) < total:
        assert time.monotonic() < deadline, f"refused {dict(sensor.rejected)} after 20 s"
        assert sensor.read(now) is None
        time.sleep(0.01)


def read_until_fix(sensor: GpsdSensor, now: float) -> Sample:
    """Read at ``now`` until a fix comes (what was sent may still be on its way)."""
    deadline = time.monotonic() + 20.0
    while time.monotonic() < deadline:
        sample = sensor.read(now)
        if sample is not None:
            return sample
        time.sleep(0.01)
    raise AssertionError("no fix got through in 20 s")


#: Garbage lines and the counter each lands in: (line, where, kind).
GARBAGE: list[tuple[bytes, str, str]] = [
    (b'{"class":"TPV","lat":{"a":[1]}}', "rejected", "no_fix"),  # no mode: no fix
    (b'{"class":"TPV","mode":3,"lat":{"a":[1]},"lon":14.5}', "rejected", "no_position"),
    (b'{"class":["TPV"],"mode":3}', "bad_lines", "no_class"),
    (b'{"class":"TPV","x":' + b"[" * 100_000 + b"]" * 100_000 + b"}", "bad_lines", "too_deep"),
    (b"[" * 5000 + b"]" * 5000, "bad_lines", "too_deep"),
    (b'{"class":"TPV","mode":3,"lat":1' + b"0" * 400 + b',"lon":1}', "rejected", "non_finite"),
    (tpv(eph=10**400), "rejected", "non_finite"),
    (tpv(time=10**400), "rejected", "no_time"),
    (tpv(mode="3"), "rejected", "bad_field"),
    (tpv(mode=10**30), "rejected", "bad_field"),
    (tpv(speed="fast"), "rejected", "bad_field"),
    (b'{"class":"TPV","mode":3,"lat":"\xff\xfe"}', "bad_lines", "not_json"),  # not UTF-8
    (b"not json", "bad_lines", "not_json"),
    (b"[1, 2]", "bad_lines", "not_object"),
    (b'{"class":"TPV","mode":3,"lat":46.0,"lon":14.0,"speed":nan}', "bad_lines", "not_json"),
]


def test_nested_and_malformed_lines_are_counted_skips(
    gpsd: FakeGpsd, caplog: pytest.LogCaptureFixture
) -> None:
    """Regression: one nested JSON line from gpsd (a list where a string belongs, nesting
    deeper than the decoder follows, a number beyond any float) raised TypeError,
    RecursionError or OverflowError out of ``read``: the daemon exited and systemd restarted
    it every 10 s."""
    sensor = connected(gpsd)
    with caplog.at_level(logging.DEBUG, logger="agent.sensors"):
        for fix_t in (T, T + 1.0):  # the whole lot twice: logged once per kind all the same
            gpsd.send(*(line for line, _, _ in GARBAGE), tpv(fix_t))
            sample = read_until_fix(sensor, fix_t + 0.5)
            assert sample.data["fix_t"] == fix_t and sample.data["lat"] == 46.0512
    expected: dict[str, dict[str, int]] = {"rejected": {}, "bad_lines": {}}
    for _, where, kind in GARBAGE:
        expected[where][kind] = expected[where].get(kind, 0) + 2
    assert dict(sensor.rejected) == expected["rejected"]
    assert dict(sensor.client.bad_lines) == expected["bad_lines"]
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    kinds = {kind for _, _, kind in GARBAGE}
    assert len(warnings) == len(kinds)
    for kind in kinds:
        assert sum(f"refused ({kind})" in w for w in warnings) == 1, kind


def test_a_line_longer_than_gpsd_ever_sends_is_dropped(gpsd: FakeGpsd) -> None:
    sensor = connected(gpsd)
    gpsd.send(b'{"class":"TPV","junk":"' + b"x" * (3 << 20) + b'"}', tpv())
    assert read_until_fix(sensor, T + 0.5).data["fix_t"] == T
    assert sensor.client.bad_lines["too_long"] >= 1


def test_nan_fields_are_refused_with_a_reason(gpsd: FakeGpsd) -> None:
    """Regression: NaN (which Python's JSON decoder takes) in an estimate or a time made a
    fix without accuracy (the default was used) or a silent ``no_time``; now the report is
    refused as ``non_finite``. Lowercase ``nan`` (no JSON at all) is a bad line."""
    sensor = connected(gpsd)
    nans = [
        tpv(eph=float("nan")),
        tpv(speed=float("inf")),
        tpv(lat=float("nan")),
        tpv(time=float("nan")),
        tpv(epx=float("-inf"), epy=1.0),
        tpv().replace(b'"eph": 6.2', b'"eph": nan'),
    ]
    gpsd.send(*nans, tpv())
    assert read_until_fix(sensor, T + 0.5).data["accuracy_m"] == 3.824  # eph 6.2 x 0.61673
    assert dict(sensor.rejected) == {"non_finite": 5}
    assert dict(sensor.client.bad_lines) == {"not_json": 1}


def test_fixes_years_away_are_refused_and_the_sensor_goes_down(gpsd: FakeGpsd) -> None:
    """Regression: a receiver whose clock is ten years ahead (or a gpsd replaying an old
    log) had every fix refused, with no warning and no status: the sensor looked up."""
    sensor = connected(gpsd)
    ten_years = 10 * 365.25 * 86_400
    gpsd.send(tpv(T + ten_years), tpv(T + ten_years + 1), tpv(T - ten_years))
    read_until_refused(sensor, T, 3)
    with pytest.raises(SensorUnavailable) as down:
        sensor.read(T + NO_FIX_DOWN_S + 1)
    assert down.value.reason == (
        "gpsd sends no fix for 121 s (3 position reports, refused: future_fix 2, stale_fix 1)"
    )


def test_silence_marks_the_sensor_down_until_a_fix(gpsd: FakeGpsd) -> None:
    """Regression: gpsd connected but sending no fix (no receiver, or a receiver that has
    none) gave no warning and no status, for ever."""
    sensor = connected(gpsd)
    assert sensor.read(T) is None
    assert sensor.read(T + 60.0) is None
    assert sensor.read(T + NO_FIX_DOWN_S) is None  # not beyond the bound yet
    for later in (NO_FIX_DOWN_S + 1, 600.0):
        with pytest.raises(SensorUnavailable) as down:
            sensor.read(T + later)
        assert down.value.reason == (
            f"gpsd sends no fix for {later:.0f} s (no position report at all)"
        )
    gpsd.send(tpv(T + 700.0, mode=1), tpv(T + 700.0))
    assert read_until_fix(sensor, T + 700.5).data["fix_t"] == T + 700.0
    # Silence is counted again from the last fix, and names what came meanwhile.
    gpsd.send(tpv(T + 701.0, mode=1))
    read_until_refused(sensor, T + 701.5, 2)
    with pytest.raises(SensorUnavailable) as down:
        sensor.read(T + 700.5 + NO_FIX_DOWN_S + 1)
    assert down.value.reason == (
        "gpsd sends no fix for 121 s (1 position reports, refused: no_fix 1)"
    )


def test_one_read_after_a_long_gap_is_not_yet_silence(gpsd: FakeGpsd) -> None:
    """After a suspend the first read finds only what gpsd queued before it: not a reason
    to go down. The next read without a fix is."""
    sensor = connected(gpsd)
    gpsd.send(tpv())
    read_until_fix(sensor, T + 0.5)
    assert sensor.read(T + 8 * 3600.0) is None
    with pytest.raises(SensorUnavailable, match="gpsd sends no fix for 28830 s"):
        sensor.read(T + 8 * 3600.0 + 30.0)


def test_garbage_and_silence_never_stop_the_poller(gpsd: FakeGpsd, clock: ManualClock) -> None:
    """Through the poller: garbage is skipped, silence is one ``status`` down sample, and
    the first fix marks the sensor up again."""
    clock.t = T
    sensor = connected(gpsd, interval_s=30.0)
    out: list[Sample] = []
    poller = Poller(sensor, clock, out.append, retry_max_s=60.0)
    gpsd.send(*(line for line, _, _ in GARBAGE))
    refused = sum(where == "rejected" for _, where, _ in GARBAGE)
    deadline = time.monotonic() + 20.0
    while sum(sensor.rejected.values()) < refused:  # all of it read at the start
        assert time.monotonic() < deadline
        poller.poll()
    for _ in range(6):  # to 180 s: down at 150 s (beyond the bound), in backoff at 180 s
        clock.advance(30.0)
        poller.poll()
    assert [s.data for s in out] == [
        {
            "of": "location",
            "state": "down",
            "reason": "gpsd sends no fix for 150 s (8 position reports, refused: bad_field 3,"
            " non_finite 2, no_fix 1, no_position 1, no_time 1)",
        }
    ]
    assert poller.down
    while poller.down and time.monotonic() < deadline:
        clock.advance(30.0)  # past any backoff
        gpsd.send(tpv(clock.t))
        poller.poll()
    assert [s.sensor for s in out[1:3]] == ["status", "location"]
    assert out[1].data == {"of": "location", "state": "up"}


def test_silence_is_counted_again_from_a_reconnection(gpsd: FakeGpsd) -> None:
    sensor = connected(gpsd)
    assert sensor.read(T) is None
    assert gpsd.conn is not None
    gpsd.conn.close()  # gpsd restarts
    gpsd.conn = None
    with pytest.raises(SensorUnavailable, match="gpsd not answering"):
        for _ in range(1000):  # until the client sees the close
            sensor.read(T + 10.0)
            time.sleep(0.01)
    assert sensor.read(T + 200.0) is None  # reconnected (its greeting waits: no fix yet)
    gpsd.accept()
    assert sensor.read(T + 200.0 + NO_FIX_DOWN_S) is None
    with pytest.raises(SensorUnavailable, match="no fix for 121 s"):
        sensor.read(T + 201.0 + NO_FIX_DOWN_S)
