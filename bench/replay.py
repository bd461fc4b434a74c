"""Replay throughput on a generated 7-day trace with every sensor at its default interval.

Prints samples per second for three passes over the same file, so the ratios show where the
time goes: reading and checking the trace alone (the baseline), reading plus the pipeline,
and the full replay (pipeline and SQLite memory) that ``vigil replay`` runs. Then the
always-on tier alone per stream value, and two views of the live daemon's cost per sample:
the pipeline fed one sample at a time, and the daemon's whole loop (chunks of one through
``drive()`` into SQLite, committed as the daemon commits).

    python bench/replay.py [--days 7] [--keep DIR]
"""

from __future__ import annotations

import argparse
import itertools
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from agent.config import Config
from agent.demo import write_synthetic_trace
from agent.detect.tflite import load_or_explain
from agent.features.streams import stream_values
from agent.memory.db import open_engine, upgrade
from agent.memory.store import MemoryStore
from agent.pipeline import Pipeline, source_of
from agent.power.ledger import Ledger
from agent.power.meter import PowerMeter
from agent.runtime.loop import drive
from agent.runtime.replay import chunked, replay_files
from agent.runtime.setup import build_pipeline
from agent.runtime.trace import ReadCounts, read_trace


def _timed(label: str, n_expected: int, fn: Callable[[], int]) -> float:
    start = time.process_time()  # CPU time: other work on the machine does not count
    n = fn()
    elapsed = time.process_time() - start
    assert n == n_expected, (label, n, n_expected)
    rate = n / elapsed
    print(f"{label:<28} {n:>9,} samples {elapsed:8.2f} CPU s {rate:>12,.0f} samples/s")
    return rate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=7)
    parser.add_argument("--keep", type=Path, help="keep the trace and database here")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        where = args.keep or Path(tmp)
        where.mkdir(parents=True, exist_ok=True)
        trace = where / f"synthetic-{args.days}d.jsonl"
        start = time.perf_counter()
        n = write_synthetic_trace(trace, days=args.days)
        size_mb = trace.stat().st_size / 1e6
        print(
            f"trace: {args.days} days, {n:,} samples, {size_mb:.1f} MB, "
            f"generated in {time.perf_counter() - start:.1f} s"
        )

        def read_only() -> int:
            return sum(1 for _ in read_trace([trace], ReadCounts()))

        def read_and_pipeline() -> int:
            model = load_or_explain()
            pipeline = Pipeline(Config(), (), model)
            count = 0
            for chunk in chunked(read_trace([trace], ReadCounts())):
                count += len(pipeline.feed_chunk(chunk))
            return count

        def full() -> int:
            db = where / "replay.db"
            db.unlink(missing_ok=True)
            return replay_files([trace], Config(), db=db).stats.samples

        base = _timed("read + check (baseline)", n, read_only)
        piped = _timed("read + pipeline", n, read_and_pipeline)
        whole = _timed("full replay (+ SQLite)", n, full)
        print(f"ratios to baseline: pipeline {piped / base:.2f}, full replay {whole / base:.2f}")
        _tier_alone(trace)
        _one_at_a_time(trace)
        _live_loop(trace, where)
        print(
            f"{args.days} days of sensing replayed in {n / whole:.1f} CPU s "
            f"({args.days * 86400 / (n / whole):,.0f}x real time)"
        )


def _tier_alone(trace: Path) -> None:
    """The always-on tier by itself: its CPU per stream value over the same trace, fed in
    replay's chunks (the samples read and their stream values taken beforehand)."""
    pipeline = build_pipeline(Config())
    stage = pipeline.anomaly
    assert stage is not None
    chunks = []
    for chunk in chunked(read_trace([trace], ReadCounts())):
        rows = [(s.t, source_of(s), v) for s in chunk if (v := stream_values(s))]
        chunks.append(([r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows]))
    values = sum(len(v) for _, _, vs in chunks for v in vs)
    start = time.process_time()
    for times, sources, streams in chunks:
        stage.feed_chunk(times, sources, streams)
    cpu = time.process_time() - start
    print(
        f"{'always-on tier alone':<28} {values:>9,} values  {cpu:8.2f} CPU s "
        f"{cpu / values * 1e6:>9.2f} us per stream value"
    )


def _one_at_a_time(trace: Path, n: int = 20_000) -> None:
    """The live path: the first ``n`` samples fed one by one, as ``vigil run`` feeds them
    (only ``Pipeline.feed``: the same line runs on older trees, for a before/after)."""
    samples = list(itertools.islice(read_trace([trace], ReadCounts()), n))
    pipeline = Pipeline(Config(), (), load_or_explain())
    start = time.process_time()
    for sample in samples:
        pipeline.feed(sample)
    cpu = time.process_time() - start
    each_us = cpu / len(samples) * 1e6
    print(f"{'live: one sample at a time':<28} {len(samples):>9,} samples {each_us:8.1f} us each")


def _live_loop(trace: Path, where: Path, n: int = 6_000) -> None:
    """The daemon's loop in-process: the first ``n`` samples through ``drive()`` in chunks of
    one into a real SQLite memory, committed as the daemon commits (every
    ``commit_interval_s`` of sample time); the CPU a sample costs there, storage included."""
    samples = list(itertools.islice(read_trace([trace], ReadCounts()), n))
    config = Config()
    engine = open_engine(where / "live.db")
    upgrade(engine)
    store = MemoryStore(engine, commit_interval_s=config.daemon.commit_interval_s)
    pipeline = build_pipeline(config)
    store.attach_state(pipeline.snapshot)
    start = time.process_time()
    drive(
        ([s] for s in samples), pipeline=pipeline, store=store, ledger=Ledger(PowerMeter(), "bench")
    )
    cpu = time.process_time() - start
    store.close()
    engine.dispose()
    label = "live loop, into SQLite"
    print(f"{label:<28} {len(samples):>9,} samples {cpu / len(samples) * 1e6:8.1f} us each")


if __name__ == "__main__":
    main()
