"""The values passed between stages: Sample in, Event out (ARCHITECTURE.md, Samples and Events)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

Scalar = bool | int | float | str | None

#: Every sensor a sample may come from. An unknown name is rejected where data enters.
KNOWN_SENSORS = frozenset({"location", "system", "battery", "apps", "metric", "status", "clock"})
#: The apps sensor's field naming the focused window's process (by the window's pid), as its
#: rankings name processes: what the user is working in is not in the background.
FOCUSED_PROCESS = "app_process"


@dataclass(frozen=True, slots=True)
class Sample:
    """One reading from one sensor at one instant.

    ``t`` is when the reading was *taken* (UNIX seconds, UTC); every later stage uses it,
    never the wall clock, so replay and live give the same answers. ``data`` is flat, with
    units in the field names (``cpu_pct``, ``power_W``).
    """

    sensor: str
    t: float
    data: Mapping[str, Scalar] = field(default_factory=dict)

    def to_json(self) -> str:
        """One trace line: ``{"t": ..., "sensor": ..., **data}``."""
        return json.dumps({"t": self.t, "sensor": self.sensor, **self.data}, allow_nan=False)


@dataclass(frozen=True, slots=True)
class Event:
    """Something the pipeline concluded at sample time ``t``.

    ``kind`` is dotted (``rule.fired``, ``sensor.down``); ``subject`` names what it is about
    (a rule, a sensor, a fence, a stream); ``data`` holds the details.
    """

    t: float
    kind: str
    subject: str
    data: Mapping[str, Any] = field(default_factory=dict)

    def to_json(self, event_id: int | None = None) -> str:
        """The stable ``--json`` line: fixed key order, floats as ``repr``, data keys sorted;
        a stored event's ``id`` first (what ``vigil explain`` takes)."""
        line = {"t": self.t, "kind": self.kind, "subject": self.subject, "data": _sorted(self.data)}
        return json.dumps(line if event_id is None else {"id": event_id, **line}, allow_nan=False)


def _sorted(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _sorted(value[k]) for k in sorted(value)}
    return value


def to_us(t: float) -> int:
    """Sample time as the memory stores it: integer microseconds."""
    return round(t * 1_000_000)


def from_us(t_us: int) -> float:
    return t_us / 1_000_000
