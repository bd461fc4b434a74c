"""Sample -> features -> detectors -> triggers -> events. No I/O, no clock."""

from __future__ import annotations

from agent.config import Config
from agent.detect.outages import OutageTracker
from agent.features.streams import stream_values
from agent.samples import Event, Sample
from agent.triggers.rules import RuleSet


class Pipeline:
    """Every stage's state, fed one checked sample at a time in arrival order."""

    def __init__(self, config: Config) -> None:
        self.outages = OutageTracker()
        self.rules = RuleSet(config.rules)

    def feed(self, sample: Sample) -> list[Event]:
        if sample.sensor == "status":
            event = self.outages.feed(sample)
            if event is None:
                return []
            if event.kind == "sensor.down":
                self.rules.sensor_down(event.subject)
            return [event]
        return self.rules.feed(sample.t, stream_values(sample))
