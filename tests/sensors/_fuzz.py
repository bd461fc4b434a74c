"""What the property-based tests of the sensors' parsers share: strategies for hostile input
and the check every parsed sample must pass."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from hypothesis import strategies as st

from agent.errors import SensorReadError, SensorUnavailable
from agent.gate import check_fields
from agent.sensors.location import Rejection
from agent.sensors.values import U64_MAX

T = TypeVar("T")

#: Numbers a parser may be handed: ordinary ones, NaN and infinities, integers beyond any
#: float (JSON has no limit), and -0.0, tiny and huge floats.
numbers = st.one_of(
    st.integers(),
    st.builds(
        lambda sign, digits: sign * 10**digits, st.sampled_from([1, -1]), st.integers(18, 400)
    ),
    st.floats(allow_nan=True, allow_infinity=True),
)
#: Any JSON value, nested a few levels.
json_values: st.SearchStrategy[Any] = st.recursive(
    st.none() | st.booleans() | numbers | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=6,
)


@st.composite
def spoiled(draw: st.DrawFn, fields: Mapping[str, st.SearchStrategy[Any]]) -> dict[str, Any]:
    """An object with plausible ``fields`` (each present or not), of which none, one or a
    few are then replaced by any JSON value: parsers get past their first checks often
    enough to reach the later ones."""
    obj = {key: draw(value) for key, value in fields.items() if draw(st.booleans())}
    for key in draw(st.lists(st.sampled_from(sorted(fields)), max_size=3, unique=True)):
        obj[key] = draw(json_values)
    return obj


def essential(fields: Mapping[str, st.SearchStrategy[Any]]) -> st.SearchStrategy[dict[str, Any]]:
    """``fields`` a parser needs: all there and plausible three times in four, else
    ``spoiled``."""
    whole = st.fixed_dictionaries(dict(fields))
    return st.one_of(whole, whole, whole, spoiled(fields))


finite = st.floats(allow_nan=False, allow_infinity=False)

#: Words a kernel file might hold, and words it never would.
kernel_numbers = st.one_of(
    st.integers(min_value=0, max_value=U64_MAX).map(str),
    st.integers(min_value=-(2**63), max_value=-1).map(str),
    st.sampled_from(["18446744073709551616", "1" + "0" * 400, "-0", "+5", "1_000", "١٢", "0x1f"]),
    st.sampled_from(["nan", "inf", "-inf", "1e3", "", " ", "4.5"]),
)
words = st.one_of(kernel_numbers, st.text(max_size=12).filter(lambda w: not w.isspace()))
#: The same as bytes, and bytes that are no text at all.
raw_words = words.map(lambda w: w.encode("utf-8", "surrogatepass")) | st.binary(max_size=12)


def deeply_nested(depth: int) -> str:
    return "[" * depth + "]" * depth


def check_sample(sensor: str, data: Mapping[str, Any]) -> None:
    """A parsed sample's fields pass the gate, and every number in them is one a float holds
    (no NaN, no infinity, no integer beyond 64 bits), every string valid UTF-8."""
    check_fields(sensor, data)
    for key, value in data.items():
        assert isinstance(key, str) and key.encode("utf-8")
        if isinstance(value, float):
            assert math.isfinite(value), (key, value)
        elif isinstance(value, int) and not isinstance(value, bool):
            assert -(2**63) <= value < 2**63, (key, value)
        elif isinstance(value, str):
            assert value.encode("utf-8") is not None and len(value) <= 1024, key
        else:
            assert isinstance(value, bool), (key, value)


def check_rejection(result: object, reasons: frozenset[str]) -> None:
    """A refusal names a known reason and says what was wrong."""
    assert isinstance(result, Rejection)
    assert result.reason in reasons, result
    assert result.detail and len(result.detail) < 1000


def outcome(call: Callable[[], T]) -> T | SensorReadError | SensorUnavailable:
    """What ``call`` returns, or the sensor error it raises (with a reason); any other
    exception fails the test."""
    try:
        return call()
    except (SensorReadError, SensorUnavailable) as exc:
        assert exc.reason and exc.sensor, exc
        assert len(exc.reason) < 2000
        return exc
