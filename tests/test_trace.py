"""Trace files: round trip, and every kind of bad line rejected with file:line and a count."""

from __future__ import annotations

import gzip
import logging
import os
from pathlib import Path

import pytest

from agent.cli import main
from agent.errors import TraceError
from agent.runtime.trace import (
    LOGGED_PER_REASON,
    ReadCounts,
    TraceWriter,
    new_recording_path,
    read_trace,
)
from agent.samples import Sample

HEADER = '{"vigil_trace": 1, "created": 0.0, "host": "h", "source": "test"}\n'


def _write(path: Path, *lines: str) -> Path:
    path.write_text(HEADER + "".join(lines), encoding="utf-8")
    return path


def test_round_trip_plain_and_gzip(tmp_path: Path) -> None:
    samples = [
        Sample("system", 10.0, {"cpu_pct": 12.5, "load1": 0.25}),
        Sample("battery", 10.5, {"battery_pct": 80.0, "charging": True}),
        Sample("status", 11.0, {"of": "battery", "state": "down", "reason": "gone"}),
        Sample("system", 20.000001, {"cpu_pct": 1e-7}),
    ]
    for name in ("t.jsonl", "t.jsonl.gz"):
        path = tmp_path / name
        with TraceWriter(path, created=1.0, host="h", source="test") as w:
            for s in samples:
                w.write(s)
        counts = ReadCounts()
        assert list(read_trace([path], counts)) == samples
        assert counts.read == 4 and not counts.rejected and not counts.warnings
    with gzip.open(tmp_path / "t.jsonl.gz", "rt") as f:
        assert f.readline().startswith('{"vigil_trace": 1')


BAD_LINES = [
    ("{not json\n", "bad_json"),
    ("[1, 2]\n", "bad_json"),
    ('{"sensor": "system", "cpu_pct": 1}\n', "missing_t"),
    ('{"t": "noon", "sensor": "system"}\n', "bad_t"),
    ('{"t": true, "sensor": "system"}\n', "bad_t"),
    ('{"t": NaN, "sensor": "system"}\n', "non_finite"),
    ('{"t": 1e13, "sensor": "system", "cpu_pct": 1}\n', "t_out_of_range"),  # year 318857
    ('{"t": -5.0, "sensor": "system", "cpu_pct": 1}\n', "t_out_of_range"),
    ('{"t": 1' + "0" * 400 + ', "sensor": "system", "cpu_pct": 1}\n', "t_out_of_range"),
    ('{"t": 5.0, "sensor": "system", "cpu_pct": NaN}\n', "non_finite"),
    ('{"t": 5.0, "sensor": "system", "cpu_pct": Infinity}\n', "non_finite"),
    ('{"t": 5.0, "sensor": "system", "cpu_pct": 1e999}\n', "non_finite"),
    ('{"t": 5.0, "sensor": "telepathy", "x": 1}\n', "unknown_sensor"),
    ('{"t": 5.0, "sensor": "system", "cpu": {"user": 1}}\n', "bad_field"),
    ('{"t": 5.0, "sensor": "location", "lat": 91.0, "lon": 0.0}\n', "out_of_range"),
    ('{"t": 5.0, "sensor": "status", "of": "gps", "state": "sideways"}\n', "bad_field"),
    ('{"t": 5.0, "sensor": "metric", "name": "x", "value": "high"}\n', "bad_field"),
]


@pytest.mark.parametrize(("line", "reason"), BAD_LINES)
def test_bad_line_is_rejected_and_reading_goes_on(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, line: str, reason: str
) -> None:
    path = _write(
        tmp_path / "t.jsonl",
        '{"t": 1.0, "sensor": "system", "cpu_pct": 1.0}\n',
        line,
        '{"t": 9.0, "sensor": "system", "cpu_pct": 2.0}\n',
    )
    counts = ReadCounts()
    with caplog.at_level(logging.WARNING):
        got = list(read_trace([path], counts))
    assert [s.t for s in got] == [1.0, 9.0]
    assert counts.rejected == {reason: 1}
    assert f"{path}:3: rejected ({reason})" in caplog.text


