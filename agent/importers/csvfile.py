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
import shlex
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, tzinfo
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from agent.errors import ConfigError, TraceError
from agent.importers.common import (
    ImportCounts,
    ImportOptions,
    Located,
    ProgressFn,
    QuietCounts,
    accuracy_or_default,
    location_fields,
    no_progress,
    open_source,
    parse_float,
)
from agent.samples import Sample

logger = logging.getLogger(__name__)

USER_COLUMNS = ("uid", "user_id", "userid", "user")
#: Column names that other tools give the time, latitude and longitude (for the hint when the
#: header lacks the ones asked for).
TIME_ALIASES = ("timestamp", "time", "datetime", "date_time", "tracked_at", "recorded_at", "utc")
LAT_ALIASES = ("lat", "latitude")
LON_ALIASES = ("lon", "lng", "long", "longitude")
ACCURACY_ALIASES = ("accuracy_m", "accuracy", "acc", "horizontal_accuracy", "hacc")
ALT_ALIASES = ("alt_m", "alt", "altitude", "elevation", "ele")
#: UNIX times at or above this are taken as milliseconds (1e11 s is in the year 5138).
MILLISECONDS_FROM = 1e11


@dataclass
class _Table:
    """One file's header, and what the first pass over its rows found."""

    path: Path
    width: int  # cells per row, as in the header
    index: dict[str, int]
    user_at: int | None
    metrics: list[str] = field(default_factory=list)


def read_csv(
    paths: Sequence[Path], options: ImportOptions, counts: ImportCounts, on_progress: ProgressFn
) -> Iterator[Located]:
    """A ``location`` sample per row (of the chosen user) and ``metric`` samples per row.

    Two passes over each file, so that no row is held: the first finds the users and which
    columns are mostly numbers, the second makes the samples (and reports progress)."""
    parse_time = time_parser(options.time_format, options.timezone)
    users: set[str] = set()
    tables = [_scan(path, options, users) for path in paths]
    if options.user is None and len(users) > 1:
        shown = ", ".join(sorted(users)[:5])
        raise TraceError(
            ", ".join(map(str, paths)),
            f"rows of {len(users)} users ({shown}): choose one with --user",
        )
    for table in tables:
        with open_source(table.path, on_progress, encoding="utf-8-sig", newline="") as f:
            for where, cells in _rows(table, f, options, counts):
                for sample in _samples(where, cells, table, parse_time, options, counts):
                    yield where, sample


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


def _scan(path: Path, options: ImportOptions, users: set[str]) -> _Table:
    """The first pass: the header, the users, and the metric columns (those whose non-empty
    cells are mostly numbers)."""
    with open_source(path, no_progress, encoding="utf-8-sig", newline="") as f:
        table = _header(path, f, options)
        mapped = {
            options.time_column,
            options.lat_column,
            options.lon_column,
            options.accuracy_column,
            options.alt_column,
            *options.ignore_columns,
        }
        candidates = {
            name: i for name, i in table.index.items() if name not in mapped and i != table.user_at
        }
        filled = dict.fromkeys(candidates.values(), 0)
        numbers = dict.fromkeys(candidates.values(), 0)
        for _, cells in _rows(table, f, options, QuietCounts()):
            if table.user_at is not None:
                users.add(cells[table.user_at].strip())
            for i in filled:
                if cells[i].strip():
                    filled[i] += 1
                    numbers[i] += _is_number(cells[i])
    table.metrics = [name for name, i in candidates.items() if numbers[i] * 2 > filled[i] > 0]
    return table


def _header(path: Path, lines: Iterable[str], options: ImportOptions) -> _Table:
    try:
        header = [name.strip() for name in next(csv.reader(lines, delimiter=options.delimiter), [])]
    except csv.Error as exc:
        raise TraceError(str(path), f"line 1: {exc}") from exc
    index = {name: i for i, name in enumerate(header)}
    required = (options.time_column, options.lat_column, options.lon_column)
    missing = [name for name in required if name not in index]
    if missing:
        raise TraceError(
            str(path),
            f"no column {', '.join(map(repr, missing))} in the header {header!r} "
            f"(delimiter {options.delimiter!r}; {_suggest(header, options)})",
        )
    user_column = _user_column(path, header, options.user_column)
    user_at = None if user_column is None else index[user_column]
    return _Table(path, len(header), index, user_at)


