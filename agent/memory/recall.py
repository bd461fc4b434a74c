"""Reading back what memory holds around a moment: samples, one stream's values, events and
places, from the database *and* the batch not committed yet, so a reader sees exactly what the
pipeline has seen (the escalation stage's context, live and in replay alike)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
from sqlalchemy import and_, case, func, select

from agent.features.streams import STREAM_NUMBER
from agent.memory import schema
from agent.memory.store import MemoryStore
from agent.numbers import finite_float
from agent.samples import KNOWN_SENSORS, Event, Sample, from_us, to_us

F64 = npt.NDArray[np.float64]

#: Streams whose first part is not one of these are imported metrics (``metric`` samples).
_SENSOR_STREAMS = KNOWN_SENSORS - {"metric", "status"}
#: JSON types that count as numbers (true and false count 1 and 0, as streams count them).
_NUMERIC = ("integer", "real", "true", "false")


def _path(field: str) -> str:
    """A JSON path to a top-level key, quoted: keys hold dots (``net.wlan0.rx_Bps``)."""
    return '$."' + field.replace('"', "") + '"'


def _within(sensor: str, t0: float, t1: float) -> Any:
    c = schema.samples.c
    return and_(c.sensor == sensor, c.t_us >= to_us(t0), c.t_us <= to_us(t1))


def _number_at(data: Any, field: str) -> Any:
    """SQL for ``field`` of a sample's JSON where it is a number (or a flag), else NULL."""
    path = _path(field)
    return case((func.json_type(data, path).in_(_NUMERIC), func.json_extract(data, path)))


def _number(value: Any) -> float:
    """A field's value as ``columns`` counts it: a stream's number or flag, else NaN."""
    return float(value) if isinstance(value, STREAM_NUMBER) else float("nan")


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

    def series(self, stream: str, t0: float, t1: float) -> tuple[F64, F64]:
        """The times and numeric values of one stream with ``t0 <= t <= t1``."""
        sensor, field = split_stream(stream)
        if sensor == "metric":
            return self._metric(field, t0, t1)
        times, columns = self.columns(sensor, [field], t0, t1)
        known = ~np.isnan(columns[field])
        return times[known], columns[field][known]

    def columns(
        self, sensor: str, fields: Sequence[str], t0: float, t1: float
    ) -> tuple[F64, dict[str, F64]]:
        """Several fields of one sensor's samples with ``t0 <= t <= t1`` in one pass: the
        times, and per field its values, NaN where a sample lacks it or it is not a number
        (true and false count 1 and 0, as streams count them). The database extracts the
        numbers and they come back as arrays: a wake's look reads a week of a 10 s sensor,
        60,000 samples, for each of three sensors."""
        c = schema.samples.c
        numbers = [_number_at(c.data, f) for f in fields]
        query = select(c.t_us, *numbers).where(_within(sensor, t0, t1)).order_by(c.t_us, c.id)
        rows = [tuple(r) for r in self.store.query(query)]  # (numpy reads a tuple at once)
        rows += [
            (t_us, *(_number(d.get(f)) for f in fields))
            for t_us, d in self._pending(sensor, t0, t1)
        ]
        table = np.array(rows, dtype=np.float64).reshape(len(rows), len(fields) + 1)
        times: F64 = table[:, 0] / 1_000_000  # as ``from_us``: exact microseconds, one division
        return times, {f: table[:, i + 1] for i, f in enumerate(fields)}

    def _metric(self, name: str, t0: float, t1: float) -> tuple[F64, F64]:
        c = schema.samples.c
        where = and_(_within("metric", t0, t1), func.json_extract(c.data, "$.name") == name)
        value = func.json_extract(c.data, "$.value")
        query = select(c.t_us, value).where(where).order_by(c.t_us, c.id)
        rows = list(self.store.query(query))
        rows += [
            (t, d.get("value")) for t, d in self._pending("metric", t0, t1) if d.get("name") == name
        ]
        pairs = [(from_us(t), x) for t, v in rows if (x := finite_float(v)) is not None]
        return (
            np.array([t for t, _ in pairs], dtype=np.float64),
            np.array([v for _, v in pairs], dtype=np.float64),
        )

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
