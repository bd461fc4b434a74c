"""JSON through orjson where it is installed (the ``fast`` extra), with exactly the standard
library's results: the same objects parsed, the same text written, byte for byte.

orjson is about ten times faster per sample, but differs at the edges: it turns integers
beyond 64 bits into floats, writes ``1e16`` and ``0.00001`` where Python writes ``1e+16`` and
``1e-05``, and writes non-ASCII text as UTF-8 where vigil's stored JSON escapes it. Those
cases go to the standard library (the guards below); everything else is identical, so a
database is the same with or without orjson (tests/test_jsonfast.py).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

try:
    import orjson
except ImportError:  # Termux without a Rust toolchain: the standard library alone
    orjson = None  # type: ignore[assignment]

#: Text where orjson's numbers may differ from Python's repr: exponents and tiny fractions
#: (a string that merely contains such text takes the slow path, and is written the same).
_NOT_REPR = re.compile(rb"[0-9]e|0\.0000")
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
    if orjson is not None and type(data) is dict:
        try:
            raw = orjson.dumps(data)
        except (orjson.JSONEncodeError, TypeError):
            raw = b""
        if raw and raw.isascii() and b"\x7f" not in raw and not _NOT_REPR.search(raw):
            return raw.decode("ascii")
    return json.dumps(dict(data), separators=(",", ":"), allow_nan=False)
