"""Every numeric field of a sample becomes a named stream value: ``<sensor>.<field>``.

A ``metric`` sample (an imported series) is one stream named by its ``name`` field.
Booleans count as 0/1 so rules can watch them (``battery.charging``); strings are not streams.
"""

from __future__ import annotations

from agent.samples import Sample


def stream_values(sample: Sample) -> dict[str, float]:
    """The stream values this sample carries, at ``sample.t``."""
    if sample.sensor in ("status", "clock"):  # events of the runtime, not measurements
        return {}
    if sample.sensor == "metric":
        value = sample.data.get("value")
        name = sample.data.get("name")
        if isinstance(value, int | float) and isinstance(name, str):
            return {name: float(value)}
        return {}
    values: dict[str, float] = {}
    for key, value in sample.data.items():
        if isinstance(value, int | float):  # bool is an int: True -> 1.0
            values[f"{sample.sensor}.{key}"] = float(value)
    return values


def sensor_of(stream: str) -> str:
    """The sensor a stream comes from (``system.cpu_pct`` -> ``system``)."""
    head, _, _ = stream.partition(".")
    return head
