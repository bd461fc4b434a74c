"""Trace reading never crashes: corrupt gzip, deep nesting, huge numbers, lone surrogates,
odd headers, huge lines and files given in any order each end as a counted rejection, one
warning, or a ``TraceError`` for a file that cannot be used at all."""

from __future__ import annotations

import gzip
import json
import logging
import tracemalloc
from pathlib import Path

import pytest

from agent.cli import main
from agent.errors import TraceError
from agent.gate import MAX_FIELDS, MAX_STRING
from agent.runtime.trace import MAX_LINE, ReadCounts, TraceWriter, check_traces, read_trace
from agent.samples import Sample

HEADER = '{"vigil_trace": 1, "created": 0.0, "host": "h", "source": "test"}\n'
GOOD = '{"t": 1.0, "sensor": "system", "cpu_pct": 1.0}\n'
LATER = '{"t": 9.0, "sensor": "system", "cpu_pct": 2.0}\n'


def _write(path: Path, *lines: str) -> Path:
    path.write_text(HEADER + "".join(lines), encoding="utf-8")
    return path


def _read(*paths: Path) -> tuple[list[Sample], ReadCounts]:
    counts = ReadCounts()
    return list(read_trace(list(paths), counts)), counts


def _one_bad_line(tmp_path: Path, line: str) -> ReadCounts:
    """Read ``line`` between two good ones: both good ones come through, whatever it is."""
    got, counts = _read(_write(tmp_path / "t.jsonl", GOOD, line, LATER))
    assert [s.t for s in got] == [1.0, 9.0]
    return counts


def _recording(path: Path, n: int) -> list[Sample]:
    """A gzip trace written the way a live recording is: flushed after every sample, so the
    deflate stream is many small blocks (a flipped byte then hits a block header)."""
    samples = [
        Sample("system", float(i), {"cpu_pct": float(i * 7919 % 1000) / 10}) for i in range(n)
    ]
    with TraceWriter(path, created=0.0, host="h", source="test") as w:
        for s in samples:
            w.write(s)
            w.flush()
    return samples


# 1. Corrupt gzip data


