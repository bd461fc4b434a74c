"""Which triggers wake the larger model together: debounce, in sample time.

Pure (no I/O, no clock): the pipeline feeds it every sample's time and events. A ``rule.fired``
of a ``wake`` rule opens a debounce window; triggers in the next ``debounce_s`` join it, and
the first sample at or past its end starts one wake with all of them (the context then
holds the incident's first minutes, not just its first sample). (The cooldown per rule and
subject is the rule's own: ``triggers/rules.py``. The budget, ``max_per_hour`` and
``max_per_day``, is the escalator's: it counts only the wakes that woke the model, which
only the diagnosis and the memory tell.)

Each wake is followed by a *second look* ``second_look_s`` later, with the same triggers: an
incident minutes old may not show its cause yet (a blocked fan's heat builds for ten
minutes; at five the CPU that drives it looks like the cause). The escalator diagnoses it
again and wakes the model only if the diagnosis changed (``escalator.py``); there is one
per wake.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from agent.config import EscalationConfig
from agent.numbers import is_number
from agent.samples import Event

#: How much longer than its hold a rule's ``since`` may reach back before its firing and still
#: be the incident's start: a few polls' lateness.
SINCE_SLACK_S = 300.0


@dataclass(frozen=True)
class WakeRequest:
    """A wake to run at sample time ``t`` for ``triggers`` (``rule.fired`` events, in order)."""

    t: float
    triggers: tuple[Event, ...]
    #: A wake's second look (``second_look_s`` after it, the same triggers).
    second_look: bool = False

    @property
    def start_t(self) -> float:
        """When the incident began: its first trigger, or where that is a rule that waited
        for its stream to hold (``for_s``), when the stream first crossed (``since``). A
        runaway of three minutes that fired a two-minute rule is read from its first minute:
        read from the firing, it had mostly ended within the wake's debounce, and the look
        saw the idle machine after it."""
        first = self.triggers[0]
        since, held = first.data.get("since"), first.data.get("for_s", 0.0)
        # A ``since`` farther back than the hold (and a few polls' slack) spans a gap: a state
        # restored after a stop, a machine asleep. The incident is then its firing.
        if is_number(since) and is_number(held) and first.t - held - SINCE_SLACK_S <= since:
            return float(min(since, first.t))
        return first.t


class WakePolicy:
    def __init__(
        self,
        config: EscalationConfig,
        wake_rules: Iterable[str],
        debounce_s: Mapping[str, float] | None = None,
    ) -> None:
        """``debounce_s``: the rules whose wakes start sooner or later than
        ``config.debounce_s`` after them."""
        self.config = config
        self.wake_rules = frozenset(wake_rules)
        self._debounce_s = dict(debounce_s or {})
        self._pending: list[Event] = []
        self._looks: deque[WakeRequest] = deque()  # second looks, by the time they are due

    def feed(self, t: float, events: Iterable[Event]) -> list[WakeRequest]:
        """The wakes due at ``t``."""
        wakes = self._close(t)
        if self._looks and self._looks[0].t <= t:  # (checked here: this runs every sample)
            wakes = self._second_looks(t) + wakes
        for event in events:
            if event.kind == "rule.fired" and event.subject in self.wake_rules:
                self._pending.append(event)
        wakes += self._close(t)  # debounce_s = 0: the wake starts on its trigger's sample
        return wakes

    def _close(self, t: float) -> list[WakeRequest]:
        if not self._pending or t < self._due():
            return []
        request = WakeRequest(t, tuple(self._pending))
        self._pending = []
        if self.config.second_look_s > 0.0:
            due = t + self.config.second_look_s
            self._looks.append(WakeRequest(due, request.triggers, second_look=True))
        return [request]

    def _due(self) -> float:
        """When the pending wake starts: the soonest its triggers' rules allow."""
        default, own = self.config.debounce_s, self._debounce_s
        return min(e.t + own.get(e.subject, default) for e in self._pending)

    def _second_looks(self, t: float) -> list[WakeRequest]:
        """The second looks due at ``t`` (each at this sample's time: a pause in sampling
        delays it)."""
        due = []
        while self._looks and self._looks[0].t <= t:
            due.append(WakeRequest(t, self._looks.popleft().triggers, second_look=True))
        return due

    # -- state kept across restarts --------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        return {
            "pending": [_event_state(e) for e in self._pending],
            "looks": [
                {"t": r.t, "triggers": [_event_state(e) for e in r.triggers]} for r in self._looks
            ],
        }

    def restore(self, state: Mapping[str, Any]) -> None:
        self._pending = [_event(e) for e in state.get("pending", [])]
        self._looks = deque(
            WakeRequest(float(r["t"]), tuple(_event(e) for e in r["triggers"]), second_look=True)
            for r in state.get("looks", [])
        )


def _event_state(e: Event) -> dict[str, Any]:
    return {"t": e.t, "kind": e.kind, "subject": e.subject, "data": dict(e.data)}


def _event(saved: Mapping[str, Any]) -> Event:
    return Event(float(saved["t"]), str(saved["kind"]), str(saved["subject"]), dict(saved["data"]))
