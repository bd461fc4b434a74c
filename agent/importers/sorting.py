"""Sorting an import by time in bounded memory, checking it at the gate, writing the trace.

An import's samples arrive in source order, each with where it came from (``file:line``).
They are sorted by an external merge sort: ``chunk_size`` samples at a time are sorted by time
(stably), checked at the gate and, when the input does not fit one chunk, written to a
temporary file as a sorted *run*; the runs are then merged with ``heapq.merge``, which on
equal times takes the earlier run first, so the merged order is exactly that of one stable
sort of the whole input. The merge drops exact duplicates and counts the gate's rejections
(a rejected sample's duplicate is a duplicate), and writes the rest. Memory is about one
chunk whatever the size of the input (while merging, each run holds a batch of
``chunk_size / FAN_IN`` entries); an input that fits one chunk never touches the disk.

Temporary files live in a private folder (mode 0700, made by ``tempfile`` under ``$TMPDIR``)
that is removed at the end, on failure too. They are pickles this process wrote itself.
"""

from __future__ import annotations

import heapq
import logging
import math
import pickle
import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping
from itertools import islice
from pathlib import Path
from types import TracebackType
from typing import Any, NamedTuple, cast

from agent.errors import TraceError
from agent.gate import Rejected, SampleGate
from agent.importers.common import ImportCounts, Located
from agent.runtime.trace import LOGGED_PER_REASON, TraceWriter
from agent.samples import Sample, Scalar

logger = logging.getLogger(__name__)

#: Samples sorted in memory at once: about 28 MB of location samples with their file:line.
#: More only makes the runs fewer, which the merge does not need.
CHUNK_SAMPLES = 50_000
#: Runs merged at once (each one open file); more runs are merged in rounds. Each run being
#: merged holds one batch (a pickle) of ``chunk_size / FAN_IN`` entries, so that a merge
#: holds no more than a chunk.
FAN_IN = 64


class Entry(NamedTuple):
    """One sample on its way to the trace, with where it came from and, when the gate
    refused it, the reason and the detail."""

    t: float
    sensor: str
    data: Mapping[str, Scalar]
    where: str
    rejected: tuple[str, str] | None = None


#: Told each sorted chunk before it is kept; may replace its entries.
ChunkFn = Callable[[list[Entry]], None]


def _time(entry: Entry) -> float:
    return entry.t


