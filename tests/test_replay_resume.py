"""Replaying into a database that already holds part or all of the same traces goes on after
the committed samples: nothing stored twice, nothing lost, the same events as one clean run,
whether the earlier replay finished, was interrupted, or was killed with SIGKILL."""

from __future__ import annotations

import dataclasses
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from _tools import reap

from agent import config as config_mod
from agent.cli import main
from agent.demo import write_synthetic_trace
from agent.escalation.escalator import Escalator
from agent.memory.store import MemoryStore
from agent.runtime.replay import progress_key, replay_files


def _rows(db: Path) -> tuple[list[tuple[object, ...]], list[tuple[object, ...]]]:
    with sqlite3.connect(db) as conn:
        samples = conn.execute("select t_us, sensor, data from samples order by id").fetchall()
        events = conn.execute(
            "select t_us, kind, subject, data from events order by t_us, kind, subject, data"
        ).fetchall()
    return samples, events


@pytest.fixture(scope="module")
def week(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A three-day synthetic trace and the database of one uninterrupted replay of it."""
    root = tmp_path_factory.mktemp("resume")
    trace = root / "days.jsonl"
    write_synthetic_trace(trace, days=3)
    reference = root / "reference.db"
    replay_files([trace], config_mod.Config(), db=reference)
    return trace, reference


def test_a_second_replay_of_the_same_trace_stores_nothing_twice(
    week: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    trace, reference = week
    db = tmp_path / "twice.db"
    assert main(["replay", "--db", str(db), str(trace)]) == 0
    capsys.readouterr()
    assert main(["replay", "--db", str(db), str(trace)]) == 0
    err = capsys.readouterr().err
    assert "were already in" in err
    assert _rows(db) == _rows(reference)


def test_an_interrupted_replay_resumes_to_the_events_of_one_clean_run(
    week: tuple[Path, Path], tmp_path: Path
) -> None:
    trace, reference = week
    db = tmp_path / "stopped.db"
    read = 0

    def stop_midway(n: int) -> None:
        nonlocal read
        read += n
        if read > trace.stat().st_size * 0.4:
            raise KeyboardInterrupt  # Ctrl-C: the batch so far is committed on the way out

    with pytest.raises(KeyboardInterrupt):
        replay_files([trace], config_mod.Config(), db=db, on_progress=stop_midway)
    partial, _ = _rows(db)
    reference_samples, _ = _rows(reference)
    assert 0 < len(partial) < len(reference_samples)
    result = replay_files([trace], config_mod.Config(), db=db)
    assert result.resumed_after == len(partial)
    assert _rows(db) == _rows(reference)


def test_a_replay_stopped_after_a_part_that_woke_twice_resumes_with_both_wakes(
    week: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A part of the samples that wakes the larger model twice or more: a stop right after
    the first commit that writes a wake of that part loses none of its wakes on resume (a
    commit per wake kept the part's samples with its first wake only, and the resumed
    replay, going on after them, never ran the others). The anomaly rule wakes for the
    first day's anomalies too here, without its cooldown, and the escalation's debounce is
    shorter, for parts with several wakes."""
    trace, _ = week
    default = config_mod.Config()
    eager = dataclasses.replace(
        default,
        rules=tuple(
            dataclasses.replace(r, data={}, cooldown_s=0.0) if r.name == "anomaly" else r
            for r in default.rules
        ),
        escalation=dataclasses.replace(default.escalation, debounce_s=60.0),
    )
    reference = tmp_path / "reference.db"
    replay_files([trace], eager, db=reference)
    sizes: list[int] = []
    wake_all = Escalator.wake_all

    def counting(self: Escalator, requests: list[object], **kw: bool) -> list[object]:
        sizes.append(len(requests))
        return wake_all(self, requests, **kw)  # type: ignore[arg-type]

    with monkeypatch.context() as patch:
        patch.setattr(Escalator, "wake_all", counting)
        replay_files([trace], eager, db=tmp_path / "counted.db")
    several = next((k for k, n in enumerate(sizes) if n >= 2), None)
    assert several is not None, f"no part of the trace woke twice: {sizes}"
    try_flush = MemoryStore.try_flush
    wake_commits = 0

    def stop_after(self: MemoryStore, also: object = None) -> bool:
        nonlocal wake_commits
        written = try_flush(self, also=also)  # type: ignore[arg-type]
        if also is not None and written:
            wake_commits += 1
            if wake_commits == several + 1:
                raise KeyboardInterrupt  # stopped right after that part's first wake commit
        return written

    db = tmp_path / "stopped.db"
    with monkeypatch.context() as patch:
        patch.setattr(MemoryStore, "try_flush", stop_after)
        with pytest.raises(KeyboardInterrupt):
            replay_files([trace], eager, db=db)
    replay_files([trace], eager, db=db)
    assert _rows(db) == _rows(reference)


def test_a_replay_killed_with_sigkill_resumes_to_the_same_database(
    week: tuple[Path, Path], tmp_path: Path
) -> None:
    trace, reference = week
    db = tmp_path / "killed.db"
    key = progress_key([trace])
    argv = [sys.executable, "-m", "agent", "replay", "--db", str(db), str(trace)]
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        progress = None
        while progress is None and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
            try:
                with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1) as conn:
                    row = conn.execute("select value from meta where key = ?", (key,)).fetchone()
                    progress = row[0] if row else None
            except sqlite3.OperationalError:
                pass
        assert progress is not None and '"done": false' in progress, "no commit before the end"
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        reap(proc)
    with sqlite3.connect(db) as conn:
        assert conn.execute("pragma integrity_check").fetchone()[0] == "ok"
    result = replay_files([trace], config_mod.Config(), db=db)
    assert result.resumed_after > 0
    assert _rows(db) == _rows(reference)
