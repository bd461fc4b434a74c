"""The gpsd client against a real gpsd: gpsfake replays the shared NMEA logs on a free
loopback port; the client must see exactly gpsd's regression output (.chk), the gate must
refuse exactly what the data says, and the sensor must survive gpsd dying and coming back."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from _gps import Gpsd, GpsFake, free_port, nmea_dir
from _tools import require_tool

from agent.config import LocationSensorConfig
from agent.errors import SensorUnavailable
from agent.samples import Sample
from agent.sensors.gpsd import NO_FIX_DOWN_S, GpsdClient, GpsdSensor, tpv_time


def until(what: Callable[[], Any], seconds: float) -> Any:
    """Call ``what`` until it returns something other than None, for at most ``seconds``."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        result = what()
        if result is not None:
            return result
        time.sleep(0.02)
    raise AssertionError(f"nothing after {seconds} s")


def connect(client: GpsdClient) -> bool | None:
    try:
        client.connect()
    except OSError:
        return None
    return True


def fields(tpv: dict[str, Any]) -> tuple[Any, ...]:
    return tpv["mode"], tpv.get("lat"), tpv.get("lon"), tpv.get("time")


def tpvs_in(path: Path) -> list[dict[str, Any]]:
    """The TPV reports among the lines of a .chk file or of gpsfake -p's output."""
    lines = path.read_text().splitlines()
    reports = [json.loads(line) for line in lines if line.startswith("{")]
    return [r for r in reports if r["class"] == "TPV"]


# What the gate refuses in each log, with fixes read 1 s after their own time (so staleness
# does not depend on today's date), and how many fixes pass.
#   haicom-305N: 8 TPVs before the first fix.
#   telit-he910: 111 without a fix, then 3 fixes before any time arrived (GGA carries only a
#     time of day, so gpsd leaves them undated), then 10:51:53.710 followed by 10:51:53.408:
#     the module's clock steps back 0.302 s once.
#   bt451: 12 without a fix; one 2D fix without a time; 7 stationary fixes 15:25:05-08; then
#     the drive, recorded 52 min *earlier* (14:33:06-08). Its first fix is a lone GGA with no
#     date: gpsd, whose last date was 15:25 that day, rolls it to the next day
#     (2029-07-26T14:33:06, twice), so it passes; the 8 TPVs after it are dated right again
#     by ZDA/RMC (07-25T14:33:06.5-08.0) and are all older: time_backward. They would be
#     even without the mis-dated fix, being older than 15:25:08.
#   nl2008u: nothing refused (its first fix is 2D with no error estimate: default accuracy).
REFUSED = {
    "haicom-305N": ({"no_fix": 8}, 134),
    "telit-he910": ({"no_fix": 111, "no_time": 3, "time_backward": 1}, 186),
    "bt451": ({"no_fix": 12, "no_time": 1, "time_backward": 8}, 9),
    "nl2008u": ({}, 13),
}


@pytest.mark.parametrize("log", list(REFUSED))
def test_client_sees_what_gpsd_regression_expects(log: str, tmp_path: Path) -> None:
    require_tool("gpsfake")
    expected = tpvs_in(nmea_dir() / f"{log}.log.chk")
    port = free_port()
    # The regression recipe (README recipe 3) on our port: gpsfake's own client watches the
    # device and gpsfake feeds the log 1.4 s later, by which time ours (connecting as soon as
    # gpsd listens) watches too, so it sees the stream from the start. With -n gpsfake
    # feeds at once, and what a client sees depends on how fast it connects.
    with GpsFake(tmp_path, f"{log}.log", port, "-1", "-p", "-s", "38400") as fake:
        client = GpsdClient("127.0.0.1", port, classes=("TPV",))
        until(lambda: connect(client), 10.0)
        seen: list[dict[str, Any]] = []
        # A guard against a hang, not a timing: gpsfake paces the log, and on a busy machine
        # feeding bt451 took more than 30 s.
        deadline = time.monotonic() + 180.0
        try:
            with pytest.raises(ConnectionError):  # gpsfake ends, gpsd closes the connection
                while time.monotonic() < deadline:
                    seen += client.poll(wait_s=0.5)
        finally:
            client.close()  # (a socket left open fails the next test with its warning)
        assert fake.proc.wait(timeout=10) == 0
    assert [fields(t) for t in seen] == [fields(t) for t in expected]
    # gpsfake -p prints what its own client got: the same stream.
    assert [fields(t) for t in tpvs_in(fake.out)] == [fields(t) for t in expected]

    sensor = GpsdSensor(LocationSensorConfig())
    read_t, passed = 0.0, 0
    for tpv in seen:
        fix_t = tpv_time(tpv.get("time"))
        read_t = read_t if fix_t is None else fix_t + 1.0
        passed += sensor.accept(tpv, read_t) is not None
    assert (dict(sensor.rejected), passed) == REFUSED[log]