def _rows(
    table: _Table, lines: Iterable[str], options: ImportOptions, counts: ImportCounts
) -> Iterator[tuple[str, list[str]]]:
    """The rows after the header with the header's width, of the chosen user, with their
    ``file:line``; the others counted."""
    reader = csv.reader(lines, delimiter=options.delimiter)
    try:
        next(reader, None)  # the header
        for cells in reader:
            where = f"{table.path}:{reader.line_num}"
            if not any(cell.strip() for cell in cells):
                continue
            if len(cells) != table.width:
                counts.skip("bad_line", where, f"{len(cells)} cells, header has {table.width}")
                continue
            if table.user_at is not None and options.user is not None:
                if not _same_user(cells[table.user_at].strip(), options.user):
                    counts.skip("other_user", where)
                    continue
            yield where, cells
    except csv.Error as exc:  # a NUL byte, an unclosed quote over the size limit...
        raise TraceError(str(table.path), f"line {reader.line_num}: {exc}") from exc


def _suggest(header: list[str], options: ImportOptions) -> str:
    """What to try when the header lacks a required column: another delimiter where the
    header is one cell that another would split, else the options for the columns the header
    names by another tool's usual name ("latitude" for ``lat``...), optional ones too."""
    if len(header) == 1:
        for delimiter, said in ((";", "';'"), ("\t", "tab"), ("|", "'|'")):
            if delimiter in header[0] and delimiter != options.delimiter:
                return f"try --delimiter {said}"
    required = _aliased(
        header,
        ("--time-column", options.time_column, TIME_ALIASES),
        ("--lat-column", options.lat_column, LAT_ALIASES),
        ("--lon-column", options.lon_column, LON_ALIASES),
    )
    if not required:
        return "see --time-column, --lat-column, --lon-column"
    optional = _aliased(
        header,
        ("--accuracy-column", options.accuracy_column, ACCURACY_ALIASES),
        ("--alt-column", options.alt_column, ALT_ALIASES),
    )
    return "try " + " ".join(required + optional)


def _aliased(header: list[str], *columns: tuple[str, str, tuple[str, ...]]) -> list[str]:
    """``--flag name`` for each column asked for that the header lacks but names otherwise."""
    tries = []
    for flag, name, aliases in columns:
        found = _named_column(header, aliases)
        if name not in header and found is not None:
            tries.append(f"{flag} {shlex.quote(found)}")
    return tries


def _named_column(header: list[str], names: Sequence[str]) -> str | None:
    """The header's column named the first of ``names`` it has, in any case."""
    lower = {name.lower(): name for name in header}
    return next((lower[n] for n in names if n in lower), None)


def _user_column(path: Path, header: list[str], wanted: str) -> str | None:
    if wanted == "none":
        return None
    if wanted != "auto":
        if wanted not in header:
            raise TraceError(str(path), f"no user column {wanted!r} in the header {header!r}")
        return wanted
    return _named_column(header, USER_COLUMNS)


def _same_user(cell: str, wanted: str) -> bool:
    """``--user 1`` matches ``001``: numeric ids compare as numbers, here as digits without
    leading zeros (``int`` refuses ``²``, which ``isdigit`` takes, and 4,300 digits)."""
    wanted = wanted.strip()
    if cell.isascii() and cell.isdigit() and wanted.isascii() and wanted.isdigit():
        return cell.lstrip("0") == wanted.lstrip("0")
    return cell == wanted


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _samples(
    where: str,
    cells: list[str],
    table: _Table,
    parse_time: Callable[[str], float],
    options: ImportOptions,
    counts: ImportCounts,
) -> list[Sample]:
    index = table.index
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
    for name in table.metrics:
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
