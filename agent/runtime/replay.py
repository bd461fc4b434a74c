"""replay_files(): trace files through the same loop as the daemon, into a database."""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import itertools
import json
import logging
import tempfile
import zlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from agent.config import Config
from agent.errors import StorageError
from agent.escalation.backends import Backend
from agent.escalation.escalator import Escalator
from agent.memory.db import open_engine, upgrade
from agent.memory.fences import FenceStore
from agent.memory.store import MemoryStore
from agent.memory.wakes import WakeStore
from agent.power.ledger import Ledger
from agent.power.meter import PowerMeter
from agent.runtime.fence_watch import load_fences
from agent.runtime.loop import DriveStats, drive
from agent.runtime.setup import build_pipeline
from agent.runtime.trace import ReadCounts, check_traces, read_trace, trace_zone
from agent.samples import Event, Sample

if TYPE_CHECKING:
    from agent.detect.fences import Fence

logger = logging.getLogger(__name__)


@dataclass
class ReplayResult:
    stats: DriveStats
    counts: ReadCounts
    db_path: str
    #: Samples of these traces an earlier replay into the same database had committed.
    resumed_after: int = 0


#: Samples per chunk in replay: enough that the tiny model and the rank histories work on
#: long arrays, few enough to stay a few MB.
CHUNK = 4096


def chunked(samples: Iterable[Sample], size: int = CHUNK) -> Iterator[list[Sample]]:
    """``samples`` in lists of ``size`` (the last shorter)."""
    iterator = iter(samples)
    while chunk := list(itertools.islice(iterator, size)):
        yield chunk


def replay_files(
    paths: Sequence[Path],
    config: Config,
    *,
    db: str | Path | None = None,
    fences: Sequence[Fence] | None = None,
    on_event: Callable[[Event], None] | None = None,
    on_progress: Callable[[int], None] | None = None,
    backend: Backend | None = None,
    on_findings: Callable[[WakeStore], None] | None = None,
) -> ReplayResult:
    """Replay ``paths``, merged by sample time. Without ``db`` a fresh temporary database is
    used (and removed afterwards), so a replay repeats exactly. ``fences`` (from ``--fences
    FILE``) are used alone; without them the database's fences table is used. Every stage
    starts from scratch, unless ``db`` holds an earlier replay of the same traces: then it
    goes on after it (``_committed_before``). Wakes are diagnosed; ``backend`` (``--wake``)
    also asks the larger model, and ``on_findings`` reads the findings before a temporary
    database goes. Raises ``TraceError`` before touching any database when a file cannot be
    used at all."""
    check_traces(paths)
    config = in_trace_zone(paths, config)
    # One order whatever the command line's: equal times are merged in file order, and a
    # resumed replay must meet its samples in the same order as the replay it goes on from.
    heads = {path: _head(path) for path in paths}
    paths = sorted(paths, key=heads.__getitem__)
    options = _Options(_key_of(heads.values()), fences, on_event, on_progress, backend, on_findings)
    if db is None:
        with tempfile.TemporaryDirectory(prefix="vigil-replay-") as tmp:
            return _replay(paths, config, Path(tmp) / "replay.db", options)
    return _replay(paths, config, db, options)


def in_trace_zone(paths: Sequence[Path], config: Config) -> Config:
    """``config`` with the traces' recorded zone when it says ``local``: the hours are judged
    as on the machine that recorded them, so a replay anywhere gives its events."""
    if config.anomaly.timezone != "local":
        return config
    zone = trace_zone(paths)
    if zone is None:
        return config
    logger.info("the hours are judged in the traces' time zone, %s", zone)
    return dataclasses.replace(config, anomaly=dataclasses.replace(config.anomaly, timezone=zone))


