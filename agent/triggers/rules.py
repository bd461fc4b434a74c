"""Numeric rules with a ``for_s`` duration and hysteresis, kept in sample time.

Home Assistant's numeric_state trigger is the model: the rule fires on the edge, once, when a
stream has been above (or below) its threshold for ``for_s``; unlike it, the rule re-arms
only when the value comes back past the threshold by ``hysteresis``, so a value hovering at
the threshold cannot fire again and again.

Rules on events (``event = "anomaly.start"``, ``subject = "home"``, ``data = {new = true}``)
are how the stages' findings lead to actions: every match fires, at most once per
``cooldown_s`` for each subject. A rule's ``action`` is ``record`` (the ``rule.fired`` event)
or ``wake`` (the escalation stage also wakes the larger model for it).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Any

from agent.config import RuleConfig, check_rules
from agent.features.streams import sensor_of
from agent.samples import Event

logger = logging.getLogger(__name__)


@dataclass
class _RuleState:
    armed: bool = True
    since: float | None = None  # sample time the condition became (and stayed) true


class NumericRule:
    """One rule's state machine over one stream."""

    def __init__(self, config: RuleConfig) -> None:
        self.config = config
        self._state = _RuleState()

    def _met(self, value: float) -> bool:
        above, below = self.config.above, self.config.below
        return (above is None or value > above) and (below is None or value < below)

    def _cleared(self, value: float) -> bool:
        """Back past the threshold by the hysteresis: the rule may fire again."""
        h = self.config.hysteresis
        above, below = self.config.above, self.config.below
        if above is not None and value <= above - h:
            return True
        return below is not None and value >= below + h

    def feed(self, t: float, value: float) -> Event | None:
        state = self._state
        if not state.armed:
            if self._cleared(value):
                state.armed = True
            else:
                return None
        if not self._met(value):
            state.since = None
            return None
        if state.since is None:
            state.since = t
        if t - state.since < self.config.for_s:
            return None
        state.armed, since = False, state.since
        state.since = None
        data = {"stream": self.config.stream, "value": value, "since": since}
        data.update({k: v for k, v in self._bounds().items() if v is not None})
        return Event(t, "rule.fired", self.config.name, data)

    def _bounds(self) -> dict[str, float | None]:
        return {"above": self.config.above, "below": self.config.below, "for_s": self.config.for_s}

    def interrupt(self) -> None:
        """The stream's sensor went down: a duration in progress no longer holds."""
        self._state.since = None

    def state(self) -> dict[str, Any]:
        return {"armed": self._state.armed, "since": self._state.since}

    def restore(self, state: Mapping[str, Any]) -> None:
        armed, since = state["armed"], state["since"]
        if not isinstance(armed, bool) or not (since is None or _is_time(since)):
            raise ValueError(f"rule {self.config.name!r}: bad state {dict(state)!r}")
        self._state = _RuleState(armed, None if since is None else float(since))


