"""Property-based: whatever a file holds, every importer ends in a trace or in a clear error
(a ``VigilError``), accounts for every record it reads (a sample written, or a skip or a
rejection counted), and writes only samples that the trace reader takes back, in time order.

The files are random bytes, valid files with bytes changed, and files built from records
whose fields are drawn from numbers beyond any float, NaN, times past 9999, impossible
offsets, lone surrogates, odd encodings and deep nesting. Each case is small, so the
thousands of cases stay within a minute."""

from __future__ import annotations

import csv
import gzip
import io
import json
import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from functools import reduce
from pathlib import Path
from typing import Any, TypeVar

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agent.errors import VigilError
from agent.importers import IMPORTERS, ImportCounts, ImportOptions, import_files
from agent.runtime.trace import ReadCounts, read_header, read_trace

T = TypeVar("T")
SUFFIX = {"nmea": ".log", "gpx": ".gpx", "geolife": ".plt", "owntracks": ".rec", "csv": ".csv"}
SUFFIX["nab"] = ".csv"


def _examples(n: int) -> settings:
    """``n`` cases, or more when the profile asks for more (``HYPOTHESIS_PROFILE=deep``)."""
    return settings(max_examples=max(n, settings().max_examples))


class _StrictHandler(logging.Handler):
    """Formats every log record of the importers, as a terminal would print it: a message
    that cannot be formatted, or not written as UTF-8, fails the test instead of being lost."""

    def emit(self, record: logging.LogRecord) -> None:
        self.format(record).encode("utf-8")


@pytest.fixture(scope="module", autouse=True)
def strict_log() -> Iterator[None]:
    log = logging.getLogger("agent.importers")
    handler = _StrictHandler(logging.DEBUG)
    saved = log.level, log.propagate
    log.addHandler(handler)
    log.setLevel(logging.DEBUG)
    log.propagate = False  # thousands of cases: keep them out of pytest's captured log
    yield
    log.removeHandler(handler)
    log.setLevel(saved[0])
    log.propagate = saved[1]


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("imports")


def _import(
    workdir: Path,
    kind: str,
    data: bytes,
    chunk_size: int,
    options: ImportOptions | None = None,
    *,
    gz: bool = False,
) -> ImportCounts | None:
    """Import ``data`` as a ``kind`` file (gzip data when ``gz``); ``None`` for a clear
    error. Whatever was written must read back whole, sorted, with the header's time the last
    sample's."""
    src = workdir / f"in{SUFFIX[kind]}{'.gz' if gz else ''}"
    src.write_bytes(data)
    out = workdir / "out.jsonl"
    out.unlink(missing_ok=True)
    try:
        counts = import_files(kind, [src], out, options, chunk_size=chunk_size)
    except VigilError as exc:
        assert not out.exists(), "a refused import writes nothing"
        str(exc).encode("utf-8")  # the message reaches a terminal
        return None
    read = ReadCounts()
    samples = list(read_trace([out], read))
    assert not read.rejected and not read.warnings, read.summary()
    assert len(samples) == counts.written
    times = [s.t for s in samples]
    assert times == sorted(times)
    assert read_header(out)["created"] == (times[-1] if times else 0.0)
    assert (counts.first_t, counts.last_t) == ((times[0], times[-1]) if times else (None, None))
    counts.summary().encode("utf-8")
    return counts


def _outcomes(counts: ImportCounts) -> int:
    """Records accounted for: written, skipped (duplicates included) or rejected."""
    return counts.written + counts.skipped.total() + counts.rejected.total()


def _lines(text: str) -> list[str]:
    """Lines as the importers read them (universal newlines, like ``open_source``)."""
    return list(io.StringIO(text, newline=None))


# Strategies: the pieces of a file.

