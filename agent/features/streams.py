"""Every numeric field of a sample becomes a named stream value: ``<sensor>.<field>``.

A ``metric`` sample (an imported series) is one stream named by its ``name`` field.
Booleans count as 0/1 so rules can watch them (``battery.charging``); strings are not streams.
"""

from __future__ import annotations

from agent.samples import Sample

#: What a stream value is: a number, or a flag (bool is an int, so True counts 1.0). Memory's
#: readers (``agent.memory.recall``) count a field by the same rule. A tuple: ``isinstance``
#: checks it faster than ``int | float``.
STREAM_NUMBER = (int, float)


def stream_values(sample: Sample) -> dict[str, float]:
    """The stream values this sample carries, at ``sample.t``."""
    if sample.sensor in ("status", "clock"):  # events of the runtime, not measurements
        return {}
    if sample.sensor == "metric":
        value = sample.data.get("value")
        name = sample.data.get("name")
        if isinstance(value, STREAM_NUMBER) and isinstance(name, str):
            return {name: float(value)}
        return {}
    names = _NAMES.get(sample.sensor)
    if names is None:
        names = _NAMES[sample.sensor] = {}
    values: dict[str, float] = {}
    for key, value in sample.data.items():
        if isinstance(value, STREAM_NUMBER):
            name = names.get(key)
            if name is None:
                name = names[key] = _name(sample.sensor, key)
            values[name] = float(value)
    return values


#: Stream names by sensor and field, made once: building them took most of this function.
#: Bounded in practice (field names are a sensor's own), and capped below regardless.
_NAMES: dict[str, dict[str, str]] = {}
_MAX_NAMES = 100_000


def _name(sensor: str, key: str) -> str:
    if sum(len(n) for n in _NAMES.values()) > _MAX_NAMES:
        _NAMES.clear()
    return f"{sensor}.{key}"


def sensor_of(stream: str) -> str:
    """The sensor a stream comes from (``system.cpu_pct`` -> ``system``)."""
    head, _, _ = stream.partition(".")
    return head