class SpillDir:
    """A private temporary folder for sorted runs: made on first use, removed on exit. Runs
    are pickled ``batch`` entries at a time."""

    def __init__(self, batch: int = CHUNK_SAMPLES // FAN_IN) -> None:
        self._dir: tempfile.TemporaryDirectory[str] | None = None
        self._files = 0
        self._batch = max(1, batch)

    @property
    def path(self) -> Path | None:
        """The folder, once a run has been written."""
        return None if self._dir is None else Path(self._dir.name)

    def write(self, entries: Iterable[Entry]) -> Path:
        """A new run file holding ``entries`` in order; ``TraceError`` when the temporary
        folder cannot take it (full, or not writable)."""
        try:
            if self._dir is None:
                self._dir = tempfile.TemporaryDirectory(prefix="vigil-import-")  # mkdtemp: 0700
            self._files += 1
            path = Path(self._dir.name) / f"run{self._files}.pickle"
            items = iter(entries)
            with open(path, "xb") as f:
                while batch := [tuple(entry) for entry in islice(items, self._batch)]:
                    pickle.dump(batch, f, pickle.HIGHEST_PROTOCOL)  # plain tuples: fastest
        except OSError as exc:
            where = self._dir.name if self._dir is not None else tempfile.gettempdir()
            reason = f"cannot hold the import's sorted runs ({exc}); set TMPDIR to a roomier folder"
            raise TraceError(where, reason) from exc
        return path

    def read(self, path: Path) -> Iterator[Entry]:
        """The entries of a run file, in order; the file is deleted once read."""
        with open(path, "rb") as f:
            while True:
                try:
                    batch = cast(list[tuple[Any, ...]], pickle.load(f))  # our own file
                except EOFError:
                    break
                yield from map(Entry._make, batch)
        path.unlink()

    def __enter__(self) -> SpillDir:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._dir is not None:
            self._dir.cleanup()


def sort_by_time(
    entries: Iterable[Entry], spill: SpillDir, chunk_size: int, on_chunk: ChunkFn
) -> Iterator[Entry]:
    """``entries`` stably sorted by time, holding at most ``chunk_size`` of them at once;
    ``on_chunk`` sees each sorted chunk first, and may replace its entries. The input is read
    to its end before the first entry is returned."""
    if chunk_size < 1:
        raise ValueError(f"chunk_size {chunk_size} is not a positive number of samples")
    runs: list[Path] = []
    chunk: list[Entry] = []
    for entry in entries:
        chunk.append(entry)
        if len(chunk) >= chunk_size:
            chunk.sort(key=_time)
            on_chunk(chunk)
            runs.append(spill.write(chunk))
            chunk = []
    chunk.sort(key=_time)
    on_chunk(chunk)
    if not runs:
        return iter(chunk)
    if chunk:
        runs.append(spill.write(chunk))
    while len(runs) > FAN_IN:  # consecutive runs merge into one: the order stays stable
        first = heapq.merge(*(spill.read(run) for run in runs[:FAN_IN]), key=_time)
        runs = [spill.write(first), *runs[FAN_IN:]]
    return heapq.merge(*(spill.read(run) for run in runs), key=_time)


def write_sorted(
    located: Iterable[Located],
    output: Path,
    counts: ImportCounts,
    *,
    kind: str,
    host: str,
    chunk_size: int = CHUNK_SAMPLES,
) -> None:
    """Sort ``located`` by time (stable), drop exact duplicates (same sensor, time and
    fields), check the rest at the gate and write them to the new trace ``output``.

    The header's ``created`` is the last sample's time (an import reads no clock, so a plain
    ``.jsonl`` import repeats byte for byte on one host); the gate's verdicts are known per
    chunk, so it is known before the merge begins.
    """
    with SpillDir(chunk_size // FAN_IN) as spill:
        entries, created = _sorted_checked(located, counts, spill, chunk_size)
        with TraceWriter(output, created=created, host=host, source=f"vigil import {kind}") as w:
            for sample in _samples(entries, counts):
                w.write(sample)
                counts.written += 1


def sorted_samples(
    located: Iterable[Located], counts: ImportCounts, *, chunk_size: int = CHUNK_SAMPLES
) -> list[Sample]:
    """The samples ``write_sorted`` would write, as a list: for a caller that feeds them on
    (``bench/nab.py``) and holds them anyway."""
    with SpillDir(chunk_size // FAN_IN) as spill:
        entries, _ = _sorted_checked(located, counts, spill, chunk_size)
        return list(_samples(entries, counts))


def _sorted_checked(
    located: Iterable[Located], counts: ImportCounts, spill: SpillDir, chunk_size: int
) -> tuple[Iterator[Entry], float]:
    """The entries to write, in order, and the latest time among them (0.0 when none)."""
    checker = _Checker()
    entries = sort_by_time(_entries(located, counts), spill, chunk_size, checker)
    return _kept(entries, counts), checker.latest


class _Checker:
    """The gate's verdicts on each sorted chunk (``ChunkFn``), and the latest time it
    admitted: a chunk is sorted, so its last admitted time is its latest."""

    def __init__(self) -> None:
        self.latest = 0.0

    def __call__(self, chunk: list[Entry]) -> None:
        # A gate per chunk: in a sorted chunk time never goes back, so only the checks of
        # each sample alone can refuse one.
        gate = SampleGate()
        for i, entry in enumerate(chunk):
            chunk[i] = _check(gate, entry)
        latest = next((e.t for e in reversed(chunk) if e.rejected is None), None)
        if latest is not None:
            self.latest = max(self.latest, latest)


def _samples(entries: Iterable[Entry], counts: ImportCounts) -> Iterator[Sample]:
    """The entries as samples, with the first and last time counted."""
    for entry in entries:
        if counts.first_t is None:
            counts.first_t = entry.t
        counts.last_t = entry.t
        yield Sample(entry.sensor, entry.t, entry.data)


def _entries(located: Iterable[Located], counts: ImportCounts) -> Iterator[Entry]:
    """Entries in source order; a time that is not finite cannot be sorted: refused first.
    A time of -0.0 becomes 0.0: equal times must be one value, so that the header's time,
    known per chunk, is the last sample's whichever chunk it came from."""
    gate = SampleGate()
    for where, sample in located:
        t = 0.0 if sample.t == 0 else sample.t
        entry = Entry(t, sample.sensor, sample.data, where)
        if math.isfinite(t):
            yield entry
        else:
            _count_rejected(_check(gate, entry), counts)


def _check(gate: SampleGate, entry: Entry) -> Entry:
    """The entry as the gate checked it, or with the gate's reason."""
    try:
        sample = gate.admit(entry.sensor, entry.t, entry.data)
    except Rejected as exc:
        return entry._replace(rejected=(exc.reason, exc.detail))
    return Entry(sample.t, sample.sensor, sample.data, entry.where)


def _kept(entries: Iterable[Entry], counts: ImportCounts) -> Iterator[Entry]:
    """Sorted, checked entries without exact duplicates and rejections (both counted).
    Duplicates share a time, so only the current instant's keys are remembered. A NaN equals
    nothing, itself included, so a sample holding one (rejected) is never a duplicate."""
    instant: float | None = None
    seen: set[tuple[object, ...]] = set()
    for entry in entries:
        if entry.t != instant:
            instant = entry.t
            seen.clear()
        if entry.rejected is not None and _has_nan(entry.data):
            _count_rejected(entry, counts)
            continue
        key = (entry.sensor, *sorted(entry.data.items()))
        if key in seen:
            counts.skip("duplicate", entry.where, f"{entry.sensor} t={entry.t!r}")
        elif entry.rejected is not None:
            seen.add(key)
            _count_rejected(entry, counts)
        else:
            seen.add(key)
            yield entry


def _has_nan(data: Mapping[str, Scalar]) -> bool:
    return any(isinstance(value, float) and math.isnan(value) for value in data.values())


def _count_rejected(entry: Entry, counts: ImportCounts) -> None:
    """Count a refused sample; log it with its place (past a few per reason, quietly)."""
    assert entry.rejected is not None
    reason, detail = entry.rejected
    counts.rejected[reason] += 1
    quiet = counts.rejected[reason] > LOGGED_PER_REASON
    logger.log(
        logging.DEBUG if quiet else logging.WARNING,
        "%s: %s sample at t=%r rejected (%s): %s",
        entry.where,
        entry.sensor,
        entry.t,
        reason,
        detail,
    )
