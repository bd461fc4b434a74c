"""Property-based: whatever a trace file holds, reading it raises nothing but ``TraceError``,
accounts for every line (a sample, a counted rejection or a counted warning), and every
sample it hands on can be written, stored and read back unchanged."""

from __future__ import annotations

import gzip
import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agent.errors import TraceError
from agent.gate import MAX_FIELDS, check_sample
from agent.runtime.trace import ReadCounts, TraceWriter, read_trace
from agent.samples import KNOWN_SENSORS, Sample

HEADER = b'{"vigil_trace": 1, "created": 0.0, "host": "h", "source": "test"}\n'


def _examples(n: int) -> settings:
    """``n`` cases, or more when the profile asks for more (``HYPOTHESIS_PROFILE=deep``)."""
    return settings(max_examples=max(n, settings().max_examples))


class _StrictHandler(logging.Handler):
    """Formats every record of the reader, as a terminal would print it: a message that
    cannot be formatted, or not written as UTF-8, fails the test instead of being lost."""

    def emit(self, record: logging.LogRecord) -> None:
        self.format(record).encode("utf-8")


@pytest.fixture(scope="module", autouse=True)
def strict_log() -> Iterator[_StrictHandler]:
    log = logging.getLogger("agent.runtime.trace")
    handler = _StrictHandler(logging.DEBUG)
    saved = log.level, log.propagate
    log.addHandler(handler)
    log.setLevel(logging.DEBUG)
    log.propagate = False  # thousands of cases: keep them out of pytest's captured log
    yield handler
    log.removeHandler(handler)
    log.setLevel(saved[0])
    log.propagate = saved[1]


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("traces")


# Strategies: what a file may hold.

#: Any character, lone surrogates included (the default leaves them out, and ``st.text`` over
#: all of Unicode would draw one of them rarely).
CHARS = st.characters(exclude_categories=()) | st.characters(
    min_codepoint=0xD800, max_codepoint=0xDFFF
)
TEXT = st.text(max_size=20) | st.lists(CHARS, max_size=20).map("".join)
NUMBERS = st.one_of(
    st.integers(),
    st.integers(min_value=-(10**400), max_value=10**400),
    st.floats(),  # NaN and infinities too
    st.sampled_from([2**1024, -(2**1024), int(1.7976931348623157e308), 10**4000]),
)
SCALARS = st.one_of(st.none(), st.booleans(), NUMBERS, TEXT)
JSON = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(TEXT, inner, max_size=4),
    max_leaves=12,
)

#: A plausible sample of each sensor, before mutation.
TEMPLATES: dict[str, dict[str, Any]] = {
    "system": {"cpu_pct": 12.5, "load1": 0.5, "net.wlan0.rx_Bps": 1200.0, "temp_C": 48.0},
    "battery": {"battery_pct": 80.0, "charging": True, "power_W": -7.5},
    "location": {"lat": 52.5, "lon": 13.4, "accuracy_m": 12.0, "provider": "gps"},
    "apps": {"app": "firefox", "title": "News", "cpu1_name": "firefox", "cpu1_pct": 30.0},
    "metric": {"name": "machine_temperature", "value": 71.25},
    "status": {"of": "location", "state": "down", "reason": "no fix"},
    "clock": {"step_s": 3600.0},
}


@st.composite
def mutated_samples(draw: st.DrawFn) -> dict[str, Any]:
    """A valid-looking sample with a few fields changed, removed or added."""
    sensor = draw(st.sampled_from(sorted(KNOWN_SENSORS)))
    fields = TEMPLATES.get(sensor, {"value": 1.0})  # a sensor added since: numbers at least
    obj: dict[str, Any] = {"t": draw(st.floats(0, 2e9)), "sensor": sensor, **fields}
    for _ in range(draw(st.integers(0, 3))):
        key = draw(st.sampled_from(sorted(obj)) | TEXT)
        if draw(st.booleans()):
            obj[key] = draw(JSON)
        else:
            obj.pop(key, None)
    return obj


def _number_text(sign: str, digits: int, fraction: bool, exponent: int | None) -> str:
    text = sign + "1" + "0" * digits + (".5" if fraction else "")
    return text + (f"e{exponent}" if exponent is not None else "")


#: Numbers as JSON text, of any length and exponent: beyond any float, and beyond any int
#: Python converts by default.
NUMBER_TEXT = st.builds(
    _number_text,
    st.sampled_from(["", "-"]),
    st.integers(0, 6000),
    st.booleans(),
    st.none() | st.integers(-(10**6), 10**6),
)