def _committed_before(store: MemoryStore, key: str) -> int:
    """Samples of these traces that an earlier replay into this database committed (0 when
    none): this replay goes on after them, whether that one was stopped or finished (a trace
    still being recorded has grown since), so no sample is stored twice."""
    text = store.meta().get(key)
    if text is None:
        return 0
    progress = json.loads(text)
    samples = int(progress["samples"])
    logger.warning(
        "%s already holds the first %d samples of these traces (an earlier replay %s): "
        "going on after them, with the stages' state committed with them",
        store.engine.url.database,
        samples,
        "finished" if progress.get("done") else "stopped before the end",
    )
    return samples


@dataclass(frozen=True)
class _Options:
    key: str  # the meta row of this replay's progress (``progress_key``)
    fences: Sequence[Fence] | None
    on_event: Callable[[Event], None] | None
    on_progress: Callable[[int], None] | None
    backend: Backend | None
    on_findings: Callable[[WakeStore], None] | None


def progress_key(paths: Sequence[Path]) -> str:
    """The meta key of a replay of these traces: each file's header (a recording's start
    time, host and source) and first sample, in any order; not names, not sizes (a trace
    being recorded grows)."""
    return _key_of(_head(p) for p in paths)


def _key_of(heads: Iterable[bytes]) -> str:
    digest = hashlib.sha256()
    for head in sorted(heads):
        digest.update(head)
    return "replay:" + digest.hexdigest()[:16]


def _head(path: Path) -> bytes:
    """The first two lines (at most 64 KiB): the header and the first sample (or what of
    them can be read: the reader says what is wrong with the rest)."""
    head = b""
    try:
        with gzip.open(path, "rb") if path.suffix == ".gz" else path.open("rb") as f:
            for _ in range(2):
                head += f.readline(1 << 15)
    except (OSError, EOFError, zlib.error):
        pass
    return head


def _replay(paths: Sequence[Path], config: Config, db: str | Path, o: _Options) -> ReplayResult:
    engine = open_engine(db)
    upgrade(engine)
    fences = o.fences if o.fences is not None else load_fences(FenceStore(engine))
    pipeline = build_pipeline(config, fences)
    # Replay commits by batch size only: sample time runs far faster than the wall clock. The
    # stages' whole state goes with every commit, so a replay stopped anywhere resumes exactly.
    # A refused commit (a full disk) stops the replay: it resumes from what was committed.
    store = MemoryStore(
        engine,
        commit_interval_s=None,
        max_batch=20_000,
        full_state_every_s=0.0,
        hold_on_failure=False,
    )
    key = o.key
    done_before = _committed_before(store, key)
    if done_before:
        for part in pipeline.restore(store.load_state()):
            store.count(f"state.dropped.{part}")
        store.record_events(WakeStore(engine).lost_events())
    store.attach_state(pipeline.snapshot)
    finished: list[bool] = []
    store.attach_progress(
        key,
        lambda: json.dumps(
            {"files": [p.name for p in paths], "samples": done_before + store.recorded}
            | {"done": bool(finished)}
        ),
    )
    counts = ReadCounts()
    ledger = Ledger(PowerMeter(), "replay")
    escalator = Escalator(config.escalation, store, o.backend, origin="replay")
    refused: StorageError | None = None
    try:
        samples = read_trace(list(paths), counts, on_progress=o.on_progress)
        stats = drive(
            chunked(itertools.islice(samples, done_before, None)),
            pipeline=pipeline,
            store=store,
            ledger=ledger,
            on_event=o.on_event,
            escalator=escalator,
            source="trace",
        )
        finished.append(True)
    except StorageError as exc:
        refused = exc
    finally:
        store.record_events(escalator.close())
        store.count_all(counts.rejected, prefix="rejected.")
        store.count_all(counts.warnings, prefix="warning.")
        try:
            store.close()
        except StorageError as exc:
            refused = refused or exc
    if refused is not None:
        raise StorageError(
            refused.target,
            f"{refused.reason}; what was committed stays: run the same replay again to go on "
            "after it",
        ) from refused
    if o.on_findings is not None:
        o.on_findings(WakeStore(engine))
    engine.dispose()
    return ReplayResult(stats, counts, str(engine.url.database), done_before)
