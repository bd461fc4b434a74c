"""gpsd's TPV reports -> location fields: real TPVs from gpsd's regression .chk files (shared
data) with values worked out by hand, the accuracy conversion, every gating reason, and the
client's framing of the stream over a loopback socket served by the test."""

from __future__ import annotations

import json
import math
import socket
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from _gps import nmea_dir

from agent.config import LocationSensorConfig
from agent.sensors.gpsd import (
    R68_PER_R95,
    R68_PER_SIGMA,
    R95_PER_SIGMA,
    Z95_PER_SIGMA,
    GpsdClient,
    GpsdSensor,
    accuracy_m,
    default_accuracy_m,
    parse_tpv,
    tpv_time,
)
from agent.sensors.location import Rejection


def chk_tpvs(log: str) -> list[dict[str, Any]]:
    """The TPV reports of gpsd's expected output for ``log`` (JSON lines among NMEA ones)."""
    lines = (nmea_dir() / f"{log}.log.chk").read_text().splitlines()
    reports = [json.loads(line) for line in lines if line.startswith("{")]
    return [r for r in reports if r["class"] == "TPV"]


# 2026-11-22T09:53:05.802Z: 2026-01-01 is 1_767_225_600; Nov 22 is day 325 of 2026
# (304 days in Jan-Oct, + 21): + 325 x 86_400 = 1_795_305_600; + 9:53:05 = 35_585 s.
HAICOM_FIRST_FIX_T = 1_795_341_185.802


def test_haicom_first_fix_worked_by_hand() -> None:
    # haicom-305N (2007-04-08, shifted +1024 weeks by gpsd), the first TPV with a fix.
    tpv = chk_tpvs("haicom-305N")[8]
    assert tpv["time"] == "2026-11-22T09:53:05.802Z"
    assert parse_tpv(tpv, HAICOM_FIRST_FIX_T + 1.0) == {
        "lat": -27.210911667,
        "lon": 153.05225,
        "accuracy_m": 247.246,  # eph 400.9 (95 %) x 0.6167273 = 247.2460
        "alt_m": 45.2,  # altHAE, not alt (3.0 m above the geoid)
        "speed_mps": 9.224,  # no track in this TPV: no bearing_deg
        "provider": "gpsd",
        "mode": 3,
        "fix_t": HAICOM_FIRST_FIX_T,
    }
    # The next TPV of the same epoch adds the track.
    assert parse_tpv(chk_tpvs("haicom-305N")[9], HAICOM_FIRST_FIX_T)["bearing_deg"] == 133.96


def test_telit_fix_with_eph_and_epx_epy_uses_eph() -> None:
    tpv = chk_tpvs("telit-he910")[114]  # 2019: after the rollover, not shifted
    assert tpv["time"] == "2019-03-12T10:51:53.710Z"
    # 2019-03-12T10:51:53Z = 1_552_387_913 (17_967 days x 86_400 + 39_113 s)
    fix = parse_tpv(tpv, 1_552_387_914.0)
    assert fix == {
        "lat": 50.840203333,
        "lon": 4.34711,
        "accuracy_m": 26.365,  # eph 42.75 x 0.6167273 = 26.3651; epx/epy ignored
        "alt_m": 155.23,
        "speed_mps": 0.072,
        "bearing_deg": 303.6,
        "provider": "gpsd",
        "mode": 3,
        "fix_t": 1_552_387_913.71,
    }


def test_accuracy_conversion() -> None:
    # Circular bivariate normal: R_p = sigma sqrt(-2 ln(1 - p)).
    assert R68_PER_SIGMA == pytest.approx(1.5095922, abs=1e-7)  # sqrt(-2 ln 0.32)
    assert R95_PER_SIGMA == pytest.approx(2.4477468, abs=1e-7)  # sqrt(-2 ln 0.05)
    assert R68_PER_R95 == pytest.approx(0.6167273, abs=1e-7)
    assert Z95_PER_SIGMA == pytest.approx(1.9599640, abs=1e-7)  # one axis, 95 %
    assert accuracy_m({"eph": 100.0}) == 61.673
    # bt451's epx/epy without its eph: sx = 18.961 / 1.959964 = 9.674182,
    # sy = 35.919 / 1.959964 = 18.326352, sigma = sqrt((93.5898 + 335.8552) / 2) = 14.653407,
    # x 1.5095922 = 22.120669.
    tpv = dict(chk_tpvs("bt451")[13])
    assert (tpv["epx"], tpv["epy"]) == (18.961, 35.919)
    del tpv["eph"]
    assert accuracy_m(tpv) == 22.121
    # Equal axes: sigma = epx / 1.959964, so 1.959964 m per axis gives 1.5095922 m.
    assert accuracy_m({"epx": Z95_PER_SIGMA, "epy": Z95_PER_SIGMA}) == 1.51
    # Regression: an estimate under half a millimetre rounded to a radius of 0, which the
    # gate refuses (and the whole sample with it); the squares of huge axes overflowed.
    assert accuracy_m({"eph": 1e-9}) == accuracy_m({"epx": 1e-300, "epy": 1e-300}) == 0.001
    assert accuracy_m({"epx": 1e200, "epy": 1e200}) == pytest.approx(7.7e199, rel=0.01)
    # Nothing usable: zero, negative, a lone axis, not numbers.
    for errors in ({}, {"eph": 0.0}, {"eph": -3.0}, {"epx": 5.0}, {"eph": "7"}, {"eph": True}):
        assert accuracy_m(errors) is None


