"""The importers' shared step: sort, duplicates, the gate, reading sources, the HDOP model."""

from __future__ import annotations

import gzip
import math
from pathlib import Path

import pytest

from agent.errors import TraceError
from agent.importers import IMPORTERS, ImportOptions, import_files
from agent.importers.common import (
    R68_PER_R95,
    ImportCounts,
    expand,
    finish,
    hdop_accuracy_m,
    no_progress,
    open_source,
)
from agent.importers.nab import read_nab
from agent.importers.sorting import write_sorted
from agent.runtime.trace import ReadCounts, read_header, read_trace
from agent.samples import Sample


def test_registry_is_keyed_by_the_command_names() -> None:
    assert list(IMPORTERS) == ["nmea", "gpx", "geolife", "owntracks", "csv", "nab"]
    assert IMPORTERS["nab"].default_accuracy_m is None
    assert all(f.default_accuracy_m is None or f.default_accuracy_m > 0 for f in IMPORTERS.values())


def test_hdop_model() -> None:
    # 68 % over 95 % radius of a circular normal error: sqrt(ln 0.32 / ln 0.05)
    assert R68_PER_R95 == pytest.approx(1.50959 / 2.44775, rel=1e-5)
    assert R68_PER_R95 == pytest.approx(0.6167, abs=1e-4)
    assert hdop_accuracy_m(1.0) == pytest.approx(9.25, abs=0.01)
    assert hdop_accuracy_m(2.0, differential=True) == pytest.approx(2 * 3.75 * R68_PER_R95)


@pytest.mark.parametrize("chunk_size", [1, 2, 3, 100])
def test_sorts_drops_duplicates_and_gates(tmp_path: Path, chunk_size: int) -> None:
    loc = {"lat": 1.0, "lon": 2.0}
    counts = ImportCounts()
    out = tmp_path / "o.jsonl"
    located = [
        ("a:1", Sample("location", 3.0, loc)),
        ("a:2", Sample("location", 1.0, {**loc, "accuracy_m": 5.0})),
        ("a:3", Sample("metric", 1.0, {"name": "b", "value": 1.0})),
        ("a:4", Sample("metric", 1.0, {"name": "a", "value": 1.0})),  # same t: source order
        ("a:5", Sample("location", 3.0, loc)),  # exact duplicate
        ("a:6", Sample("location", 2.0, {"lat": 1.0, "lon": 2.0, "accuracy_m": 0.0})),
        ("a:7", Sample("location", math.nan, loc)),  # cannot be sorted: refused first
        ("a:8", Sample("weather", 2.0, {"rain_mm": 1.0})),
    ]
    write_sorted(located, out, counts, kind="test", host="h", chunk_size=chunk_size)
    samples = list(read_trace([out], ReadCounts()))
    assert [(s.t, s.sensor, s.data.get("name")) for s in samples] == [
        (1.0, "location", None),
        (1.0, "metric", "b"),
        (1.0, "metric", "a"),
        (3.0, "location", None),
    ]
    assert counts.skipped == {"duplicate": 1}
    assert counts.rejected == {"non_finite": 1, "out_of_range": 1, "unknown_sensor": 1}
    assert (counts.first_t, counts.last_t, counts.written) == (1.0, 3.0, 4)
    assert read_header(out)["created"] == 3.0  # the last sample's time: no clock read


def test_expand_folders(tmp_path: Path) -> None:
    (tmp_path / "a" / "b").mkdir(parents=True)
    for name in ("a/2.plt", "a/b/1.plt", "a/notes.txt"):
        (tmp_path / name).write_text("")
    assert expand([tmp_path / "a"], (".plt",)) == [tmp_path / "a/2.plt", tmp_path / "a/b/1.plt"]
    with pytest.raises(TraceError, match="no .gpx files"):
        expand([tmp_path / "a"], (".gpx",))
    with pytest.raises(TraceError, match="no such file"):
        expand([tmp_path / "nope.plt"], (".plt",))


def test_open_source_reports_bytes_plain_and_gzip(tmp_path: Path) -> None:
    text = "line\n" * 50_000
    plain, packed = tmp_path / "x.txt", tmp_path / "x.txt.gz"
    plain.write_text(text)
    packed.write_bytes(gzip.compress(text.encode()))
    for path in (plain, packed):
        seen: list[int] = []
        with open_source(path, seen.append) as f:
            assert f.read() == text
        assert sum(seen) == path.stat().st_size
    packed.write_bytes(b"not gzip at all")
    with pytest.raises(TraceError, match="cannot be read"), open_source(packed, print) as f:
        f.read()


def test_finish_lists_what_the_trace_holds(tmp_path: Path) -> None:
    """``finish`` (the benchmarks' way to feed a reader's samples on) equals the trace."""
    src = tmp_path / "x.csv"
    src.write_text("timestamp,value\n2014-04-01 00:05:00,2\n2014-04-01 00:00:00,1\n", "utf-8")
    counts = ImportCounts()
    samples = finish(read_nab([src], ImportOptions(), counts, no_progress), counts)
    import_files("nab", [src], tmp_path / "o.jsonl")
    assert samples == list(read_trace([tmp_path / "o.jsonl"], ReadCounts()))
    assert [s.data["value"] for s in samples] == [1.0, 2.0]
    assert (counts.first_t, counts.last_t) == (samples[0].t, samples[-1].t)
