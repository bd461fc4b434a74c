"""Property-based: for every sensor, whatever a sample holds, the gate either refuses it with
a short reason or hands on a sample every later stage can take: numbers a float holds, UTF-8
strings, at most ``MAX_FIELDS`` fields, time never going back per sensor."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agent.gate import MAX_FIELDS, MAX_KEY, MAX_STRING, MAX_T, Rejected, SampleGate, check_sample
from agent.samples import KNOWN_SENSORS, Sample


def _examples(n: int) -> settings:
    """``n`` cases, or more when the profile asks for more (``HYPOTHESIS_PROFILE=deep``)."""
    return settings(max_examples=max(n, settings().max_examples))


REASONS = {
    "bad_field",
    "bad_t",
    "bad_utf8",
    "missing_t",
    "non_finite",
    "out_of_range",
    "t_out_of_range",
    "time_backward",
    "too_large",
    "too_many_fields",
    "unknown_sensor",
}

#: Any character, lone surrogates included (the default leaves them out, and ``st.text`` over
#: all of Unicode would draw one of them rarely).
CHARS = st.characters(exclude_categories=()) | st.characters(
    min_codepoint=0xD800, max_codepoint=0xDFFF
)
TEXT = st.one_of(
    st.text(max_size=12),
    st.lists(CHARS, max_size=12).map("".join),
    st.integers(MAX_STRING - 1, MAX_STRING + 1).map(lambda n: "é" * n),
    st.integers(MAX_KEY - 1, MAX_KEY + 1).map(lambda n: "k" * n),
)
NUMBERS = st.one_of(
    st.integers(),
    st.integers(min_value=-(10**400), max_value=10**400),
    st.floats(),
    st.sampled_from([2**1024, -(2**1024), int(1.7976931348623157e308), 10**4000, MAX_T]),
)
VALUES = st.recursive(
    st.one_of(st.none(), st.booleans(), NUMBERS, TEXT),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner),
    max_leaves=6,
)
#: The names the sensors' own checks look at, and any other.
KEYS = st.sampled_from(["of", "state", "name", "value", "lat", "lon", "accuracy_m", "t"]) | TEXT
FIELDS = st.one_of(
    st.dictionaries(KEYS, VALUES, max_size=8),
    st.integers(MAX_FIELDS - 1, MAX_FIELDS + 1).map(lambda n: {f"f{i}": i for i in range(n)}),
)
GOOD_T = st.floats(0, 2e9) | st.integers(0, 2**31)
TIMES = st.one_of(GOOD_T, NUMBERS, VALUES)

#: A plausible sample of each sensor; the test changes some of its values.
TEMPLATES: dict[str, dict[str, Any]] = {
    "system": {"cpu_pct": 12.5, "load1": 0.5, "net.wlan0.rx_Bps": 1200.0, "temp_C": 48.0},
    "battery": {"battery_pct": 80.0, "charging": True, "power_W": -7.5},
    "location": {"lat": 52.5, "lon": 13.4, "accuracy_m": 12.0, "provider": "gps"},
    "apps": {"app": "firefox", "title": "News", "cpu1_name": "firefox", "cpu1_pct": 30.0},
    "metric": {"name": "machine_temperature", "value": 71.25},
    "status": {"of": "location", "state": "down", "reason": "no fix"},
    "clock": {"step_s": 3600.0},
}


@st.composite
def _plausible(draw: st.DrawFn, sensor: str) -> dict[Any, Any]:
    """The sensor's template with a value or two replaced, and perhaps more fields."""
    fields = dict(TEMPLATES.get(sensor, {"value": 1.0}))  # a sensor added since: numbers
    for _ in range(draw(st.integers(0, 2))):
        fields[draw(st.sampled_from(sorted(fields)) | KEYS)] = draw(VALUES)
    return fields


def _sound(sample: Sample) -> None:
    """What an admitted sample promises the stages after the gate."""
    assert 0.0 <= sample.t <= MAX_T and len(sample.data) <= MAX_FIELDS
    json.dumps({"t": sample.t, **sample.data}, ensure_ascii=False).encode("utf-8")
    obj = json.loads(sample.to_json())
    assert check_sample(obj["sensor"], obj["t"], obj) == sample
    for key, value in sample.data.items():
        assert isinstance(key, str) and len(key) <= MAX_KEY
        if isinstance(value, str):
            assert len(value) <= MAX_STRING
        elif isinstance(value, int | float):
            float(value)


@pytest.mark.parametrize("sensor", sorted(KNOWN_SENSORS))
@_examples(150)
@given(data=st.data())
def test_admit_refuses_or_hands_on_a_sound_sample(sensor: str, data: st.DataObject) -> None:
    gate = SampleGate()
    last: dict[str, float] = {}
    for _ in range(data.draw(st.integers(1, 4))):
        t = data.draw(TIMES if data.draw(st.integers(0, 3)) == 0 else GOOD_T)  # mostly good
        fields = data.draw(FIELDS | _plausible(sensor) | _plausible(sensor))
        try:
            sample = gate.admit(sensor, t, fields)
        except Rejected as exc:
            assert exc.reason in REASONS and len(exc.detail) < 200
            exc.detail.encode("utf-8")  # a log line a terminal can print
            continue
        _sound(sample)
        key = f"status.{sample.data['of']}" if sensor == "status" else sensor
        assert sample.t >= last.get(key, 0.0)
        last[key] = sample.t


@_examples(400)
@given(sensor=VALUES, t=TIMES, data=FIELDS)
def test_admit_takes_anything_as_sensor_and_time(sensor: Any, t: Any, data: dict[Any, Any]) -> None:
    try:
        _sound(SampleGate().admit(sensor, t, data))
    except Rejected as exc:
        assert exc.reason in REASONS and len(exc.detail) < 200
