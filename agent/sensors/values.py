"""Values from outside (a daemon's JSON, a command's output, /proc and /sys text) checked
where they enter: numbers that fit in a float, short descriptions of garbage, and refusals
counted per kind and logged once per kind."""

from __future__ import annotations

import json
import logging
import reprlib
from collections import Counter
from typing import Any

from agent.numbers import finite_float as real  # noqa: F401  (the sensors' name for it)

#: The largest value a kernel counter or attribute can hold (they are 64-bit).
U64_MAX = (1 << 64) - 1

_repr = reprlib.Repr()
_repr.maxlevel = 3
_repr.maxstring = 60
_repr.maxother = 60
_repr.maxlong = 40


def brief(value: object) -> str:
    """A short ``repr`` of anything: nesting, long strings and long numbers are cut, so a
    hostile value cannot make a log line huge or recurse without bound."""
    return _repr.repr(value)


#: Characters kept of a text value (a window title, a process or provider name): more is
#: no name, and one huge value would cost the whole sample at the gate.
TEXT_MAX = 1024


def clean_text(value: str | bytes, limit: int = TEXT_MAX) -> str:
    """Text that is valid UTF-8 whatever it came from (bytes decoded as UTF-8, lone
    surrogates from JSON's ``"\\ud800"`` or ``os.fsdecode`` replaced), cut at ``limit``
    characters."""
    if isinstance(value, bytes):
        return value[: 4 * limit].decode("utf-8", "replace")[:limit]
    return value[:limit].encode("utf-8", "replace").decode("utf-8")


def kernel_int(text: str | bytes, low: int = -(1 << 63), high: int = U64_MAX) -> int | None:
    """A decimal integer as the kernel writes it (ASCII digits, an optional minus sign,
    surrounding whitespace), within ``low``..``high`` (a 64-bit value by default); else None."""
    raw = text.strip() if isinstance(text, bytes) else text.strip().encode("utf-8", "replace")
    digits = raw[1:] if raw.startswith(b"-") else raw
    if not digits.isdigit() or len(digits) > 20:  # bytes.isdigit: ASCII digits only
        return None
    number = int(raw)
    return number if low <= number <= high else None


class TooDeep(ValueError):
    """JSON nested deeper than the decoder can follow."""


def loads(text: str | bytes) -> Any:
    """``json.loads`` whose every failure is a ``ValueError``: nesting too deep for the
    decoder (its ``RecursionError``) is ``TooDeep``."""
    try:
        return json.loads(text)
    except RecursionError:
        raise TooDeep("JSON nested too deeply") from None


class Refusals:
    """Refusals counted per kind (``counts``): the first of each kind is logged at WARNING,
    the rest at DEBUG, so garbage arriving at 1 Hz neither floods the log nor goes unseen."""

    def __init__(self, logger: logging.Logger, what: str) -> None:
        self.counts: Counter[str] = Counter()
        self._logger = logger
        self._what = what

    def note(self, kind: str, detail: str) -> None:
        self.counts[kind] += 1
        if self.counts[kind] == 1:
            self._logger.warning(
                "%s refused (%s): %s; more of this kind are counted, logged at DEBUG",
                self._what,
                kind,
                detail,
            )
        else:
            self._logger.debug("%s refused (%s): %s", self._what, kind, detail)
