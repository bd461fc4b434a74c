"""OwnTracks Recorder ``.rec`` files -> location samples (importer).

Each line is ``ISO-time<TAB>type<TAB>JSON`` (the first field is when the recorder stored
it). Only ``"_type": "location"`` records are fixes; the rest (``lwt``, ``transition``,
``card``...) are counted by type and left out (a type that is not a short word as
``odd_type``: skip reasons are counter keys). Fields (OwnTracks JSON booklet): ``tst`` the
fix time (UNIX s), ``lat``, ``lon``, ``acc`` the horizontal accuracy in metres (the phone's
own: Android's 68 % radius, iOS's ``horizontalAccuracy``), ``alt`` metres, ``vel`` km/h,
``cog`` degrees. iOS writes -1 for a speed or course it does not know: those are left out.
An ``acc`` of 0 (Android: no accuracy) takes the default.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from agent.errors import TraceError
from agent.importers.common import (
    ImportCounts,
    ImportOptions,
    Located,
    ProgressFn,
    accuracy_or_default,
    location_fields,
    open_source,
)
from agent.numbers import finite_float
from agent.samples import Sample

logger = logging.getLogger(__name__)

KMH_TO_MPS = 1000.0 / 3600.0


def read_owntracks(
    paths: Sequence[Path], options: ImportOptions, counts: ImportCounts, on_progress: ProgressFn
) -> Iterator[Located]:
    """One ``location`` sample per location record of every ``.rec`` file."""
    for path in paths:
        lines_seen = records = 0
        with open_source(path, on_progress) as lines:
            for lineno, line in enumerate(lines, 1):
                if not line.strip():
                    continue
                lines_seen += 1
                where = f"{path}:{lineno}"
                record = _record(line, where, counts)
                if record is None:
                    continue
                records += 1
                kind = record.get("_type")
                if kind != "location":
                    counts.skip(_type_reason(kind), where)
                    continue
                sample = _sample(record, where, options.accuracy_m, counts)
                if sample is not None:
                    yield where, sample
        if lines_seen and not records:
            raise TraceError(str(path), "not an OwnTracks .rec file (no time<TAB>type<TAB>JSON)")


def _record(line: str, where: str, counts: ImportCounts) -> dict[str, Any] | None:
    parts = line.rstrip("\r\n").split("\t", 2)
    if len(parts) != 3:
        counts.skip("bad_line", where, "not time<TAB>type<TAB>JSON")
        return None
    try:
        record = json.loads(parts[2])
    except ValueError as exc:
        counts.skip("bad_json", where, str(exc))
        return None
    except RecursionError:  # the decoder recurses once per level of nesting
        counts.skip("bad_json", where, "nested too deeply")
        return None
    if not isinstance(record, dict):
        counts.skip("bad_json", where, "not a JSON object")
        return None
    return record


def _type_reason(kind: object) -> str:
    """The skip reason for a record of another type: ``type_lwt``... A type that is no short
    word is ``odd_type``: reasons are counter keys, printed in the summary."""
    if not isinstance(kind, str):
        return "no_type"
    if len(kind) <= 32 and kind.isascii() and kind.isidentifier():
        return f"type_{kind}"
    return "odd_type"


def _sample(
    record: dict[str, Any], where: str, default_accuracy_m: float | None, counts: ImportCounts
) -> Sample | None:
    tst = finite_float(record.get("tst"))
    if tst is None:
        counts.skip("no_time", where, f"tst {_show(record.get('tst'))}")
        return None
    lat, lon = finite_float(record.get("lat")), finite_float(record.get("lon"))
    if lat is None or lon is None:
        counts.skip(
            "missing_position",
            where,
            f"lat {_show(record.get('lat'))}, lon {_show(record.get('lon'))}",
        )
        return None
    acc = finite_float(record.get("acc"))
    if acc is None and record.get("acc") is not None:
        counts.skip("bad_number", where, f"acc {_show(record.get('acc'))}")
        return None
    vel, cog = finite_float(record.get("vel")), finite_float(record.get("cog"))
    fields = location_fields(
        lat,
        lon,
        accuracy_or_default(acc, default_accuracy_m, counts),
        alt_m=finite_float(record.get("alt")),
        speed_mps=vel * KMH_TO_MPS if vel is not None and vel >= 0 else None,
        bearing_deg=cog if cog is not None and cog >= 0 else None,
    )
    return Sample("location", tst, fields)


def _show(value: object) -> str:
    """A field's value for a log line: short, and never ``repr`` of a nested structure
    (which recurses) or of a huge integer."""
    if isinstance(value, str | float | bool) or value is None:
        return repr(value)[:40]
    if isinstance(value, int):
        return (
            repr(value) if value.bit_length() <= 64 else f"an integer of {value.bit_length()} bits"
        )
    return f"a JSON {type(value).__name__}"
