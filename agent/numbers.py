"""What counts as a number in a sample, a report or an import: an ``int`` or a ``float``,
never a ``bool`` (which Python counts as an ``int``)."""

from __future__ import annotations

import math
from typing import TypeGuard


def is_number(value: object) -> TypeGuard[int | float]:
    return isinstance(value, int | float) and not isinstance(value, bool)


def finite_float(value: object) -> float | None:
    """``value`` as a finite float, or None for anything else: absent, a string, a flag, an
    infinity or NaN, an integer too large for any float."""
    if not is_number(value):
        return None
    try:
        x = float(value)
    except OverflowError:
        return None
    return x if math.isfinite(x) else None
