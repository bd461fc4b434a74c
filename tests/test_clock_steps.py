"""The daemon under a system clock that steps (libfaketime moves the real process's clock):
+30 days and -1 hour. Polling goes on, each step is a ``clock.jump`` event, sample times
never go back, and retention deletes nothing that is not a real retention period old."""

from __future__ import annotations

import glob
import os
import signal
import sqlite3
import subprocess
from pathlib import Path

import pytest
from _tools import SYSTEM_SENSOR_ONLY, new_database, reap, unavailable, vigil, wait_for

CONFIG = (
    """
[daemon]
commit_interval_s = 1.0
retention_days = 1
[sensors.system]
interval_s = 1.0
[anomaly]
enabled = false
"""
    + SYSTEM_SENSOR_ONLY
)


def _libfaketime() -> str:
    found = sorted(glob.glob("/usr/lib/*/faketime/libfaketimeMT.so.1"))
    if not found:
        unavailable(
            "libfaketime is not installed", "libfaketime is not installed (apt install faketime)"
        )
    return found[0]


def _rows(db: Path, sql: str) -> list[tuple[object, ...]]:
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as conn:
            return conn.execute(sql).fetchall()
    except sqlite3.OperationalError:  # not created yet
        return []


def _times(db: Path) -> list[int]:
    return [int(r[0]) for r in _rows(db, "select t_us from samples order by id")]  # type: ignore[call-overload]


def _jumps(db: Path) -> list[float]:
    rows = _rows(db, "select json_extract(data, '$.step_s') from events where kind = 'clock.jump'")
    return [float(r[0]) for r in rows]  # type: ignore[arg-type]


def test_daemon_rides_clock_steps_forward_and_back(tmp_path: Path) -> None:
    cfg = tmp_path / "config.toml"
    cfg.write_text(CONFIG)
    db = new_database(tmp_path / "vigil.db")
    offset = tmp_path / "faketime"
    offset.write_text("+0\n")
    env = dict(
        os.environ,
        LD_PRELOAD=_libfaketime(),
        FAKETIME_TIMESTAMP_FILE=str(offset),
        FAKETIME_NO_CACHE="1",
        FAKETIME_DONT_FAKE_MONOTONIC="1",  # the step is of the wall clock alone, as NTP's
    )
    proc = subprocess.Popen(
        vigil(cfg, "--db", str(db), "run"), env=env, stderr=subprocess.PIPE, text=True
    )
    try:
        assert wait_for(lambda: len(_times(db)) >= 3), "no samples before the step"
        before = _times(db)

        offset.write_text("+30d\n")  # NTP corrects a board without a real-time clock
        assert wait_for(lambda: len(_jumps(db)) == 1 and len(_times(db)) >= len(before) + 3)
        assert _jumps(db)[0] == pytest.approx(30 * 86_400.0, abs=10.0)
        assert _times(db)[: len(before)] == before  # retention kept the pre-step samples
        after_forward = len(_times(db))

        offset.write_text("+719h\n")  # 30 days less an hour: a step back of 1 h
        assert wait_for(lambda: len(_jumps(db)) == 2 and len(_times(db)) >= after_forward + 5), (
            "polling stopped after the step back"
        )
        assert _jumps(db)[1] == pytest.approx(-3600.0, abs=10.0)
        times = _times(db)
        assert times == sorted(times)  # nothing stamped in the past
        assert times[: len(before)] == before
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    finally:
        reap(proc)
    assert proc.returncode == 0, err
    assert "stepped" in err and "forward" in err and "back" in err