def test_fix_without_any_estimate_gets_the_default_for_its_mode() -> None:
    # nl2008u's first TPV: a 2D fix with no eph, epx or epy.
    tpv = chk_tpvs("nl2008u")[0]
    assert tpv["mode"] == 2 and not {"eph", "epx", "epy"} & tpv.keys()
    # 2035-05-26T09:12:32Z (2015 + 1024 weeks) = 2_063_783_552
    fix = parse_tpv(tpv, 2_063_783_553.0)
    assert isinstance(fix, dict) and "accuracy_m" not in fix
    assert default_accuracy_m(2) == 92.509  # 150 m (HDOP 10 x 15 m) x 0.6167273
    assert default_accuracy_m(3) == 46.255  # 75 m (HDOP 5 x 15 m) x 0.6167273
    admitted = GpsdSensor(LocationSensorConfig()).accept(tpv, 2_063_783_553.0)
    assert admitted is not None
    assert list(admitted)[:3] == ["lat", "lon", "accuracy_m"]
    assert admitted["accuracy_m"] == 92.509 and admitted["mode"] == 2


def test_tpv_time() -> None:
    assert tpv_time("2026-11-22T09:53:05.802Z") == HAICOM_FIRST_FIX_T
    assert tpv_time("2026-11-22T09:53:05Z") == 1_795_341_185.0
    assert tpv_time(1_253_593_085.47) == 1_253_593_085.47  # protocol < 3.10 sent numbers
    for bad in (None, "", "yesterday", True, math.nan, [1]):
        assert tpv_time(bad) is None


def _reason(result: dict[str, Any] | Rejection) -> str:
    assert isinstance(result, Rejection), result
    return result.reason


def test_parser_refusals() -> None:
    fix = chk_tpvs("haicom-305N")[8]
    t = HAICOM_FIRST_FIX_T
    assert _reason(parse_tpv(chk_tpvs("haicom-305N")[0], t)) == "no_fix"  # {"mode":1}
    assert _reason(parse_tpv({"class": "TPV", "mode": 0}, t)) == "no_fix"
    assert _reason(parse_tpv({"class": "TPV"}, t)) == "no_fix"
    assert _reason(parse_tpv({**fix, "lat": None}, t)) == "no_position"
    assert _reason(parse_tpv({k: v for k, v in fix.items() if k != "lon"}, t)) == "no_position"
    assert _reason(parse_tpv({**fix, "lat": -90.5}, t)) == "out_of_range"
    assert _reason(parse_tpv({**fix, "lon": 180.01}, t)) == "out_of_range"
    # telit-he910's first fixes come before any time: they cannot be aged.
    untimed = chk_tpvs("telit-he910")[111]
    assert untimed["mode"] == 3 and "time" not in untimed
    assert _reason(parse_tpv(untimed, t)) == "no_time"
    # From the future: more than 5 s after the read time.
    assert _reason(parse_tpv(fix, t - 5.001)) == "future_fix"
    assert isinstance(parse_tpv(fix, t - 5.0), dict)


def _sensor(**config: Any) -> GpsdSensor:
    return GpsdSensor(LocationSensorConfig(**config))


def test_gate_refusals_are_counted() -> None:
    # bt451's first timed fix: eph 1899.81 -> 1171.665 m.
    tpv = chk_tpvs("bt451")[13]
    fix_t = 1_879_687_505.0  # 2029-07-25T15:25:05Z
    assert tpv_time(tpv["time"]) == fix_t
    strict = _sensor(max_accuracy_m=1000.0)
    assert strict.accept(tpv, fix_t) is None
    assert _sensor(max_accuracy_m=1171.665).accept(tpv, fix_t) is not None  # at the limit
    assert dict(strict.rejected) == {"poor_accuracy": 1}

    aging = _sensor(max_age_s=120.0)
    assert aging.accept(tpv, fix_t + 120.001) is None
    assert aging.accept(tpv, fix_t + 120.0) is not None  # exactly max_age_s old passes
    assert dict(aging.rejected) == {"stale_fix": 1}

    # telit-he910: 10:51:53.710, then 10:51:53.408 (the receiver's clock steps back 0.302 s).
    telit = chk_tpvs("telit-he910")
    sensor = _sensor()
    assert sensor.accept(telit[114], 1_552_387_915.0) is not None
    assert sensor.accept(telit[115], 1_552_387_915.0) is None
    assert sensor.accept(telit[114], 1_552_387_915.0) is not None  # the same time again passes
    assert sensor.accept(telit[116], 1_552_387_915.0) is not None  # 10:51:54.408
    assert dict(sensor.rejected) == {"time_backward": 1}