def test_corrupt_gzip_is_a_warning_not_a_crash(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "t.jsonl.gz"
    samples = _recording(path, 2000)
    data = path.read_bytes()
    middle = len(data) // 2
    path.write_bytes(data[:middle] + b"\xff" * 64 + data[middle + 64 :])
    counts = ReadCounts()
    with caplog.at_level(logging.WARNING):
        got = list(read_trace([path], counts))
    assert 0 < len(got) < 2000
    assert got == samples[: len(got)]  # what was read before the damage is kept
    assert counts.warnings == {"corrupt_file": 1}
    assert caplog.text.count("the rest of the file is skipped") == 1


def test_corrupt_gzip_header_is_a_trace_error(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl.gz"
    _recording(path, 50)
    data = path.read_bytes()
    path.write_bytes(data[:10] + b"\xff" * 16 + data[26:])  # right after gzip's own header
    with pytest.raises(TraceError, match="cannot be read"):
        _read(path)


def test_a_gz_file_that_is_not_gzip_is_a_trace_error(tmp_path: Path) -> None:
    path = _write(tmp_path / "t.jsonl.gz", GOOD)
    with pytest.raises(TraceError, match="cannot be read"):
        _read(path)


# 2. Deep nesting


@pytest.mark.parametrize(
    "line",
    [
        "[" * 100_000 + "\n",
        '{"t": 5.0, "sensor": "system", "x": ' + "[" * 100_000 + "\n",
        '{"a": ' * 50_000 + "1" + "}" * 50_000 + "\n",
    ],
)
def test_deeply_nested_json_is_a_rejected_line(tmp_path: Path, line: str) -> None:
    counts = _one_bad_line(tmp_path, line)
    assert counts.rejected == {"bad_json": 1} and not counts.warnings


def test_deeply_nested_header_is_a_trace_error(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    path.write_text('{"vigil_trace": ' + "[" * 100_000 + "\n" + GOOD)
    with pytest.raises(TraceError, match="not a vigil trace"):
        _read(path)


# 3. Huge integers


@pytest.mark.parametrize(
    ("number", "as_t"),
    [
        ("1" + "0" * 400, "t_out_of_range"),  # beyond any float, within what json parses
        ("-1" + "0" * 400, "t_out_of_range"),
        ("1" + "0" * 5000, "out_of_range"),  # beyond what Python turns into an int by default
        ("1" + "0" * 100_000, "out_of_range"),
    ],
)
@pytest.mark.parametrize("key", ["cpu_pct", "t"])
def test_integer_beyond_any_float_is_out_of_range(
    tmp_path: Path, number: str, as_t: str, key: str
) -> None:
    fields = {"t": "5.0", "sensor": '"system"', "cpu_pct": "1.0", key: number}
    line = "{" + ", ".join(f'"{k}": {v}' for k, v in fields.items()) + "}\n"
    counts = _one_bad_line(tmp_path, line)
    assert counts.rejected == {as_t if key == "t" else "out_of_range": 1}


def test_largest_integer_a_float_holds_is_kept(tmp_path: Path) -> None:
    big = int(1.7976931348623157e308)
    got, counts = _read(
        _write(
            tmp_path / "t.jsonl", f'{{"t": 1.0, "sensor": "metric", "name": "x", "value": {big}}}\n'
        )
    )
    assert got[0].data["value"] == big and not counts.rejected


# 4. Lone surrogates


@pytest.mark.parametrize(
    "line",
    [
        '{"t": 5.0, "sensor": "apps", "app": "\\ud800"}\n',
        '{"t": 5.0, "sensor": "apps", "app": "x\\udfff y"}\n',
        '{"t": 5.0, "sensor": "apps", "\\udc80key": 1}\n',
        '{"t": 5.0, "sensor": "\\ud800"}\n',
        '{"t": 5.0, "sensor": "status", "of": "\\ud800", "state": "up"}\n',
    ],
)
def test_lone_surrogate_is_bad_utf8(tmp_path: Path, line: str) -> None:
    counts = _one_bad_line(tmp_path, line)
    assert counts.rejected == {"bad_utf8": 1}


def test_surrogate_pair_is_one_character_and_kept(tmp_path: Path) -> None:
    got, counts = _read(
        _write(tmp_path / "t.jsonl", '{"t": 1.0, "sensor": "apps", "app": "\\ud83d\\ude00"}\n')
    )
    assert got[0].data["app"] == "\U0001f600" and not counts.rejected


def test_replay_stores_what_it_kept_and_counts_the_rest(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """End to end: huge numbers and lone surrogates never reach the database."""
    from agent.memory.db import open_engine
    from agent.memory.store import MemoryStore

    path = _write(
        tmp_path / "t.jsonl",
        GOOD,
        '{"t": 2.0, "sensor": "system", "cpu_pct": 1' + "0" * 400 + "}\n",
        '{"t": 3.0, "sensor": "system", "cpu_pct": 1' + "0" * 5000 + "}\n",
        '{"t": 4.0, "sensor": "apps", "app": "\\ud800"}\n',
        "[" * 100_000 + "\n",
        LATER,
    )
    db = tmp_path / "r.db"
    assert main(["replay", "--db", str(db), str(path)]) == 0
    store = MemoryStore(open_engine(db))
    assert store.counters() == {
        "rejected.out_of_range": 2,
        "rejected.bad_utf8": 1,
        "rejected.bad_json": 1,
    }
    assert store.sample_count() == 2
    store.close()


# 5. The header's version


@pytest.mark.parametrize("version", ["true", "1.0", '"1"', "[1]", "null", "2"])
def test_header_version_must_be_the_integer_1(tmp_path: Path, version: str) -> None:
    path = tmp_path / "t.jsonl"
    path.write_text(f'{{"vigil_trace": {version}}}\n' + GOOD)
    with pytest.raises(TraceError, match="not supported"):
        _read(path)


# 6. Bounded memory


def test_line_longer_than_the_limit_is_too_large_and_never_held_whole(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    huge = '{"t": 5.0, "sensor": "system", "x": "' + "y" * (32 * MAX_LINE) + '"}\n'
    path = _write(tmp_path / "t.jsonl", GOOD, huge, LATER)
    tracemalloc.start()
    try:
        with caplog.at_level(logging.WARNING):
            got, counts = _read(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert [s.t for s in got] == [1.0, 9.0]
    assert counts.rejected == {"too_large": 1}
    assert f"{path}:3: rejected (too_large)" in caplog.text
    assert peak < 8 * MAX_LINE  # a few pieces of the line at a time, never its 32 MiB


def test_line_of_many_fields_is_rejected(tmp_path: Path) -> None:
    """The report: one line of 500,000 fields (6.9 MB) took more than 3 GB to read."""
    fields = ", ".join(f'"f{i}": {i}' for i in range(500_000))
    counts = _one_bad_line(tmp_path, '{"t": 5.0, "sensor": "system", ' + fields + "}\n")
    assert counts.rejected == {"too_large": 1}


def test_line_at_the_limit_is_read(tmp_path: Path) -> None:
    head = '{"t": 5.0, "sensor": "system", "cpu_pct": 1.0'
    line = head + " " * (MAX_LINE - len(head) - 2) + "}\n"  # JSON allows the spaces
    assert len(line) == MAX_LINE
    got, counts = _read(_write(tmp_path / "t.jsonl", line, line[:-2] + " }\n"))
    assert [s.t for s in got] == [5.0] and counts.rejected == {"too_large": 1}


def test_sample_with_too_many_fields_is_rejected(tmp_path: Path) -> None:
    fields = ", ".join(f'"f{i}": {i}' for i in range(MAX_FIELDS + 1))
    counts = _one_bad_line(tmp_path, '{"t": 5.0, "sensor": "system", ' + fields + "}\n")
    assert counts.rejected == {"too_many_fields": 1}


def test_long_string_field_is_rejected(tmp_path: Path) -> None:
    line = json.dumps({"t": 5.0, "sensor": "apps", "title": "x" * (MAX_STRING + 1)}) + "\n"
    counts = _one_bad_line(tmp_path, line)
    assert counts.rejected == {"too_large": 1}


# 7. Several files, in any order


def _system(path: Path, times: list[float]) -> Path:
    return _write(path, *(f'{{"t": {t!r}, "sensor": "system", "cpu_pct": 1.0}}\n' for t in times))


def test_files_in_the_wrong_order_are_merged_by_time(tmp_path: Path) -> None:
    a = _system(tmp_path / "a.jsonl", [float(t) for t in range(0, 100)])
    b = _system(tmp_path / "b.jsonl", [float(t) for t in range(100, 200)])
    forward, counts_forward = _read(a, b)
    backward, counts_backward = _read(b, a)
    assert backward == forward
    assert [s.t for s in forward] == [float(t) for t in range(200)]
    assert counts_forward == counts_backward == ReadCounts(read=200)


def test_overlapping_files_interleave(tmp_path: Path) -> None:
    evens = _system(tmp_path / "a.jsonl", [float(t) for t in range(0, 100, 2)])
    odds = tmp_path / "b.jsonl.gz"  # one file plain, one gzip
    with gzip.open(odds, "wt") as f:
        f.write(
            HEADER + "".join(f'{{"t": {t}.0, "sensor": "battery"}}\n' for t in range(1, 100, 2))
        )
    got, counts = _read(odds, evens)
    assert [s.t for s in got] == [float(t) for t in range(100)]
    assert [s.sensor for s in got[:4]] == ["system", "battery", "system", "battery"]
    assert counts.read == 100 and not counts.rejected


def test_equal_times_keep_file_then_line_order(tmp_path: Path) -> None:
    a = _write(
        tmp_path / "a.jsonl",
        '{"t": 5.0, "sensor": "system", "from": "a1"}\n',
        '{"t": 5.0, "sensor": "system", "from": "a2"}\n',
    )
    b = _write(tmp_path / "b.jsonl", '{"t": 5.0, "sensor": "system", "from": "b1"}\n')
    assert [s.data["from"] for s in _read(a, b)[0]] == ["a1", "a2", "b1"]
    assert [s.data["from"] for s in _read(b, a)[0]] == ["b1", "a1", "a2"]


def test_time_going_back_inside_a_file_is_still_rejected(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    a = _system(tmp_path / "a.jsonl", [10.0, 20.0, 15.0])
    b = _system(tmp_path / "b.jsonl", [12.0])
    with caplog.at_level(logging.WARNING):
        got, counts = _read(a, b)
    assert [s.t for s in got] == [10.0, 12.0, 20.0]
    assert counts.rejected == {"time_backward": 1}
    assert f"{a}:4: rejected (time_backward)" in caplog.text


def test_a_file_given_twice_is_a_trace_error(tmp_path: Path) -> None:
    a = _system(tmp_path / "a.jsonl", [1.0])
    (tmp_path / "link.jsonl").symlink_to(a)
    for twice in ([a, a], [a, tmp_path / "link.jsonl"]):
        with pytest.raises(TraceError, match="given twice"):
            _read(*twice)
        with pytest.raises(TraceError, match="given twice"):
            check_traces(twice)  # what a caller runs before it opens a database


def test_a_directory_is_a_trace_error(tmp_path: Path) -> None:
    with pytest.raises(TraceError, match="a folder, not a trace"):
        _read(tmp_path)


def test_progress_counts_every_file_whatever_the_order(tmp_path: Path) -> None:
    a = _system(tmp_path / "a.jsonl", [float(t) for t in range(0, 3000)])
    b = _system(tmp_path / "b.jsonl", [float(t) for t in range(1000, 4000)])
    total = sum(len(p.read_text()) for p in (a, b))
    for order in ([a, b], [b, a]):
        seen: list[int] = []
        list(read_trace(order, ReadCounts(), on_progress=seen.append))
        assert sum(seen) == total and len(seen) > 2
