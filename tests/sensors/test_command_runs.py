"""Outside commands run for the sensors leave no process behind: killed at the timeout with
everything they started, including processes that left the process group (setsid) or were
orphaned (a double fork), and after a normal exit, whatever they left running. Stand-in
commands (shell scripts) play termux-location and friends, which cannot run here."""

from __future__ import annotations

import ctypes
import os
import re
import stat
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
from conftest import TESTS

from agent.config import BatterySensorConfig, LocationSensorConfig
from agent.errors import SensorReadError, SensorUnavailable
from agent.sensors.commands import (
    MARK,
    MAX_TIMEOUT_S,
    become_subreaper,
    cap_timeout,
    run_command,
)
from agent.sensors.termux_battery import TermuxBatterySensor
from agent.sensors.termux_location import TermuxLocationSensor

#: Every process a test here starts inherits this variable, so the test can find them all.
TEST_MARK = "VIGIL_TEST_MARK"

#: Ways out of a process group kill, each writing the pid of the ``sleep`` it leaves.
ESCAPES = """\
setsid sleep 1000 >/dev/null 2>&1 & echo $! >> {pids}
(sleep 1000 >/dev/null 2>&1 & echo $! >> {pids})
(setsid sleep 1000 >/dev/null 2>&1 & echo $! >> {pids})
"""


def marked(mark: str) -> list[psutil.Process]:
    """The running processes that carry the test's mark (this one aside)."""
    found = []
    for proc in psutil.process_iter():
        try:
            if proc.pid != os.getpid() and proc.environ().get(TEST_MARK) == mark:
                found.append(proc)
        except psutil.Error:
            continue  # gone, a zombie, or another user's
    return found


def survivors(pids: list[int], mark: str) -> list[int]:
    """Of ``pids``, those still there: running with the test's mark, or dead but unreaped."""
    left = []
    for pid in pids:
        try:
            proc = psutil.Process(pid)
            if proc.status() == psutil.STATUS_ZOMBIE or proc.environ().get(TEST_MARK) == mark:
                left.append(pid)
        except psutil.Error:
            continue  # gone (or no longer ours to read: another process has the pid)
    return left


