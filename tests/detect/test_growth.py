"""Memory growth: a process's share of memory over ten minutes, against its own last 4 days."""

from __future__ import annotations

import json
import math
import random

from agent.detect.growth import MIN_GROWTH_PCT, SETTLED_S, WINDOW_S, MemoryGrowth
from agent.detect.volume import RECENT_S, SPAN_S, TIMES_RECORD
from agent.samples import Event, Sample, Scalar

T0 = 1_780_272_000.0  # a Monday, 00:00 UTC
DAY, H, M = 86_400.0, 3_600.0, 60.0
STEP = 5.0  # the apps sensor's interval


def apps(t: float, *ranked: tuple[str, float]) -> Sample:
    """An apps sample with the largest processes' memory shares (percent of RAM)."""
    data: dict[str, Scalar] = {}
    for i, (name, pct) in enumerate(ranked, start=1):
        data[f"mem{i}_name"], data[f"mem{i}_pct"] = name, round(pct, 3)
    return Sample("apps", t, data)


def days_of_use(first: int, days: int, rng: random.Random) -> list[Sample]:
    """Ordinary days every 5 s: the shell steady, the browser opening tabs (up to a point in
    ten minutes) and closing them at night, and a build taking 1.2 points at 16:00 for
    twenty minutes (the day's largest growth, under ``MIN_GROWTH_PCT``)."""
    out = []
    for day in range(first, first + days):
        for i in range(int(DAY / STEP)):
            t = T0 + day * DAY + i * STEP
            clock = i * STEP
            web = 4.0 + 3.0 * max(0.0, math.sin(math.pi * (clock - 8 * H) / (14 * H)))
            ranked = [("firefox", web + rng.uniform(-0.05, 0.05)), ("gnome-shell", 2.6)]
            if 16 * H <= clock < 16 * H + 20 * M:
                ranked.append(("cc1plus", 0.5 + min(1.2, (clock - 16 * H) / 600.0 * 1.2)))
            out.append(apps(t, *ranked))
    return out


def feed_stage(stage: MemoryGrowth, samples: list[Sample]) -> list[Event]:
    return [event for sample in samples for event in stage.feed(sample)]


def leaking(start: float, minutes: float, name: str, per_minute: float) -> list[Sample]:
    """A process taking ``per_minute`` points of RAM a minute from 2 %, beside the others."""
    n = int(minutes * M / STEP)
    return [
        apps(start + i * STEP, (name, 2.0 + per_minute * i * STEP / M), ("firefox", 5.0))
        for i in range(n)
    ]


def settled() -> tuple[MemoryGrowth, list[Sample]]:
    rng = random.Random(5)
    return MemoryGrowth(), days_of_use(0, 2, rng)


def test_a_leak_opens_an_episode_within_minutes_and_it_ends_when_it_stops() -> None:
    stage, days = settled()
    assert feed_stage(stage, days) == []  # tabs and builds grow less than 1.5 points
    start = days[-1].t + STEP
    events = feed_stage(stage, leaking(start, 40, "python3", 0.4))
    still = [
        apps(start + 40 * M + i * STEP, ("python3", 18.0), ("firefox", 5.0)) for i in range(240)
    ]
    events += feed_stage(stage, still)
    assert [(e.kind, e.subject) for e in events] == [
        ("process.grow", "python3"),
        ("process.grow_end", "python3"),
    ]
    grow, end = events
    assert grow.data["record_pct"] == 0.0 and grow.data["grew_pct"] >= MIN_GROWTH_PCT
    assert grow.t - start <= MIN_GROWTH_PCT / 0.4 * M + 2 * M  # as soon as it has grown so
    assert start + 40 * M < end.t <= start + 40 * M + WINDOW_S + M


