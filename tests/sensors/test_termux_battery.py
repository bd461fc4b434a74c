"""termux-battery-status: the parser on outputs built from termux-api's documented format
(tests/data/termux/README.md; no phone here), and the command run for real as a stand-in
script on PATH: its output, its hang (killed at the timeout), its absence."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest
from conftest import DATA

from agent.config import BatterySensorConfig
from agent.errors import SensorReadError, SensorUnavailable
from agent.sensors.termux_battery import TermuxBatterySensor, parse_termux_battery

TERMUX = DATA / "termux"


def _reply(name: str) -> dict[str, object]:
    return json.loads((TERMUX / name).read_text())


def test_current_termux_api_output() -> None:
    assert parse_termux_battery(_reply("battery-status-2025.json")) == {
        "battery_pct": 63.0,
        "charging": False,
        "power_W": 1.595,  # 0.412 A x 3.871 V = 1.594852 W
        "current_A": -0.412,  # 412000 uA out of the battery, sign as Android reports it
        "voltage_V": 3.871,
        "temp_C": 29.4,
    }


def test_older_output_without_voltage() -> None:
    assert parse_termux_battery(_reply("battery-status-2020.json")) == {
        "battery_pct": 88.0,
        "charging": True,  # PLUGGED_USB
        "current_A": 1.25,
        "temp_C": 31.0,
    }


def _command(bin_dir: Path, body: str) -> str:
    bin_dir.mkdir(exist_ok=True)
    script = bin_dir / "termux-battery-status"
    script.write_text("#!/bin/sh\n" + body)
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return str(bin_dir)


def test_sensor_runs_the_command(tmp_path: Path) -> None:
    path = _command(tmp_path / "bin", f"cat {TERMUX / 'battery-status-2025.json'}\n")
    sensor = TermuxBatterySensor(BatterySensorConfig(interval_s=60.0), path=path)
    assert sensor.interval_s == 300.0  # polled rarely: it wakes the Termux:API app
    sample = sensor.read(1000.0)
    assert (sample.sensor, sample.t, sample.data["battery_pct"]) == ("battery", 1000.0, 63.0)


def test_error_reply_and_missing_command(tmp_path: Path) -> None:
    path = _command(tmp_path / "bin", f"cat {TERMUX / 'battery-status-error.json'}\n")
    with pytest.raises(SensorUnavailable, match="Battery status not available"):
        TermuxBatterySensor(BatterySensorConfig(), path=path).read(0.0)
    with pytest.raises(SensorUnavailable, match="termux-battery-status not found"):
        TermuxBatterySensor(BatterySensorConfig(), path=str(tmp_path / "empty")).read(0.0)
    silent = _command(tmp_path / "silent", "exit 1\n")
    with pytest.raises(SensorUnavailable, match="printed nothing"):
        TermuxBatterySensor(BatterySensorConfig(), path=silent).read(0.0)


def test_a_hanging_command_is_killed_at_the_timeout(tmp_path: Path) -> None:
    pid_file = tmp_path / "pid"
    path = _command(tmp_path / "bin", f"echo $$ > {pid_file}\nsleep 60\n")
    sensor = TermuxBatterySensor(BatterySensorConfig(termux_timeout_s=0.5), path=path)
    # The sensor is down (the poller backs off), not one reading skipped.
    with pytest.raises(SensorUnavailable, match=r"no answer in 0.5 s \(killed\)"):
        sensor.read(0.0)
    pid = int(pid_file.read_text())
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)  # the child is gone, not left hanging


def test_nan_and_numbers_beyond_any_battery_are_left_out(tmp_path: Path) -> None:
    """Regression: NaN (which Python's JSON decoder takes) went into the sample, so the gate
    refused it whole, and a current beyond any float overflowed: an exception out of
    ``read``. Now such fields are left out, and a reply with nothing usable is one skipped
    reading."""
    reply = {
        "percentage": float("nan"),
        "plugged": "UNPLUGGED",
        "current": 10**400,
        "voltage": 3871,
        "temperature": float("inf"),
    }
    assert parse_termux_battery(reply) == {"charging": False, "voltage_V": 3.871}
    assert parse_termux_battery({"percentage": 101, "voltage": 0, "current": True}) == {}
    path = _command(tmp_path / "bin", 'echo \'{"percentage": NaN, "health": "GOOD"}\'\n')
    with pytest.raises(SensorReadError, match="no usable field"):
        TermuxBatterySensor(BatterySensorConfig(), path=path).read(0.0)
