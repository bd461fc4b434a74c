"""Location: the fix gate, the static sensor, and which source ``auto`` picks, with a real
TCP listener on loopback standing in for gpsd (and a closed port for none)."""

from __future__ import annotations

import logging
import socket
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from agent.config import LocationSensorConfig
from agent.errors import ConfigError
from agent.samples import Scalar
from agent.sensors.gpsd import GpsdSensor
from agent.sensors.location import (
    FixGate,
    Rejection,
    StaticLocationSensor,
    check_fix_time,
    check_position,
)
from agent.sensors.location_source import build_location_sensor, describe_location
from agent.sensors.termux_location import TermuxLocationSensor

T = 1_795_341_185.0


def _fix(fix_t: float, accuracy_m: float = 10.0) -> dict[str, Scalar]:
    return {"lat": 46.05, "lon": 14.51, "accuracy_m": accuracy_m, "fix_t": fix_t}


def test_gate_limits_are_inclusive() -> None:
    gate = FixGate(LocationSensorConfig(max_accuracy_m=50.0, max_age_s=60.0))
    assert gate.admit(_fix(T - 60.0, accuracy_m=50.0), T) == _fix(T - 60.0, 50.0)
    assert gate.admit(_fix(T - 60.0), T) is not None  # the same time again
    assert gate.admit(_fix(T, accuracy_m=50.001), T) is None
    assert gate.admit(_fix(T - 60.001), T) is None  # stale before it is backward
    assert gate.admit(_fix(T - 61.0), T - 30.0) is None  # fresh enough, but older
    assert gate.admit(Rejection("no_fix", "mode 1"), T) is None
    assert gate.last_fix_t == T - 60.0
    assert dict(gate.rejected) == {
        "poor_accuracy": 1,
        "stale_fix": 1,
        "time_backward": 1,
        "no_fix": 1,
    }


def test_position_and_time_checks() -> None:
    assert check_position(46, -14.5) == (46.0, -14.5)
    assert check_position(90.0, 180.0) == (90.0, 180.0)
    for lat, lon, reason in (
        (None, 14.0, "no_position"),
        (46.0, "14", "no_position"),
        (True, 14.0, "no_position"),
        (90.1, 0.0, "out_of_range"),
        (0.0, -180.5, "out_of_range"),
        (float("nan"), 0.0, "non_finite"),
        (0.0, float("inf"), "non_finite"),
        (10**400, 0.0, "non_finite"),  # an integer beyond any float
    ):
        result = check_position(lat, lon)
        assert isinstance(result, Rejection) and result.reason == reason
    assert check_fix_time(T + 5.0, T) is None  # the tolerance for a clock a little behind
    rejection = check_fix_time(T + 5.5, T)
    assert rejection is not None and rejection.reason == "future_fix"


def test_static_sensor() -> None:
    config = LocationSensorConfig(
        source="static", static_lat=46.0512, static_lon=14.5060, static_accuracy_m=30.0
    )
    sensor = StaticLocationSensor(config)
    sample = sensor.read(T)
    assert (sample.sensor, sample.t, sensor.interval_s) == ("location", T, 30.0)
    assert dict(sample.data) == {
        "lat": 46.0512,
        "lon": 14.506,
        "accuracy_m": 30.0,
        "provider": "static",
    }
    with pytest.raises(ConfigError, match="static_lat, static_lon"):
        StaticLocationSensor(LocationSensorConfig(source="static", static_lat=46.0))
    with pytest.raises(ConfigError, match="off the Earth"):
        StaticLocationSensor(LocationSensorConfig(static_lat=46.0, static_lon=200.0))
    with pytest.raises(ConfigError, match="static_accuracy_m: must be > 0"):
        StaticLocationSensor(
            LocationSensorConfig(static_lat=46.0, static_lon=14.0, static_accuracy_m=0.0)
        )


@pytest.fixture
def listener() -> Iterator[int]:
    """A port where something accepts TCP connections (all ``auto`` asks of gpsd)."""
    with socket.create_server(("127.0.0.1", 0)) as server:
        yield server.getsockname()[1]


@pytest.fixture
def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


def _termux_bin(tmp_path: Path) -> str:
    script = tmp_path / "bin" / "termux-location"
    script.parent.mkdir()
    script.write_text("#!/bin/sh\nexit 0\n")
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return str(script.parent)


def _config(source: str, port: int = 2947, **more: Any) -> LocationSensorConfig:
    return LocationSensorConfig(source=source, gpsd_port=port, **more)


def test_explicit_sources(tmp_path: Path, closed_port: int) -> None:
    assert build_location_sensor(_config("none"), termux=True) is None
    static = _config("static", static_lat=1.0, static_lon=2.0)
    assert isinstance(build_location_sensor(static, termux=False), StaticLocationSensor)
    # Asked for by name, they are built even when not reachable now: reads say why.
    gpsd = build_location_sensor(_config("gpsd", closed_port), termux=False)
    assert isinstance(gpsd, GpsdSensor)
    termux = build_location_sensor(_config("termux"), termux=False, path=str(tmp_path))
    assert isinstance(termux, TermuxLocationSensor)
    with pytest.raises(ConfigError, match="unknown source 'gps'"):
        build_location_sensor(_config("gps"), termux=False)


def test_auto_takes_gpsd_when_it_answers(
    listener: int, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="agent.sensors.location_source")
    sensor = build_location_sensor(
        _config("auto", listener), termux=True, path=_termux_bin(tmp_path)
    )
    assert isinstance(sensor, GpsdSensor)
    assert f"location from gpsd on 127.0.0.1:{listener}" in caplog.messages
    assert describe_location(_config("auto", listener), True) == (
        True,
        f"gpsd answers on 127.0.0.1:{listener}",
    )


def test_auto_without_gpsd(
    closed_port: int, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="agent.sensors.location_source")
    config = _config("auto", closed_port)
    where = f"127.0.0.1:{closed_port}"

    assert build_location_sensor(config, termux=False) is None
    assert f"location off: no gpsd on {where}, not Termux" in caplog.messages
    assert describe_location(config, False) == (False, f"no gpsd on {where}, not Termux")

    path = _termux_bin(tmp_path)
    sensor = build_location_sensor(config, termux=True, path=path)
    assert isinstance(sensor, TermuxLocationSensor)
    ok, why = describe_location(config, True, path=path)
    # The configured 60 s is capped below the service's stop timeout.
    assert ok and why == f"{path}/termux-location -p gps -r once (killed after 20 s)"

    empty = str(tmp_path / "empty")
    assert build_location_sensor(config, termux=True, path=empty) is None
    assert describe_location(config, True, path=empty) == (
        False,
        f"no gpsd on {where}, termux-location not installed"
        " (pkg install termux-api, and the Termux:API app)",
    )


def test_describe_explicit_sources(closed_port: int, listener: int, tmp_path: Path) -> None:
    assert describe_location(_config("none"), True) == (False, "off in config (source = none)")
    static = _config("static", static_lat=46.0512, static_lon=14.506)
    assert describe_location(static, False) == (True, "static place 46.0512, 14.506 (±25 m)")
    assert describe_location(_config("static"), False)[0] is False
    ok, why = describe_location(_config("gpsd", closed_port), False)
    assert not ok and why.startswith(f"gpsd not answering on 127.0.0.1:{closed_port}: ")
    assert describe_location(_config("gpsd", listener), False)[0] is True
    assert describe_location(_config("termux"), False, path=str(tmp_path)) == (
        False,
        "termux-location not installed (pkg install termux-api, and the Termux:API app)",
    )
