"""The fences table, the source of truth for geofences (``vigil fences``, the daemon).

Each change bumps ``meta.fences_version`` in the same transaction, so a running daemon can
tell cheaply that it should reload.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any

from sqlalchemy import Connection, Engine, delete, select
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import OperationalError

from agent.errors import StorageError
from agent.memory import schema

_VERSION_KEY = "fences_version"


class FenceStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def version(self) -> int:
        with self._connect() as conn:
            value = conn.execute(
                select(schema.meta.c.value).where(schema.meta.c.key == _VERSION_KEY)
            ).scalar()
        return int(value) if value is not None else 0

    def features(self) -> list[dict[str, Any]]:
        """Every fence as a GeoJSON Feature, by name."""
        with self._connect() as conn:
            rows = conn.execute(select(schema.fences).order_by(schema.fences.c.name))
            return [json.loads(r.feature) for r in rows]

    def put(
        self, features: Iterable[tuple[str, dict[str, Any]]], *, replace_all: bool = False
    ) -> int:
        """Add or replace fences by name (and drop every other one with ``replace_all``)."""
        rows = [{"name": n, "feature": json.dumps(f, sort_keys=True)} for n, f in features]
        with self._begin() as conn:
            if replace_all:
                conn.execute(delete(schema.fences))
            for row in rows:
                stmt = sqlite_insert(schema.fences).values(**row)
                stmt = stmt.on_conflict_do_update(
                    index_elements=["name"], set_={"feature": stmt.excluded.feature}
                )
                conn.execute(stmt)
            self._bump(conn)
        return len(rows)

    def remove(self, names: Iterable[str]) -> int:
        wanted = list(names)
        with self._begin() as conn:
            gone = conn.execute(delete(schema.fences).where(schema.fences.c.name.in_(wanted)))
            conn.execute(delete(schema.fence_state).where(schema.fence_state.c.name.in_(wanted)))
            self._bump(conn)
        return int(gone.rowcount)

    def _bump(self, conn: Connection) -> None:
        current = conn.execute(
            select(schema.meta.c.value).where(schema.meta.c.key == _VERSION_KEY)
        ).scalar()
        value = str(int(current or 0) + 1)
        stmt = sqlite_insert(schema.meta).values(key=_VERSION_KEY, value=value)
        conn.execute(stmt.on_conflict_do_update(index_elements=["key"], set_={"value": value}))

    def _connect(self) -> AbstractContextManager[Connection]:
        return _translated(self.engine, write=False)

    def _begin(self) -> AbstractContextManager[Connection]:
        return _translated(self.engine, write=True)


@contextmanager
def _translated(engine: Engine, *, write: bool) -> Iterator[Connection]:
    """A connection (a transaction when ``write``) whose errors come out as ``StorageError``."""
    try:
        with engine.begin() if write else engine.connect() as conn:
            yield conn
    except OperationalError as exc:
        raise StorageError(str(engine.url.database), str(exc.orig)) from exc
