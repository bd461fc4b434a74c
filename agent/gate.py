"""Where data enters: every sample from a sensor or a trace is checked here once, and only
checked samples reach the pipeline. A rejection carries a short reason that is counted.

What passes is safe for every later stage: numbers a float holds (so ``float()`` and the
database never overflow), strings of bounded length that are valid UTF-8 (so SQLite and every
encoder take them), and a bounded number of fields (so one sample cannot exhaust memory)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from agent.numbers import is_number
from agent.samples import KNOWN_SENSORS, Sample, Scalar

_RESERVED = ("t", "sensor")

#: Fields per sample. The widest real samples are ``system`` with per-device rates (nine
#: fields plus two per network interface and physical disk: a few dozen on a busy machine)
#: and ``apps`` (three plus four per ranked process, ``top_n`` 3 by default). 1,024 leaves room
#: for a host with hundreds of interfaces while keeping one sample's streams bounded.
MAX_FIELDS = 1024
#: Characters in a string value. 4,096 is Linux's PATH_MAX, so any process name taken from a
#: command line fits; window titles and metric names are far shorter in practice.
MAX_STRING = 4096
#: Characters in a field name: names are short identifiers (``net.<interface>.rx_Bps``, with
#: Linux interface names at most 15 bytes and disk names at most 32).
MAX_KEY = 256


class Rejected(Exception):
    """A sample refused at the boundary; ``reason`` is a short counter key."""

    def __init__(self, reason: str, detail: str) -> None:
        self.reason, self.detail = reason, detail
        super().__init__(f"{reason}: {detail}")


def describe(value: object) -> str:
    """A short picture of an input value for a log line: never the whole of a huge string,
    and never ``repr`` of a huge integer (which raises) or of a deeply nested list."""
    if isinstance(value, str):
        return repr(value[:40]) + ("..." if len(value) > 40 else "")
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 64:
        return f"an integer of {value.bit_length()} bits"
    if value is None or isinstance(value, bool | int | float):
        return repr(value)
    return f"a {type(value).__name__}"


def _utf8(text: str) -> bool:
    """Whether ``text`` encodes as UTF-8: a lone surrogate (a JSON ``\\ud800`` escape, or a
    byte that was not UTF-8 read with ``surrogateescape``) does not."""
    if text.isascii():
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _check_text(what: str, text: str, limit: int) -> None:
    if len(text) > limit:
        raise Rejected("too_large", f"{what} has {len(text)} characters (at most {limit})")
    if not _utf8(text):
        raise Rejected("bad_utf8", f"{what} {describe(text)} is not valid UTF-8")


def check_fields(sensor: str, data: Mapping[Any, Any]) -> dict[str, Scalar]:
    """The flat scalar fields of one sample, or ``Rejected``."""
    if sensor not in KNOWN_SENSORS:
        if not _utf8(sensor):
            raise Rejected("bad_utf8", f"sensor name {describe(sensor)} is not valid UTF-8")
        raise Rejected("unknown_sensor", f"unknown sensor {describe(sensor)}")
    count = len(data) - ("t" in data) - ("sensor" in data)  # the reserved keys
    if count > MAX_FIELDS:
        raise Rejected("too_many_fields", f"{count} fields (at most {MAX_FIELDS})")
    fields: dict[str, Scalar] = {}
    for key, value in data.items():
        if key in _RESERVED:
            continue
        # The common cases pass at a glance (short ASCII text, a finite float, an int a float
        # holds, a flag, null); anything else gets the full checks and their reason.
        if type(key) is not str or len(key) > MAX_KEY or not key.isascii():
            if not isinstance(key, str):
                raise Rejected("bad_field", f"field name {describe(key)} is not a string")
            _check_text("field name", key, MAX_KEY)
        kind = type(value)
        if kind is float:
            if value - value != 0.0:  # infinite or NaN
                _check_value(key, value)
        elif kind is str:
            if len(value) > MAX_STRING or not value.isascii():
                _check_value(key, value)
        elif kind is int:
            if value.bit_length() > 1000:  # perhaps beyond any float
                _check_value(key, value)
        elif kind is not bool and value is not None:
            _check_value(key, value)
        fields[key] = value
    _check_sensor_fields(sensor, fields)
    return fields


def _check_value(key: str, value: object) -> None:
    if value is None or isinstance(value, bool):
        return
    if isinstance(value, int):
        try:
            float(value)
        except OverflowError:  # an integer beyond any float: every later float() would fail
            raise Rejected("out_of_range", f"field {describe(key)} is {describe(value)}") from None
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise Rejected("non_finite", f"field {describe(key)} is {value!r}")
    elif isinstance(value, str):
        _check_text(f"field {describe(key)}", value, MAX_STRING)
    else:
        raise Rejected("bad_field", f"field {describe(key)} is not a number, string or boolean")


def _check_sensor_fields(sensor: str, fields: Mapping[str, Scalar]) -> None:
    if sensor == "status":
        if not isinstance(fields.get("of"), str):
            raise Rejected("bad_field", "status sample without 'of'")
        if fields.get("state") not in ("up", "down"):
            raise Rejected("bad_field", "status 'state' must be 'up' or 'down'")
    elif sensor == "metric":
        if not isinstance(fields.get("name"), str) or not is_number(fields.get("value")):
            raise Rejected("bad_field", "metric sample needs a string 'name' and a numeric 'value'")
    elif sensor == "location":
        lat, lon = fields.get("lat"), fields.get("lon")
        if not is_number(lat) or not is_number(lon):
            raise Rejected("bad_field", "location sample needs numeric 'lat' and 'lon'")
        assert isinstance(lat, int | float) and isinstance(lon, int | float)
        if not (-90.0 <= lat <= 90.0 and -180.0 <= lon <= 180.0):
            raise Rejected(
                "out_of_range", f"coordinates {describe(lat)}, {describe(lon)} are off the Earth"
            )
        accuracy = fields.get("accuracy_m")
        if accuracy is not None and (not is_number(accuracy) or accuracy <= 0):
            detail = f"accuracy_m {describe(accuracy)} is not a positive number"
            raise Rejected("out_of_range", detail)


#: The last second of the year 9999 (UTC): later times have no ISO 8601 form, and their
#: microseconds overflow the database's 64-bit integers long before.
MAX_T = 253_402_300_799.0


def check_sample(sensor: object, t: object, data: Mapping[Any, Any]) -> Sample:
    """A checked ``Sample``, or ``Rejected`` with the reason: every check but the order in
    time, which needs the samples before it (``SampleGate``)."""
    if not isinstance(sensor, str):
        raise Rejected("bad_field", "missing or non-string 'sensor'")
    if t is None:
        raise Rejected("missing_t", "no 't'")
    if not is_number(t):
        raise Rejected("bad_t", f"'t' is not a number: {describe(t)}")
    assert isinstance(t, int | float)
    try:
        tf = float(t)
    except OverflowError:  # an integer beyond any float
        raise Rejected("t_out_of_range", f"'t' is {describe(t)}") from None
    if not math.isfinite(tf):
        raise Rejected("non_finite", f"'t' is {tf!r}")
    if not 0.0 <= tf <= MAX_T:
        raise Rejected("t_out_of_range", f"'t' {tf!r} is not between 1970 and 9999")
    return Sample(sensor, tf, check_fields(sensor, data))


class SampleGate:
    """Checks samples in arrival order: valid fields, and time never going back per sensor."""

    def __init__(self) -> None:
        self._last_t: dict[str, float] = {}

    def admit(self, sensor: object, t: object, data: Mapping[Any, Any]) -> Sample:
        """A checked ``Sample``, or ``Rejected`` with the reason."""
        return self.in_order(check_sample(sensor, t, data))

    def in_order(self, sample: Sample) -> Sample:
        """``sample`` (already checked) unless its time goes back for its sensor."""
        # Status samples speak for another sensor and are ordered with it, not with each other.
        key = f"status.{sample.data['of']}" if sample.sensor == "status" else sample.sensor
        last = self._last_t.get(key)
        if last is not None and sample.t < last:
            detail = f"{key[:60]} time went back from {last!r} to {sample.t!r}"
            raise Rejected("time_backward", detail)
        self._last_t[key] = sample.t
        return sample
