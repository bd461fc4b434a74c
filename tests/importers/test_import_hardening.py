"""Hostile and broken input through the real importers: each case once crashed an import (or
would have), and is now refused with a clear error or counted with its file:line."""

from __future__ import annotations

import gzip
import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
from shared_traces import nmea, samples_of

from agent.errors import TraceError
from agent.importers import ImportOptions, import_files
from agent.importers.gpx import MAX_DEPTH
from agent.runtime.trace import read_header

GPX_HEAD = (
    '<?xml version="1.0" encoding="UTF-8"?>\n'
    '<gpx version="1.1" creator="test" xmlns="http://www.topografix.com/GPX/1/1">\n'
)
POINT = '<trkpt lat="45.0" lon="14.0"><time>2010-01-01T00:00:0{s}Z</time>{ext}</trkpt>\n'


def _gpx(tmp_path: Path, body: str, head: str = GPX_HEAD) -> Path:
    src = tmp_path / "t.gpx"
    src.write_text(f"{head}<trk><trkseg>\n{body}</trkseg></trk>\n</gpx>\n", encoding="utf-8")
    return src


def _nested(depth: int) -> str:
    """``<extensions>`` holding ``depth - 1`` nested elements: ``depth`` levels in all."""
    return "<extensions>" + "<x>" * (depth - 1) + "</x>" * (depth - 1) + "</extensions>"


