"""The store: private files, WAL, batched commits in sample time, a locked database survived,
and committed rows surviving kill -9."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

from sqlalchemy import text

from agent.memory.db import open_engine, upgrade
from agent.memory.store import MemoryStore
from agent.samples import Event, Sample


def _sample(t: float) -> Sample:
    return Sample("system", t, {"cpu_pct": 1.5, "load1": 0.1})


def _committed(path: Path) -> int:
    with sqlite3.connect(path) as conn:
        return int(conn.execute("select count(*) from samples").fetchone()[0])


def test_files_are_private_and_in_wal_mode(db_path: Path, store: MemoryStore) -> None:
    store.record(_sample(1.0))
    store.flush()
    assert db_path.parent.stat().st_mode & 0o777 == 0o700
    assert db_path.stat().st_mode & 0o777 == 0o600
    with store.engine.connect() as conn:
        assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert conn.execute(text("PRAGMA synchronous")).scalar() == 1  # NORMAL
    wal = db_path.with_name(db_path.name + "-wal")
    assert wal.exists() and wal.stat().st_mode & 0o777 == 0o600


def test_existing_loose_file_is_tightened(tmp_path: Path) -> None:
    path = tmp_path / "loose.db"
    path.touch(mode=0o644)
    os.chmod(path, 0o644)
    open_engine(path).dispose()
    assert path.stat().st_mode & 0o777 == 0o600


def test_commits_are_batched_in_sample_time(db_path: Path, store: MemoryStore) -> None:
    for t in (0.0, 3.0, 6.0, 9.0):
        store.record(_sample(t))
    assert _committed(db_path) == 0  # 9 s of sample time: still one open batch
    store.record(_sample(10.0))  # 10 s after the batch began: commit
    assert _committed(db_path) == 5
    store.record(_sample(11.0), [Event(11.0, "rule.fired", "r", {"v": 1})])
    store.count("rejected.bad_json", 2)
    store.flush()
    assert _committed(db_path) == 6
    assert store.events() == [Event(11.0, "rule.fired", "r", {"v": 1})]
    store.count("rejected.bad_json")
    store.flush()
    assert store.counters() == {"rejected.bad_json": 3}


def test_a_locked_database_keeps_the_batch_and_retries(db_path: Path, store: MemoryStore) -> None:
    store.engine.dispose()
    store.engine = open_engine(db_path, busy_timeout_s=0.05)  # don't wait the daemon's 5 s
    blocker = sqlite3.connect(db_path, timeout=0)
    blocker.execute("BEGIN EXCLUSIVE")
    store.record(_sample(1.0))
    assert store.try_flush() is False
    store.record(_sample(2.0))
    blocker.rollback()
    blocker.close()
    assert store.try_flush() is True
    assert _committed(db_path) == 2
    assert store.counters() == {"storage.write_failed": 1}


def test_committed_rows_survive_kill_9(tmp_path: Path) -> None:
    db_path = tmp_path / "k.db"
    engine = open_engine(db_path)
    upgrade(engine)
    engine.dispose()
    script = textwrap.dedent(
        f"""
        import os, signal, sys
        from agent.memory.db import open_engine
        from agent.memory.store import MemoryStore
        from agent.samples import Sample
        store = MemoryStore(open_engine({str(db_path)!r}), commit_interval_s=10.0)
        for i in range(25):
            store.record(Sample("system", float(i), {{"cpu_pct": float(i)}}))
        # Two batches committed (t 0-10 and 11-21), 22-24 still pending:
        sys.stdout.write("ready\\n"); sys.stdout.flush()
        os.kill(os.getpid(), signal.SIGKILL)
        """
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode == -signal.SIGKILL
    assert done.stdout == "ready\n"
    assert _committed(db_path) == 22
    with sqlite3.connect(db_path) as conn:
        assert conn.execute("pragma integrity_check").fetchone()[0] == "ok"


def test_retention_deletes_old_samples_keeps_events(db_path: Path, store: MemoryStore) -> None:
    store.retention_s = 100.0
    store.record(_sample(0.0), [Event(0.0, "rule.fired", "r", {})])
    store.record(_sample(50.0))
    store.flush()  # latest 50: nothing older than -50
    assert _committed(db_path) == 2
    store.record(_sample(4000.0))  # an hour later in sample time: cutoff 3900
    store.flush()
    assert [s.t for s in store.samples()] == [4000.0]
    assert len(store.events()) == 1


def test_retention_counts_a_forward_clock_step_as_time_not_age(store: MemoryStore) -> None:
    """A 30-day step of the system clock with a 1-day retention: the samples of the minutes
    before it are not 30 days old, and stay until a real day has passed."""
    day = 86_400.0
    store.retention_s = day
    for t in (0.0, 60.0, 120.0):
        store.record(_sample(t))
    store.flush()
    step = 30 * day
    jump = Event(180.0 + step, "clock.jump", "system", {"step_s": step})
    store.record(_sample(180.0 + step), [jump])
    store.flush()
    assert [s.t for s in store.samples()] == [0.0, 60.0, 120.0, 180.0 + step]
    store.record(_sample(180.0 + step + day - 7200.0))  # 22 h of real time later: all kept
    store.flush()
    assert len(store.samples()) == 5
    store.record(_sample(step + day + 100.0))  # a real day after the second sample
    store.flush()
    assert [s.t for s in store.samples()][0] == 120.0  # 0 and 60 are a day old now
    store.record(_sample(180.0 + step + 2 * day))  # the step left the retention window
    store.flush()
    assert [s.t for s in store.samples()] == [180.0 + step + 2 * day]


def test_retention_ignores_backward_and_malformed_steps(store: MemoryStore) -> None:
    store.retention_s = 100.0
    store.record(_sample(0.0), [Event(0.0, "clock.jump", "system", {"step_s": -5000.0})])
    store.record(_sample(4000.0), [Event(4000.0, "clock.jump", "system", {"step_s": "x"})])
    store.flush()
    assert [s.t for s in store.samples()] == [4000.0]


def test_app_sessions_are_upserted_one_row_per_session(store: MemoryStore) -> None:
    from agent.features.sessions import AppSession

    store.record(_sample(0.0), [], [AppSession("firefox", None, 0.0, 0.0, 1)])
    store.record(_sample(5.0), [], [AppSession("firefox", None, 0.0, 5.0, 2)])
    store.flush()
    store.record(_sample(10.0), [], [AppSession("firefox", None, 0.0, 10.0, 3)])
    store.record(
        _sample(15.0),
        [],
        [AppSession("firefox", None, 0.0, 10.0, 3), AppSession("code", None, 15.0, 15.0, 1)],
    )
    store.flush()
    assert store.app_sessions() == [
        AppSession("firefox", None, 0.0, 10.0, 3),
        AppSession("code", None, 15.0, 15.0, 1),
    ]


def test_bulky_state_is_committed_every_few_hours_and_at_close(db_path: Path) -> None:
    """The anomaly stage's histories (``full`` parts) go with the first commit, then once per
    FULL_STATE_EVERY_S of sample time, and at close; the small parts go with every commit."""
    from agent.memory.store import FULL_STATE_EVERY_S
    from agent.pipeline import StageState

    engine = open_engine(db_path)
    upgrade(engine)
    store = MemoryStore(engine, commit_interval_s=10.0)
    asked: list[tuple[float, bool]] = []
    now = [0.0]

    def provider(full: bool) -> StageState:
        asked.append((now[0], full))
        detector: dict[str, object] = {"anomaly": {"at": now[0]}}
        if full:
            detector["anomaly_history"] = {"at": now[0]}
        return {"fence_state": {}, "detector_state": detector, "places": [], "weights": None}

    store.attach_state(provider)
    t = 0.0
    while t <= 2 * FULL_STATE_EVERY_S + 60:
        now[0] = t
        store.record(_sample(t))
        t += 10.0
    now[0] = t
    store.close()
    full_at = [at for at, full in asked if full]
    assert len(asked) > 100
    assert full_at[0] == asked[0][0] and full_at[-1] == t  # the first commit and the close
    assert len(full_at) == 4  # first, after 6 h, after 12 h, close
    saved = MemoryStore(open_engine(db_path)).load_state()["detector_state"]
    assert saved["anomaly"] == {"at": t} and saved["anomaly_history"] == {"at": t}
