"""``vigil explain EVENT_ID``: a wake run by hand on a stored event, as the daemon would have
run it (its context as of ``debounce_s`` after the event, or as of the newest sample where
that is sooner: a wake never looks past the data), with the configured backend: how a user
tries another model on yesterday's incident. It adds a wake and a finding, no events."""

from __future__ import annotations

from collections.abc import Callable

from agent.config import EscalationConfig
from agent.errors import ConfigError
from agent.escalation.backends import Backend
from agent.escalation.escalator import Escalator, WakeResult
from agent.escalation.policy import WakeRequest
from agent.memory.recall import Recall
from agent.memory.store import MemoryStore
from agent.samples import Event


def explain(
    store: MemoryStore,
    event_id: int,
    config: EscalationConfig,
    make_backend: Callable[[], Backend | None],
) -> WakeResult:
    """Wake the larger model on stored event ``event_id``; the backend is made (and says which
    model it is) only once the event is found."""
    event = Recall(store).event(event_id)
    if event is None:
        raise ConfigError("explain", "EVENT_ID", f"no event {event_id} (vigil events lists them)")
    newest = store.newest_sample_t()
    t = event.t + config.debounce_s
    if newest is not None:
        t = max(event.t, min(t, newest))
    escalator = Escalator(config, store, make_backend(), origin="explain")
    try:
        return escalator.wake(WakeRequest(t, (as_trigger(event),)))
    finally:
        escalator.close()


def as_trigger(event: Event) -> Event:
    """A stored event as a wake's trigger: a ``rule.fired`` or ``wake.suppressed`` event
    already is one (naming the event or the stream behind it); any other event stands for
    itself."""
    if event.kind in ("rule.fired", "wake.suppressed"):
        return Event(event.t, "rule.fired", event.subject, dict(event.data))
    data = {"event": event.kind, "subject": event.subject, "data": dict(event.data)}
    return Event(event.t, "rule.fired", "explain", data)
