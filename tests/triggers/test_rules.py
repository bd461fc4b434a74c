"""Numeric rules: fire once on the edge after for_s, re-arm only past the hysteresis."""

from __future__ import annotations

from agent.config import RuleConfig
from agent.triggers.rules import RuleSet

HIGH = RuleConfig(name="hot", stream="system.temp_C", above=80.0, hysteresis=5.0, for_s=30.0)
LOW = RuleConfig(name="low", stream="battery.battery_pct", below=15.0, hysteresis=5.0)


def _run(rules: RuleSet, series: list[tuple[float, str, float]]) -> list[float]:
    fired: list[float] = []
    for t, stream, value in series:
        fired += [e.t for e in rules.feed(t, {stream: value})]
    return fired


def test_fires_once_after_the_duration_never_twice() -> None:
    rules = RuleSet([HIGH])
    series = [(t, "system.temp_C", 85.0) for t in range(0, 200, 10)]
    assert _run(rules, series) == [30.0]


def test_a_dip_below_the_threshold_restarts_the_duration() -> None:
    rules = RuleSet([HIGH])
    values = [85, 85, 79, 85, 85, 85, 85]
    series = [(10.0 * i, "system.temp_C", float(v)) for i, v in enumerate(values)]
    assert _run(rules, series) == [60.0]  # met again from t=30, 30 s later


def test_hovering_at_the_threshold_does_not_refire() -> None:
    rules = RuleSet([RuleConfig(name="hot", stream="system.temp_C", above=80.0, hysteresis=5.0)])
    values = [81, 79, 81, 78, 81, 76, 81, 74, 81]  # re-arms only at <= 75
    series = [(10.0 * i, "system.temp_C", float(v)) for i, v in enumerate(values)]
    assert _run(rules, series) == [0.0, 80.0]


def test_exactly_at_threshold_is_not_above() -> None:
    rules = RuleSet([RuleConfig(name="hot", stream="system.temp_C", above=80.0)])
    assert _run(rules, [(0.0, "system.temp_C", 80.0), (1.0, "system.temp_C", 80.001)]) == [1.0]


def test_below_rule_and_other_streams() -> None:
    rules = RuleSet([HIGH, LOW])
    series = [
        (0.0, "battery.battery_pct", 30.0),
        (60.0, "battery.battery_pct", 14.0),
        (61.0, "system.cpu_pct", 1.0),
        (120.0, "battery.battery_pct", 12.0),
        (180.0, "battery.battery_pct", 19.0),  # below 20: not re-armed
        (240.0, "battery.battery_pct", 14.0),
        (300.0, "battery.battery_pct", 20.0),  # 20 >= 15 + 5: re-armed
        (360.0, "battery.battery_pct", 10.0),
    ]
    assert _run(rules, series) == [60.0, 360.0]


def test_sensor_down_interrupts_a_duration() -> None:
    rules = RuleSet([HIGH])
    assert _run(rules, [(0.0, "system.temp_C", 90.0), (20.0, "system.temp_C", 90.0)]) == []
    rules.sensor_down("battery")  # another sensor: no effect
    rules.sensor_down("system")
    assert _run(rules, [(40.0, "system.temp_C", 90.0), (60.0, "system.temp_C", 90.0)]) == []
    assert _run(rules, [(70.0, "system.temp_C", 90.0)]) == [70.0]


def test_event_shape() -> None:
    (event,) = RuleSet([LOW]).feed(5.0, {"battery.battery_pct": 3.5})
    assert event.kind == "rule.fired" and event.subject == "low"
    assert dict(event.data) == {
        "stream": "battery.battery_pct",
        "value": 3.5,
        "since": 5.0,
        "below": 15.0,
        "for_s": 0.0,
    }


def test_event_rules_match_kind_and_subject_with_a_cooldown() -> None:
    from agent.samples import Event

    rules = RuleSet(
        [
            RuleConfig(name="anomaly", event="anomaly.start", cooldown_s=600.0),
            RuleConfig(name="home", event="geofence.*", subject="home"),
        ]
    )
    events = [
        Event(0.0, "anomaly.start", "system", {"score": 1.0}),
        Event(300.0, "anomaly.start", "battery", {}),  # another subject: its own cooldown
        Event(301.0, "geofence.enter", "home", {}),
        Event(302.0, "geofence.enter", "work", {}),  # a subject the rule does not match
        Event(500.0, "anomaly.start", "system", {}),  # within system's cooldown: quiet
        Event(700.0, "anomaly.start", "system", {}),
        Event(701.0, "anomaly.end", "system", {}),  # another kind
    ]
    fired = rules.on_events(events)
    assert [(e.t, e.subject, e.data["subject"]) for e in fired] == [
        (0.0, "anomaly", "system"),
        (300.0, "anomaly", "battery"),
        (301.0, "home", "home"),
        (700.0, "anomaly", "system"),
    ]
    assert fired[0].data == {"event": "anomaly.start", "subject": "system", "data": {"score": 1.0}}
    assert rules.on_events(fired) == []  # rule.fired never feeds rules (no loops)


def test_wake_rules_say_what_their_cooldown_held_back_and_match_data() -> None:
    from agent.samples import Event

    rules = RuleSet(
        [
            RuleConfig(name="anomaly", event="anomaly.start", cooldown_s=600.0, action="wake"),
            RuleConfig(name="new_place", event="place.arrive", data={"new": True}, action="wake"),
        ]
    )
    out = rules.on_events(
        [
            Event(0.0, "anomaly.start", "system", {}),
            Event(100.0, "place.arrive", "place-1", {"new": False}),  # known place: no match
            Event(200.0, "place.arrive", "place-2", {"new": True}),
            Event(590.0, "anomaly.start", "system", {"score": 0.6}),
            Event(600.0, "anomaly.start", "system", {}),  # the cooldown is over
        ]
    )
    assert [(e.t, e.kind, e.subject) for e in out] == [
        (0.0, "rule.fired", "anomaly"),
        (200.0, "rule.fired", "new_place"),
        (590.0, "wake.suppressed", "anomaly"),
        (600.0, "rule.fired", "anomaly"),
    ]
    assert out[2].data == {
        "event": "anomaly.start",
        "subject": "system",
        "data": {"score": 0.6},
        "reason": "cooldown",
        "cooldown_s": 600.0,
        "last_t": 0.0,
    }
    assert rules.on_events(out) == []  # neither rule.fired nor wake.* feed rules
