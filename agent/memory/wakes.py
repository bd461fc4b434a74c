"""The wakes and findings tables: a wake's record as it starts, its cost and the model's text
when it ends, and the findings as users list them (``vigil findings``)."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Engine, func, insert, select, update
from sqlalchemy.exc import OperationalError

from agent.errors import StorageError
from agent.memory import schema
from agent.samples import Event, from_us, to_us


@dataclass(frozen=True)
class WakeCost:
    """What one wake cost, measured from outside its process. ``started`` is wall time."""

    started: float
    wall_s: float
    cpu_s: float
    peak_rss_kb: int | None
    tokens_in: int | None = None
    tokens_out: int | None = None


@dataclass(frozen=True)
class Said:
    """What one finding named, and when."""

    t: float
    cause: str
    culprit: str | None


class WakeStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def start(
        self,
        *,
        t: float,
        start_t: float,
        triggers: list[dict[str, Any]],
        origin: str,
        backend: str,
        model: str | None,
        model_sha256: str | None,
        status: str,
        finding: Mapping[str, Any],
        conn: Connection | None = None,
    ) -> int:
        """Record a wake and its finding (the diagnosis, the template text); returns its id.
        With ``conn``, inside that transaction (the store's commit of the batch that woke it)."""
        row = {
            "t_us": to_us(t),
            "start_us": to_us(start_t),
            "triggers": json.dumps(triggers, sort_keys=True),
            "origin": origin,
            "backend": backend,
            "model": model,
            "model_sha256": model_sha256,
            "status": status,
        }
        if conn is None:
            with _writing(self.engine) as own:
                return _insert_wake(own, row, t, finding)
        return _insert_wake(conn, row, t, finding)

    def finish(
        self,
        wake_id: int,
        *,
        status: str,
        reason: str | None = None,
        cost: WakeCost | None = None,
        model_text: str | None = None,
        text: str | None = None,
        check: str | None = None,
    ) -> None:
        """The wake's end: its status and cost, and the model's text (``text`` when it
        passed the check)."""
        values: dict[str, Any] = {"status": status, "reason": reason}
        if cost is not None:
            values.update(
                started_us=to_us(cost.started),
                wall_s=cost.wall_s,
                cpu_s=cost.cpu_s,
                peak_rss_kb=cost.peak_rss_kb,
                tokens_in=cost.tokens_in,
                tokens_out=cost.tokens_out,
            )
        found: dict[str, Any] = {"model_text": model_text, "check": check}
        if text is not None:
            found.update(text=text, text_source="model")
        with _writing(self.engine) as conn:
            conn.execute(update(schema.wakes).where(schema.wakes.c.id == wake_id).values(values))
            conn.execute(
                update(schema.findings).where(schema.findings.c.wake_id == wake_id).values(found)
            )

    def lost_events(self) -> list[Event]:
        """The ``wake.done`` events of wakes whose row was committed but whose event was not
        (the event goes with the next batch: a kill in between loses it). Built from the
        finding as the escalation built them, oldest first, to be recorded again. A wake
        asked by hand (``vigil explain``) has no event to lose."""
        events, wakes, findings = schema.events, schema.wakes, schema.findings
        with self.engine.connect() as conn:
            told = {
                int(wake)
                for (wake,) in conn.execute(
                    select(func.json_extract(events.c.data, "$.wake")).where(
                        events.c.kind == "wake.done"
                    )
                )
                if wake is not None
            }
            rows = conn.execute(
                select(
                    wakes.c.id,
                    wakes.c.t_us,
                    findings.c.cause,
                    findings.c.culprit,
                    findings.c.culprit_kind,
                )
                .join(findings, findings.c.wake_id == wakes.c.id)
                .where(wakes.c.origin != "explain")
                .order_by(wakes.c.id)
            ).all()
        return [
            Event(
                from_us(r.t_us),
                "wake.done",
                r.cause,
                {
                    "cause": r.cause,
                    "culprit": r.culprit,
                    "culprit_kind": r.culprit_kind,
                    "wake": r.id,
                },
            )
            for r in rows
            if r.id not in told
        ]

    def close_interrupted(self) -> int:
        """Wakes left ``running`` by a daemon that died (``kill -9``, power cut) are
        ``stopped``; returns how many."""
        with _writing(self.engine) as conn:
            done = conn.execute(
                update(schema.wakes)
                .where(schema.wakes.c.status == "running")
                .values(status="stopped", reason="vigil ended before the model answered")
            )
        return int(done.rowcount or 0)

    def diagnosed(self, start_t: float) -> str | None:
        """The cause of the latest finding of the incident that began at ``start_t`` (its
        wakes' ``start_t``); None when none was recorded."""
        w, f = schema.wakes.c, schema.findings.c
        query = (
            select(f.cause)
            .join(schema.wakes, w.id == f.wake_id)
            .where(w.start_us == to_us(start_t))
            .order_by(f.t_us.desc(), f.wake_id.desc())
            .limit(1)
        )
        try:
            with self.engine.connect() as conn:
                row = conn.execute(query).first()
        except OperationalError as exc:
            raise StorageError(str(self.engine.url.database), str(exc.orig)) from exc
        return None if row is None else str(row.cause)

    def woken_since(self, since: float) -> dict[int, float]:
        """The incidents (by their first trigger's time, in microseconds) whose first wake
        came from ``since`` on, and when (a second look is its incident's); wakes asked by hand
        (``vigil explain``) left out."""
        w = schema.wakes.c
        first = func.min(w.t_us)
        query = (
            select(w.start_us, first)
            .where(w.origin != "explain")
            .group_by(w.start_us)
            .having(first >= to_us(since))
        )
        try:
            with self.engine.connect() as conn:
                rows = conn.execute(query).all()
        except OperationalError as exc:
            raise StorageError(str(self.engine.url.database), str(exc.orig)) from exc
        return {int(start): from_us(t) for start, t in rows}

    def said_since(self, since: float) -> list[Said]:
        """What the findings from ``since`` on named, oldest first."""
        f = schema.findings.c
        query = (
            select(f.t_us, f.cause, f.culprit)
            .where(f.t_us >= to_us(since))
            .order_by(f.t_us, f.wake_id)
        )
        try:
            with self.engine.connect() as conn:
                rows = conn.execute(query).all()
        except OperationalError as exc:
            raise StorageError(str(self.engine.url.database), str(exc.orig)) from exc
        return [Said(from_us(r.t_us), str(r.cause), r.culprit) for r in rows]

    def findings(self, since: float | None = None) -> list[dict[str, Any]]:
        """Findings with their wake's cost, oldest first."""
        w, f = schema.wakes.c, schema.findings.c
        query = (
            select(
                f.wake_id,
                f.t_us,
                f.cause,
                f.culprit,
                f.culprit_kind,
                f.text,
                f.text_source,
                f.summary,
                f.advice,
                f.model_text,
                f.check,
                f.evidence,
                w.start_us,
                w.origin,
                w.backend,
                w.model,
                w.model_sha256,
                w.status,
                w.reason,
                w.wall_s,
                w.cpu_s,
                w.peak_rss_kb,
                w.tokens_in,
                w.tokens_out,
                w.triggers,
            )
            .join(schema.wakes, w.id == f.wake_id)
            .order_by(f.t_us, f.wake_id)
        )
        if since is not None:
            query = query.where(f.t_us >= to_us(since))
        try:
            with self.engine.connect() as conn:
                rows = [dict(r._mapping) for r in conn.execute(query)]
        except OperationalError as exc:
            raise StorageError(str(self.engine.url.database), str(exc.orig)) from exc
        for row in rows:
            row["t"], row["start_t"] = from_us(row.pop("t_us")), from_us(row.pop("start_us"))
            row["evidence"] = json.loads(row["evidence"])
            row["triggers"] = json.loads(row["triggers"])
        return rows


def _insert_wake(
    conn: Connection, row: Mapping[str, Any], t: float, finding: Mapping[str, Any]
) -> int:
    key = conn.execute(insert(schema.wakes).values(**row)).inserted_primary_key
    assert key is not None
    wake_id = int(key[0])
    conn.execute(
        insert(schema.findings).values(
            wake_id=wake_id,
            t_us=to_us(t),
            text=finding["summary"],
            text_source="template",
            **finding,
        )
    )
    return wake_id


@contextmanager
def _writing(engine: Engine) -> Iterator[Connection]:
    """One transaction; SQLAlchemy's operational errors (locked, full) as ``StorageError``."""
    try:
        with engine.begin() as conn:
            yield conn
    except OperationalError as exc:
        raise StorageError(str(engine.url.database), str(exc.orig)) from exc
