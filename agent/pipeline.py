"""Sample -> features -> detectors -> triggers -> events. No I/O, no clock."""

from __future__ import annotations

from dataclasses import dataclass, field

from agent.config import Config
from agent.detect.outages import OutageTracker
from agent.features.sessions import AppSession, SessionTracker
from agent.features.streams import stream_values
from agent.samples import Event, Sample
from agent.triggers.rules import RuleSet


@dataclass
class Step:
    """What one sample produced: events, and app sessions that changed (for the store)."""

    events: list[Event] = field(default_factory=list)
    sessions: list[AppSession] = field(default_factory=list)


class Pipeline:
    """Every stage's state, fed one checked sample at a time in arrival order."""

    def __init__(self, config: Config) -> None:
        self.outages = OutageTracker()
        self.sessions = SessionTracker(config.sensors.apps.pulsetime_s)
        self.rules = RuleSet(config.rules)

    def feed(self, sample: Sample) -> Step:
        if sample.sensor == "status":
            event = self.outages.feed(sample)
            if event is None:
                return Step()
            if event.kind == "sensor.down":
                self.rules.sensor_down(event.subject)
            return Step([event])
        step = Step(sessions=self.sessions.feed(sample))
        step.events = self.rules.feed(sample.t, stream_values(sample))
        return step
