"""drive(): the one loop that live runs and replays share: pipeline -> memory, metered.

The loop's thread is metered by laps (``agent/power/meter.py``), per chunk, not per sample:
getting the next chunk (``source``: waiting on the sensors live, reading the trace in
replay), the pipeline's stages (splits of the laps around them), ``storage`` and
``escalation``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass

from agent.clock import let_others_run
from agent.escalation.escalator import Escalator, WakeResult
from agent.memory.store import MemoryStore
from agent.pipeline import Pipeline
from agent.power.ledger import Ledger
from agent.runtime.collector import fewer_collections
from agent.samples import Event, Sample


@dataclass
class DriveStats:
    samples: int = 0
    events: int = 0


def drive(
    chunks: Iterable[Sequence[Sample]],
    *,
    pipeline: Pipeline,
    store: MemoryStore,
    ledger: Ledger,
    on_event: Callable[[Event], None] | None = None,
    escalator: Escalator | None = None,
    source: str = "source",
) -> DriveStats:
    """Feed each chunk of samples through the pipeline and store them with their events; run
    the wakes the pipeline says are due, and store what they conclude. The live daemon hands
    over chunks of one sample, replay chunks of thousands; the events are the same.

    ``on_event`` sees every event as it happens (``replay --json`` prints them); ``source``
    names the stage that hands over samples in the ledger.
    """
    stats = DriveStats()
    meter = ledger.meter
    pipeline.meter = meter  # the stages split on the loop's meter
    if escalator is not None:
        escalator.meter = meter  # the larger model's child is charged from its rusage
    store.attach_ledger(ledger)
    with fewer_collections():
        meter.skip()  # the collection made on the way in is start-up's, not the first lap's
        for chunk in chunks:
            meter.lap(source, calls=len(chunk))
            for part in _by_hour(chunk, ledger):
                _one_part(part, pipeline, store, ledger, escalator, on_event, stats)
            if len(chunk) > 1:  # replay: give a progress bar, the model's watchdog a turn
                # (live, the loop waits on the sensors next, and others run then: a yield
                # here cost a chunk of one 50 us, more than the whole pipeline's own work)
                let_others_run()
    return stats


def _by_hour(chunk: Sequence[Sample], ledger: Ledger) -> Iterator[Sequence[Sample]]:
    """The chunk cut where the ledger's hour ends, so each hour is charged its own work."""
    start = 0
    while start < len(chunk):
        ledger.at(chunk[start].t)
        end = start + 1
        while end < len(chunk) and chunk[end].t < ledger.hour_end_t:
            end += 1
        yield chunk[start:end]
        start = end


def _one_part(
    samples: Sequence[Sample],
    pipeline: Pipeline,
    store: MemoryStore,
    ledger: Ledger,
    escalator: Escalator | None,
    on_event: Callable[[Event], None] | None,
    stats: DriveStats,
) -> None:
    meter = ledger.meter
    steps = pipeline.feed_chunk(samples)
    ledger.at(samples[-1].t)
    # The whole part is queued before any wake runs, and its wakes are written in one commit:
    # it holds the samples, the stages' state of one moment and every wake they led to, so a
    # replay killed after it resumes exactly. A wake reads its context up to its own sample
    # time, so the later samples are not in it.
    events = [e for step in steps for e in step.events]
    store.queue(samples, events, [x for step in steps for x in step.sessions])
    meter.lap("storage", calls=len(samples))
    requests = [w for step in steps for w in step.wakes]
    results: Iterator[WakeResult] = iter([])
    if escalator is not None and requests:
        results = iter(escalator.wake_all(requests, store_event=True))
        meter.lap("escalation")
    for step in steps:
        events = step.events
        if escalator is not None and (step.wakes or escalator.waiting):
            woken = [e for _ in step.wakes for e in next(results).events]
            woken += escalator.answers()  # stored by the escalation itself
            meter.lap("escalation")
            events = [*events, *woken]
        if events:
            stats.events += len(events)
            if on_event is not None:
                for event in events:
                    on_event(event)
    store.commit_if_due()
    meter.lap("storage", calls=0)
    stats.samples += len(samples)
