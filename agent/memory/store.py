"""MemoryStore: the one writer of samples, events and counters, committing in batches.

Batches close when ``commit_interval_s`` of *sample time* has passed since the batch began
(the daemon: every 10 s), when ``max_batch`` rows wait (replay), and on ``flush``/``close``.
Raw samples older than ``retention_s`` (sample time) are deleted as batches are committed.
A locked or full database keeps the batch in memory, logs one line, counts it and retries at
the next chance; nothing already committed is touched.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, Engine, delete, func, insert, select
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import OperationalError, SQLAlchemyError
from sqlalchemy.sql.functions import coalesce

from agent.errors import StorageError
from agent.features.sessions import AppSession
from agent.jsonfast import dumps_compact
from agent.memory import schema
from agent.memory.spill import read_spill, write_spill
from agent.memory.state_rows import place_from_row, place_row, weights_from_row, weights_row
from agent.power.ledger import Ledger
from agent.samples import Event, Sample, from_us, to_us

if TYPE_CHECKING:
    from agent.pipeline import StageState

logger = logging.getLogger(__name__)

#: Rows held back while the database refuses writes; past this the oldest samples go.
MAX_PENDING_ROWS = 200_000
_PRUNE_EVERY_S = 3600.0
#: Sample time between commits of the stages' bulky state (see ``attach_state``).
FULL_STATE_EVERY_S = 6 * 3600.0
#: A holding store retries a refused commit at most this far apart in sample time.
RETRY_MAX_S = 300.0


_INSERT_SAMPLE = "INSERT INTO samples (t_us, sensor, data) VALUES (?, ?, ?)"


def _event_row(event: Event) -> dict[str, Any]:
    return {
        "t_us": to_us(event.t),
        "kind": event.kind,
        "subject": event.subject,
        "data": dumps_compact(event.data),
    }


def _step_s(data: str) -> float:
    step = json.loads(data).get("step_s")
    return float(step) if isinstance(step, int | float) else 0.0


def _sum_known(a: Any, b: Any) -> Any:
    return coalesce(a + b, a, b)


# The upserts of every commit, built once: SQLAlchemy builds a statement in hundreds of
# microseconds, and a live commit (every few samples) ran several of them per changed part.
def _upsert(table: Any, keys: list[str], set_: Callable[[Any], dict[str, Any]]) -> Any:
    stmt = sqlite_insert(table)
    return stmt.on_conflict_do_update(index_elements=keys, set_=set_(stmt.excluded))


_UPSERT_DETECTOR_STATE = _upsert(schema.detector_state, ["name"], lambda new: {"data": new.data})
_UPSERT_SESSION = _upsert(
    schema.app_sessions,
    ["app", "start_us"],
    lambda new: {"title": new.title, "end_us": new.end_us, "polls": new.polls},
)
_ADD_COUNT = _upsert(
    schema.counters, ["name"], lambda new: {"value": schema.counters.c.value + new.value}
)
_LEDGER = schema.power_ledger.c
_ADD_LEDGER = _upsert(
    schema.power_ledger,
    ["hour_us", "origin", "component"],
    lambda new: {
        "cpu_s": _LEDGER.cpu_s + new.cpu_s,
        "calls": _LEDGER.calls + new.calls,
        # NULL means "not measured": a sum where both are known, else the known one.
        "covered_s": _sum_known(_LEDGER.covered_s, new.covered_s),
        "energy_j": _sum_known(_LEDGER.energy_j, new.energy_j),
    },
)


class MemoryStore:
    def __init__(
        self,
        engine: Engine,
        *,
        commit_interval_s: float | None = 10.0,
        max_batch: int = 5000,
        retention_s: float | None = None,
        full_state_every_s: float = FULL_STATE_EVERY_S,
        hold_on_failure: bool = True,
    ) -> None:
        """``hold_on_failure``: a refused commit (locked, full) keeps the rows in memory and
        retries, backing off in sample time (the daemon: the disk may free up); without it
        the ``StorageError`` is raised (replay: stop, and resume later)."""
        self.engine = engine
        self.commit_interval_s = commit_interval_s
        self.max_batch = max_batch
        #: (t_us, sensor, data) rows, as the one prepared insert takes them.
        self._samples: list[tuple[int, str, str]] = []
        self._events: list[dict[str, Any]] = []
        self._counts: Counter[str] = Counter()
        self._sessions: dict[tuple[str, int], dict[str, Any]] = {}
        self._batch_t: float | None = None
        self._failing = False
        self._state_provider: Callable[[bool], StageState] | None = None
        self._full_state_t: float | None = None
        self._written_parts: dict[str, str] = {}
        self.retention_s = retention_s
        self._latest_t: float | None = None
        self._last_t: float | None = None  # the last sample queued
        self._pruned_t: float | None = None
        self._ledger: Ledger | None = None
        self._energy_label: str | None = None
        self._full_state_every_s = full_state_every_s
        #: Samples handed to ``record`` since this store was opened.
        self.recorded = 0
        self._progress: tuple[str, Callable[[], str]] | None = None
        self._hold_on_failure = hold_on_failure
        self._retry_t: float | None = None
        self._retry_wait_s = 0.0

    # -- writing ------------------------------------------------------------------------------
    def record(
        self,
        sample: Sample,
        events: Iterable[Event] = (),
        sessions: Iterable[AppSession] = (),
    ) -> None:
        """Queue one sample with the events and app sessions it produced; commit when the
        batch is due."""
        self.queue([sample], events, sessions)
        self.commit_if_due()

    def queue(
        self,
        samples: Sequence[Sample],
        events: Iterable[Event] = (),
        sessions: Iterable[AppSession] = (),
    ) -> None:
        """Queue samples (in arrival order) with the events and app sessions they produced;
        nothing is committed (``commit_if_due``). Sessions are upserted by ``(app,
        start_t)``: the last state wins."""
        if not samples:
            return
        for session in sessions:
            key = (session.app, to_us(session.start_t))
            self._sessions[key] = {
                "app": session.app,
                "title": session.title,
                "start_us": key[1],
                "end_us": to_us(session.end_t),
                "polls": session.polls,
            }
        self._samples.extend((to_us(s.t), s.sensor, dumps_compact(s.data)) for s in samples)
        self.recorded += len(samples)
        self._queue_events(events)
        if self._batch_t is None:
            self._batch_t = samples[0].t
        latest = max(s.t for s in samples)
        if self._latest_t is None or latest > self._latest_t:
            self._latest_t = latest
        self._last_t = samples[-1].t

    def commit_if_due(self) -> None:
        """Commit when the batch is due: ``commit_interval_s`` of sample time since it began,
        or ``max_batch`` samples waiting."""
        if self._batch_t is None or self._last_t is None:
            return
        t = self._last_t
        due_by_time = (
            self.commit_interval_s is not None and t - self._batch_t >= self.commit_interval_s
        )
        if not (due_by_time or len(self._samples) >= self.max_batch):
            return
        if not self._hold_on_failure:
            self.flush()
        elif self._retry_t is None or t >= self._retry_t:
            # After a refusal, retry at doubling intervals of sample time, not every sample
            # (each retry writes the whole held batch again).
            if self.try_flush():
                self._retry_t, self._retry_wait_s = None, 0.0
            else:
                self._retry_wait_s = min(max(2 * self._retry_wait_s, 1.0), RETRY_MAX_S)
                self._retry_t = t + self._retry_wait_s

    def record_events(self, events: Iterable[Event]) -> None:
        """Queue events that came after their sample was recorded (the escalation stage's);
        they commit with the next batch."""
        self._queue_events(events)

    def _queue_events(self, events: Iterable[Event]) -> None:
        self._events.extend(_event_row(event) for event in events)

    def pending(self) -> tuple[list[tuple[int, str, str]], list[dict[str, Any]]]:
        """The sample rows ``(t_us, sensor, data)`` and event rows (``t_us``, ``kind``,
        ``subject``, ``data``) not committed yet, ``data`` as JSON text, oldest first: what
        memory holds beyond the database, for readers that must see all of it (the
        escalation's context)."""
        return list(self._samples), list(self._events)

    def count(self, name: str, n: int = 1) -> None:
        """Add ``n`` to a running total, committed with the next batch."""
        self._counts[name] += n

    def count_all(self, counts: Mapping[str, int], prefix: str = "") -> None:
        for name, n in counts.items():
            self._counts[prefix + name] += n

    def try_flush(self, also: Callable[[Connection], Iterable[Event]] | None = None) -> bool:
        """Commit what waits; on a locked or full database keep it for later. True if written.
        ``also`` writes more in the same transaction and returns events to insert with it."""
        try:
            self.flush(also=also)
        except StorageError as exc:
            self._counts["storage.write_failed"] += 1
            if not self._failing:
                logger.error("%s; keeping %d samples in memory to retry", exc, len(self._samples))
            self._failing = True
            self._shed()
            return False
        if self._failing:
            logger.warning("database writable again; pending samples committed")
            self._failing = False
        return True

    def _shed(self) -> None:
        excess = len(self._samples) - MAX_PENDING_ROWS
        if excess > 0:
            del self._samples[:excess]
            self._counts["storage.samples_dropped"] += excess

    def flush(
        self,
        *,
        final: bool = False,
        also: Callable[[Connection], Iterable[Event]] | None = None,
    ) -> None:
        """Commit everything pending in one transaction, or raise ``StorageError``. ``final``
        (at close) commits the stages' whole state even with nothing else pending."""
        pending = self._samples or self._events or self._counts or self._sessions
        if not pending and also is None and not (final and self._state_provider is not None):
            return
        try:
            with self.engine.begin() as conn:
                if self._samples:
                    # The DBAPI's executemany with one prepared statement: SQLAlchemy's own
                    # path builds a parameter dict per row (8 µs a row, against 3).
                    conn.exec_driver_sql(_INSERT_SAMPLE, self._samples)
                if self._events:
                    conn.execute(insert(schema.events), self._events)
                if self._sessions:
                    conn.execute(_UPSERT_SESSION, list(self._sessions.values()))
                if self._counts:
                    counts = [{"name": k, "value": n} for k, n in self._counts.items()]
                    conn.execute(_ADD_COUNT, counts)
                self._prune(conn)
                self._write_state(conn, final)
                self._write_ledger(conn)
                if also is not None:
                    rows = [_event_row(e) for e in also(conn)]
                    if rows:
                        conn.execute(insert(schema.events), rows)
                if self._progress is not None:
                    key, value = self._progress[0], self._progress[1]()
                    stmt = sqlite_insert(schema.meta).values(key=key, value=value)
                    conn.execute(
                        stmt.on_conflict_do_update(index_elements=["key"], set_={"value": value})
                    )
        except OperationalError as exc:
            raise StorageError(str(self.engine.url.database), str(exc.orig)) from exc
        if self._ledger is not None:
            self._ledger.written()
        self._samples.clear()
        self._events.clear()
        self._counts.clear()
        self._sessions.clear()
        self._batch_t = None

    def attach_progress(self, key: str, provider: Callable[[], str]) -> None:
        """Meta row ``key`` is set to ``provider()`` in every commit, so it always describes
        exactly what is committed (replay's position in its traces)."""
        self._progress = (key, provider)

    def attach_ledger(self, ledger: Ledger) -> None:
        """The power ledger's rows go with every commit (added to the stored hours)."""
        self._ledger = ledger

    def _write_ledger(self, conn: Connection) -> None:
        if self._ledger is None:
            return
        rows = self._ledger.rows()
        if not rows:
            return
        label = self._ledger.energy_label
        if label is not None and label != self._energy_label:
            # Which measured source the ``node`` rows' energy comes from (the report says).
            stmt = sqlite_insert(schema.meta).values(key="energy_source", value=label)
            conn.execute(stmt.on_conflict_do_update(index_elements=["key"], set_={"value": label}))
            self._energy_label = label
        conn.execute(_ADD_LEDGER, rows)

    def attach_state(self, provider: Callable[[bool], StageState]) -> None:
        """Stages' state to commit with every batch (fence machines, places, the stay in
        progress, the anomaly stage's windows), so a restart picks up where the last commit
        left off. ``provider(full)`` adds the bulky parts (the anomaly stage's histories,
        about 21 KB per stream) when ``full``: once per ``FULL_STATE_EVERY_S`` of sample time
        and at close, so a phone does not rewrite megabytes every ten seconds; after a crash
        they are at most that old."""
        self._state_provider = provider

    def _write_state(self, conn: Connection, final: bool) -> None:
        """Commit the parts of the stages' state that changed since the last commit: the
        anomaly state of a quiet stream moves every sample, but fences and places rarely."""
        if self._state_provider is None:
            return
        latest = self._latest_t
        full = final or self._full_state_t is None
        if latest is not None and self._full_state_t is not None:
            full = full or latest - self._full_state_t >= self._full_state_every_s
        if full:
            self._full_state_t = latest
        state = self._state_provider(full)
        places = [place_row(p) for p in state["places"]]
        weights = [weights_row(state["weights"])] if state["weights"] is not None else []
        parts: dict[str, Any] = {"fence_state": state["fence_state"], "places": places}
        parts.update({f"detector:{k}": v for k, v in state["detector_state"].items()})
        written = self._written_parts
        texts = {k: json.dumps(v, sort_keys=True) for k, v in parts.items()}
        if texts.get("fence_state") != written.get("fence_state"):
            conn.execute(delete(schema.fence_state))
            rows = [{"name": n, "data": dumps_compact(d)} for n, d in state["fence_state"].items()]
            if rows:
                conn.execute(insert(schema.fence_state), rows)
        changed = [
            {"name": key[9:], "data": text}
            for key, text in texts.items()
            if key.startswith("detector:") and written.get(key) != text
        ]
        if changed:
            conn.execute(_UPSERT_DETECTOR_STATE, changed)
        for row in weights:
            key = f"weights:{row['model']}"
            # The blob changes only with a kept training round: its number and time say it.
            text = f"{row['sha256']}:{row['rounds']}:{row['trained_us']}"
            texts[key] = text
            if written.get(key) != text:
                stmt = sqlite_insert(schema.model_weights).values(**row)
                conn.execute(
                    stmt.on_conflict_do_update(
                        index_elements=["model"],
                        set_={k: v for k, v in row.items() if k != "model"},
                    )
                )
        if texts.get("places") != written.get("places"):
            for place in places:
                stmt = sqlite_insert(schema.places).values(**place)
                conn.execute(
                    stmt.on_conflict_do_update(
                        index_elements=["id"], set_={k: v for k, v in place.items() if k != "id"}
                    )
                )
        self._written_parts = texts

    def load_state(self) -> StageState:
        """What ``attach_state`` last committed (empty on a new database)."""
        fence_rows = self.query(select(schema.fence_state))
        detector_rows = self.query(select(schema.detector_state))
        place_rows = self.query(select(schema.places).order_by(schema.places.c.id))
        weight_rows = self.query(select(schema.model_weights))
        return {
            "fence_state": {r.name: json.loads(r.data) for r in fence_rows},
            "detector_state": {r.name: json.loads(r.data) for r in detector_rows},
            "places": [place_from_row(dict(r._mapping)) for r in place_rows],
            "weights": weights_from_row(dict(weight_rows[0]._mapping)) if weight_rows else None,
        }

    def _prune(self, conn: Connection) -> None:
        """Delete raw samples past the retention, at most once per hour of sample time.

        Retention is real time: a forward step of the system clock inside the retention period
        (a ``clock.jump`` event) would make every sample before it look older than it is, so
        the cutoff moves back by the steps (a 30-day step must not delete the samples of the
        hour before it)."""
        if self.retention_s is None or self._latest_t is None:
            return
        if self._pruned_t is not None and self._latest_t - self._pruned_t < _PRUNE_EVERY_S:
            return
        window_us = to_us(self._latest_t - self.retention_s)
        events = schema.events
        jumps = conn.execute(
            select(events.c.data).where(events.c.kind == "clock.jump", events.c.t_us >= window_us)
        )
        stepped_s = sum(max(0.0, _step_s(data)) for (data,) in jumps)
        cutoff = to_us(self._latest_t - self.retention_s - stepped_s)
        gone = conn.execute(delete(schema.samples).where(schema.samples.c.t_us < cutoff))
        if gone.rowcount:
            logger.debug("retention: %d samples older than %s deleted", gone.rowcount, cutoff)
        self._pruned_t = self._latest_t

    def close(self) -> None:
        """Final commit. When the database refuses it, a holding store keeps the rows in a
        spill file (``memory/spill.py``) for the next start; raises ``StorageError`` when
        they could not be kept at all."""
        try:
            self.flush(final=True)
        except StorageError as exc:
            if not self._hold_on_failure or not self._spill(exc):
                raise
        finally:
            self.engine.dispose()

    def _spill(self, exc: StorageError) -> bool:
        rows = {
            "samples": [{"t_us": t, "sensor": k, "data": d} for t, k, d in self._samples],
            "events": self._events,
            "counters": [{"name": k, "value": v} for k, v in self._counts.items()],
        }
        path = write_spill(str(self.engine.url.database), rows)
        if path is None:
            return False
        logger.error(
            "%s; %d samples and %d events kept in %s, committed at the next start",
            exc,
            len(self._samples),
            len(self._events),
            path,
        )
        return True

    def commit_spill(self) -> int:
        """Commit the rows a stop could not write (``close``); returns how many samples.
        Still refused: they stay in the file and the next start tries again."""
        found = read_spill(str(self.engine.url.database))
        if found is None:
            return 0
        path, rows = found
        try:
            with self.engine.begin() as conn:
                if rows["samples"]:
                    conn.execute(insert(schema.samples), rows["samples"])
                if rows["events"]:
                    conn.execute(insert(schema.events), rows["events"])
                if rows["counters"]:
                    conn.execute(_ADD_COUNT, rows["counters"])
        except (OperationalError, SQLAlchemyError) as exc:
            logger.error("the rows kept in %s still cannot be committed: %s", path, exc)
            return 0
        path.unlink(missing_ok=True)
        logger.warning(
            "%d samples and %d events a stop could not write committed from %s",
            len(rows["samples"]),
            len(rows["events"]),
            path,
        )
        return len(rows["samples"])

    # -- reading ------------------------------------------------------------------------------
    def events(self, *, since: float | None = None, kind: str | None = None) -> list[Event]:
        return [event for _, event in self.numbered_events(since=since, kind=kind)]

    def numbered_events(
        self, *, since: float | None = None, kind: str | None = None
    ) -> list[tuple[int, Event]]:
        """Stored events with their ids (``vigil explain EVENT_ID`` takes one)."""
        query = select(schema.events).order_by(schema.events.c.t_us, schema.events.c.id)
        if since is not None:
            query = query.where(schema.events.c.t_us >= to_us(since))
        if kind is not None:
            query = query.where(schema.events.c.kind == kind)
        rows = self.query(query)
        return [(r.id, Event(from_us(r.t_us), r.kind, r.subject, json.loads(r.data))) for r in rows]

    def samples(self, sensor: str | None = None) -> list[Sample]:
        query = select(schema.samples).order_by(schema.samples.c.id)
        if sensor is not None:
            query = query.where(schema.samples.c.sensor == sensor)
        return [Sample(r.sensor, from_us(r.t_us), json.loads(r.data)) for r in self.query(query)]

    def app_sessions(self) -> list[AppSession]:
        query = select(schema.app_sessions).order_by(schema.app_sessions.c.start_us)
        return [
            AppSession(r.app, r.title, from_us(r.start_us), from_us(r.end_us), r.polls)
            for r in self.query(query)
        ]

    def newest_sample_t(self) -> float | None:
        """The time of the newest committed sample, or None on an empty database."""
        newest = self.query(select(func.max(schema.samples.c.t_us)))[0][0]
        return None if newest is None else from_us(newest)

    def sample_count(self) -> int:
        return int(self.query(select(func.count()).select_from(schema.samples))[0][0])

    def counters(self) -> dict[str, int]:
        rows = self.query(select(schema.counters).order_by(schema.counters.c.name))
        return {r.name: r.value for r in rows}

    def meta(self) -> dict[str, str]:
        return {r.key: r.value for r in self.query(select(schema.meta))}

    def query(self, query: Any) -> list[Any]:
        """The rows of a read query; ``StorageError`` when the database cannot answer."""
        try:
            with self.engine.connect() as conn:
                return list(conn.execute(query).all())  # one fetch, not one a row
        except SQLAlchemyError as exc:
            raise StorageError(str(self.engine.url.database), str(exc)) from exc
