"""score_traces(): traces through a fresh pipeline, one CSV row of anomaly scores per sample."""

from __future__ import annotations

import csv
import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from agent.config import Config
from agent.features.streams import stream_values
from agent.pipeline import Step
from agent.runtime.replay import chunked
from agent.runtime.setup import build_pipeline
from agent.runtime.trace import ReadCounts, read_trace

logger = logging.getLogger(__name__)

#: The first two columns; every stream seen in the input follows, by name.
FIXED_COLUMNS = ("t", "score")


def score_traces(paths: Sequence[Path], config: Config, out_path: Path) -> int:
    """Replay ``paths`` in order through one fresh ``Pipeline`` with the shipped tiny model, as
    ``vigil replay`` builds it but with no database and no fences (the scores depend on
    neither), and write ``out_path``: ``t`` (``repr`` of the sample's time), ``score`` (the
    node score, empty when the pipeline gave none), then one column per stream seen anywhere
    in the input, sorted by name: the stream's score for that sample, or empty. Returns the
    rows written: one per sample read (rejected lines are skipped, as in ``vigil replay``).

    The columns are only known after the last sample, so the traces are read twice: first
    for the stream names alone (no pipeline), then to score and write row by row. Memory stays
    flat however long the traces are; the price is parsing them twice. A ``TraceError`` from
    an unusable file comes from the first pass, before ``out_path`` is touched."""
    files = list(paths)
    streams: set[str] = set()
    with _quiet_trace_log():  # the second pass logs each rejected line; once is enough
        for sample in read_trace(files, ReadCounts()):
            streams.update(stream_values(sample))
    columns = sorted(streams)
    pipeline = build_pipeline(config, keep_scores=True)
    counts = ReadCounts()
    rows = 0
    with out_path.open("w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow([*FIXED_COLUMNS, *columns])
        for chunk in chunked(read_trace(files, counts)):
            for sample, step in zip(chunk, pipeline.feed_chunk(chunk), strict=True):
                node, scores = _step_scores(step)
                writer.writerow(
                    [
                        repr(sample.t),
                        "" if node is None else repr(node),
                        *(repr(scores[c]) if c in scores else "" for c in columns),
                    ]
                )
                rows += 1
    logger.debug("score: %s; %d streams -> %s", counts.summary(), len(columns), out_path)
    return rows


def _step_scores(step: Step) -> tuple[float | None, dict[str, float]]:
    """The node score and the per-stream scores of one step (the anomaly stage's fields)."""
    return step.node, step.scores


@contextmanager
def _quiet_trace_log() -> Iterator[None]:
    """Drop the trace reader's log records while the block runs."""
    trace_logger = logging.getLogger("agent.runtime.trace")

    def drop(record: logging.LogRecord) -> bool:
        return False

    trace_logger.addFilter(drop)
    try:
        yield
    finally:
        trace_logger.removeFilter(drop)
