"""The wake policy in sample time: debounce joins triggers into one wake, each wake has one
second look, and the state survives a restart. (The budget is the escalator's:
``test_escalator.py``.)"""

from __future__ import annotations

import pytest

from agent.config import EscalationConfig
from agent.escalation.policy import WakePolicy, WakeRequest
from agent.samples import Event


def fired(t: float, rule: str = "anomaly", subject: str = "system") -> Event:
    return Event(t, "rule.fired", rule, {"event": "anomaly.start", "subject": subject, "data": {}})


def run(policy: WakePolicy, feed: dict[float, list[Event]], until: float, step: float = 10.0):  # type: ignore[no-untyped-def]
    """Feed a sample every ``step`` seconds with the events given at that time."""
    wakes = []
    t = 0.0
    while t <= until:
        wakes += policy.feed(t, feed.get(t, []))
        t += step
    return wakes


def test_triggers_within_debounce_become_one_wake_at_its_end() -> None:
    policy = WakePolicy(EscalationConfig(debounce_s=60.0), ["anomaly"])
    wakes = run(
        policy,
        {
            100.0: [fired(100.0)],
            120.0: [fired(120.0, subject="battery")],
            150.0: [fired(150.0, subject="apps")],
            160.0: [fired(160.0, subject="location")],  # debounce over at 160: the next wake
        },
        until=400.0,
    )
    assert [(w.t, [e.t for e in w.triggers]) for w in wakes] == [
        (160.0, [100.0, 120.0, 150.0]),
        (220.0, [160.0]),
    ]
    assert wakes[0].start_t == 100.0


def test_a_rule_with_its_own_debounce_starts_its_wake_sooner() -> None:
    """``grow`` waits 60 s where the others wait 300: alone its wake starts 60 s after it;
    joining a window the anomaly opened, it brings the start forward to its own 60 s; a
    state saved with that window pending keeps it."""
    config = EscalationConfig(debounce_s=300.0, second_look_s=0.0)
    policy = WakePolicy(config, ["anomaly", "grow"], {"grow": 60.0})
    feed = {
        0.0: [fired(0.0, rule="grow")],
        1000.0: [fired(1000.0)],
        1100.0: [fired(1100.0, rule="grow")],
        2000.0: [fired(2000.0)],
    }
    wakes = run(policy, feed, until=2400.0)
    assert [(w.t, [e.subject for e in w.triggers]) for w in wakes] == [
        (60.0, ["grow"]),
        (1160.0, ["anomaly", "grow"]),
        (2300.0, ["anomaly"]),
    ]
    first = WakePolicy(config, ["anomaly", "grow"], {"grow": 60.0})
    first.feed(0.0, [fired(0.0), fired(0.0, rule="grow")])
    again = WakePolicy(config, ["anomaly", "grow"], {"grow": 60.0})
    again.restore(first.state())
    assert again.feed(50.0, []) == []
    assert [w.t for w in again.feed(60.0, [])] == [60.0]


def test_only_wake_rules_wake_and_debounce_zero_wakes_on_the_trigger() -> None:
    policy = WakePolicy(EscalationConfig(debounce_s=0.0), ["anomaly"])
    wakes = run(policy, {10.0: [fired(10.0, rule="cpu_high")], 20.0: [fired(20.0)]}, 100.0)
    assert [(w.t, w.triggers[0].subject) for w in wakes] == [(20.0, "anomaly")]


def test_a_pending_wake_survives_a_restart() -> None:
    config = EscalationConfig(debounce_s=60.0)
    first = WakePolicy(config, ["anomaly"])
    first.feed(0.0, [fired(0.0)])
    first.feed(30.0, [fired(30.0, subject="apps")])  # pending at the stop
    second = WakePolicy(config, ["anomaly"])
    second.restore(first.state())
    assert second.feed(50.0, []) == []
    wakes = second.feed(60.0, [])
    assert [(w.t, [e.t for e in w.triggers]) for w in wakes] == [(60.0, [0.0, 30.0])]


def test_each_wake_has_one_second_look() -> None:
    """A wake is looked at again ``second_look_s`` later, with the same triggers, at the
    first sample from then; ``second_look_s = 0`` looks once."""
    config = EscalationConfig(debounce_s=60.0, second_look_s=300.0)
    policy = WakePolicy(config, ["anomaly"])
    wakes = run(policy, {0.0: [fired(0.0)], 400.0: [fired(400.0)]}, until=1000.0)
    assert [(w.t, w.second_look, [e.t for e in w.triggers]) for w in wakes] == [
        (60.0, False, [0.0]),
        (360.0, True, [0.0]),
        (460.0, False, [400.0]),
        (760.0, True, [400.0]),
    ]
    once = WakePolicy(EscalationConfig(debounce_s=60.0, second_look_s=0.0), ["anomaly"])
    wakes = run(once, {0.0: [fired(0.0)]}, until=1000.0)
    assert [(w.t, w.second_look) for w in wakes] == [(60.0, False)]


def test_a_second_look_survives_a_restart_and_waits_out_a_pause() -> None:
    config = EscalationConfig(debounce_s=60.0, second_look_s=300.0)
    first = WakePolicy(config, ["anomaly"])
    first.feed(0.0, [fired(0.0)])
    assert [w.second_look for w in first.feed(60.0, [])] == [False]
    second = WakePolicy(config, ["anomaly"])
    second.restore(first.state())
    assert second.feed(300.0, []) == []
    wakes = second.feed(900.0, [])  # the machine slept through 360: looked at on waking
    assert [(w.t, w.start_t, w.second_look) for w in wakes] == [(900.0, 0.0, True)]
    assert second.feed(1200.0, []) == []


@pytest.mark.parametrize(
    ("data", "start"),
    [
        ({"stream": "system.cpu_pct", "since": 880.0, "for_s": 120.0}, 880.0),  # held 120 s
        ({"since": 880.0, "for_s": 120.0}, 880.0),
        ({"since": 0.0, "for_s": 120.0}, 1000.0),  # held across a gap (a restored state)
        ({"since": 880.0, "for_s": "120"}, 1000.0),
        ({"stream": "system.cpu_pct"}, 1000.0),  # an event's rule: its firing
        ({"since": 1200.0}, 1000.0),  # never after the firing
        ({"since": True}, 1000.0),
        ({"since": "880"}, 1000.0),
    ],
)
def test_an_incident_begins_when_its_rules_stream_first_crossed(
    data: dict[str, object], start: float
) -> None:
    request = WakeRequest(1300.0, (Event(1000.0, "rule.fired", "cpu_high", data),))
    assert request.start_t == start
