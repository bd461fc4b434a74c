"""JSON through orjson where it is installed (the ``fast`` extra), with exactly the standard
library's results: the same objects parsed, the same text written, byte for byte.

orjson is about ten times faster per sample, but differs at the edges: it turns integers
beyond 64 bits into floats, writes ``0.00001`` and ``1.5e-7`` where Python writes ``1e-05``
and ``1.5e-07``, writes NaN as ``null`` where vigil refuses it, and writes non-ASCII text as
UTF-8 where vigil's stored JSON escapes it. Those cases go to the standard library (the
guards below); everything else is identical, so a database is the same with or without
orjson (tests/test_trace_properties.py).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

try:
    import orjson
except ImportError:  # Termux without a Rust toolchain: the standard library alone
    orjson = None  # type: ignore[assignment]

#: Floats whose magnitude is in [_PLAIN_LOW, _PLAIN_HIGH) are written by Python's repr in
#: plain decimal, and by orjson the same (0 differences in 2.6 million random floats); outside
#: it repr uses an exponent, which orjson may write differently.
_PLAIN_LOW, _PLAIN_HIGH = 1e-4, 1e16
#: Floats past this may have been integers beyond 64 bits in the text (orjson's floats).
_BIG = float(2**63)


def loads_object(text: str) -> dict[str, Any] | None:
    """The JSON object in ``text`` if orjson reads it exactly as the standard library would;
    None when orjson is missing, the text is not an object, or it needs a closer look (the
    caller's full parser then says what is wrong, or reads it)."""
    if orjson is None:
        return None
    try:
        obj = orjson.loads(text)
    except orjson.JSONDecodeError:
        return None
    if type(obj) is not dict:
        return None
    for value in obj.values():
        if type(value) is float and not -_BIG < value < _BIG:
            return None  # perhaps an integer of more than 64 bits: Python keeps it exact
    return obj


def dumps_compact(data: Mapping[str, Any]) -> str:
    """``json.dumps(data, separators=(",", ":"), allow_nan=False)``, faster."""
    if orjson is not None and type(data) is dict and _plain(data):
        try:
            raw = orjson.dumps(data)
        except (orjson.JSONEncodeError, TypeError):
            raw = b""
        if raw and raw.isascii() and b"\x7f" not in raw:
            return raw.decode("ascii")
    return json.dumps(dict(data), separators=(",", ":"), allow_nan=False)


def _plain(data: dict[str, Any]) -> bool:
    """Whether ``data`` is flat and every float in it is one orjson writes as repr does
    (a check on the values: a search of the written text took six times orjson's own time)."""
    for value in data.values():
        kind = type(value)
        if kind is float:
            if value and not _PLAIN_LOW <= abs(value) < _PLAIN_HIGH:  # NaN and inf fail too
                return False
        elif kind is not str and kind is not int and kind is not bool and value is not None:
            return False  # nested: the standard library
    return True
