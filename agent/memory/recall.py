"""Reading back what memory holds around a moment: samples, one stream's values, events and
places, from the database *and* the batch not committed yet, so a reader sees exactly what the
pipeline has seen (the escalation stage's context, live and in replay alike)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from sqlalchemy import and_, func, select

from agent.memory import schema
from agent.memory.store import MemoryStore
from agent.numbers import finite_float
from agent.samples import KNOWN_SENSORS, Event, Sample, from_us, to_us

#: Streams whose first part is not one of these are imported metrics (``metric`` samples).
_SENSOR_STREAMS = KNOWN_SENSORS - {"metric", "status"}


def _path(field: str) -> str:
    """A JSON path to a top-level key, quoted: keys hold dots (``net.wlan0.rx_Bps``)."""
    return '$."' + field.replace('"', "") + '"'


def _within(sensor: str, t0: float, t1: float) -> Any:
    c = schema.samples.c
    return and_(c.sensor == sensor, c.t_us >= to_us(t0), c.t_us <= to_us(t1))


def split_stream(stream: str) -> tuple[str, str]:
    """(sensor, field) of a stream: ``system.net.wlan0.rx_Bps`` -> (system, net.wlan0.rx_Bps);
    an imported metric's name -> (metric, name)."""
    head, _, rest = stream.partition(".")
    if head in _SENSOR_STREAMS and rest:
        return head, rest
    return "metric", stream


class Recall:
    def __init__(self, store: MemoryStore) -> None:
        self.store = store

    def samples(self, sensor: str, t0: float, t1: float) -> list[Sample]:
        """``sensor``'s samples with ``t0 <= t <= t1``, in the order they were recorded."""
        c = schema.samples.c
        query = select(c.t_us, c.data).where(_within(sensor, t0, t1)).order_by(c.t_us, c.id)
        rows = [(r.t_us, json.loads(r.data)) for r in self.store.query(query)]
        rows += self._pending(sensor, t0, t1)
        return [Sample(sensor, from_us(t_us), data) for t_us, data in rows]

    def series(self, stream: str, t0: float, t1: float) -> tuple[list[float], list[float]]:
        """The times and numeric values of one stream with ``t0 <= t <= t1``."""
        sensor, field = split_stream(stream)
        if sensor == "metric":
            return self._metric(field, t0, t1)
        times, columns = self.table(sensor, [field], t0, t1)
        pairs = [(t, v) for t, v in zip(times, columns[field], strict=True) if v is not None]
        return [t for t, _ in pairs], [v for _, v in pairs]

    def table(
        self, sensor: str, fields: Sequence[str], t0: float, t1: float
    ) -> tuple[list[float], dict[str, list[float | None]]]:
        """Several fields of one sensor's samples with ``t0 <= t <= t1`` in one pass (the
        database extracts them, so a week of a 10 s sensor stays cheap): the times, and per
        field its values (None where a sample lacks it or it is not a number; true and false
        count 1 and 0, as streams count them)."""
        c = schema.samples.c
        columns = [func.json_extract(c.data, _path(f)) for f in fields]
        query = select(c.t_us, *columns).where(_within(sensor, t0, t1)).order_by(c.t_us, c.id)
        rows = [(r[0], list(r[1:])) for r in self.store.query(query)]
        rows += [(t_us, [d.get(f) for f in fields]) for t_us, d in self._pending(sensor, t0, t1)]
        times = [from_us(t_us) for t_us, _ in rows]
        values: dict[str, list[float | None]] = {f: [] for f in fields}
        for _, row_values in rows:
            for f, v in zip(fields, row_values, strict=True):  # booleans count 0/1
                values[f].append(float(v) if isinstance(v, int | float) else None)
        return times, values

    def _metric(self, name: str, t0: float, t1: float) -> tuple[list[float], list[float]]:
        c = schema.samples.c
        where = and_(_within("metric", t0, t1), func.json_extract(c.data, "$.name") == name)
        value = func.json_extract(c.data, "$.value")
        query = select(c.t_us, value).where(where).order_by(c.t_us, c.id)
        rows = list(self.store.query(query))
        rows += [
            (t, d.get("value")) for t, d in self._pending("metric", t0, t1) if d.get("name") == name
        ]
        pairs = [(from_us(t), x) for t, v in rows if (x := finite_float(v)) is not None]
        return [t for t, _ in pairs], [v for _, v in pairs]

    def _pending(self, sensor: str, t0: float, t1: float) -> list[tuple[int, dict[str, Any]]]:
        """The not yet committed samples of ``sensor`` with ``t0 <= t <= t1``: (t_us, data)."""
        pending, _ = self.store.pending()
        lo, hi = to_us(t0), to_us(t1)
        return [
            (t_us, json.loads(data))
            for t_us, kind, data in pending
            if kind == sensor and lo <= t_us <= hi
        ]

    def events(self, t0: float, t1: float) -> list[Event]:
        c = schema.events.c
        query = (
            select(c.t_us, c.kind, c.subject, c.data)
            .where(and_(c.t_us >= to_us(t0), c.t_us <= to_us(t1)))
            .order_by(c.t_us, c.id)
        )
        rows = [(r.t_us, r.kind, r.subject, r.data) for r in self.store.query(query)]
        _, pending = self.store.pending()
        lo, hi = to_us(t0), to_us(t1)
        rows += [
            (p["t_us"], p["kind"], p["subject"], p["data"])
            for p in pending
            if lo <= p["t_us"] <= hi
        ]
        rows.sort(key=lambda r: r[0])  # stable: committed rows keep their order
        return [Event(from_us(t), k, s, json.loads(d)) for t, k, s, d in rows]

    def event(self, event_id: int) -> Event | None:
        """One stored event by its id (``vigil events`` shows it)."""
        c = schema.events.c
        rows = self.store.query(select(schema.events).where(c.id == event_id))
        if not rows:
            return None
        r = rows[0]
        return Event(from_us(r.t_us), r.kind, r.subject, json.loads(r.data))

    def places(self) -> list[dict[str, Any]]:
        """The learned places as last committed (rows of the places table)."""
        return [dict(r._mapping) for r in self.store.query(select(schema.places))]
