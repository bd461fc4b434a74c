"""drive(): the one loop that live runs and replays share: pipeline -> memory, metered."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from agent.escalation.escalator import Escalator
from agent.memory.store import MemoryStore
from agent.pipeline import Pipeline
from agent.power.meter import PowerMeter
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
    meter: PowerMeter,
    on_event: Callable[[Event], None] | None = None,
    escalator: Escalator | None = None,
) -> DriveStats:
    """Feed each sample through the pipeline and store it with its events; run the wakes the
    pipeline says are due, and store what they conclude.

    ``on_event`` sees every event as it happens (``replay --json`` prints them).
    """
    stats = DriveStats()
    for sample in samples:
        with meter.stage("pipeline"):
            step = pipeline.feed(sample)
        events = step.events
        with meter.stage("memory"):
            store.record(sample, events, step.sessions)
        if escalator is not None and (step.wakes or escalator.waiting):
            with meter.stage("escalation"):
                woken = escalator.handle(step.wakes)
            store.record_events(woken)
            events = [*events, *woken]
        stats.samples += 1
        if events:
            stats.events += len(events)
            if on_event is not None:
                for event in events:
                    on_event(event)
    return stats
