"""Alembic owns the schema: head equals the code's metadata, and upgrading is idempotent."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect

from agent.memory.db import (
    HEAD_REVISION,
    current_revision,
    head_revision,
    open_engine,
    stored_revision,
    upgrade,
)
from agent.memory.schema import metadata

REPO = Path(__file__).resolve().parents[2]


def test_upgrade_gives_the_code_schema_and_is_idempotent(tmp_path: Path) -> None:
    engine = open_engine(tmp_path / "m.db")
    assert current_revision(engine) is None
    assert upgrade(engine) == head_revision()
    with engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), metadata) == []
        before = sorted(inspect(conn).get_table_names())
    assert upgrade(engine) == head_revision()  # second upgrade: a no-op
    with engine.connect() as conn:
        assert sorted(inspect(conn).get_table_names()) == before
    assert set(before) >= {"samples", "events", "counters", "meta", "alembic_version"}
    engine.dispose()


def test_upgrade_leaves_the_apps_logging_alone(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    app = logging.getLogger("agent.test_app")
    engine = open_engine(tmp_path / "m.db")
    upgrade(engine)
    engine.dispose()
    assert not app.disabled
    with caplog.at_level(logging.INFO, logger="agent.test_app"):
        app.info("still here")
    assert "still here" in caplog.text


def test_alembic_command_line_upgrades_an_empty_file(tmp_path: Path) -> None:
    db = tmp_path / "cli.db"
    alembic = Path(sys.executable).parent / "alembic"
    run = [str(alembic), "-x", f"db={db}", "upgrade", "head"]
    env = dict(os.environ)
    for _ in range(2):
        done = subprocess.run(run, cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
    engine = open_engine(db)
    assert current_revision(engine) == head_revision()
    with engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), metadata) == []
    engine.dispose()


def test_upgrading_an_old_database_keeps_its_rows(tmp_path: Path) -> None:
    engine = open_engine(tmp_path / "old.db")
    assert upgrade(engine, "0001") == "0001"
    with engine.begin() as conn:
        conn.exec_driver_sql(
            "INSERT INTO samples (t_us, sensor, data) VALUES (1000000, 'system', '{\"cpu_pct\":5}')"
        )
        conn.exec_driver_sql("INSERT INTO counters (name, value) VALUES ('rejected.bad_json', 3)")
    assert upgrade(engine) == head_revision()
    with engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT t_us, sensor FROM samples").all() == [
            (1000000, "system")
        ]
        assert conn.exec_driver_sql("SELECT value FROM counters").scalar() == 3
        assert compare_metadata(MigrationContext.configure(conn), metadata) == []
    engine.dispose()


def test_the_shipped_head_constant_is_alembics_head() -> None:
    assert HEAD_REVISION == head_revision()


def test_a_database_at_head_opens_without_alembic(tmp_path: Path) -> None:
    """The daemon's path: a fresh process upgrading a database already at head never imports
    Alembic (about 10 MB of its memory); an old one still upgrades through it."""
    engine = open_engine(tmp_path / "h.db")
    assert stored_revision(engine) is None
    upgrade(engine)
    assert stored_revision(engine) == HEAD_REVISION
    engine.dispose()
    old = open_engine(tmp_path / "old.db")
    upgrade(old, "0001")
    old.dispose()
    probe = (
        "import sys\n"
        "from agent.memory.db import open_engine, upgrade\n"
        "for name in sys.argv[1:]:\n"
        "    print(upgrade(open_engine(name)), 'alembic' in sys.modules)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe, str(tmp_path / "h.db"), str(tmp_path / "old.db")],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split("\n")[:2] == [f"{HEAD_REVISION} False", f"{HEAD_REVISION} True"]


_KILL_AT_STATEMENT = """
import os, signal, sys
from sqlalchemy import Engine, event
from agent.memory.db import open_engine, upgrade

kill_at, seen = int(sys.argv[2]), []

@event.listens_for(Engine, "before_cursor_execute")
def _count(conn, cursor, statement, parameters, context, executemany):
    seen.append(statement)
    if len(seen) == kill_at:
        os.kill(os.getpid(), signal.SIGKILL)

upgrade(open_engine(sys.argv[1]))
print(len(seen))
"""


def _first_start(db: Path, kill_at: int) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", _KILL_AT_STATEMENT, str(db), str(kill_at)],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120,
    )


def test_a_kill_during_the_first_migration_leaves_a_database_the_next_start_can_use(
    tmp_path: Path,
) -> None:
    """SQLite's driver commits each CREATE TABLE on its own unless told otherwise: a kill -9
    in the middle of the first start used to leave half a schema and no revision."""
    whole = _first_start(tmp_path / "whole.db", kill_at=0)
    assert whole.returncode == 0, whole.stderr
    statements = int(whole.stdout.split()[-1])
    assert statements > 20  # six migrations' DDL, each a place to be killed
    for kill_at in (statements // 4, statements // 2, statements - 2):
        db = tmp_path / f"killed-{kill_at}.db"
        killed = _first_start(db, kill_at)
        assert killed.returncode == -9, killed.stderr
        engine = open_engine(db)
        with engine.connect() as conn:
            assert inspect(conn).get_table_names() == [], f"half a schema after {kill_at}"
        assert upgrade(engine) == HEAD_REVISION
        with engine.connect() as conn:
            assert compare_metadata(MigrationContext.configure(conn), metadata) == []
        engine.dispose()