# 2035-05-26T09:34:54Z: one second after nl2008u's last fix (the newest of both logs below).
NOW = 2_063_784_894.0


def read_fix(sensor: GpsdSensor) -> Sample | None:
    try:
        return sensor.read(NOW)
    except SensorUnavailable:
        return None  # not up yet: the poller would retry later


def read_until_down(sensor: GpsdSensor) -> SensorUnavailable | None:
    try:
        sensor.read(NOW)
    except SensorUnavailable as exc:
        return exc
    return None


@pytest.fixture
def fakes(tmp_path: Path) -> Iterator[list[GpsFake]]:
    started: list[GpsFake] = []
    yield started
    for fake in started:
        fake.cleanup()


def test_gpsd_dies_and_comes_back(tmp_path: Path, fakes: list[GpsFake]) -> None:
    require_tool("gpsfake")
    port = free_port()
    # Fixes from 2026 and 2035 are read at NOW: age is not what this test is about.
    sensor = GpsdSensor(LocationSensorConfig(gpsd_port=port, max_age_s=1e9))
    with pytest.raises(SensorUnavailable, match=f"gpsd not answering on 127.0.0.1:{port}"):
        sensor.read(NOW)

    # README recipe 2: a gpsd any client can read, fed at 20 sentences per second.
    fakes.append(GpsFake(tmp_path, "haicom-305N.log", port, "-1", "-n", "-W", "5", "-c", "0.05"))
    sample = until(lambda: read_fix(sensor), 15.0)
    assert (sample.sensor, sample.t, sample.data["provider"]) == ("location", NOW, "gpsd")
    assert sample.data["lat"] == pytest.approx(-27.2109, abs=1e-3)  # haicom: 27S 153E
    first_fix_t = sample.data["fix_t"]
    assert 1_795_341_185.0 < first_fix_t < 1_795_341_270.0  # 2026-11-22 09:53:05-09:54:30

    fakes[0].kill()  # mid-stream: the log runs for about 16 s
    down = until(lambda: read_until_down(sensor), 5.0)
    assert down.reason.startswith(f"gpsd not answering on 127.0.0.1:{port}")
    with pytest.raises(SensorUnavailable, match="Connection refused"):
        sensor.read(NOW)  # each retry reconnects, and nobody listens

    # gpsd comes back on the same port (with a receiver whose time has moved on).
    fakes.append(GpsFake(tmp_path, "nl2008u.log", port, "-1", "-n", "-W", "5", "-c", "0.05"))
    sample = until(lambda: read_fix(sensor), 15.0)
    assert sample.data["lat"] == pytest.approx(48.2175, abs=1e-3)  # nl2008u: Schramberg
    assert sample.data["fix_t"] >= 2_063_783_552.0  # 2035-05-26T09:12:32Z, its first fix
    sensor.close()


def test_real_gpsd_without_a_receiver_goes_down_after_the_bound(tmp_path: Path) -> None:
    """Regression: a gpsd with no receiver (unplugged) greets and then says nothing; the
    sensor gave no fix, no warning and no status for ever."""
    require_tool("gpsd")
    port = free_port()
    sensor = GpsdSensor(LocationSensorConfig(gpsd_port=port))
    with Gpsd(tmp_path, port):
        until(lambda: connect(sensor.client), 10.0)
        assert sensor.read(NOW) is None
        assert sensor.read(NOW + NO_FIX_DOWN_S) is None
        with pytest.raises(SensorUnavailable) as down:
            sensor.read(NOW + NO_FIX_DOWN_S + 1)
        sensor.close()
    assert down.value.reason == "gpsd sends no fix for 121 s (no position report at all)"


def test_real_gpsd_fixes_ten_years_ahead_are_refused(tmp_path: Path, fakes: list[GpsFake]) -> None:
    """Regression: fixes dated ten years after the read time (a receiver's clock far off, or
    a log replayed from the future) were refused without a word, and the sensor looked up."""
    require_tool("gpsfake")
    port = free_port()
    sensor = GpsdSensor(LocationSensorConfig(gpsd_port=port))
    ten_years_before = NOW - 10 * 365.25 * 86_400  # nl2008u's fixes are from 2035
    fakes.append(GpsFake(tmp_path, "nl2008u.log", port, "-1", "-n", "-W", "5", "-c", "0.05"))

    def refused() -> int | None:
        try:
            assert sensor.read(ten_years_before) is None  # every fix is refused
        except SensorUnavailable:
            pass  # gpsd not up yet
        return sensor.rejected["future_fix"] or None

    until(refused, 15.0)
    with pytest.raises(SensorUnavailable) as down:
        sensor.read(ten_years_before + NO_FIX_DOWN_S + 1)
    sensor.close()
    assert down.value.reason.startswith("gpsd sends no fix for 121 s (")
    assert "future_fix" in down.value.reason
