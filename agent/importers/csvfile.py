"""CSV files with a header row -> location samples, plus a metric stream per other numeric
column (importer).

Columns are named by options (``--time-column`` ``timestamp``, ``--lat-column`` ``lat``,
``--lon-column`` ``lon``, ``--accuracy-column`` ``accuracy_m``, ``--alt-column`` ``alt_m``);
the accuracy and altitude columns are optional. Times are ISO 8601 or UNIX seconds
(milliseconds when >= 1e11, a year past 5000 in seconds), or follow ``--time-format``; times
without an offset are in ``--timezone`` (UTC). A user column (``--user-column``; ``auto`` takes
the first of ``uid``, ``user_id``, ``userid``, ``user``) is never a stream: with more than
one user in the input, ``--user`` must pick one, because one trace is one person's agent and
two people's fixes merged would be one person jumping between two places.

Every other column whose non-empty cells are mostly (over half) numbers is a ``metric``
stream named after the column; one bad cell there skips that value only (``bad_number``),
while a bad cell in a mapped column skips the row. An accuracy of 0 means "not known"
(Android's convention) and takes the default, as does an empty one.
"""

from __future__ import annotations

import csv
import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, tzinfo
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from agent.errors import ConfigError, TraceError
from agent.importers.common import (
    ImportCounts,
    ImportOptions,
    ProgressFn,
    accuracy_or_default,
    location_fields,
    open_source,
    parse_float,
)
from agent.samples import Sample

logger = logging.getLogger(__name__)

USER_COLUMNS = ("uid", "user_id", "userid", "user")
#: UNIX times at or above this are taken as milliseconds (1e11 s is in the year 5138).
MILLISECONDS_FROM = 1e11


@dataclass
class _Table:
    """One file's header and the rows kept from it."""

    path: Path
    width: int  # cells per row, as in the header
    index: dict[str, int]
    user_at: int | None
    rows: list[tuple[str, list[str]]] = field(default_factory=list)  # (file:line, cells)


def read_csv(
    paths: Sequence[Path], options: ImportOptions, counts: ImportCounts, on_progress: ProgressFn
) -> list[Sample]:
    """A ``location`` sample per row (of the chosen user) and ``metric`` samples per row."""
    parse_time = time_parser(options.time_format, options.timezone)
    tables: list[_Table] = []
    users: set[str] = set()
    for path in paths:
        with open_source(path, on_progress, encoding="utf-8-sig", newline="") as f:
            tables.append(_table(path, f, options, counts, users))
    if options.user is None and len(users) > 1:
        shown = ", ".join(sorted(users)[:5])
        raise TraceError(
            ", ".join(map(str, paths)),
            f"rows of {len(users)} users ({shown}): choose one with --user",
        )
    samples: list[Sample] = []
    for table in tables:
        metrics = _metric_columns(table, options)
        for where, cells in table.rows:
            samples.extend(
                _samples(where, cells, table.index, metrics, parse_time, options, counts)
            )
    return samples


def time_parser(time_format: str | None, timezone: str) -> Callable[[str], float]:
    """Text -> UNIX seconds; ``ValueError`` when the text is not a time."""
    zone = _zone(timezone)

    def parse(text: str) -> float:
        text = text.strip()
        if time_format is not None:
            # Naive unless the format has %z; the zone is applied below.
            when = datetime.strptime(text, time_format)  # noqa: DTZ007
        else:
            try:
                number = float(text)
            except ValueError:
                when = datetime.fromisoformat(text)
            else:
                return number / 1000.0 if abs(number) >= MILLISECONDS_FROM else number
        return (when if when.tzinfo is not None else when.replace(tzinfo=zone)).timestamp()

    return parse


def _zone(name: str) -> tzinfo:
    if name.upper() in ("UTC", "Z"):
        return UTC
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ConfigError("--timezone", "", f"unknown time zone {name!r}") from exc