def test_time_going_back_is_per_sensor(tmp_path: Path) -> None:
    path = _write(
        tmp_path / "t.jsonl",
        '{"t": 10.0, "sensor": "system", "cpu_pct": 1.0}\n',
        '{"t": 5.0, "sensor": "battery", "battery_pct": 50.0}\n',  # other sensor: fine
        '{"t": 9.0, "sensor": "system", "cpu_pct": 1.0}\n',  # back for system: rejected
        '{"t": 10.0, "sensor": "system", "cpu_pct": 1.0}\n',  # equal time: kept
    )
    counts = ReadCounts()
    assert [(s.sensor, s.t) for s in read_trace([path], counts)] == [
        ("system", 10.0),
        ("battery", 5.0),
        ("system", 10.0),
    ]
    assert counts.rejected == {"time_backward": 1}


def test_torn_last_line_is_skipped_with_one_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = _write(
        tmp_path / "t.jsonl",
        '{"t": 1.0, "sensor": "system", "cpu_pct": 1.0}\n',
        '{"t": 2.0, "sensor": "sys',
    )
    counts = ReadCounts()
    with caplog.at_level(logging.WARNING):
        assert len(list(read_trace([path], counts))) == 1
    assert counts.warnings == {"torn_last_line": 1} and not counts.rejected
    assert caplog.text.count("torn last line") == 1


def test_complete_last_line_without_newline_is_kept(tmp_path: Path) -> None:
    path = _write(tmp_path / "t.jsonl", '{"t": 1.0, "sensor": "system", "cpu_pct": 1.0}')
    counts = ReadCounts()
    assert len(list(read_trace([path], counts))) == 1 and not counts.warnings


def test_gzip_cut_short_keeps_what_was_read(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl.gz"
    with TraceWriter(path, created=0.0, host="h", source="test") as w:
        for i in range(2000):
            w.write(Sample("system", float(i), {"cpu_pct": float(i % 100)}))
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    counts = ReadCounts()
    got = list(read_trace([path], counts))
    assert 0 < len(got) < 2000
    assert counts.warnings["truncated_file"] == 1


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        ("", "empty"),
        ('{"t": 1.0, "sensor": "system"}\n', "not a vigil trace"),
        ('{"vigil_trace": 99}\n', "version 99"),
    ],
)
def test_unusable_file_is_a_trace_error(tmp_path: Path, content: str, reason: str) -> None:
    path = tmp_path / "t.jsonl"
    path.write_text(content)
    with pytest.raises(TraceError, match=reason):
        list(read_trace([path], ReadCounts()))


def test_replay_exit_codes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["replay", str(tmp_path / "missing.jsonl")]) == 2
    assert "no such file" in capsys.readouterr().err
    bad = _write(tmp_path / "bad.jsonl", '{"t": 1.0, "sensor": "system"}\n', "oops\n")
    assert main(["replay", str(bad)]) == 0  # it read the file, rejecting a line
    err = capsys.readouterr().err
    assert "1 samples read; 1 rejected (bad_json 1)" in err