def _dumps(obj: Any, ascii_only: bool) -> bytes:
    # Not ASCII: a lone surrogate is written as the bytes a careless writer would emit
    # (``surrogatepass``), which are not UTF-8.
    return json.dumps(obj, ensure_ascii=ascii_only).encode("utf-8", "surrogatepass")


LINES = st.one_of(
    st.builds(_dumps, JSON, st.booleans()),
    st.builds(_dumps, mutated_samples(), st.booleans()),
    st.builds(
        lambda sensor, number: (
            b'{"t": 5.0, "sensor": "%s", "value": %s, "name": "x"}'
            % (sensor.encode(), number.encode())
        ),
        st.sampled_from(sorted(KNOWN_SENSORS)),
        NUMBER_TEXT,
    ),
    st.builds(lambda n: b'{"t": 1' + b"0" * n + b', "sensor": "system"}', st.integers(0, 6000)),
    st.builds(
        lambda opener, n: opener * n,
        st.sampled_from([b"[", b'{"a": ', b"[{}, "]),
        st.integers(1, 200_000),
    ),
    st.binary(max_size=80),
    st.lists(CHARS, max_size=40).map(lambda s: "".join(s).encode("utf-8", "surrogatepass")),
).map(lambda line: line.replace(b"\n", b""))


def _sound(sample: Sample) -> None:
    """What every accepted sample promises the stages after the reader."""
    assert 0.0 <= sample.t and len(sample.data) <= MAX_FIELDS
    line = sample.to_json()
    json.dumps({"t": sample.t, **sample.data}, ensure_ascii=False).encode("utf-8")
    obj = json.loads(line)
    assert check_sample(obj["sensor"], obj["t"], obj) == sample
    for value in sample.data.values():
        if isinstance(value, int | float):
            float(value)


def _write(path: Path, header: bytes, lines: list[bytes], torn: bool) -> None:
    raw = header + b"".join(line + b"\n" for line in lines)
    if torn and raw.endswith(b"\n"):
        raw = raw[:-1]
    path.write_bytes(gzip.compress(raw, mtime=0) if path.suffix == ".gz" else raw)


def _read(paths: list[Path]) -> tuple[list[Sample], ReadCounts]:
    counts = ReadCounts()
    return list(read_trace(paths, counts)), counts


# The properties


@_examples(1000)
@given(lines=st.lists(LINES, max_size=10), gz=st.booleans(), torn=st.booleans())
def test_any_lines_are_each_accounted_for_and_never_crash(
    workdir: Path, lines: list[bytes], gz: bool, torn: bool
) -> None:
    path = workdir / ("t.jsonl.gz" if gz else "t.jsonl")
    _write(path, HEADER, lines, torn)
    got, counts = _read([path])
    blank = sum(1 for line in lines if not line.strip(b" \t\r\n"))
    assert counts.read == len(got)
    assert len(lines) - blank == counts.read + counts.rejected.total() + counts.warnings.total()
    for sample in got:
        _sound(sample)


def _header(version: Any) -> bytes:
    return json.dumps({"vigil_trace": version, "created": 0.0}).encode("utf-8", "surrogatepass")


HEADERS = st.one_of(
    st.builds(_header, JSON),
    st.builds(_header, st.sampled_from([1, True, 1.0, "1", 2, 0, -1, 10**4000])),
    st.builds(_dumps, JSON, st.booleans()),
    st.builds(lambda n: b"[" * n, st.integers(1, 200_000)),
    st.binary(max_size=80).map(lambda b: b.replace(b"\n", b"")),
    st.just(b""),
)


@_examples(600)
@given(header=HEADERS, gz=st.booleans())
def test_any_header_is_accepted_only_when_it_is_version_1(
    workdir: Path, header: bytes, gz: bool
) -> None:
    path = workdir / ("h.jsonl.gz" if gz else "h.jsonl")
    _write(path, header + b"\n", [b'{"t": 1.0, "sensor": "system", "cpu_pct": 1.0}'], False)
    version_1 = header.startswith(b'{"vigil_trace": 1, ')
    try:
        got, counts = _read([path])
    except TraceError:
        assert not version_1
        return
    assert len(got) == 1 and counts == ReadCounts(read=1)
    obj = json.loads(header)
    assert type(obj["vigil_trace"]) is int and obj["vigil_trace"] == 1


