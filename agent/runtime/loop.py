"""drive(): the one loop that live runs and replays share: pipeline -> memory, metered.

The loop's thread is metered by laps (``agent/power/meter.py``): getting the next sample
(``source``: waiting on the sensors live, reading the trace in replay), the pipeline's stages
(which lap themselves), ``storage`` and ``escalation``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from agent.escalation.escalator import Escalator
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
    samples: Iterable[Sample],
    *,
    pipeline: Pipeline,
    store: MemoryStore,
    ledger: Ledger,
    on_event: Callable[[Event], None] | None = None,
    escalator: Escalator | None = None,
    source: str = "source",
) -> DriveStats:
    """Feed each sample through the pipeline and store it with its events; run the wakes the
    pipeline says are due, and store what they conclude.

    ``on_event`` sees every event as it happens (``replay --json`` prints them); ``source``
    names the stage that hands over samples in the ledger.
    """
    stats = DriveStats()
    meter = ledger.meter
    pipeline.meter = meter  # the stages lap on the loop's meter
    if escalator is not None:
        escalator.meter = meter  # the larger model's child is charged from its rusage
    store.attach_ledger(ledger)
    with fewer_collections():
        meter.skip()  # the collection made on the way in is start-up's, not the first lap's
        for sample in samples:
            meter.lap(source)
            ledger.at(sample.t)
            step = pipeline.feed(sample)
            events = step.events
            store.record(sample, events, step.sessions)
            meter.lap("storage")
            if escalator is not None and (step.wakes or escalator.waiting):
                woken = escalator.handle(step.wakes)  # stored by the escalation itself
                meter.lap("escalation")
                events = [*events, *woken]
            stats.samples += 1
            if events:
                stats.events += len(events)
                if on_event is not None:
                    for event in events:
                        on_event(event)
    return stats
