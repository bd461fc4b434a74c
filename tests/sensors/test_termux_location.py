"""termux-location: the parser on outputs built from termux-api's documented format
(tests/data/termux/README.md; no phone here), and the command run for real as a stand-in
script on PATH: its answers, its errors, and its hang (killed with every process it started,
and the sensor down)."""

from __future__ import annotations

import stat
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

import pytest
from conftest import DATA

from agent.config import LocationSensorConfig
from agent.errors import SensorReadError, SensorUnavailable
from agent.sensors.location import Rejection
from agent.sensors.termux_location import (
    TermuxLocationSensor,
    parse_termux_location,
    run_command,
)

TERMUX = DATA / "termux"
T = 1_795_341_185.0


def _text(name: str) -> str:
    return (TERMUX / name).read_text()


def test_gps_fix() -> None:
    assert parse_termux_location(_text("location-gps-once.json"), T) == {
        "lat": 46.0510782,
        "lon": 14.5061093,
        "accuracy_m": 3.9000000953674316,  # Android's 68 % radius, taken as is
        "alt_m": 351.29998779296875,
        "speed_mps": 1.25,
        "bearing_deg": 271.5,
        "provider": "gps",
        "vertical_accuracy_m": 2.0999999046325684,
        "mocked": False,
        "fix_t": T - 0.842,  # elapsedMs 842: the fix's age when termux-api wrote it
    }


def test_older_android_network_fix() -> None:
    assert parse_termux_location(_text("location-network-android7.json"), T) == {
        "lat": 46.0498412,
        "lon": 14.5068854,
        "accuracy_m": 18.5,
        "alt_m": 0.0,
        "speed_mps": 0.0,
        "bearing_deg": 0.0,
        "provider": "network",
        "fix_t": T - 3.512,
    }


def test_updates_take_the_last_fix() -> None:
    fix = parse_termux_location(_text("location-updates.json"), T)
    assert isinstance(fix, dict)
    assert (fix["lat"], fix["accuracy_m"], fix["fix_t"]) == (46.0511204, 4.5, T - 0.037)


def test_error_replies_and_empty_output() -> None:
    with pytest.raises(SensorUnavailable, match="Please grant the following permission"):
        parse_termux_location(_text("location-error-permission.json"), T)
    with pytest.raises(SensorUnavailable, match="Failed to get location"):
        parse_termux_location(_text("location-error-no-fix.json"), T)
    with pytest.raises(SensorUnavailable, match="printed nothing"):
        parse_termux_location(" \n", T)
    with pytest.raises(SensorReadError, match="printed no JSON"):
        parse_termux_location("termux-location: illegal option -x\n", T)
    with pytest.raises(SensorReadError):
        parse_termux_location('["latitude", 1]', T)


def test_parser_refusals() -> None:
    base = _text("location-gps-once.json")

    def reason(text: str) -> str:
        result = parse_termux_location(text, T)
        assert isinstance(result, Rejection), result
        return result.reason

    assert reason(base.replace('"accuracy": 3.9000000953674316', '"accuracy": 0.0')) == (
        "no_accuracy"  # Android's 0.0: the location has no accuracy
    )
    assert reason(base.replace('"latitude": 46.0510782', '"latitude": 91.5')) == "out_of_range"
    assert reason(base.replace('"longitude": 14.5061093,', "")) == "no_position"
    assert reason(base.replace('"elapsedMs": 842,', "")) == "no_time"
    assert reason(base.replace('"elapsedMs": 842', '"elapsedMs": -6000')) == "future_fix"


def _command(bin_dir: Path, body: str) -> str:
    """A stand-in termux-location in ``bin_dir``; returns the PATH to give the sensor."""
    bin_dir.mkdir(exist_ok=True)
    script = bin_dir / "termux-location"
    script.write_text("#!/bin/sh\n" + body)
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return str(bin_dir)


def test_sensor_runs_the_command(tmp_path: Path) -> None:
    args = tmp_path / "args"
    path = _command(
        tmp_path / "bin", f'echo "$@" > {args}\ncat {TERMUX / "location-gps-once.json"}\n'
    )
    config = LocationSensorConfig(termux_provider="network", termux_request="last")
    sensor = TermuxLocationSensor(config, path=path)
    sample = sensor.read(T)
    assert sample is not None
    assert (sample.sensor, sample.t, sample.data["lat"], sample.data["fix_t"]) == (
        "location",
        T,
        46.0510782,
        T - 0.842,
    )
    assert args.read_text() == "-p network -r last\n"


