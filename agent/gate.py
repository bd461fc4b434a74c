"""Where data enters: every sample from a sensor or a trace is checked here once, and only
checked samples reach the pipeline. A rejection carries a short reason that is counted."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from agent.samples import KNOWN_SENSORS, Sample, Scalar

_RESERVED = ("t", "sensor")


class Rejected(Exception):
    """A sample refused at the boundary; ``reason`` is a short counter key."""

    def __init__(self, reason: str, detail: str) -> None:
        self.reason, self.detail = reason, detail
        super().__init__(f"{reason}: {detail}")


def check_fields(sensor: str, data: Mapping[str, Any]) -> dict[str, Scalar]:
    """The flat scalar fields of one sample, or ``Rejected``."""
    if sensor not in KNOWN_SENSORS:
        raise Rejected("unknown_sensor", f"unknown sensor {sensor!r}")
    fields: dict[str, Scalar] = {}
    for key, value in data.items():
        if key in _RESERVED:
            continue
        if isinstance(value, float) and not math.isfinite(value):
            raise Rejected("non_finite", f"field {key!r} is {value!r}")
        if value is not None and not isinstance(value, bool | int | float | str):
            raise Rejected("bad_field", f"field {key!r} is not a number, string or boolean")
        fields[key] = value
    _check_sensor_fields(sensor, fields)
    return fields


def _check_sensor_fields(sensor: str, fields: Mapping[str, Scalar]) -> None:
    if sensor == "status":
        if not isinstance(fields.get("of"), str):
            raise Rejected("bad_field", "status sample without 'of'")
        if fields.get("state") not in ("up", "down"):
            raise Rejected("bad_field", "status 'state' must be 'up' or 'down'")
    elif sensor == "metric":
        if not isinstance(fields.get("name"), str) or not _is_number(fields.get("value")):
            raise Rejected("bad_field", "metric sample needs a string 'name' and a numeric 'value'")
    elif sensor == "location":
        lat, lon = fields.get("lat"), fields.get("lon")
        if not _is_number(lat) or not _is_number(lon):
            raise Rejected("bad_field", "location sample needs numeric 'lat' and 'lon'")
        assert isinstance(lat, int | float) and isinstance(lon, int | float)
        if not (-90.0 <= lat <= 90.0 and -180.0 <= lon <= 180.0):
            raise Rejected("out_of_range", f"coordinates {lat!r}, {lon!r} are off the Earth")
        accuracy = fields.get("accuracy_m")
        if accuracy is not None and (not _is_number(accuracy) or accuracy <= 0):  # type: ignore[operator]
            raise Rejected("out_of_range", f"accuracy_m {accuracy!r} is not a positive number")


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


#: The last second of the year 9999 (UTC): later times have no ISO 8601 form, and their
#: microseconds overflow the database's 64-bit integers long before.
MAX_T = 253_402_300_799.0


class SampleGate:
    """Checks samples in arrival order: valid fields, and time never going back per sensor."""

    def __init__(self) -> None:
        self._last_t: dict[str, float] = {}

    def admit(self, sensor: object, t: object, data: Mapping[str, Any]) -> Sample:
        """A checked ``Sample``, or ``Rejected`` with the reason."""
        if not isinstance(sensor, str):
            raise Rejected("bad_field", "missing or non-string 'sensor'")
        if t is None:
            raise Rejected("missing_t", "no 't'")
        if not _is_number(t):
            raise Rejected("bad_t", f"'t' is not a number: {t!r}")
        assert isinstance(t, int | float)
        try:
            tf = float(t)
        except OverflowError:  # an integer beyond any float
            raise Rejected("t_out_of_range", f"'t' has {len(str(t))} digits") from None
        if not math.isfinite(tf):
            raise Rejected("non_finite", f"'t' is {tf!r}")
        if not 0.0 <= tf <= MAX_T:
            raise Rejected("t_out_of_range", f"'t' {tf!r} is not between 1970 and 9999")
        fields = check_fields(sensor, data)
        # Status samples speak for another sensor and are ordered with it, not with each other.
        key = f"status.{fields['of']}" if sensor == "status" else sensor
        last = self._last_t.get(key)
        if last is not None and tf < last:
            raise Rejected("time_backward", f"{key} time went back from {last!r} to {tf!r}")
        self._last_t[key] = tf
        return Sample(sensor, tf, fields)
