"""drive(): the one loop that live runs and replays share: pipeline -> memory, metered."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

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
) -> DriveStats:
    """Feed each sample through the pipeline and store it with its events.

    ``on_event`` sees every event as it happens (``replay --json`` prints them). Escalation
    to the larger model plugs in here, after the store.
    """
    stats = DriveStats()
    for sample in samples:
        with meter.stage("pipeline"):
            step = pipeline.feed(sample)
        events = step.events
        with meter.stage("memory"):
            store.record(sample, events, step.sessions)
        stats.samples += 1
        if events:
            stats.events += len(events)
            if on_event is not None:
                for event in events:
                    on_event(event)
    return stats