def _table(
    path: Path, lines: Iterable[str], options: ImportOptions, counts: ImportCounts, users: set[str]
) -> _Table:
    reader = csv.reader(lines, delimiter=options.delimiter)
    header = [name.strip() for name in next(reader, [])]
    index = {name: i for i, name in enumerate(header)}
    required = (options.time_column, options.lat_column, options.lon_column)
    missing = [name for name in required if name not in index]
    if missing:
        raise TraceError(
            str(path),
            f"no column {', '.join(map(repr, missing))} in the header {header!r} "
            f"(delimiter {options.delimiter!r}; see --time-column, --lat-column, --lon-column)",
        )
    user_column = _user_column(path, header, options.user_column)
    user_at = None if user_column is None else index[user_column]
    table = _Table(path, len(header), index, user_at)
    try:
        for cells in reader:
            _keep_row(table, f"{path}:{reader.line_num}", cells, options, counts, users)
    except csv.Error as exc:  # a NUL byte, an unclosed quote over the size limit...
        raise TraceError(str(path), f"line {reader.line_num}: {exc}") from exc
    return table


def _keep_row(
    table: _Table,
    where: str,
    cells: list[str],
    options: ImportOptions,
    counts: ImportCounts,
    users: set[str],
) -> None:
    if not any(cell.strip() for cell in cells):
        return
    if len(cells) != table.width:
        counts.skip("bad_line", where, f"{len(cells)} cells, header has {table.width}")
        return
    if table.user_at is not None:
        user = cells[table.user_at].strip()
        if options.user is not None and not _same_user(user, options.user):
            counts.skip("other_user", where)
            return
        users.add(user)
    table.rows.append((where, cells))


def _user_column(path: Path, header: list[str], wanted: str) -> str | None:
    if wanted == "none":
        return None
    if wanted != "auto":
        if wanted not in header:
            raise TraceError(str(path), f"no user column {wanted!r} in the header {header!r}")
        return wanted
    lower = {name.lower(): name for name in header}
    return next((lower[c] for c in USER_COLUMNS if c in lower), None)


def _same_user(cell: str, wanted: str) -> bool:
    """``--user 1`` matches ``001``: numeric ids compare as numbers."""
    if cell.isdigit() and wanted.strip().isdigit():
        return int(cell) == int(wanted)
    return cell == wanted.strip()


def _metric_columns(table: _Table, options: ImportOptions) -> list[str]:
    mapped = {
        options.time_column,
        options.lat_column,
        options.lon_column,
        options.accuracy_column,
        options.alt_column,
        *options.ignore_columns,
    }
    metrics = []
    for name, i in table.index.items():
        if name in mapped or i == table.user_at:
            continue
        values = [row[i] for _, row in table.rows if row[i].strip()]
        numbers = sum(1 for value in values if _is_number(value))
        if values and numbers * 2 > len(values):
            metrics.append(name)
    return metrics


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _samples(
    where: str,
    cells: list[str],
    index: dict[str, int],
    metrics: list[str],
    parse_time: Callable[[str], float],
    options: ImportOptions,
    counts: ImportCounts,
) -> list[Sample]:
    try:
        t = parse_time(cells[index[options.time_column]])
    except ValueError:
        counts.skip("bad_time", where, cells[index[options.time_column]])
        return []
    try:
        lat = parse_float(cells[index[options.lat_column]])
        lon = parse_float(cells[index[options.lon_column]])
        acc = _optional(cells, index, options.accuracy_column)
        alt = _optional(cells, index, options.alt_column)
    except ValueError:
        counts.skip("bad_number", where, ",".join(cells))
        return []
    samples = []
    if lat is None or lon is None:
        counts.skip("missing_position", where)
    else:
        accuracy = accuracy_or_default(acc, options.accuracy_m, counts)
        samples.append(Sample("location", t, location_fields(lat, lon, accuracy, alt_m=alt)))
    for name in metrics:
        try:
            value = parse_float(cells[index[name]])
        except ValueError:
            counts.skip("bad_number", where, f"{name}={cells[index[name]]!r}")
            continue
        if value is None:
            counts.skip("empty_value", where, name)
        else:
            samples.append(Sample("metric", t, {"name": name, "value": value}))
    return samples


def _optional(cells: list[str], index: dict[str, int], column: str) -> float | None:
    return parse_float(cells[index[column]]) if column in index else None