# The client over a real loopback socket: the test plays gpsd with scripted bytes.


class ScriptedServer:
    """Accepts one connection, records what the client sends, sends what it is told.

    The connection is accepted by the first ``send``, in the caller's thread (the client's
    ``connect`` has completed by then: the kernel queues it), so no thread outlives a test."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(5.0)
        self.port = self.listener.getsockname()[1]
        self.conn: socket.socket | None = None
        self.received = b""
        self._lock = threading.Lock()

    def send(self, data: bytes) -> None:
        with self._lock:
            if self.conn is None:
                self.conn, _ = self.listener.accept()
                self.conn.settimeout(5.0)
                self.received = self.conn.recv(4096)
            self.conn.sendall(data)

    def close(self) -> None:
        with self._lock:
            if self.conn is not None:
                self.conn.close()
            self.listener.close()


@pytest.fixture
def server() -> Iterator[ScriptedServer]:
    s = ScriptedServer()
    yield s
    s.close()


def _poll(client: GpsdClient) -> list[dict[str, Any]]:
    return client.poll(wait_s=2.0)


def test_client_watches_and_frames_lines(server: ScriptedServer) -> None:
    client = GpsdClient("127.0.0.1", server.port)
    client.connect()
    server.send(b'{"class":"VERSION","release":"3.22","proto_major":3}\r\n{"class":"TPV","mo')
    assert [r["class"] for r in _poll(client)] == ["VERSION"]  # the half line waits
    assert server.received == b'?WATCH={"enable":true,"json":true}\n'
    server.send(b'de":1}\nnot json\n[1, 2]\n\n{"class":"SKY","satellites":[]}\n')
    assert [r["class"] for r in _poll(client)] == ["TPV", "SKY"]
    assert client.bad_lines == {"not_json": 1, "not_object": 1}
    client.close()


def test_client_class_filter(server: ScriptedServer) -> None:
    client = GpsdClient("127.0.0.1", server.port, classes=("TPV",))
    client.connect()
    server.send(b'{"class":"SKY","satellites":[]}\n{"class":"TPV","mode":1}\n')
    assert _poll(client) == [{"class": "TPV", "mode": 1}]
    client.close()


def test_client_returns_what_came_before_the_close(server: ScriptedServer) -> None:
    client = GpsdClient("127.0.0.1", server.port)
    client.connect()
    server.send(b'{"class":"TPV","mode":1}\n')
    server.close()
    reports: list[dict[str, Any]] = []
    with pytest.raises(ConnectionError):
        while True:
            reports += _poll(client)
    assert reports == [{"class": "TPV", "mode": 1}]
    assert not client.connected
    with pytest.raises(ConnectionRefusedError):  # the next poll reconnects: nobody listens
        client.poll()


def test_client_close_with_nothing_is_an_error(server: ScriptedServer) -> None:
    client = GpsdClient("127.0.0.1", server.port)
    client.connect()
    server.send(b"")
    server.close()
    with pytest.raises(ConnectionError, match="gpsd closed the connection"):
        while True:
            _poll(client)
    assert not client.connected


def test_first_read_after_connecting_waits_for_a_fix(server: ScriptedServer) -> None:
    """gpsd greets at once but reports a fix only at the receiver's next epoch."""
    tpv = chk_tpvs("haicom-305N")[8]
    sensor = GpsdSensor(LocationSensorConfig(gpsd_port=server.port, max_age_s=1e9))
    greeting = b'{"class":"VERSION","release":"3.22"}\n'
    timers = [
        threading.Timer(0.0, server.send, [greeting]),
        threading.Timer(0.4, server.send, [json.dumps(tpv).encode() + b"\n"]),
    ]
    for timer in timers:
        timer.start()
    sample = sensor.read(HAICOM_FIRST_FIX_T + 1.0)
    for timer in timers:
        timer.join(10.0)
    assert sample is not None and sample.data["fix_t"] == HAICOM_FIRST_FIX_T
    assert sensor.read(HAICOM_FIRST_FIX_T + 2.0) is None  # connected: nothing new, no wait
    sensor.close()