TRICKY = [
    "",
    " ",
    "0",
    "-0",
    "1e20",
    "-1e20",
    "1e400",
    "-1e400",
    "1" + "0" * 400,
    "nan",
    "NaN",
    "inf",
    "-Infinity",
    "1_000",
    "0x10",
    "1" * 5000,  # more digits than int() converts
    "0" * 4400 + "1",
    "１２",  # full-width digits: float() takes them
    "٣",  # an Arabic-Indic digit
    "²",  # str.isdigit() says yes, int() says no (and it is a Latin-1 byte)
    "4807.0²8",
    "²807.038",
    "9999-12-31T23:59:59",
    "9999-12-31T23:59:59-01:00",
    "0001-01-01T00:00:00+01:00",
    "2020-01-01T00:00:00+99:00",
    "2020-02-30T00:00:00Z",
    "2020-01-01T00:00:00Z",
    "2020-01-01 00:00:00",
    "1577836800",
    "1577836800123",
    "253402300800",
    "\x00",
    "\ufeff",
    "\u2028",
    "\ud800",
    '"',
    "'",
    ",",
    ";",
    "\t",
    "\r",
    "\n",
    "<",
    "&",
    "]]>",
]
#: Any character, lone surrogates included (written as the bytes a careless writer emits).
CHARS = st.characters(exclude_categories=()) | st.characters(
    min_codepoint=0xD800, max_codepoint=0xDFFF
)
CELLS = st.one_of(
    st.sampled_from(TRICKY),
    st.floats().map(repr),
    st.integers(-(10**30), 10**30).map(str),
    st.floats(1e9, 2e12).map(lambda t: f"{t:.3f}"),
    st.text(max_size=8),  # lone surrogates come from TRICKY, now and then
)


TRICKY_BYTES = st.sampled_from(TRICKY).map(lambda s: s.encode("utf-8", "surrogatepass"))


def _encode(text: str, encoding: str) -> bytes:
    if encoding == "latin-1":
        return text.encode("latin-1", "replace")
    if encoding == "utf-16":
        return text.encode("utf-16", "surrogatepass")
    return text.encode(encoding, "surrogatepass")  # utf-8, utf-8-sig


ENCODINGS = st.sampled_from(["utf-8"] * 12 + ["utf-8-sig", "utf-16", "latin-1"])


@st.composite
def mutated(draw: st.DrawFn, data: bytes) -> bytes:
    """``data`` with a few bytes deleted, inserted, flipped or repeated."""
    out = bytearray(data)
    for _ in range(draw(st.integers(0, 4))):
        at = draw(st.integers(0, len(out)))
        op = draw(st.sampled_from(["delete", "insert", "flip", "repeat"]))
        if op == "delete":
            del out[at : at + draw(st.integers(1, 8))]
        elif op == "insert":
            out[at:at] = draw(st.binary(min_size=1, max_size=8) | TRICKY_BYTES)
        elif op == "flip" and at < len(out):
            out[at] ^= draw(st.integers(1, 255))
        else:
            out[at:at] = out[at : at + draw(st.integers(1, 40))]
    return bytes(out)


# Valid seeds, one per format.

GPX_HEAD = (
    '<?xml version="1.0" encoding="UTF-8"?>\n<gpx version="1.1" creator="t" '
    'xmlns="http://www.topografix.com/GPX/1/1">\n'
)


def _gpx_point(lat: str, lon: str, time: str, ele: str, hdop: str, depth: int) -> str:
    extensions = "<extensions>" + "<x>" * depth + "</x>" * depth + "</extensions>"
    inner = f"<ele>{ele}</ele><time>{time}</time><hdop>{hdop}</hdop>{extensions if depth else ''}"
    return f'<trkpt lat="{lat}" lon="{lon}">{inner}</trkpt>\n'


