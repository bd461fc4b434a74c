"""GeoLife ``.plt`` trajectories -> location samples (importer).

Format (GeoLife User Guide 1.3): six header lines (the first is ``Geolife trajectory``), then
``lat,lon,0,altitude_ft,days_since_1899-12-30,date,time`` per point, times in GMT. Altitude
``-777`` means none; feet become ``alt_m``. Time comes from the date and time fields (whole
seconds); the day count repeats it and is not used. The points carry no accuracy: they take
the default. GeoLife's other release, a CSV of ``lat,lng,datetime,uid`` rows (as in
scikit-mobility's ``geolife_sample.txt.gz``), goes through the ``csv`` importer.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path

from agent.errors import TraceError
from agent.importers.common import (
    ImportCounts,
    ImportOptions,
    Located,
    ProgressFn,
    location_fields,
    open_source,
    parse_float,
)
from agent.samples import Sample

logger = logging.getLogger(__name__)

HEADER_LINES = 6
FEET_M = 0.3048
NO_ALTITUDE_FT = -777.0

#: How every ``.plt`` file begins.
FIRST_LINE = "Geolife trajectory"


def read_geolife(
    paths: Sequence[Path], options: ImportOptions, counts: ImportCounts, on_progress: ProgressFn
) -> Iterator[Located]:
    """One ``location`` sample per point of every ``.plt`` file."""
    for path in paths:
        with open_source(path, on_progress) as lines:
            for lineno, line in enumerate(lines, 1):
                if lineno == 1 and not line.startswith(FIRST_LINE):
                    raise TraceError(str(path), f"not a GeoLife .plt file (no {FIRST_LINE!r})")
                if lineno <= HEADER_LINES or not line.strip():
                    continue
                where = f"{path}:{lineno}"
                sample = _sample(line, where, options.accuracy_m, counts)
                if sample is not None:
                    yield where, sample


def _sample(
    line: str, where: str, default_accuracy_m: float | None, counts: ImportCounts
) -> Sample | None:
    parts = line.strip().split(",")
    if len(parts) != 7:
        counts.skip("bad_line", where, f"{len(parts)} fields, not 7")
        return None
    try:
        lat, lon, alt_ft = parse_float(parts[0]), parse_float(parts[1]), parse_float(parts[3])
    except ValueError:
        counts.skip("bad_number", where, line.strip())
        return None
    if lat is None or lon is None:
        counts.skip("missing_position", where, line.strip())
        return None
    try:
        when = datetime.strptime(f"{parts[5]} {parts[6]}", "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC)
    except ValueError:
        counts.skip("bad_time", where, f"{parts[5]} {parts[6]}")
        return None
    counts.defaulted["no_accuracy"] += 1
    alt_m = None if alt_ft is None or alt_ft == NO_ALTITUDE_FT else alt_ft * FEET_M
    fields = location_fields(lat, lon, default_accuracy_m, alt_m=alt_m, provider="gps")
    return Sample("location", when.timestamp(), fields)