def test_many_bad_lines_are_all_counted_but_logged_a_few_times(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = _write(tmp_path / "t.jsonl", *["junk\n"] * 500)
    counts = ReadCounts()
    with caplog.at_level(logging.WARNING):
        assert list(read_trace([path], counts)) == []
    assert counts.rejected == {"bad_json": 500}
    assert caplog.text.count("rejected (bad_json)") == LOGGED_PER_REASON
    assert "further bad_json rejections are counted, not logged" in caplog.text


def test_replay_keeps_the_counts_in_memory(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from agent.memory.db import open_engine
    from agent.memory.store import MemoryStore

    bad = _write(
        tmp_path / "bad.jsonl",
        '{"t": 1.0, "sensor": "system"}\n',
        "oops\n",
        '{"t": 0.5, "sensor": "system"}\n',
        '{"t": 2.0, "sensor": "sys',
    )
    db = tmp_path / "r.db"
    assert main(["replay", "--db", str(db), str(bad)]) == 0
    store = MemoryStore(open_engine(db))
    assert store.counters() == {
        "rejected.bad_json": 1,
        "rejected.time_backward": 1,
        "warning.torn_last_line": 1,
    }
    assert store.sample_count() == 1
    store.close()


@pytest.mark.parametrize("suffix", [".jsonl", ".jsonl.gz"])
@pytest.mark.parametrize("at", [2, 500])  # in the first 8 KB the decoder reads, and later
def test_a_byte_that_is_not_utf8_spoils_its_line_only(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, suffix: str, at: int
) -> None:
    lines = [b'{"t": %d.0, "sensor": "system", "cpu_pct": 1.0}\n' % i for i in range(1, 1001)]
    lines[at - 2] = b'{"t": %d.0, "sensor": "system", "app": "caf\xe9"}\n' % (at - 1)
    raw = HEADER.encode() + b"".join(lines)
    path = tmp_path / f"t{suffix}"
    path.write_bytes(gzip.compress(raw) if suffix.endswith(".gz") else raw)
    counts = ReadCounts()
    with caplog.at_level(logging.WARNING):
        got = list(read_trace([path], counts))
    assert len(got) == 999 and got[-1].t == 1000.0  # read to the end
    assert counts.rejected == {"bad_utf8": 1} and not counts.warnings
    assert f"{path}:{at}: rejected (bad_utf8)" in caplog.text


def _zoned(path: Path, zone: str | None) -> Path:
    with TraceWriter(path, created=0.0, host="h", source="test", timezone=zone) as writer:
        writer.write(Sample("system", 1_780_272_000.0, {"cpu_pct": 5.0}))
    return path


def test_a_trace_names_the_zone_it_was_recorded_in(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A replay with ``timezone = "local"`` judges the hours in the zone the trace names (the
    machine that recorded it), so it gives the same events on any machine; a zone set in the
    config wins; traces that disagree, or name a zone unknown here, leave the config's."""
    from agent.config import AnomalyConfig, Config
    from agent.runtime.replay import in_trace_zone
    from agent.runtime.trace import read_header, recording_zone, trace_zone

    tokyo = _zoned(tmp_path / "tokyo.jsonl", "Asia/Tokyo")
    assert read_header(tokyo)["timezone"] == "Asia/Tokyo"
    assert "timezone" not in read_header(_zoned(tmp_path / "none.jsonl", None))
    local = Config()
    assert in_trace_zone([tokyo], local).anomaly.timezone == "Asia/Tokyo"
    assert in_trace_zone([tokyo, tmp_path / "none.jsonl"], local).anomaly.timezone == "Asia/Tokyo"
    berlin = Config(anomaly=AnomalyConfig(timezone="Europe/Berlin"))
    assert in_trace_zone([tokyo], berlin).anomaly.timezone == "Europe/Berlin"
    with caplog.at_level(logging.WARNING):
        other = _zoned(tmp_path / "lima.jsonl", "America/Lima")
        assert trace_zone([tokyo, other]) is None
        assert trace_zone([_zoned(tmp_path / "mars.jsonl", "Mars/Olympus")]) is None
    assert "different time zones" in caplog.text and "'Mars/Olympus'" in caplog.text
    assert recording_zone(berlin) == "Europe/Berlin"
    assert recording_zone(local) in ("UTC", "Etc/UTC")  # the tests run in UTC


def test_replay_judges_the_hours_in_the_traces_zone(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from agent.config import Config
    from agent.runtime.replay import replay_files

    tokyo = _zoned(tmp_path / "tokyo.jsonl", "Asia/Tokyo")
    with caplog.at_level(logging.INFO):
        replay_files([tokyo], Config())
    assert "judged in the traces' time zone, Asia/Tokyo" in caplog.text


@pytest.mark.parametrize(
    ("name", "taken", "expected"),
    [
        ("day.jsonl.gz", [], "day.jsonl.gz"),
        ("day.jsonl.gz", ["day.jsonl.gz"], "day.1.jsonl.gz"),
        ("day.jsonl.gz", ["day.jsonl.gz", "day.1.jsonl.gz"], "day.2.jsonl.gz"),
        ("my.day.jsonl", ["my.day.jsonl"], "my.day.1.jsonl"),
        ("trace", ["trace"], "trace.1"),
    ],
)
def test_a_recording_is_never_overwritten(
    tmp_path: Path, name: str, taken: list[str], expected: str
) -> None:
    for other in taken:
        (tmp_path / other).write_text("kept\n")
    assert new_recording_path(tmp_path / name) == tmp_path / expected


def test_a_pipe_is_written_as_named(tmp_path: Path) -> None:
    """`vigil record -o /dev/stdout` or a named pipe: no recording to keep there."""
    fifo = tmp_path / "live.jsonl"
    os.mkfifo(fifo)
    assert new_recording_path(fifo) == fifo
    assert new_recording_path(Path("/dev/null")) == Path("/dev/null")
