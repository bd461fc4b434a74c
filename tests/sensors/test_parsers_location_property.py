"""Property-based: whatever gpsd or termux-location sends, the location parsers give a fix
that passes the gate, a refusal with a known reason, or a sensor error with a reason; never
any other exception. Thousands of generated cases (the derandomized profile of conftest)."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from _fuzz import (
    check_rejection,
    check_sample,
    deeply_nested,
    json_values,
    outcome,
    spoiled,
)
from hypothesis import given, settings
from hypothesis import strategies as st

from agent.config import LocationSensorConfig
from agent.errors import SensorReadError, SensorUnavailable
from agent.sensors.gpsd import GpsdClient, GpsdSensor, decode_report, parse_tpv
from agent.sensors.location import FixGate, Rejection
from agent.sensors.termux_location import parse_termux_location

T = 1_780_272_000.0
PARSER_REASONS = frozenset(
    {"no_fix", "bad_field", "no_position", "non_finite", "out_of_range", "no_time", "future_fix"}
)
GATE_REASONS = frozenset({"poor_accuracy", "stale_fix", "time_backward"})
TERMUX_REASONS = (PARSER_REASONS - {"no_fix"}) | {"no_accuracy"}
LINE_KINDS = frozenset({"not_json", "too_deep", "not_object", "no_class", "too_long"})


@pytest.fixture(autouse=True, scope="module")
def quiet() -> Iterator[None]:
    """Each case has a fresh sensor, whose first refusal of a kind is a WARNING: not here."""
    logger = logging.getLogger("agent.sensors")
    level = logger.level
    logger.setLevel(logging.ERROR)
    yield
    logger.setLevel(level)


read_times = st.one_of(st.just(T), st.floats(min_value=0.0, max_value=4e9))


def iso(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


@st.composite
def tpvs(draw: st.DrawFn) -> tuple[dict[str, Any], float]:
    """A TPV report, mostly plausible field by field, and a read time near its fix time."""
    read_t = draw(read_times)
    fix_t = read_t - draw(st.floats(min_value=-6.0, max_value=150.0))
    times = st.just(iso(fix_t)) if 0 < fix_t < 2.5e11 else st.just(fix_t)
    core = {
        "mode": st.sampled_from([0, 1, 2, 3, 3, 3]),
        "lat": st.floats(min_value=-90, max_value=90),
        "lon": st.floats(min_value=-180, max_value=180),
        "time": st.one_of(times, st.just(fix_t)),
    }
    report = (
        draw(spoiled(core)) if draw(st.integers(0, 3)) == 0 else draw(st.fixed_dictionaries(core))
    )
    fields = {
        "eph": st.floats(min_value=0, max_value=1e4),
        "epx": st.floats(min_value=0, max_value=1e4),
        "epy": st.floats(min_value=0, max_value=1e4),
        "alt": st.floats(min_value=-500, max_value=1e4),
        "altHAE": st.floats(min_value=-500, max_value=1e4),
        "speed": st.floats(min_value=0, max_value=400),
        "track": st.floats(min_value=0, max_value=360),
    }
    return {"class": "TPV", **report, **draw(spoiled(fields))}, read_t


def check_fix(fix: object, refused: dict[str, int], reasons: frozenset[str]) -> None:
    if fix is None:
        assert set(refused) <= reasons and sum(refused.values()) >= 1
    else:
        assert isinstance(fix, dict)
        check_sample("location", fix)
        assert isinstance(fix["fix_t"], float) and isinstance(fix["accuracy_m"], float)


@settings(max_examples=600)
@given(tpvs())
def test_tpv_reports_give_a_good_fix_or_a_reason(case: tuple[dict[str, Any], float]) -> None:
    report, read_t = case
    parsed = parse_tpv(report, read_t)
    if isinstance(parsed, Rejection):
        check_rejection(parsed, PARSER_REASONS)
    sensor = GpsdSensor(LocationSensorConfig())
    line = json.dumps(report).encode()  # NaN and infinities as Python writes them
    reports = sensor.client.feed(line + b"\r\n")
    assert json.dumps(reports) == json.dumps([report]) or not reports and sensor.client.bad_lines
    for tpv in reports:
        check_fix(sensor.accept(tpv, read_t), dict(sensor.rejected), PARSER_REASONS | GATE_REASONS)


lines = st.one_of(
    st.binary(max_size=200),
    json_values.map(lambda v: json.dumps(v).encode()),
    st.dictionaries(st.sampled_from(["class", "mode", "lat", "time"]), json_values).map(
        lambda d: json.dumps(d).encode()
    ),
    tpvs().map(lambda case: json.dumps(case[0]).encode()),
)


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    """A TPV line with a few bytes changed, cut out or put in."""
    line = bytearray(json.dumps(draw(tpvs())[0]).encode())
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, len(line)))
        change = draw(st.sampled_from(["put", "cut", "set"]))
        if change == "put" or at == len(line):
            line[at:at] = draw(st.binary(min_size=1, max_size=3))
        elif change == "cut":
            del line[at]
        else:
            line[at] = draw(st.integers(0, 255))
    return bytes(line)


@settings(max_examples=400)
@given(st.lists(st.one_of(lines, mutated()), max_size=6), read_times)
def test_any_bytes_from_gpsd_are_reports_or_counted_skips(raw: list[bytes], now: float) -> None:
    sensor = GpsdSensor(LocationSensorConfig())
    stream = b"\n".join(raw) + b"\n"
    reports = sensor.client.feed(stream)
    assert set(sensor.client.bad_lines) <= LINE_KINDS
    for report in reports:
        assert isinstance(report, dict) and report["class"] in ("TPV", "ERROR")
        if report["class"] == "TPV":
            check_fix(
                sensor.accept(report, now), dict(sensor.rejected), PARSER_REASONS | GATE_REASONS
            )
    everything = GpsdClient("gpsd", 2947)  # no class filter: every line decoded
    for report in everything.feed(stream):
        assert isinstance(report["class"], str)
    assert set(everything.bad_lines) <= LINE_KINDS


@settings(max_examples=150)
@given(st.lists(lines, max_size=8), st.data())
def test_framing_does_not_depend_on_how_the_bytes_arrive(raw: list[bytes], data: Any) -> None:
    stream = b"\n".join(line.replace(b"\n", b" ") for line in raw) + b"\n"
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=6)))
    whole, pieces = GpsdClient("gpsd", 2947), GpsdClient("gpsd", 2947)
    expected = whole.feed(stream)
    got: list[dict[str, Any]] = []
    for start, end in zip([0, *cuts], [*cuts, len(stream)], strict=True):
        got += pieces.feed(stream[start:end])
    assert json.dumps(got) == json.dumps(expected)
    assert pieces.bad_lines == whole.bad_lines


@st.composite
def termux_replies(draw: st.DrawFn) -> dict[str, Any]:
    """A reply of termux-location: mostly a fix, field by field mostly plausible; else an
    error object."""
    if draw(st.integers(0, 9)) == 0:
        return {draw(st.sampled_from(["error", "API_ERROR"])): draw(json_values)}
    core = {
        "latitude": st.floats(min_value=-90, max_value=90),
        "longitude": st.floats(min_value=-180, max_value=180),
        "accuracy": st.floats(min_value=0, max_value=1e4),
        "elapsedMs": st.integers(min_value=-5_000, max_value=150_000),
    }
    fields = {
        "altitude": st.floats(min_value=-500, max_value=1e4),
        "vertical_accuracy": st.floats(min_value=0, max_value=1e3),
        "bearing": st.floats(min_value=0, max_value=360),
        "speed": st.floats(min_value=0, max_value=400),
        "provider": st.sampled_from(["gps", "network", "fused", "passive"]),
        "mocked": st.booleans(),
    }
    reply = (
        draw(spoiled(core)) if draw(st.integers(0, 3)) == 0 else draw(st.fixed_dictionaries(core))
    )
    return {**reply, **draw(spoiled(fields))}


@settings(max_examples=400)
@given(st.lists(termux_replies(), max_size=3), st.sampled_from([None, 2]), read_times)
def test_termux_location_output_gives_a_fix_or_a_reason(
    replies: list[dict[str, Any]], indent: int | None, now: float
) -> None:
    text = "\n".join(json.dumps(reply, indent=indent) for reply in replies)
    parsed = outcome(lambda: parse_termux_location(text, now))
    if isinstance(parsed, SensorUnavailable):
        assert not replies or "error" in replies[-1] or "API_ERROR" in replies[-1]
    elif isinstance(parsed, Rejection):
        check_rejection(parsed, TERMUX_REASONS)
    elif not isinstance(parsed, SensorReadError):
        gate = FixGate(LocationSensorConfig())
        check_fix(gate.admit(parsed, now), dict(gate.rejected), GATE_REASONS)


@settings(max_examples=500)
@given(st.one_of(st.text(max_size=200), json_values.map(json.dumps)), read_times)
def test_termux_location_any_text(text: str, now: float) -> None:
    parsed = outcome(lambda: parse_termux_location(text, now))
    if isinstance(parsed, Rejection):
        check_rejection(parsed, TERMUX_REASONS)
    elif isinstance(parsed, dict):
        check_sample("location", parsed)


@pytest.mark.parametrize("depth", [900, 5000, 100_000])
def test_deep_nesting_is_a_reason_not_a_recursion_error(depth: int) -> None:
    """Regression: JSON nested deeper than the decoder follows raised RecursionError (not a
    ValueError) out of every JSON parser of the sensors."""
    from agent.sensors.focus import parse_hyprland_window, parse_sway_tree
    from agent.sensors.termux import parse_json

    nested = deeply_nested(depth)
    line = f'{{"class":"TPV","mode":3,"x":{nested}}}'.encode()
    report = decode_report(line)
    assert isinstance(report, dict) or report.reason == "too_deep"
    for parse in (
        lambda: parse_termux_location(nested, T),
        lambda: parse_termux_location(f'{{"latitude":{nested}}}', T),
        lambda: parse_json("battery", "termux-battery-status", nested, "", 0),
        lambda: parse_sway_tree(nested),
        lambda: parse_hyprland_window(f'{{"address":"0x1","class":{nested}}}'),
    ):
        result = outcome(parse)
        assert not isinstance(result, Rejection) or result.detail