@st.composite
def recordings(draw: st.DrawFn) -> list[list[Sample]]:
    """One to four files of valid samples, each in time order, with equal times across them."""
    files = []
    for _ in range(draw(st.integers(1, 4))):
        times = sorted(draw(st.lists(st.integers(0, 30).map(float), max_size=15)))
        sensors = draw(st.lists(st.sampled_from(["system", "battery"]), min_size=len(times)))
        files.append(
            [Sample(s, t, {"n": i}) for i, (s, t) in enumerate(zip(sensors, times, strict=False))]
        )
    return files


@_examples(200)
@given(files=recordings())
def test_files_merge_by_time_in_any_order(workdir: Path, files: list[list[Sample]]) -> None:
    paths = []
    for index, samples in enumerate(files):
        path = workdir / f"m{index}.jsonl{'.gz' if index % 2 else ''}"
        _write(path, HEADER, [s.to_json().encode() for s in samples], False)
        paths.append(path)
    for order in (paths, paths[::-1]):
        rank = {path: i for i, path in enumerate(order)}
        expected = [
            sample
            for *_, sample in sorted(
                (s.t, rank[path], line, s)
                for path, samples in zip(paths, files, strict=True)
                for line, s in enumerate(samples)
            )
        ]
        got, counts = _read(order)
        assert got == expected and counts == ReadCounts(read=len(expected))


@pytest.fixture(scope="module")
def recording(workdir: Path) -> bytes:
    """A gzip trace written as live: flushed after every sample, many small deflate blocks."""
    path = workdir / "recording.jsonl.gz"
    with TraceWriter(path, created=0.0, host="h", source="test") as w:
        for i in range(300):
            w.write(Sample("system", float(i), {"cpu_pct": float(i * 7919 % 1000) / 10}))
            w.flush()
    return path.read_bytes()


@_examples(400)
@given(
    flips=st.lists(st.tuples(st.floats(0, 1, exclude_max=True), st.integers(1, 255)), max_size=4),
    cut=st.none() | st.floats(0, 1),
)
def test_damaged_gzip_never_crashes(
    workdir: Path, recording: bytes, flips: list[tuple[float, int]], cut: float | None
) -> None:
    path = workdir / "d.jsonl.gz"
    data = bytearray(recording)
    for where, xor in flips:
        data[int(where * len(data))] ^= xor
    if cut is not None:
        data = data[: int(cut * len(data))]
    path.write_bytes(bytes(data))
    try:
        got, counts = _read([path])
    except TraceError:
        return
    assert counts.warnings.total() <= 2  # the damage, and a torn line before it
    for sample in got:
        _sound(sample)


def _exact(samples: list[Sample]) -> list[tuple[str, float, list[tuple[str, str, str]]]]:
    """Samples with every value's type: 1 and 1.0 and True are equal in Python, not here."""
    return [
        (s.sensor, s.t, [(k, type(v).__name__, repr(v)) for k, v in s.data.items()])
        for s in samples
    ]


@_examples(500)
@given(lines=st.lists(LINES, max_size=10))
def test_orjson_reads_what_the_standard_library_reads(workdir: Path, lines: list[bytes]) -> None:
    """The fast path (orjson and a one-pass check) accepts, rejects and reads every line as
    the standard library path does: the same samples, types included, the same counts."""
    import agent.jsonfast

    path = workdir / "same.jsonl"
    _write(path, HEADER, lines, torn=False)
    fast, fast_counts = _read([path])
    saved, agent.jsonfast.orjson = agent.jsonfast.orjson, None  # type: ignore[assignment]
    try:
        slow, slow_counts = _read([path])
    finally:
        agent.jsonfast.orjson = saved
    assert _exact(fast) == _exact(slow)
    assert (fast_counts.rejected, fast_counts.warnings) == (
        slow_counts.rejected,
        slow_counts.warnings,
    )


@_examples(1000)
@given(data=st.dictionaries(TEXT, SCALARS, max_size=8))
def test_stored_text_is_the_standard_librarys(data: dict[str, Any]) -> None:
    """What the memory stores of a sample is the same bytes with or without orjson."""
    from agent.jsonfast import dumps_compact

    try:
        expected = json.dumps(data, separators=(",", ":"), allow_nan=False)
    except ValueError:  # NaN and infinities (the gate never lets them reach the memory)
        with pytest.raises(ValueError):  # refused alike, never written as null
            dumps_compact(data)
        return
    assert dumps_compact(data) == expected
