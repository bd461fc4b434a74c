"""NAB import: one metric stream per file, named after it; repeated hours kept in file order."""

from __future__ import annotations

from pathlib import Path

import pytest
from shared_traces import replays_clean, samples_of, shared, utc

from agent.errors import ConfigError, TraceError
from agent.importers import ImportOptions, import_files


def test_nyc_taxi(tmp_path: Path) -> None:
    out = tmp_path / "n.jsonl"
    counts = import_files("nab", [shared("nab", "data", "realKnownCause", "nyc_taxi.csv")], out)
    assert counts.written == 10_320  # rows of the file, its header aside
    assert not counts.skipped and not counts.rejected and not counts.defaulted
    assert counts.first_t is not None and counts.last_t is not None
    assert (utc(counts.first_t), utc(counts.last_t)) == (
        "2014-07-01T00:00:00",
        "2015-01-31T23:30:00",
    )
    first = samples_of(out)[0]  # 2014-07-01 00:00:00,10844
    assert first.sensor == "metric" and first.data == {"name": "nyc_taxi", "value": 10844.0}
    assert replays_clean(out) == 10_320


def test_repeated_hour_is_kept_in_file_order(tmp_path: Path) -> None:
    # machine_temperature_system_failure writes 2014-01-07 02:00-02:55 twice, one hour after
    # the other: in file order the second pass goes back in time; sorted, it interleaves.
    src = shared("nab", "data", "realKnownCause", "machine_temperature_system_failure.csv")
    out = tmp_path / "m.jsonl"
    counts = import_files("nab", [src], out, ImportOptions(name="machine_temp"))
    assert counts.written == 22_695 and not counts.skipped and not counts.rejected
    at_two = [s.data["value"] for s in samples_of(out) if utc(s.t) == "2014-01-07T02:00:00"]
    assert at_two == [94.42340604, 94.13972336]


def test_bad_rows_and_headers(tmp_path: Path) -> None:
    src = tmp_path / "cpu.csv"
    src.write_text(
        "timestamp,value\n2014-04-01 00:00:00,1.5\n2014-04-01 00:05:00,x\n"
        "04/01/2014,2\n2014-04-01 00:10:00,\n2014-04-01 00:15:00,nan\n2014-04-01 00:20:00\n\n",
        encoding="utf-8",
    )
    counts = import_files("nab", [src], tmp_path / "o.jsonl")
    assert counts.written == 1
    assert counts.skipped == {"bad_number": 1, "bad_time": 1, "empty_value": 1, "bad_line": 1}
    assert counts.rejected == {"non_finite": 1}
    assert samples_of(tmp_path / "o.jsonl")[0].data == {"name": "cpu", "value": 1.5}
    src.write_text("time,value\n", encoding="utf-8")
    with pytest.raises(TraceError, match="not a NAB file"):
        import_files("nab", [src], tmp_path / "o.jsonl")
    with pytest.raises(ConfigError, match="one stream name for 2 files"):
        import_files("nab", [src, src], tmp_path / "o.jsonl", ImportOptions(name="x"))
