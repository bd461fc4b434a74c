"""``status`` samples -> ``sensor.down`` / ``sensor.up`` events, on the edge only."""

from __future__ import annotations

import logging

from agent.samples import Event, Sample

logger = logging.getLogger(__name__)


class OutageTracker:
    """Remembers each sensor's last known state; reports only changes."""

    def __init__(self) -> None:
        self._state: dict[str, str] = {}

    def feed(self, sample: Sample) -> Event | None:
        of, state = str(sample.data["of"]), str(sample.data["state"])
        previous = self._state.get(of)
        self._state[of] = state
        if previous == state or (previous is None and state == "up"):
            return None  # no change; a first "up" is the normal start, not a recovery
        data = {"reason": sample.data.get("reason")} if sample.data.get("reason") else {}
        return Event(sample.t, f"sensor.{state}", of, data)