def test_sensor_gates_old_and_backward_fixes(tmp_path: Path) -> None:
    old = _command(tmp_path / "old", f"cat {TERMUX / 'location-last-old.json'}\n")
    sensor = TermuxLocationSensor(LocationSensorConfig(max_age_s=120.0), path=old)
    assert sensor.read(T) is None  # elapsedMs 5_400_000: 90 minutes old
    assert dict(sensor.rejected) == {"stale_fix": 1}

    fresh = _command(tmp_path / "fresh", f"cat {TERMUX / 'location-gps-once.json'}\n")
    sensor = TermuxLocationSensor(LocationSensorConfig(), path=fresh)
    assert sensor.read(T) is not None
    assert sensor.read(T - 10.0) is None  # the same fix, read "earlier": time went back
    assert dict(sensor.rejected) == {"time_backward": 1}


def test_command_missing_or_failing(tmp_path: Path) -> None:
    with pytest.raises(SensorUnavailable, match=r"termux-location not installed \(pkg install"):
        TermuxLocationSensor(LocationSensorConfig(), path=str(tmp_path / "empty")).read(T)
    error = _command(tmp_path / "error", f"cat {TERMUX / 'location-error-permission.json'}\n")
    with pytest.raises(SensorUnavailable, match="ACCESS_FINE_LOCATION"):
        TermuxLocationSensor(LocationSensorConfig(), path=error).read(T)
    # What termux-api-package's wrapper prints for a bad -p, with exit status 1.
    usage = _command(
        tmp_path / "usage", "echo \"termux-location: Unsupported provider: 'gsp'\"\nexit 1\n"
    )
    with pytest.raises(SensorUnavailable, match="exited with status 1: .*Unsupported provider"):
        TermuxLocationSensor(LocationSensorConfig(termux_provider="gsp"), path=usage).read(T)
    silent = _command(tmp_path / "silent", "echo 'no Termux:API app' >&2\n")
    with pytest.raises(SensorUnavailable, match=r"printed nothing \(no Termux:API app\)"):
        TermuxLocationSensor(LocationSensorConfig(), path=silent).read(T)
    broken = _command(tmp_path / "broken", "")
    (Path(broken) / "termux-location").chmod(0o644)  # on PATH but not executable: not found
    with pytest.raises(SensorUnavailable, match="not installed"):
        TermuxLocationSensor(LocationSensorConfig(), path=broken).read(T)


def test_runner_errors_are_translated(tmp_path: Path) -> None:
    path = _command(tmp_path / "bin", "exit 0\n")

    def cannot_start(argv: Sequence[str], timeout_s: float) -> subprocess.CompletedProcess[str]:
        raise PermissionError(13, "Permission denied", argv[0])

    def hangs(argv: Sequence[str], timeout_s: float) -> subprocess.CompletedProcess[str]:
        raise subprocess.TimeoutExpired(list(argv), timeout_s)

    with pytest.raises(SensorUnavailable, match="cannot run: .*Permission denied"):
        TermuxLocationSensor(LocationSensorConfig(), run=cannot_start, path=path).read(T)
    config = LocationSensorConfig(termux_timeout_s=7.0)
    with pytest.raises(SensorUnavailable, match="no fix in 7 s"):
        TermuxLocationSensor(config, run=hangs, path=path).read(T)


def _gone(pid: int) -> bool:
    """No such process, or only its zombie (killed, waiting for init to reap it)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except FileNotFoundError:
        return True
    return fields[0] in ("Z", "X")


def test_a_hanging_command_and_its_children_are_killed(tmp_path: Path) -> None:
    """Like the real wrapper (a shell script running termux-api's helper), the script waits
    on a child of its own; killing only the script would leave ``sleep`` running."""
    pids = tmp_path / "pids"
    path = _command(tmp_path / "bin", f"sleep 60 &\necho $$ $! > {pids}\nwait\n")
    sensor = TermuxLocationSensor(LocationSensorConfig(termux_timeout_s=0.5), path=path)
    started = time.monotonic()
    with pytest.raises(SensorUnavailable, match=r"no fix in 0.5 s \(killed\)"):
        sensor.read(T)
    assert time.monotonic() - started < 3.0
    shell, sleeper = (int(p) for p in pids.read_text().split())
    deadline = time.monotonic() + 2.0
    while not (_gone(shell) and _gone(sleeper)) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert _gone(shell) and _gone(sleeper)


def test_run_command_returns_output(tmp_path: Path) -> None:
    done = run_command(["sh", "-c", "echo out; echo err >&2; exit 3"], 5.0)
    assert (done.returncode, done.stdout, done.stderr) == (3, "out\n", "err\n")
    with pytest.raises(FileNotFoundError):
        run_command([str(tmp_path / "nothing")], 5.0)