def test_a_growth_within_the_process_s_own_record_is_no_news() -> None:
    """A process that takes 3 points in ten minutes every day (a virtual machine booting)
    is news only when it takes more than half again as much."""
    stage = MemoryGrowth()
    samples: list[Sample] = []
    for day in range(3):
        boot = T0 + day * DAY + 9 * H
        samples += [apps(T0 + day * DAY + i * STEP, ("gnome-shell", 2.6)) for i in range(6480)]
        samples += leaking(boot, 10, "qemu", 0.3)  # 2 -> 5 % at 09:00
        samples += [
            apps(boot + 10 * M + i * STEP, ("qemu", 5.0), ("gnome-shell", 2.6))
            for i in range(int((DAY - 9 * H - 10 * M) / STEP))
        ]
    events = feed_stage(stage, samples)
    assert [e.kind for e in events] == []  # the third boot is within its record
    more = feed_stage(stage, leaking(T0 + 3 * DAY + 9 * H, 10, "qemu", 0.3 * TIMES_RECORD * 1.2))
    assert [(e.kind, e.subject) for e in more] == [("process.grow", "qemu")]
    assert more[0].data["record_pct"] >= 2.5


def test_nothing_is_judged_before_the_sensor_has_a_day_behind_it() -> None:
    """A leak on the first day opens nothing (and is the process's record from then on); the
    same leak of another process a day later does."""
    stage = MemoryGrowth()
    before = leaking(T0 + 2 * H, 30, "python3", 0.5)
    assert feed_stage(stage, before) == []
    quiet = [apps(T0 + 3 * H + i * STEP, ("gnome-shell", 2.6)) for i in range(int(DAY / STEP))]
    feed_stage(stage, quiet)
    after = leaking(T0 + SETTLED_S + 4 * H, 30, "node", 0.5)
    assert [(e.kind, e.subject) for e in feed_stage(stage, after)] == [("process.grow", "node")]
    again = leaking(T0 + SETTLED_S + 5 * H, 30, "python3", 0.5)
    assert [e for e in feed_stage(stage, again) if e.subject == "python3"] == []  # its record


def test_another_process_of_the_same_name_entering_the_ranking_is_no_growth() -> None:
    """A browser's content processes share a name: a second one ranked is not the first
    one growing."""
    stage, days = settled()
    feed_stage(stage, days)
    start = days[-1].t + STEP
    one = [apps(start + i * STEP, ("Isolated Web Co", 3.0)) for i in range(120)]
    two = [
        apps(start + 10 * M + i * STEP, ("Isolated Web Co", 3.0), ("Isolated Web Co", 2.9))
        for i in range(240)
    ]
    assert feed_stage(stage, one + two) == []


def test_names_unseen_for_the_record_s_span_are_forgotten() -> None:
    stage, days = settled()
    feed_stage(stage, days)
    assert "cc1plus" in stage.state()["names"]
    later = days[-1].t + SPAN_S + RECENT_S + H
    feed_stage(stage, [apps(later + i * STEP, ("gnome-shell", 2.6)) for i in range(400)])
    assert "cc1plus" not in stage.state()["names"]


def test_state_restored_midway_gives_the_same_events() -> None:
    stage, days = settled()
    leak = leaking(days[-1].t + STEP, 30, "python3", 0.4)
    feed_stage(stage, days)
    assert feed_stage(stage, leak[:37]) == []  # stopped in the middle of a minute
    again = MemoryGrowth()
    assert again.restore(json.loads(json.dumps(stage.state()))) == 0
    went_on, restarted = feed_stage(stage, leak[37:]), feed_stage(again, leak[37:])
    assert went_on == restarted and [e.kind for e in went_on] == ["process.grow"]


def test_unreadable_names_are_skipped_and_counted() -> None:
    stage, days = settled()
    feed_stage(stage, days[: int(DAY / STEP)])
    saved = json.loads(json.dumps(stage.state()))
    saved["names"]["firefox"] = {"shares": "?"}
    again = MemoryGrowth()
    assert again.restore(saved) == 1
    assert "firefox" not in again.state()["names"]
    assert "gnome-shell" in again.state()["names"]
