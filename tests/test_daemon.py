"""The daemon for real: a subprocess polling every second, recording, stopped with SIGTERM.
Everything it read is committed, and replaying its recording gives the events it stored."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
from pathlib import Path

from _tools import free_port, new_database, reap, vigil, wait_for

from agent import config as config_mod
from agent.memory.db import open_engine
from agent.memory.store import MemoryStore
from agent.runtime.replay import replay_files
from agent.runtime.trace import ReadCounts, read_trace

CONFIG = """
[daemon]
commit_interval_s = 2.0
[sensors.system]
interval_s = 1.0
[sensors.battery]
interval_s = 1.0
[sensors.location]
source = "gpsd"             # nothing listens on this port: a real outage from the start
gpsd_port = {free_port}
interval_s = 1.0
[sensors.apps]
interval_s = 1.0
[escalation]
backend = "none"            # the diagnosis alone: wake.done is the same live and replayed
debounce_s = 2.0
wake_unknown = true         # the first readings' diagnosis has no history to name a cause
[[rules]]
name = "memory_in_use"      # true on any running machine: fires on the first reading
stream = "system.mem_used_pct"
above = 0.0
action = "wake"
[[rules]]
name = "load_seen"
stream = "system.load1"
above = -1.0
for_s = 2.0
"""


def _run_recording(
    cfg: Path,
    db: Path,
    record: Path,
    written: Path,
    system_samples: int,
    env: dict[str, str] | None = None,
) -> str:
    """``vigil run --record RECORD`` until ``written`` holds ``system_samples`` system
    samples, stopped with SIGTERM; its stderr (its exit, 0, checked)."""
    proc = subprocess.Popen(
        vigil(cfg, "--db", str(db), "run", "--record", str(record)),
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:

        def enough() -> bool:
            return written.exists() and written.read_text().count('"sensor": "system"') >= (
                system_samples
            )

        assert wait_for(enough, 30.0), "daemon recorded nothing"
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    finally:
        reap(proc)
    assert proc.returncode == 0, err
    return err


def test_daemon_records_stops_cleanly_and_replays_identically(tmp_path: Path) -> None:
    """...and its wake: the same wake.done from the live daemon's memory and the replay's."""
    cfg = tmp_path / "config.toml"
    cfg.write_text(CONFIG.format(free_port=free_port()))
    db = new_database(tmp_path / "data" / "vigil.db")
    trace = tmp_path / "rec.jsonl"
    err = _run_recording(cfg, db, trace, trace, 5, dict(os.environ, VIGIL_LOG_LEVEL="DEBUG"))
    assert "SIGTERM received: stopping" in err
    assert re.search(r"event rule\.fired memory_in_use at \d{4}-\d\d-\d\dT[\d:]{8}Z", err), err
    # Its own [[rules]] replace the defaults: start-up says which it leaves out (memory_full
    # is there: its rule on system.mem_used_pct counts), and the fix.
    assert "the config's rules leave out the default cpu_high, temp_high, anomaly," in err
    assert "(vigil init --add-rules adds them)" in err

    recorded = list(read_trace([trace], ReadCounts()))
    store = MemoryStore(open_engine(db))
    stored = store.samples()
    assert stored == recorded  # every sample read was committed, in order
    assert sum(1 for s in stored if s.sensor == "system") >= 5

    stored_events = store.events()
    kinds = [(e.kind, e.subject) for e in stored_events]
    assert ("rule.fired", "memory_in_use") in kinds and ("rule.fired", "load_seen") in kinds
    assert ("sensor.down", "location") in kinds  # gpsd not answering: recorded as an outage
    assert [k for k, _ in kinds].count("wake.done") == 1  # the live wake, diagnosed
    assert any(s.sensor == "apps" for s in stored)  # processes at least, even without a display

    replayed = []
    replay_files([trace], config_mod.load(cfg), on_event=replayed.append)
    # The store lists events by time; replay emits them in arrival order, and samples of
    # different sensors may arrive a few microseconds out of time order.
    as_json = [e.to_json() for e in sorted(replayed, key=lambda e: e.t)]
    assert as_json == [e.to_json() for e in stored_events]
    store.close()
    with sqlite3.connect(db) as conn:
        assert json.loads(conn.execute("select data from samples limit 1").fetchone()[0])


def test_daemon_tells_systemd_and_refuses_a_second_writer(tmp_path: Path) -> None:
    cfg = tmp_path / "config.toml"
    cfg.write_text(CONFIG.format(free_port=free_port()))
    sock_path = tmp_path / "notify.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(sock_path))
    sock.settimeout(30.0)
    env = dict(os.environ, NOTIFY_SOCKET=str(sock_path), WATCHDOG_USEC="1000000")
    env.pop("WATCHDOG_PID", None)
    proc = subprocess.Popen(
        vigil(cfg, "--db", str(new_database(tmp_path / "v.db")), "run"),
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    messages: list[bytes] = []
    try:
        messages.append(sock.recv(4096))  # READY: the first daemon holds the database
        second = subprocess.run(
            vigil(cfg, "--db", str(new_database(tmp_path / "v.db")), "run"),
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert second.returncode == 2
        assert "another vigil daemon is writing to it" in second.stderr
        while messages.count(b"WATCHDOG=1") < 2:
            messages.append(sock.recv(4096))
        proc.send_signal(signal.SIGTERM)
        while b"STOPPING=1" not in messages:
            messages.append(sock.recv(4096))
        _, err = proc.communicate(timeout=30)
    finally:
        reap(proc)
        sock.close()
    assert proc.returncode == 0, err
    assert messages[0] == b"READY=1"
    assert messages.index(b"READY=1") < messages.index(b"WATCHDOG=1")


WAKE_CONFIG = """
[daemon]
commit_interval_s = 1.0
[sensors.system]
interval_s = 1.0
[sensors.battery]
enabled = false
[sensors.location]
source = "none"
[sensors.apps]
interval_s = 1.0
[escalation]
backend = "command"
command = {command}
timeout_s = 3.0
debounce_s = 1.0
wake_unknown = true         # the first reading's diagnosis has no history to name a cause
[[rules]]
name = "memory_in_use"      # true on any running machine: wakes on the first reading
stream = "system.mem_used_pct"
above = 0.0
action = "wake"
"""


def _run_until(cfg: Path, db: Path, done: object, timeout_s: float = 60.0) -> str:  # type: ignore[type-arg]
    if not db.exists():
        new_database(db)
    proc = subprocess.Popen(
        vigil(cfg, "--db", str(db), "run"),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert wait_for(done, timeout_s), "the daemon never got there"
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    finally:
        reap(proc)
    assert proc.returncode == 0, err
    return err


def _stored(db: Path, query: str) -> list[tuple[object, ...]]:
    if not db.exists():
        return []
    with sqlite3.connect(db) as conn:
        try:
            return list(conn.execute(query))
        except sqlite3.OperationalError:  # not created yet
            return []


def test_a_hanging_model_does_not_stop_the_daemon(tmp_path: Path) -> None:
    """The model runs on its own thread and child: while it hangs, the loop goes on storing
    samples; at the timeout the child is killed and wake.failed recorded."""
    cfg = tmp_path / "config.toml"
    hang = json.dumps([sys.executable, "-c", "import time; time.sleep(60)"])
    cfg.write_text(WAKE_CONFIG.format(command=hang))
    db = tmp_path / "v.db"

    def failed() -> bool:
        return bool(_stored(db, "select 1 from events where kind = 'wake.failed'"))

    _run_until(cfg, db, failed)
    (wake_t,) = _stored(db, "select t_us from events where kind = 'wake.done'")[0]
    (reason,) = _stored(db, "select data from events where kind = 'wake.failed'")[0]
    assert json.loads(str(reason))["reason"] == "no answer in 3 s"
    # Samples taken while the model hung (3 s): the loop did not wait for it.
    during = _stored(
        db,
        f"select count(*) from samples where sensor = 'system' and t_us > {wake_t} "
        f"and t_us < {wake_t} + 2500000",
    )
    assert during[0][0] >= 1
    status = _stored(db, "select status, reason, cpu_s from wakes")
    assert status[0][0] == "failed" and status[0][1] == "no answer in 3 s"


def test_a_crashing_model_is_recorded_and_the_daemon_goes_on(tmp_path: Path) -> None:
    cfg = tmp_path / "config.toml"
    cfg.write_text(
        WAKE_CONFIG.format(command=json.dumps([sys.executable, "-c", "import os; os.abort()"]))
    )
    db = tmp_path / "v.db"

    def failed_and_later() -> bool:
        rows = _stored(db, "select t_us from events where kind = 'wake.failed'")
        if not rows:
            return False
        later = _stored(db, f"select count(*) from samples where t_us > {rows[0][0]}")
        return bool(later and later[0][0] >= 3)

    err = _run_until(cfg, db, failed_and_later)
    (reason,) = _stored(db, "select data from events where kind = 'wake.failed'")[0]
    assert json.loads(str(reason))["reason"] == "killed by SIGABRT"
    assert "larger model: command" in err


def test_a_wake_cut_short_by_kill_9_is_marked_stopped_at_the_next_start(tmp_path: Path) -> None:
    cfg = tmp_path / "config.toml"
    hang = json.dumps([sys.executable, "-c", "import time; time.sleep(20)"])
    cfg.write_text(WAKE_CONFIG.format(command=hang).replace("timeout_s = 3.0", "timeout_s = 30.0"))
    db = new_database(tmp_path / "v.db")
    proc = subprocess.Popen(
        vigil(cfg, "--db", str(db), "run"), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        running = lambda: bool(_stored(db, "select 1 from wakes where status = 'running'"))  # noqa: E731
        assert wait_for(running, 60.0), "no wake started"
        proc.kill()  # SIGKILL while the model is out
        proc.wait(30)
    finally:
        reap(proc)
    assert _stored(db, "select status from wakes") == [("running",)]
    cfg.write_text(
        WAKE_CONFIG.format(command=hang).split("[[rules]]")[0]  # no rule: no new wake
    )
    _run_until(cfg, db, lambda: bool(_stored(db, "select 1 from wakes where status = 'stopped'")))
    assert _stored(db, "select status, reason from wakes") == [
        ("stopped", "vigil ended before the model answered")
    ]


def test_a_restarted_daemon_keeps_the_recording_it_made(tmp_path: Path) -> None:
    """`vigil run --record rec.jsonl` started again (a crash, a restart by the service): the
    first recording stays as it was, the second run records into rec.1.jsonl, and the two
    replay together as the database's samples."""
    cfg = tmp_path / "config.toml"
    cfg.write_text(CONFIG.format(free_port=free_port()))
    db = new_database(tmp_path / "data" / "vigil.db")
    trace, second = tmp_path / "rec.jsonl", tmp_path / "rec.1.jsonl"
    assert "a new memory: nothing stored yet" in _run_recording(cfg, db, trace, trace, 2)
    first = trace.read_text()
    err = _run_recording(cfg, db, trace, second, 2)  # the same --record again
    assert trace.read_text() == first  # the first run's recording, untouched
    assert f"{trace} exists and is kept: this run records into {second}" in err
    assert "resuming: the memory's newest sample is from 20" in err  # a restart says so
    assert "stages' state restored\n" in err
    recorded = list(read_trace([trace, second], ReadCounts()))
    assert MemoryStore(open_engine(db)).samples() == recorded
