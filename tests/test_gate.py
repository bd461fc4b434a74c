"""The gate: every value that reaches the pipeline and the database is a number a float holds,
a bounded string that is valid UTF-8, or a boolean; anything else is refused with a reason."""

from __future__ import annotations

import json
import sys
from typing import Any

import pytest

from agent.gate import (
    MAX_FIELDS,
    MAX_KEY,
    MAX_STRING,
    Rejected,
    SampleGate,
    check_sample,
    describe,
)
from agent.samples import Sample


def _reason_with(gate: SampleGate, sensor: object, t: object, data: dict[Any, Any]) -> str:
    with pytest.raises(Rejected) as exc:
        gate.admit(sensor, t, data)
    assert len(exc.value.detail) < 200  # a log line, never the input itself
    return exc.value.reason


def _reason(sensor: object, t: object, data: dict[Any, Any]) -> str:
    return _reason_with(SampleGate(), sensor, t, data)


@pytest.mark.parametrize("value", [10**400, -(10**400), 10**5000, 2**1024], ids=describe)
def test_integer_field_beyond_any_float_is_out_of_range(value: int) -> None:
    assert _reason("system", 5.0, {"cpu_pct": value}) == "out_of_range"
    assert _reason("metric", 5.0, {"name": "x", "value": value}) == "out_of_range"
    assert _reason("location", 5.0, {"lat": 1.0, "lon": 1.0, "accuracy_m": value}) == "out_of_range"


@pytest.mark.parametrize("t", [10**400, 10**5000, -(10**5000)], ids=describe)
def test_integer_time_beyond_any_float_is_out_of_range(t: int) -> None:
    assert _reason("system", t, {}) == "t_out_of_range"


def test_largest_integers_a_float_holds_are_kept() -> None:
    top = int(sys.float_info.max)
    sample = SampleGate().admit("system", 5, {"a": top, "b": -top, "c": True})
    assert sample.data == {"a": top, "b": -top, "c": True} and sample.t == 5.0
    json.dumps(dict(sample.data))  # storage writes it


@pytest.mark.parametrize(
    ("sensor", "data"),
    [
        ("apps", {"app": "\ud800"}),
        ("apps", {"app": "ok", "title": "a\udfffb"}),
        ("apps", {"\udc80": 1}),
        ("\ud800", {}),
        ("status", {"of": "\udcff", "state": "down"}),
        ("metric", {"name": "\ud83d", "value": 1}),
    ],
)
def test_string_that_is_not_utf8_is_bad_utf8(sensor: str, data: dict[str, Any]) -> None:
    assert _reason(sensor, 5.0, data) == "bad_utf8"


def test_the_limits_are_inclusive() -> None:
    gate = SampleGate()
    many = {f"f{i}": i for i in range(MAX_FIELDS)}
    assert len(gate.admit("system", 1.0, {"t": 1.0, "sensor": "system", **many}).data) == MAX_FIELDS
    assert gate.admit("apps", 1.0, {"title": "x" * MAX_STRING}).data["title"] == "x" * MAX_STRING
    assert gate.admit("apps", 1.0, {"k" * MAX_KEY: 1}).data == {"k" * MAX_KEY: 1}


def test_past_the_limits_is_refused() -> None:
    too_many = {f"f{i}": i for i in range(MAX_FIELDS + 1)}
    assert _reason("system", 1.0, too_many) == "too_many_fields"
    assert _reason("apps", 1.0, {"title": "x" * (MAX_STRING + 1)}) == "too_large"
    assert _reason("apps", 1.0, {"k" * (MAX_KEY + 1): 1}) == "too_large"
    assert _reason("x" * 1_000_000, 1.0, {}) == "unknown_sensor"


@pytest.mark.parametrize(
    ("sensor", "t", "data", "reason"),
    [
        ("system", 1.0, {1: 2.0}, "bad_field"),
        ("system", 1.0, {"x": [10**5000]}, "bad_field"),
        ("system", [10**5000], {}, "bad_t"),
        ("system", "x" * 1_000_000, {}, "bad_t"),
        (None, 1.0, {}, "bad_field"),
        ("location", 1.0, {"lat": 10**400, "lon": 0.0}, "out_of_range"),
        ("location", 1.0, {"lat": 1.0, "lon": 1.0, "accuracy_m": "é" * MAX_STRING}, "out_of_range"),
    ],
    ids=["int_key", "list_field", "list_t", "huge_string_t", "no_sensor", "huge_lat", "text_acc"],
)
def test_odd_values_are_refused_with_a_short_detail(
    sensor: object, t: object, data: dict[Any, Any], reason: str
) -> None:
    assert _reason(sensor, t, data) == reason


def test_check_sample_has_no_memory_and_the_gate_keeps_order() -> None:
    assert check_sample("system", 5.0, {"x": 1}) == Sample("system", 5.0, {"x": 1})
    assert check_sample("system", 4.0, {}) == Sample("system", 4.0, {})  # earlier: no matter
    gate = SampleGate()
    gate.admit("system", 5.0, {})
    assert gate.in_order(Sample("battery", 1.0, {})).t == 1.0
    with pytest.raises(Rejected, match="time_backward"):
        gate.in_order(Sample("system", 4.0, {}))


def test_time_going_back_for_a_long_status_name_has_a_short_detail() -> None:
    gate = SampleGate()
    status = {"of": "x" * MAX_STRING, "state": "down"}
    gate.admit("status", 5.0, status)
    assert _reason_with(gate, "status", 4.0, status) == "time_backward"
