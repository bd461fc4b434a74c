"""The import's external sort: the same trace as one in-memory sort, whatever the chunk size;
a private spill folder that goes away; memory that does not grow with the input."""

from __future__ import annotations

import math
import random
import stat
import tempfile
import tracemalloc
from collections.abc import Iterable, Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agent.errors import TraceError
from agent.gate import Rejected, SampleGate
from agent.importers import ImportCounts, import_files
from agent.importers.common import Located
from agent.importers.sorting import FAN_IN, SpillDir, write_sorted
from agent.runtime.trace import TraceWriter
from agent.samples import Sample


def _in_memory(located: Iterable[Located], out: Path) -> ImportCounts:
    """The import's last step as it was before the external sort: everything held, one stable
    sort, duplicates dropped, the gate, the trace. The reference the new one must equal."""
    counts = ImportCounts()
    gate = SampleGate()
    kept: list[Sample] = []
    timed: list[Sample] = []

    def admit(sample: Sample) -> None:
        try:
            kept.append(gate.admit(sample.sensor, sample.t, sample.data))
        except Rejected as exc:
            counts.rejected[exc.reason] += 1

    for _, sample in located:
        if math.isfinite(sample.t):
            timed.append(sample)
        else:
            admit(sample)
    seen: set[tuple[object, ...]] = set()
    for sample in sorted(timed, key=lambda s: s.t):
        key = (sample.sensor, sample.t, *sorted(sample.data.items()))
        if key in seen:
            counts.skipped["duplicate"] += 1
            continue
        seen.add(key)
        admit(sample)
    if kept:
        counts.first_t, counts.last_t = kept[0].t, kept[-1].t
    created = kept[-1].t if kept else 0.0
    with TraceWriter(out, created=created, host="h", source="vigil import test") as writer:
        for sample in kept:
            writer.write(sample)
    counts.written = len(kept)
    return counts


# Samples with few distinct values, so that equal times, duplicates and rejections abound.
# Each NaN is a float of its own, as each parsed one is (two NaNs are never equal).
NAN = st.builds(float, st.just("nan"))
TIMES = st.sampled_from([0.0, 1.0, 2.0, 2.5, 1e9, -1.0, 1e20, math.inf]) | NAN | st.floats(0, 5)
LOCATION = st.fixed_dictionaries(
    {"lat": st.sampled_from([1.0, 95.0]) | NAN, "lon": st.just(2.0)},
    optional={"accuracy_m": st.sampled_from([5.0, 0.0])},
)
METRIC = st.fixed_dictionaries(
    {"name": st.sampled_from(["a", "b"]), "value": st.sampled_from([1.0, 2.0, math.inf])}
)
SAMPLES = st.one_of(
    st.builds(Sample, st.just("location"), TIMES, LOCATION),
    st.builds(Sample, st.just("metric"), TIMES, METRIC),
    st.builds(Sample, st.just("weather"), TIMES, st.just({"rain_mm": 1.0})),
)


@settings(max_examples=max(300, settings().max_examples))
@given(samples=st.lists(SAMPLES, max_size=40), chunk_size=st.integers(1, 9))
def test_same_trace_and_counts_as_one_sort_in_memory(
    tmp_path_factory: pytest.TempPathFactory, samples: list[Sample], chunk_size: int
) -> None:
    workdir = tmp_path_factory.mktemp("sort")
    located = [(f"x:{i}", s) for i, s in enumerate(samples)]
    before = _in_memory(located, workdir / "before.jsonl")
    for size in (chunk_size, 50_000):  # spilled in runs, and in one chunk
        counts = ImportCounts()
        out = workdir / f"after{size}.jsonl"
        write_sorted(located, out, counts, kind="test", host="h", chunk_size=size)
        assert out.read_bytes() == (workdir / "before.jsonl").read_bytes()
        assert counts == before