def test_gpx_deeply_nested_extensions_refused_not_segfault(tmp_path: Path) -> None:
    """200,000 nested elements: gpxpy's recursive copy overflowed the C stack and killed the
    process. Run in a child process, so that a regression cannot take pytest down with it."""
    src = _gpx(tmp_path, POINT.format(s=1, ext=_nested(200_000)))
    out = tmp_path / "o.jsonl"
    env = {**os.environ, "XDG_CONFIG_HOME": str(tmp_path), "XDG_DATA_HOME": str(tmp_path)}
    done = subprocess.run(
        [sys.executable, "-m", "agent", "import", "gpx", str(src), "-o", str(out)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert done.returncode == 2, (done.returncode, done.stderr[-2000:])  # -11 was SIGSEGV
    assert f"{src}: not a GPX file: line 4: elements nested more than {MAX_DEPTH} deep" in (
        done.stderr
    )
    assert not out.exists()


def test_gpx_nesting_up_to_the_limit_is_read(tmp_path: Path) -> None:
    # gpx, trk, trkseg, trkpt: the extensions start at level 5.
    ok = _gpx(tmp_path, POINT.format(s=1, ext=_nested(MAX_DEPTH - 4)))
    assert import_files("gpx", [ok], tmp_path / "o.jsonl").written == 1
    deep = _gpx(tmp_path, POINT.format(s=1, ext=_nested(MAX_DEPTH - 3)))
    with pytest.raises(TraceError, match=f"line 4: elements nested more than {MAX_DEPTH} deep"):
        import_files("gpx", [deep], tmp_path / "o.jsonl")


def test_gpx_billion_laughs_refused(tmp_path: Path) -> None:
    """Entities that expand to gigabytes: expat (2.4 and later) refuses the amplification."""
    entities = '<!ENTITY a0 "ha">' + "".join(
        f'<!ENTITY a{i} "{f"&a{i - 1};" * 10}">' for i in range(1, 10)
    )
    head = GPX_HEAD.replace("<gpx ", f"<!DOCTYPE gpx [{entities}]>\n<gpx ", 1)
    src = _gpx(tmp_path, POINT.format(s=1, ext="<extensions><n>&a9;</n></extensions>"), head)
    with pytest.raises(TraceError, match="not a GPX file: .*amplification"):
        import_files("gpx", [src], tmp_path / "o.jsonl")
    assert not (tmp_path / "o.jsonl").exists()


@pytest.mark.parametrize(
    "doctype",
    [
        '<!DOCTYPE gpx [<!ENTITY e SYSTEM "{secret}">]>',
        '<!DOCTYPE gpx [<!ENTITY % p SYSTEM "{secret}"> %p;]>',
    ],
)
def test_gpx_external_entities_are_never_read(tmp_path: Path, doctype: str) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET", encoding="utf-8")
    head = GPX_HEAD.replace("<gpx ", doctype.format(secret=secret.as_uri()) + "\n<gpx ", 1)
    src = _gpx(tmp_path, POINT.format(s=1, ext="<extensions><n>&e;</n></extensions>"), head)
    out = tmp_path / "o.jsonl"
    with pytest.raises(TraceError, match="not a GPX file") as refused:
        import_files("gpx", [src], out)
    assert "TOP-SECRET" not in str(refused.value) and not out.exists()


def test_gpx_impossible_time_offset_is_a_counted_bad_time(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """``+99:00`` (gpxpy takes any two digits) raised ValueError out of ``timestamp()``."""
    src = _gpx(
        tmp_path,
        POINT.format(s=1, ext="").replace("01Z", "01+99:00") + POINT.format(s=2, ext=""),
    )
    caplog.set_level(logging.DEBUG, logger="agent.importers")
    counts = import_files("gpx", [src], tmp_path / "o.jsonl")
    assert counts.written == 1 and counts.skipped == {"bad_time": 1}
    assert f"{src}:4: skipped (bad_time)" in caplog.text


def _csv(tmp_path: Path, text: str) -> Path:
    src = tmp_path / "x.csv"
    src.write_text(text, encoding="utf-8")
    return src


def test_csv_huge_timestamps_are_rejections_with_their_line(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """``1e20`` is milliseconds, 1e17 s: beyond 9999; ``1e400`` is infinite."""
    src = _csv(tmp_path, "timestamp,lat,lon\n1e20,1,2\n-1e20,1,2\n1e400,1,2\n1577836800,1,2\n")
    counts = import_files("csv", [src], tmp_path / "o.jsonl")
    assert counts.written == 1
    assert counts.rejected == {"t_out_of_range": 2, "non_finite": 1}
    assert f"{src}:2: location sample at t=1e+17 rejected (t_out_of_range)" in caplog.text
    assert f"{src}:4: location sample at t=inf rejected (non_finite)" in caplog.text


def test_csv_user_ids_of_any_digits(tmp_path: Path) -> None:
    """``--user 1`` matches ``001``; ``²`` passes ``isdigit()`` and 5,000 digits exceed what
    ``int()`` converts: both raised ValueError, now they are other users."""
    src = _csv(tmp_path, f"timestamp,lat,lon,uid\n0,1,2,001\n1,1,2,²\n2,1,2,{'1' * 5000}\n")
    counts = import_files("csv", [src], tmp_path / "o.jsonl", ImportOptions(user="1"))
    assert counts.written == 1 and counts.skipped == {"other_user": 2}


def test_owntracks_huge_and_nested_values_are_counted(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """``tst`` 1e20 is rejected with its line; an integer beyond any float (JSON allows one)
    raised OverflowError, and 100,000 nested brackets RecursionError."""
    records = [
        {"_type": "location", "tst": 1e20, "lat": 1.0, "lon": 2.0},
        {"_type": "location", "tst": 10**400, "lat": 1.0, "lon": 2.0},
        {"_type": "location", "tst": 1440395361, "lat": 10**400, "lon": 2.0},
        {"_type": "location", "tst": 1440395361, "lat": 1.0, "lon": 2.0, "acc": -(10**400)},
        {"_type": "\ud800" * 100},
        {"_type": "location", "tst": 1440395361, "lat": 1.0, "lon": 2.0},
    ]
    lines = [f"2015-08-24T05:55:07Z\t*\t{json.dumps(r)}" for r in records]
    lines.append("2015-08-24T05:55:07Z\t*\t" + "[" * 100_000)
    src = tmp_path / "x.rec"
    src.write_text("\n".join(lines) + "\n", encoding="utf-8")
    counts = import_files("owntracks", [src], tmp_path / "o.jsonl")
    assert counts.written == 1
    assert counts.rejected == {"t_out_of_range": 1}
    assert counts.skipped == {
        "no_time": 1,
        "missing_position": 1,
        "bad_number": 1,
        "odd_type": 1,  # a counter key never holds the record's text
        "bad_json": 1,
    }
    assert f"{src}:1: location sample at t=1e+20 rejected (t_out_of_range)" in caplog.text


GGA = "GPGGA,120000,{lat},N,01131.000,E,{q},08,0.9,545.4,M,46.9,M,,"
RMC = "GPRMC,120000,A,4807.038,N,01131.000,E,022.4,084.4,230394,003.1,W"


def test_nmea_odd_digits_are_bad_sentences(tmp_path: Path) -> None:
    """``²`` (a Latin-1 byte) passed ``isdigit()`` and then failed ``int()``; 400 digits of
    degrees overflowed the float sum; 5,000 digits of fix quality exceeded ``int()``."""
    src = tmp_path / "x.log"
    text = "".join(
        [
            nmea(GGA.format(lat="²807.038", q=1)),
            nmea(GGA.format(lat="4807.038", q="²")),
            nmea(GGA.format(lat="1" * 400 + "07.038", q=1)),
            nmea(GGA.format(lat="4807.038", q="1" * 5000)),
            nmea(RMC),
        ]
    )
    src.write_bytes(text.encode("latin-1"))
    counts = import_files("nmea", [src], tmp_path / "o.jsonl")
    assert counts.skipped == {"bad_sentence": 1, "no_fix": 2}
    assert counts.rejected == {"non_finite": 1}  # 1e397 degrees: infinite, refused
    assert counts.written == 0


def test_damaged_gzip_is_a_trace_error(tmp_path: Path) -> None:
    """A flipped byte inside the deflate stream raised zlib.error, which is no OSError."""
    data = bytearray(gzip.compress(b"timestamp,value\n" + b"2014-04-01 00:00:00,1\n" * 5000))
    for at in range(40, len(data) - 20, 97):
        data[at] ^= 0x55
    src = tmp_path / "x.csv.gz"
    src.write_bytes(bytes(data))
    with pytest.raises(TraceError, match=f"{src}: cannot be read"):
        import_files("nab", [src], tmp_path / "o.jsonl")
    assert not (tmp_path / "o.jsonl").exists()


def test_nab_field_over_the_csv_limit_is_a_trace_error(tmp_path: Path) -> None:
    """A quoted cell over the csv module's 131,072 characters raised csv.Error."""
    src = _csv(tmp_path, 'timestamp,value\n2014-04-01 00:00:00,"' + "9" * 200_000 + '"\n')
    with pytest.raises(TraceError, match=f"{src}: line 2: field larger than field limit"):
        import_files("nab", [src], tmp_path / "o.jsonl")


def test_minus_zero_time_is_written_as_zero(tmp_path: Path) -> None:
    """Equal times are one value in the trace (the header's time is known chunk by chunk)."""
    src = _csv(tmp_path, "timestamp,lat,lon\n-0,1,2\n0,1,3\n")
    counts = import_files("csv", [src], tmp_path / "o.jsonl", chunk_size=1)
    assert counts.written == 2
    assert [s.t for s in samples_of(tmp_path / "o.jsonl")] == [0.0, 0.0]
    assert "-0.0" not in (tmp_path / "o.jsonl").read_text()
    assert read_header(tmp_path / "o.jsonl")["created"] == 0.0


def test_damaged_records_are_warned_once_with_their_line(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Files read twice (CSV's column scan, NMEA's look for the first date) warn once."""
    csv_src = _csv(tmp_path, "timestamp,lat,lon\nyesterday,1,2\n0,1\n0,1,2\n")
    log = tmp_path / "x.log"
    rmc = nmea(RMC)
    log.write_text(rmc[:-3] + "00\n" + rmc, encoding="ascii")  # a bad checksum, then the fix
    caplog.set_level(logging.WARNING, logger="agent.importers")
    import_files("csv", [csv_src], tmp_path / "c.jsonl")
    import_files("nmea", [log], tmp_path / "n.jsonl")
    warnings = [r.getMessage() for r in caplog.records]
    assert warnings == [
        f"{csv_src}:2: skipped (bad_time) yesterday",
        f"{csv_src}:3: skipped (bad_line) 2 cells, header has 3",
        f"{log}:1: skipped (bad_checksum) {rmc[:-3]}00",
    ]