def _xml(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace('"', "&quot;")


def _nmea(body: str) -> str:
    checksum = reduce(lambda acc, ch: acc ^ ord(ch), body, 0)
    return f"${body}*{checksum:02X}\n"


SEEDS = {
    "nmea": "".join(
        [
            _nmea("GPGGA,120000,4807.038,N,01131.000,E,1,08,0.9,545.4,M,46.9,M,,"),
            _nmea("GPRMC,120000,A,4807.038,N,01131.000,E,022.4,084.4,230394,003.1,W"),
            _nmea("GPGGA,120001,4807.039,N,01131.001,E,2,08,1.1,545.5,M,46.9,M,,"),
            _nmea("GPRMC,120001,A,4807.039,N,01131.001,E,022.4,084.4,230394,003.1,W"),
            _nmea("GPGSA,A,3,04,05,,09,12,,,24,,,,,2.5,1.3,2.1"),
        ]
    ),
    "gpx": GPX_HEAD
    + "<wpt lat='1' lon='2'/><trk><trkseg>\n"
    + _gpx_point("45.0", "14.0", "2010-01-01T00:00:02Z", "100", "1.5", 2)
    + _gpx_point("45.1", "14.1", "2010-01-01T00:00:01+01:00", "101", "0", 0)
    + "</trkseg></trk></gpx>\n",
    "geolife": "Geolife trajectory\nWGS 84\nAltitude is in Feet\nReserved 3\n"
    "0,2,255,My Track,0,0,2,8421376\n0\n"
    "39.984702,116.318417,0,492,39744.1201851852,2008-10-23,02:53:04\n"
    "39.984683,116.31845,0,-777,39744.1202546296,2008-10-23,02:53:10\n",
    "owntracks": '2015-08-24T05:55:07Z\t*\t{"_type":"location","tst":1440395361,"lat":52.0,'
    '"lon":10.0,"acc":5,"vel":3,"cog":-1,"alt":51}\n'
    '2015-08-24T05:55:08Z\t*\t{"_type":"lwt","tst":1440395362}\n'
    '2015-08-24T05:55:09Z\t*\t{"_type":"location","tst":1440395360,"lat":52.1,"lon":10.1}\n',
    "csv": "timestamp,lat,lon,accuracy_m,steps\n"
    "2020-01-01T00:00:00Z,47.0,8.0,5,10\n1577836801,47.1,8.1,0,11\n",
    "nab": "timestamp,value\n2014-04-01 00:00:00,20.5\n2014-04-01 00:05:00,21.0\n",
}


ZONES = st.sampled_from(
    [UTC, timezone(timedelta(hours=14)), timezone(timedelta(hours=-23, minutes=-59))]
)


def _plausible(
    good: st.SearchStrategy[T], odd: st.SearchStrategy[T] = CELLS, one_in: int = 4
) -> st.SearchStrategy[T]:
    """Mostly a value that parses (so that records reach the gate), tricky one time in
    ``one_in``. (Hypothesis's ``one_of`` weighs the branches of nested ones, not the
    arguments, so the odds are drawn here.)"""
    return st.integers(1, one_in).flatmap(lambda i: good if i > 1 else odd)


#: Mostly in the gate's years (1970 to 9999), sometimes any year a datetime holds.
WHEN = _plausible(
    st.datetimes(
        datetime(1970, 1, 2),  # noqa: DTZ001 - hypothesis takes naive bounds, then a zone
        datetime(2100, 1, 1),  # noqa: DTZ001
        timezones=st.none() | ZONES,
    ),
    st.datetimes(timezones=st.none() | ZONES),
)
#: Times as the formats write them: ISO 8601 (with or without an offset), UNIX seconds or
#: milliseconds, and impossible offsets.
GOOD_TIME = _plausible(
    WHEN.map(lambda w: w.isoformat()) | WHEN.map(lambda w: w.isoformat(sep=" ")),
    st.one_of(
        st.floats(-1e12, 1e13).map(repr),
        st.integers(-(10**13), 10**22).map(str),
        st.sampled_from(["2020-01-01T00:00:00+99:00", "2020-01-01T00:00:00-24:00", "1e20"]),
    ),
)
GOOD_COORD = _plausible(st.floats(-90, 90).map(lambda x: f"{x:.6f}"), st.floats().map(repr), 8)
GOOD_NUMBER = st.floats(-1e6, 1e6).map(repr) | st.integers(0, 10**6).map(str)
TIME, COORD, NUMBER = map(_plausible, (GOOD_TIME, GOOD_COORD, GOOD_NUMBER))
#: NMEA fields: hhmmss[.ss], ddmmyy and (d)ddmm.mmmm, as receivers write them (a few digits
#: out of range now and then).
NMEA_TIME = _plausible(
    st.tuples(st.integers(0, 24), st.integers(0, 60), st.floats(0, 61)).map(
        lambda hms: f"{hms[0]:02d}{hms[1]:02d}{hms[2]:05.2f}"
    )
)
NMEA_DATE = _plausible(
    st.tuples(st.integers(0, 32), st.integers(0, 13), st.integers(0, 99)).map(
        lambda dmy: f"{dmy[0]:02d}{dmy[1]:02d}{dmy[2]:02d}"
    )
)
NMEA_LAT, NMEA_LON = (
    _plausible(
        st.tuples(st.integers(0, most), st.floats(0, 60)).map(lambda dm: f"{dm[0]}{dm[1]:07.4f}"),
        _plausible(st.sampled_from(["²807.038", "1" * 400 + "07.038", "48٠7.038"]), one_in=2),
    )
    for most in (91, 181)
)

#: Position sentences: time, latitude, longitude, quality or status, HDOP or speed, date.
NMEA_TEMPLATES = [
    "GPGGA,{t},{lat},N,{lon},E,{q},08,{n},{n},M,,M,,",
    "GPRMC,{t},{s},{lat},N,{lon},W,{n},{n},{d},,",
    "GNRMC,{t},{s},{lat},S,{lon},E,{n},{n},{d},,,{s}",
]


@st.composite
def built(draw: st.DrawFn, kind: str) -> str:
    """A file of ``kind`` built from records whose fields are mostly plausible, and tricky
    now and then."""
    n = draw(st.integers(0, 6))
    if kind == "nmea":
        lines = []
        for _ in range(n):
            template = draw(st.sampled_from(NMEA_TEMPLATES))
            fields = {
                "t": draw(NMEA_TIME),
                "lat": draw(NMEA_LAT),
                "lon": draw(NMEA_LON),
                "q": draw(_plausible(st.sampled_from("111240"), CELLS | st.just("²"))),
                "s": draw(_plausible(st.sampled_from("AAAAVN"))),
                "n": draw(NUMBER),
                "d": draw(NMEA_DATE),
            }
            lines.append(_nmea(template.format(**fields)))
        return "".join(lines)
    if kind == "gpx":
        depth = st.integers(0, 9).flatmap(
            lambda i: st.integers(0, 3) if i else st.integers(95, 105)
        )
        fields = [_plausible(good, one_in=12) for good in (GOOD_COORD, GOOD_TIME, GOOD_NUMBER)]
        lat_lon, time, number = (f.map(_xml) for f in fields)
        points = "".join(
            _gpx_point(*(draw(f) for f in (lat_lon, lat_lon, time, number, number)), draw(depth))
            for _ in range(n)
        )
        doctype = draw(
            st.sampled_from(
                [
                    "",
                    '<!DOCTYPE gpx [<!ENTITY e "&#60;x/&#62;">]>',
                    '<!DOCTYPE gpx [<!ENTITY e SYSTEM "file:///etc/hostname">]>',
                    '<!DOCTYPE gpx [<!ENTITY % p SYSTEM "file:///etc/hostname"> %p;]>',
                ]
            )
        )
        head = GPX_HEAD.replace("<gpx", doctype + "<gpx", 1)
        version = draw(st.sampled_from(['version="1.1"', 'version="1.0"', "", 'version="x"']))
        head = head.replace('version="1.1"', version)
        entity = "&e;" if doctype and not draw(st.integers(0, 3)) else ""
        return head + f"<trk><trkseg>{points}</trkseg></trk>{entity}</gpx>\n"
    if kind == "geolife":
        rows = []
        for _ in range(n):
            when = draw(WHEN)
            cells = [draw(COORD), draw(COORD), "0", draw(NUMBER), "39744.12"]
            cells += [draw(_plausible(st.just(f"{when:%Y-%m-%d}"))), f"{when:%H:%M:%S}"]
            rows.append(",".join(cells[: draw(st.integers(5, 8))]))
        return SEEDS["geolife"] + "\n".join(rows) + "\n"
    if kind == "owntracks":
        odd = st.one_of(
            st.none(),
            st.booleans(),
            st.integers(-(10**400), 10**400),
            st.floats(),
            CELLS,
            st.lists(st.integers(), max_size=2),
        )
        tst = _plausible(st.floats(-1e12, 1e21) | st.integers(0, 10**22), odd)
        number = _plausible(st.floats(-200, 200), odd)
        lines = []
        for _ in range(n):
            record: dict[str, Any] = {"_type": draw(_plausible(st.just("location"), odd))}
            for key, value in (("tst", tst), ("lat", number), ("lon", number)):
                if draw(st.integers(0, 9)):
                    record[key] = draw(value)
            for key in ("acc", "vel", "cog", "alt"):
                if draw(st.booleans()):
                    record[key] = draw(number)
            line = json.dumps(record, ensure_ascii=draw(st.booleans()))
            lines.append(f"2015-08-24T05:55:07Z\t*\t{line}\n")
        if not draw(st.integers(0, 9)):
            lines.append("2015-08-24T05:55:07Z\t*\t" + "[" * draw(st.integers(1, 50_000)) + "\n")
        return "".join(lines)
    if kind == "csv":
        header = draw(st.sampled_from(["timestamp,lat,lon", "timestamp,lat,lon,accuracy_m,x,uid"]))
        width = header.count(",") + 1
        rows = []
        for _ in range(n):
            cells = [draw(TIME), draw(COORD), draw(COORD)]
            cells += [draw(NUMBER) for _ in range(width - 3)]
            if width > 3:
                cells[-1] = draw(_plausible(st.just("1")))  # one user, mostly
            rows.append(",".join(cells[: draw(st.sampled_from([width] * 8 + [width - 1]))]))
        return header + "\n" + "\n".join(rows) + "\n"
    rows = [
        ",".join([draw(TIME), draw(NUMBER)][: draw(st.sampled_from([2] * 9 + [1]))])
        for _ in range(n)
    ]
    return "timestamp,value\n" + "\n".join(rows) + "\n"


def _accounted(kind: str, data: bytes, counts: ImportCounts) -> None:
    """For the formats with one record per line or row: every record has one outcome."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return
    if kind == "owntracks":
        records = sum(1 for line in _lines(text) if line.strip())
    elif kind == "geolife":
        records = sum(1 for i, line in enumerate(_lines(text), 1) if i > 6 and line.strip())
    elif kind in ("nab", "csv"):
        rows = list(csv.reader(io.StringIO(text.removeprefix("\ufeff"), newline="")))
        if kind == "csv" and [c.strip() for c in rows[0]] != ["timestamp", "lat", "lon"]:
            return  # more columns: a row may give several samples
        data_rows = rows[1:]
        if kind == "nab":
            records = sum(1 for r in data_rows if len(r) == 2 or any(c.strip() for c in r))
        else:
            records = sum(1 for r in data_rows if any(c.strip() for c in r))
    else:
        return
    assert _outcomes(counts) == records, counts.summary()


CHUNKS = st.sampled_from([2, 50_000])


@pytest.mark.parametrize("kind", list(IMPORTERS))
@_examples(100)
@given(data=st.data())
def test_random_bytes_never_crash(workdir: Path, kind: str, data: st.DataObject) -> None:
    raw = data.draw(
        st.binary(max_size=600)
        | ENCODINGS.flatmap(
            lambda e: st.lists(CHARS, max_size=200).map(lambda c: _encode("".join(c), e))
        )
    )
    _import(workdir, kind, raw, data.draw(CHUNKS))


@pytest.mark.parametrize("kind", list(IMPORTERS))
@_examples(150)
@given(data=st.data())
def test_mutated_valid_files_never_crash(workdir: Path, kind: str, data: st.DataObject) -> None:
    seed = _encode(SEEDS[kind], data.draw(ENCODINGS))
    raw = data.draw(mutated(seed))
    counts = _import(workdir, kind, raw, data.draw(CHUNKS))
    if counts is not None:
        _accounted(kind, raw, counts)


#: The encoding each format is read in: NMEA logs as Latin-1 (every byte is a character, so
#: ``²`` reaches the parser), the others as UTF-8.
NATIVE = {kind: "latin-1" if kind == "nmea" else "utf-8" for kind in IMPORTERS}
#: CSV options that change how cells are read: the user (compared as digits), the time format
#: and zone.
CSV_OPTIONS = st.builds(
    ImportOptions,
    user=st.sampled_from([None, "1", "001", "²", "1" * 5000, "x"]),
    time_format=st.sampled_from([None, None, "%Y-%m-%d %H:%M:%S", "%d/%m/%Y %H:%M", "%s", "%z"]),
    timezone=st.sampled_from(["UTC", "Europe/Zurich", "Pacific/Kiritimati"]),
)


@pytest.mark.parametrize("kind", list(IMPORTERS))
@_examples(200)
@given(data=st.data())
def test_built_files_account_for_every_record(
    workdir: Path, kind: str, data: st.DataObject
) -> None:
    encoding = data.draw(_plausible(st.just(NATIVE[kind]), ENCODINGS))
    raw = _encode(data.draw(built(kind)), encoding)
    options = data.draw(CSV_OPTIONS) if kind == "csv" else None
    counts = _import(workdir, kind, raw, data.draw(CHUNKS), options)
    if counts is not None:
        _accounted(kind, raw, counts)


@pytest.mark.parametrize("kind", list(IMPORTERS))
@_examples(60)
@given(data=st.data())
def test_damaged_gzip_never_crashes(workdir: Path, kind: str, data: st.DataObject) -> None:
    packed = gzip.compress(SEEDS[kind].encode() * data.draw(st.integers(1, 200)), mtime=0)
    damaged = data.draw(mutated(packed))
    if data.draw(st.booleans()):
        damaged = damaged[: data.draw(st.integers(0, len(damaged)))]
    _import(workdir, kind, damaged, data.draw(CHUNKS), gz=True)


def test_seeds_are_valid(workdir: Path) -> None:
    """The seeds the mutations start from import cleanly: the fuzzing starts from real files."""
    for kind, text in SEEDS.items():
        counts = _import(workdir, kind, text.encode(), 50_000)
        assert counts is not None and counts.written >= 2 and not counts.rejected, kind