class EventRule:
    """Fires on every event that matches, at most once per ``cooldown_s`` of event time for
    each subject (a system anomaly does not silence a battery one). A ``wake`` rule in its
    cooldown says so with ``wake.suppressed``, so the user sees what the cooldown held back."""

    def __init__(self, config: RuleConfig) -> None:
        self.config = config
        self._last_t: dict[str, float] = {}  # subject -> when the rule last fired for it

    def matches(self, event: Event) -> bool:
        c = self.config
        if event.kind.startswith(("rule.", "wake.")) or not fnmatchcase(event.kind, c.event or ""):
            return False
        if c.subject is not None and not fnmatchcase(event.subject, c.subject):
            return False
        return all(event.data.get(k) == v for k, v in c.data.items())

    def feed(self, event: Event) -> Event | None:
        if not self.matches(event):
            return None
        c = self.config
        trigger = {"event": event.kind, "subject": event.subject, "data": dict(event.data)}
        last = self._last_t.get(event.subject)
        if last is not None and event.t - last < c.cooldown_s:
            if c.action != "wake":
                return None
            data = {**trigger, "reason": "cooldown", "cooldown_s": c.cooldown_s, "last_t": last}
            return Event(event.t, "wake.suppressed", c.name, data)
        self._last_t[event.subject] = event.t
        return Event(event.t, "rule.fired", c.name, trigger)

    def state(self) -> dict[str, Any]:
        """The subjects still in their cooldown (older ones no longer change anything, so
        the saved state stays as small as the rule's recent activity)."""
        if self._last_t:
            newest = max(self._last_t.values())
            cooldown = self.config.cooldown_s
            self._last_t = {s: t for s, t in self._last_t.items() if newest - t < cooldown}
        return {"last_t": dict(self._last_t)}

    def restore(self, state: Mapping[str, Any]) -> None:
        last_t = state["last_t"]
        if not isinstance(last_t, dict) or not all(
            isinstance(s, str) and _is_time(t) for s, t in last_t.items()
        ):
            raise ValueError(f"rule {self.config.name!r}: bad state {dict(state)!r}")
        self._last_t = {s: float(t) for s, t in last_t.items()}


class RuleSet:
    """All rules: numeric ones indexed by the stream they watch, and rules on events.

    The rules are checked as the config's are (``check_rules``: each value in its range, a
    rule that can fire), also when they were built in code; else ``ConfigError``."""

    def __init__(self, rules: Iterable[RuleConfig]) -> None:
        rules = list(rules)
        check_rules(rules)
        self._by_stream: dict[str, list[NumericRule]] = {}
        self._on_events: list[EventRule] = []
        for config in rules:
            if config.stream is not None:
                self._by_stream.setdefault(config.stream, []).append(NumericRule(config))
            else:
                self._on_events.append(EventRule(config))

    def on_events(self, events: Iterable[Event]) -> list[Event]:
        """``rule.fired`` for the stages' events that rules on events match."""
        fired = []
        for event in events:
            for rule in self._on_events:
                hit = rule.feed(event)
                if hit is not None:
                    fired.append(hit)
        return fired

    def feed(self, t: float, values: Mapping[str, float]) -> list[Event]:
        if not self._by_stream:
            return []
        fired: list[Event] = []
        for stream, value in values.items():
            for rule in self._by_stream.get(stream, ()):
                event = rule.feed(t, value)
                if event is not None:
                    logger.debug("rule %s fired at %s (%s = %r)", event.subject, t, stream, value)
                    fired.append(event)
        return fired

    def sensor_down(self, sensor: str) -> None:
        for stream, rules in self._by_stream.items():
            if sensor_of(stream) == sensor:
                for rule in rules:
                    rule.interrupt()

    # -- state kept across restarts --------------------------------------------------------------
    def _rules(self) -> list[NumericRule | EventRule]:
        return [*(r for rules in self._by_stream.values() for r in rules), *self._on_events]

    def state(self) -> dict[str, Any]:
        """Each rule's state under its name, with its settings: a rule the user has since
        changed starts afresh instead of inheriting a state its new thresholds never made."""
        return {r.config.name: {"config": repr(r.config), **r.state()} for r in self._rules()}

    def restore(self, state: Mapping[str, Any]) -> None:
        """Put back the state of the rules whose name and settings are unchanged; raises
        ValueError (nothing restored) when any of it is unreadable."""
        found = []
        for rule in self._rules():
            saved = state.get(rule.config.name)
            if isinstance(saved, Mapping) and saved.get("config") == repr(rule.config):
                found.append((rule, saved))
        backup = [(rule, rule.state()) for rule, _ in found]
        try:
            for rule, saved in found:
                rule.restore(saved)
        except (KeyError, TypeError, ValueError):
            for rule, old in backup:
                rule.restore(old)
            raise


def _is_time(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
