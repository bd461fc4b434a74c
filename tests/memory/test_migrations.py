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