@pytest.fixture
def mark(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A mark every process the test starts inherits; whatever carries it at the end is
    killed and waited for, so even a failing test leaves no orphan behind."""
    value = uuid.uuid4().hex
    monkeypatch.setenv(TEST_MARK, value)
    yield value
    left = marked(value)
    for proc in left:
        try:
            proc.kill()
        except psutil.Error:
            pass
    psutil.wait_procs(left, timeout=10)


def pids_in(path: Path) -> list[int]:
    return [int(word) for word in path.read_text().split()] if path.exists() else []


def command(bin_dir: Path, name: str, body: str) -> str:
    """A stand-in ``name`` in ``bin_dir``; returns the PATH to find it on."""
    bin_dir.mkdir(exist_ok=True)
    script = bin_dir / name
    script.write_text("#!/bin/sh\n" + body)
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return str(bin_dir)


def test_setsid_and_double_fork_orphans_are_killed_at_the_timeout(
    tmp_path: Path, mark: str
) -> None:
    """Regression: a command that calls setsid, or double-forks, escaped the kill of its
    process group at the timeout: a hanging termux-location left orphans at every poll."""
    pids = tmp_path / "pids"
    script = ESCAPES.format(pids=pids) + f"echo $$ >> {pids}\nsleep 1000\n"
    path = command(tmp_path / "bin", "termux-location", script)
    sensor = TermuxLocationSensor(LocationSensorConfig(termux_timeout_s=5.0), path=path)
    with pytest.raises(SensorUnavailable, match=r"gave no fix in 5 s \(killed\)"):
        sensor.read(1_780_272_000.0)
    started = pids_in(pids)
    assert len(started) == 4, "the script did not get to its hang in 5 s"
    assert survivors(started, mark) == []
    assert marked(mark) == []


def test_what_a_finished_command_left_running_is_killed(tmp_path: Path, mark: str) -> None:
    """A command that exits at once but leaves processes running (not holding its output)
    gives its output, and nothing of it is left."""
    pids = tmp_path / "pids"
    done = run_command(["sh", "-c", ESCAPES.format(pids=pids) + "echo answer\n"], 10.0)
    assert (done.returncode, done.stdout) == (0, "answer\n")
    started = pids_in(pids)
    assert len(started) == 3
    assert survivors(started, mark) == []


def test_a_command_that_keeps_forking_is_killed_to_the_last(tmp_path: Path, mark: str) -> None:
    pids = tmp_path / "pids"
    script = (
        "i=0\nwhile [ $i -lt 200 ]; do\n"
        f"  (setsid sleep 1000 >/dev/null 2>&1 & echo $! >> {pids})\n"
        "  i=$((i + 1))\n  sleep 0.02\ndone\nsleep 1000\n"
    )
    with pytest.raises(subprocess.TimeoutExpired):
        run_command(["sh", "-c", script], 2.0)
    started = pids_in(pids)
    assert started, "the script started nothing in 2 s"
    assert survivors(started, mark) == []
    assert marked(mark) == []


def test_other_processes_are_left_alone(tmp_path: Path, mark: str) -> None:
    """Only the run's processes die: a child of this process that leads its own process
    group (as the larger model's does) and one in this process's group live on."""
    own_group = subprocess.Popen(["sleep", "1000"])
    leader = subprocess.Popen(["sleep", "1000"], start_new_session=True)
    try:
        pids = tmp_path / "pids"
        with pytest.raises(subprocess.TimeoutExpired):
            run_command(["sh", "-c", ESCAPES.format(pids=pids) + "sleep 1000\n"], 2.0)
        assert survivors(pids_in(pids), mark) == []
        assert own_group.poll() is None and leader.poll() is None
    finally:
        for proc in (own_group, leader):
            proc.kill()
            proc.wait()


def test_the_run_carries_its_own_mark(tmp_path: Path) -> None:
    done = run_command(["sh", "-c", f'echo "${MARK}"'], 10.0, env={"PATH": os.defpath})
    assert re.fullmatch(rf"{os.getpid()}\.\d+\n", done.stdout)


def test_output_that_is_not_utf8_is_replaced_not_an_exception(tmp_path: Path) -> None:
    """Regression: output that is not UTF-8 raised UnicodeDecodeError out of the sensor (a
    bug to the poller: the daemon stopped)."""
    assert run_command(["printf", "\\377ok"], 10.0).stdout == "\ufffdok"
    path = command(tmp_path / "bin", "termux-battery-status", "printf '{\\377}'\n")
    with pytest.raises(SensorReadError, match="printed no JSON"):
        TermuxBatterySensor(BatterySensorConfig(), path=path).read(0.0)


def test_no_command_outlives_the_service_stop_timeout(caplog: pytest.LogCaptureFixture) -> None:
    """Regression: termux-location's 60 s timeout outlasted the unit's 30 s stop timeout: a
    stop during a hanging call was cut short by SIGKILL (the last batch lost, the call's
    processes orphaned)."""
    unit = (TESTS.parent / "systemd" / "vigil.service").read_text()
    stop_s = float(re.search(r"^TimeoutStopSec=(\d+)", unit, re.M)[1])  # type: ignore[index]
    assert MAX_TIMEOUT_S <= stop_s - 10.0  # time left to flush and exit
    assert cap_timeout("termux-location", 60.0) == MAX_TIMEOUT_S
    assert "using 20 s" in caplog.text
    assert cap_timeout("termux-location", 7.0) == 7.0


def test_this_process_becomes_a_child_subreaper() -> None:
    """Orphans of a command come to vigil, not to init, so they can be found and reaped."""
    if not sys.platform.startswith("linux"):
        pytest.skip("PR_SET_CHILD_SUBREAPER is Linux's")
    assert become_subreaper()
    flag = ctypes.c_int(0)
    assert ctypes.CDLL(None).prctl(37, ctypes.byref(flag), 0, 0, 0) == 0  # PR_GET_...
    assert flag.value == 1
