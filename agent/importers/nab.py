"""Numenta Anomaly Benchmark CSVs (``timestamp,value``) -> one ``metric`` stream per file
(importer).

Times look like ``2014-04-01 00:00:00`` and carry no zone: they are taken as UTC (NAB's labels
use the same naive times, so windows line up). The stream is named ``--name``, else the file's
stem (``nyc_taxi``). Some NAB files repeat timestamps (a local-time hour written twice, e.g.
``machine_temperature_system_failure`` on 2014-01-07 02:00-02:55): every row is kept; sorting
by time is stable, so rows at one instant keep their file order.
"""

from __future__ import annotations

import csv
import logging
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path

from agent.errors import ConfigError, TraceError
from agent.importers.common import (
    ImportCounts,
    ImportOptions,
    Located,
    ProgressFn,
    open_source,
    parse_float,
)
from agent.samples import Sample

logger = logging.getLogger(__name__)

HEADER = ["timestamp", "value"]


def read_nab(
    paths: Sequence[Path], options: ImportOptions, counts: ImportCounts, on_progress: ProgressFn
) -> Iterator[Located]:
    """One ``metric`` sample per row of every file."""
    if options.name is not None and len(paths) > 1:
        reason = f"one stream name for {len(paths)} files: import one file, or drop --name"
        raise ConfigError("--name", "", reason)
    for path in paths:
        name = options.name or path.name.removesuffix(".gz").removesuffix(".csv")
        with open_source(path, on_progress, encoding="utf-8-sig", newline="") as f:
            reader = csv.reader(f)
            try:
                header = [cell.strip() for cell in next(reader, [])]
                if header != HEADER:
                    reason = f"not a NAB file: header {header!r}, not {HEADER!r}"
                    raise TraceError(str(path), reason)
                for cells in reader:
                    where = f"{path}:{reader.line_num}"
                    sample = _sample(name, cells, where, counts)
                    if sample is not None:
                        yield where, sample
            except csv.Error as exc:  # a field over the csv module's size limit...
                raise TraceError(str(path), f"line {reader.line_num}: {exc}") from exc


def _sample(name: str, cells: list[str], where: str, counts: ImportCounts) -> Sample | None:
    if len(cells) != 2:
        if any(cell.strip() for cell in cells):
            counts.skip("bad_line", where, f"{len(cells)} cells, not 2")
        return None
    try:
        when = datetime.fromisoformat(cells[0].strip())
    except ValueError:
        counts.skip("bad_time", where, cells[0])
        return None
    try:
        value = parse_float(cells[1])
    except ValueError:
        counts.skip("bad_number", where, cells[1])
        return None
    if value is None:
        counts.skip("empty_value", where)
        return None
    t = (when if when.tzinfo is not None else when.replace(tzinfo=UTC)).timestamp()
    return Sample("metric", t, {"name": name, "value": value})