def _shuffled_csv(path: Path, rows: int, seed: int) -> None:
    """Fixes and a metric column, times out of order, exact duplicates and bad rows."""
    rng = random.Random(seed)
    lines = ["timestamp,lat,lon,accuracy_m,cpu"]
    for i in range(rows):
        t = 1_600_000_000 + rng.randrange(rows // 3)  # many rows per second
        lines.append(
            f"{t},{47 + rng.random():.5f},{8 + rng.random():.5f},{rng.randint(0, 9)},{i % 7}"
        )
        if rng.random() < 0.05:
            lines.append(lines[-1])  # an exact duplicate, maybe in another chunk
        if rng.random() < 0.02:
            lines.append(f"{t},95,8,5,nan")  # off the Earth, and a NaN metric: rejected
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def test_large_input_in_tiny_chunks_gives_the_one_chunk_trace(tmp_path: Path) -> None:
    src = tmp_path / "big.csv"
    _shuffled_csv(src, 12_000, seed=1)
    one = import_files("csv", [src], tmp_path / "one.jsonl", chunk_size=10**9)
    # 24,000+ samples in chunks of 100: over 240 runs, merged in rounds of FAN_IN.
    assert one.written > 100 * FAN_IN
    tiny = import_files("csv", [src], tmp_path / "tiny.jsonl", chunk_size=100)
    assert (tmp_path / "tiny.jsonl").read_bytes() == (tmp_path / "one.jsonl").read_bytes()
    assert tiny == one
    assert one.skipped["duplicate"] > 0 and one.rejected["out_of_range"] > 0


def _watching(spill_root: Path, located: Iterable[Located], after: int) -> Iterator[Located]:
    """``located``, looking into the spill folder once ``after`` samples have gone by."""
    for i, item in enumerate(located):
        if i == after:
            (folder,) = spill_root.iterdir()  # one private folder, with runs in it
            assert folder.name.startswith("vigil-import-")
            assert stat.S_IMODE(folder.stat().st_mode) == 0o700
            assert sorted(p.name for p in folder.iterdir())[:2] == ["run1.pickle", "run2.pickle"]
        yield item


def test_spill_folder_is_private_and_removed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spill_root = tmp_path / "tmp"
    spill_root.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(spill_root))  # where tempfile makes folders
    located = [
        (f"x:{i}", Sample("metric", float(1000 - i), {"name": "m", "value": 1.0}))
        for i in range(1000)
    ]
    counts = ImportCounts()
    out = tmp_path / "o.jsonl"
    write_sorted(
        _watching(spill_root, located, 350), out, counts, kind="t", host="h", chunk_size=100
    )
    assert counts.written == 1000 and not list(spill_root.iterdir())

    def failing() -> Iterator[Located]:
        yield from located[:500]
        raise TraceError("x", "cannot be read")

    with pytest.raises(TraceError):
        write_sorted(
            failing(), tmp_path / "f.jsonl", ImportCounts(), kind="t", host="h", chunk_size=100
        )
    assert not list(spill_root.iterdir()) and not (tmp_path / "f.jsonl").exists()


def test_small_input_never_touches_the_disk(tmp_path: Path) -> None:
    with SpillDir() as spill:
        assert spill.path is None
        run = spill.write([])
        folder = spill.path
        assert folder is not None and run.parent == folder
    assert not folder.exists()


def _peak_bytes(src: Path, out: Path) -> int:
    """The most memory Python held at once while importing ``src`` in chunks of 1,000."""
    tracemalloc.start()
    try:
        import_files("csv", [src], out, chunk_size=1_000)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_memory_does_not_grow_with_the_input(tmp_path: Path) -> None:
    """Eight times the samples, about the same peak: the chunk bounds memory, not the input.
    (Held whole, as before the external sort, 80,000 samples took about 40 MB more than
    10,000 did; peak RSS of a 1M-row import went from 1 GB to 50 MB.)"""
    small, large = tmp_path / "small.csv", tmp_path / "large.csv"
    _shuffled_csv(small, 5_000, seed=2)
    _shuffled_csv(large, 40_000, seed=2)
    small_peak = _peak_bytes(small, tmp_path / "s.jsonl")
    large_peak = _peak_bytes(large, tmp_path / "l.jsonl")
    assert large_peak - small_peak < 2_000_000, (small_peak, large_peak)


def test_no_room_to_spill_is_a_trace_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    not_a_folder = tmp_path / "file"
    not_a_folder.write_text("")
    monkeypatch.setattr(tempfile, "tempdir", str(not_a_folder))
    located = [
        (f"x:{i}", Sample("metric", float(i), {"name": "m", "value": 1.0})) for i in range(9)
    ]
    out = tmp_path / "o.jsonl"
    with pytest.raises(TraceError, match="cannot hold the import's sorted runs.*TMPDIR"):
        write_sorted(located, out, ImportCounts(), kind="t", host="h", chunk_size=2)
    assert not out.exists()
