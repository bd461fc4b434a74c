"""Opening the SQLite file (WAL, private permissions) and bringing its schema to head.

Alembic (about 10 MB of a daemon's memory) is imported only when the schema must move: a
database already at ``HEAD_REVISION`` is recognised by reading ``alembic_version`` directly.
"""

from __future__ import annotations

import fcntl
import logging
import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

import agent
from agent.errors import StorageError

if TYPE_CHECKING:
    from alembic.config import Config as AlembicConfig

logger = logging.getLogger(__name__)

#: The newest migration in ``migrations/versions`` (a test checks it against Alembic's head).
HEAD_REVISION = "0006"

#: How long a writer waits for another to release the database before it gives up.
BUSY_TIMEOUT_S = 5.0


def db_url(target: str | Path) -> str:
    """A SQLAlchemy URL from a URL or a plain file path."""
    text = str(target)
    return text if "://" in text else f"sqlite:///{Path(text).expanduser().absolute()}"


def prepare_file(path: Path) -> None:
    """Create the folder (0700) and the file (0600) before SQLite does, so nobody else can
    read the user's location history even for a moment."""
    if not path.parent.exists():
        path.parent.mkdir(parents=True, mode=0o700)
        os.chmod(path.parent, 0o700)  # mkdir's mode is masked by the umask
    fd = os.open(path, os.O_CREAT | os.O_RDWR, 0o600)
    os.close(fd)
    if path.stat().st_mode & 0o077:
        os.chmod(path, 0o600)


def open_engine(target: str | Path, *, busy_timeout_s: float = BUSY_TIMEOUT_S) -> Engine:
    """An engine on the SQLite database at ``target`` (a path or ``sqlite:///`` URL)."""
    url = make_url(db_url(target))
    if url.get_backend_name() != "sqlite":
        raise StorageError(str(target), "only SQLite databases are supported")
    if url.database and url.database != ":memory:":
        try:
            prepare_file(Path(url.database))
        except OSError as exc:
            raise StorageError(url.database, exc.strerror or str(exc)) from exc
    engine = create_engine(url, connect_args={"timeout": busy_timeout_s})
    event.listen(engine, "connect", _on_connect)
    return engine


def _on_connect(dbapi_connection: sqlite3.Connection, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def migrations_dir() -> Path:
    """The Alembic scripts: packaged as ``agent/_migrations`` in a wheel, else the repo's."""
    here = Path(agent.__file__).parent
    packaged = here / "_migrations"
    return packaged if packaged.is_dir() else here.parent / "migrations"


def _alembic_config() -> AlembicConfig:
    from alembic.config import Config as AlembicConfig

    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(migrations_dir()))
    return cfg


def head_revision() -> str | None:
    """The head of the shipped migrations, as Alembic finds it (``HEAD_REVISION``)."""
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(_alembic_config()).get_current_head()


def current_revision(engine: Engine) -> str | None:
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def stored_revision(engine: Engine) -> str | None:
    """The revision in ``alembic_version``, read with plain SQL: None for a new database,
    one without the table, or one at several heads (Alembic sorts those out)."""
    try:
        with engine.connect() as conn:
            found = conn.exec_driver_sql(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'alembic_version'"
            ).first()
            rows = (
                conn.exec_driver_sql("SELECT version_num FROM alembic_version").all()
                if found
                else []
            )
    except SQLAlchemyError as exc:
        raise StorageError(
            str(engine.url.database), f"cannot read the schema's revision: {exc}"
        ) from exc
    return str(rows[0][0]) if len(rows) == 1 else None


def upgrade(engine: Engine, revision: str = "head") -> str | None:
    """Bring the schema to ``revision`` in-process; a no-op when it is there. Returns where
    the database now is. A database at ``HEAD_REVISION`` asked for head never loads Alembic."""
    if revision in ("head", HEAD_REVISION) and stored_revision(engine) == HEAD_REVISION:
        logger.debug("database %s at revision %s", engine.url.database, HEAD_REVISION)
        return HEAD_REVISION
    from alembic import command

    cfg = _alembic_config()
    ddl_engine = transactional_engine(engine)
    try:
        with ddl_engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, revision)
    except SQLAlchemyError as exc:
        raise StorageError(str(engine.url.database), f"schema upgrade failed: {exc}") from exc
    finally:
        ddl_engine.dispose()
    now_at = current_revision(engine)
    logger.debug("database %s at revision %s", engine.url.database, now_at)
    return now_at


def transactional_engine(engine: Engine) -> Engine:
    """An engine on the same file whose transactions cover DDL too.

    Python's sqlite3 opens a transaction only before INSERT, UPDATE and DELETE, so each
    ``CREATE TABLE`` of a migration would commit on its own: a kill in the middle of the
    first start left half a schema and no revision, a file no later start could use. Here
    the driver's own handling is off and every transaction is an explicit ``BEGIN
    IMMEDIATE`` (the write lock taken up front, so two processes migrating one file queue
    instead of failing): a migration lands whole or not at all.
    """
    ddl_engine = create_engine(
        engine.url, connect_args={"timeout": BUSY_TIMEOUT_S, "isolation_level": None}
    )
    event.listen(ddl_engine, "connect", _on_connect)
    event.listen(ddl_engine, "begin", lambda conn: conn.exec_driver_sql("BEGIN IMMEDIATE"))
    return ddl_engine


class WriterLock:
    """An exclusive lock beside the database, held by the one daemon that writes to it.

    A second ``vigil run`` on the same file stops with a clear error instead of interleaving
    its batches with the first. The lock goes with the process, even on ``kill -9``.
    """

    def __init__(self, db_file: str) -> None:
        self.path = Path(db_file + ".lock")
        self._fd: int | None = None

    def acquire(self) -> None:
        fd = os.open(self.path, os.O_CREAT | os.O_RDWR, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            raise StorageError(
                str(self.path.with_suffix("")), "another vigil daemon is writing to it"
            ) from None
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


@contextmanager
def opened(target: str | Path) -> Iterator[Engine]:
    """The database at ``target``, its schema brought to the shipped head, closed after the
    block: how every command opens the memory."""
    engine = open_engine(target)
    try:
        upgrade(engine)
        yield engine
    finally:
        engine.dispose()
