"""Process loads: a quarter of an hour of a process's share, out of focus or on battery,
against its own last 4 days."""

from __future__ import annotations

import json
import random

from agent.detect.processes import MIN_PCT, ProcessLoads
from agent.detect.volume import RECENT_S, SPAN_S, TIMES_RECORD, WINDOW_S
from agent.samples import FOCUSED_PROCESS, Event, Sample, Scalar

T0 = 1_780_272_000.0  # a Monday, 00:00 UTC
DAY, H, M = 86_400.0, 3_600.0, 60.0
STEP = 5.0  # the apps sensor's interval


def apps(t: float, focus: str | None, *ranked: tuple[str, float]) -> Sample:
    """An apps sample: the focused window's process and the busiest processes."""
    data: dict[str, Scalar] = {} if focus is None else {"app": focus, FOCUSED_PROCESS: focus}
    for i, (name, pct) in enumerate(ranked, start=1):
        data[f"cpu{i}_name"], data[f"cpu{i}_pct"] = name, pct
    return Sample("apps", t, data)


def day_of_work(day: int, rng: random.Random) -> list[Sample]:
    """A working day every 5 s: the browser in front, the shell and the browser's content
    process a few percent; a video call in front from 14:00 to 15:00 at 110 % of a core, and
    a build in the background from 16:00 to 16:20 at 40 %."""
    out = []
    for i in range(int(DAY / STEP)):
        t = T0 + day * DAY + i * STEP
        clock = i * STEP
        shell = ("gnome-shell", rng.uniform(1.0, 6.0))
        web = ("Isolated Web Co", rng.uniform(0.5, 4.0))
        if 14 * H <= clock < 15 * H:
            out.append(apps(t, "zoom", ("zoom", rng.uniform(95.0, 125.0)), shell, web))
        elif 16 * H <= clock < 16 * H + 20 * M:
            out.append(apps(t, "code", ("cc1plus", rng.uniform(30.0, 50.0)), shell, web))
        else:
            out.append(apps(t, "firefox", shell, ("firefox", rng.uniform(1.0, 9.0)), web))
    return out


def feed_stage(stage: ProcessLoads, samples: list[Sample]) -> list[Event]:
    return [event for sample in samples for event in stage.feed(sample)]


def four_days() -> tuple[ProcessLoads, list[Sample]]:
    rng = random.Random(3)
    samples = [s for d in range(5) for s in day_of_work(d, rng) if s.t < T0 + 4 * DAY + 9 * H]
    return ProcessLoads(), samples


def running(
    start: float, minutes: float, name: str, pct: float, focus: str = "firefox"
) -> list[Sample]:
    n = int(minutes * M / STEP)
    return [apps(start + i * STEP, focus, (name, pct), ("gnome-shell", 3.0)) for i in range(n)]


def power(t: float, charging: bool) -> Sample:
    return Sample("battery", t, {"battery_pct": 80.0, "charging": charging, "power_W": 12.0})


def call_on_battery(days: list[Sample]) -> list[Sample]:
    """The days with day 3's call taken unplugged."""
    call = T0 + 3 * DAY + 14 * H
    return sorted([*days, power(call - 1, False), power(call + H, True)], key=lambda s: s.t)


def test_a_process_busy_in_the_background_opens_and_closes_an_episode() -> None:
    background, days = four_days()
    assert feed_stage(background, days) == []  # the calls in front, the builds under 50 %
    start = days[-1].t + STEP
    events = feed_stage(background, running(start, 40, "ffmpeg", 115.0))
    events += feed_stage(background, running(start + 40 * M, 30, "gnome-shell", 4.0))
    assert [(e.kind, e.subject) for e in events] == [
        ("process.busy", "ffmpeg"),
        ("process.calm", "ffmpeg"),
    ]
    busy, calm = events
    assert busy.data["record_pct"] == 0.0 and busy.data["mean_pct"] >= MIN_PCT
    assert busy.t - start < WINDOW_S  # found before the window is all encoding
    assert calm.data["mean_pct"] <= MIN_PCT / 2
    assert start + 40 * M < calm.t < start + 40 * M + WINDOW_S


def test_the_focused_process_is_not_in_the_background() -> None:
    """The same 115 % in the window the user works in (a game started for the first time)
    is nothing; the call's own process, out of focus at twice its record, is news."""
    background, days = four_days()
    feed_stage(background, days)
    start = days[-1].t + STEP
    assert feed_stage(background, running(start, 40, "factorio", 115.0, focus="factorio")) == []
    background, days = four_days()
    feed_stage(background, days)
    events = feed_stage(background, running(start, 40, "cc1plus", 95.0, focus="code"))
    assert [e.kind for e in events] == ["process.busy"]
    record = events[0].data["record_pct"]
    assert 30.0 < record < 50.0  # the builds' quarter hours
    assert events[0].data["mean_pct"] > TIMES_RECORD * record


def test_a_process_as_busy_as_its_record_is_usual() -> None:
    """A build at its usual 40 % in the background, for longer than ever: its level is its
    record's (and under half a core), so it is no news."""
    background, days = four_days()
    feed_stage(background, days)
    start = days[-1].t + STEP
    assert feed_stage(background, running(start, 30, "cc1plus", 40.0, focus="code")) == []


def test_nothing_is_judged_before_the_sensor_has_its_days() -> None:
    rng = random.Random(3)
    background = ProcessLoads()
    days = [s for d in range(int(SPAN_S / DAY) - 1) for s in day_of_work(d, rng)]
    assert feed_stage(background, [*days, *running(days[-1].t + STEP, 40, "ffmpeg", 115.0)]) == []


def test_a_long_run_does_not_raise_its_own_bar_for_an_hour() -> None:
    background, days = four_days()
    feed_stage(background, days)
    start = days[-1].t + STEP
    events = feed_stage(background, running(start, 180, "ffmpeg", 115.0))
    kinds = [(e.kind, e.t - start) for e in events]
    assert [k for k, _ in kinds] == ["process.busy", "process.calm"]
    assert RECENT_S <= kinds[1][1] <= RECENT_S + 2 * WINDOW_S


def test_other_sensors_and_samples_without_a_ranking_are_not_counted() -> None:
    background, days = four_days()
    feed_stage(background, days)
    start = days[-1].t + STEP
    noise = [Sample("system", start + i, {"cpu_pct": 99.0}) for i in range(0, 2400, 10)]
    noise += [Sample("apps", start + i + 1, {"app": "firefox"}) for i in range(0, 2400, 10)]
    assert feed_stage(background, noise) == []


def test_a_restart_keeps_the_record_and_the_open_window() -> None:
    first, days = four_days()
    feed_stage(first, days)
    start = days[-1].t + STEP
    feed_stage(first, running(start, 3, "ffmpeg", 115.0))
    second = ProcessLoads()
    assert second.restore(json.loads(json.dumps(first.state()))) == 0
    rest = running(start + 3 * M, 30, "ffmpeg", 115.0)
    said = feed_stage(second, rest)
    assert said == feed_stage(first, rest) and [e.kind for e in said] == ["process.busy"]
    assert feed_stage(ProcessLoads(), rest) == []  # afresh it would not have its days


def test_an_unreadable_name_is_skipped_and_counted() -> None:
    first, days = four_days()
    feed_stage(first, days)
    saved = json.loads(json.dumps(first.state()))
    saved["background"]["names"]["cc1plus"] = {"recent": "not entries"}
    saved["whole"]["names"]["zoom"] = {"record": [[1.0]]}
    second = ProcessLoads()
    assert second.restore(saved) == 2
    for share, name in (("background", "cc1plus"), ("whole", "zoom")):
        assert set(second.state()[share]["names"]) == set(saved[share]["names"]) - {name}


def test_a_process_not_busy_for_the_span_is_forgotten() -> None:
    """The builds, the calls and the browser's content process stop: 4 days and two hours
    later their names have no entry left and are gone from the state, which stays the size
    of the processes busy lately, in the background (the browser in front is never one) and
    on battery (day 3's call)."""
    background, days = four_days()
    feed_stage(background, call_on_battery(days))
    assert "cc1plus" in background.state()["background"]["names"]
    assert "zoom" in background.state()["whole"]["names"]
    start = days[-1].t + STEP
    quiet = [power(start - 1, False)] + [
        apps(start + i * STEP, "firefox", ("gnome-shell", 3.0), ("firefox", 5.0))
        for i in range(int((SPAN_S + 2 * H) / STEP))
    ]
    assert feed_stage(background, quiet) == []
    assert set(background.state()["background"]["names"]) == {"gnome-shell"}
    assert set(background.state()["whole"]["names"]) == {"gnome-shell", "firefox"}


def test_on_battery_a_process_busier_than_its_record_on_battery_is_a_drain() -> None:
    """The call at its usual level is nothing plugged in, and nothing on battery where an
    earlier call ran on battery; where every call ran plugged in, the first on battery is a
    drain (the record of a drain holds the minutes on battery). A browser's page spinning at
    90 % in front is nothing plugged in, and a drain on battery, which ends when the charger
    goes in."""
    for unplugged_before, said in ((True, []), (False, [("process.drain", "zoom")])):
        background, days = four_days()
        feed_stage(background, call_on_battery(days) if unplugged_before else days)
        start = days[-1].t + STEP
        plugged = [power(start, True), *running(start + 1, 30, "zoom", 110.0, focus="zoom")]
        assert feed_stage(background, plugged) == []
        start += 30 * M
        unplugged = [power(start, False), *running(start + 1, 30, "zoom", 110.0, focus="zoom")]
        events = feed_stage(background, unplugged)
        assert [(e.kind, e.subject) for e in events] == said, unplugged_before
    background, days = four_days()
    feed_stage(background, days)
    start = days[-1].t + STEP
    plugged = [power(start, True), *running(start + 1, 30, "chrome", 90.0, focus="chrome")]
    assert feed_stage(background, plugged) == []
    background, days = four_days()
    feed_stage(background, days)
    start = days[-1].t + STEP
    events = feed_stage(
        background,
        [
            power(start, False),
            *running(start + 1, 30, "chrome", 90.0, focus="chrome"),
            power(start + 30 * M, True),
            *running(start + 30 * M + 1, 5, "chrome", 90.0, focus="chrome"),
        ],
    )
    assert [(e.kind, e.subject) for e in events] == [
        ("process.drain", "chrome"),
        ("process.drain_end", "chrome"),
    ]
    drain, end = events
    assert drain.data["record_pct"] == 0.0 and drain.t - start < WINDOW_S
    assert start + 30 * M < end.t <= start + 31 * M + STEP  # at the first minute plugged in


def test_a_runaway_on_battery_is_both_busy_and_a_drain() -> None:
    background, days = four_days()
    feed_stage(background, days)
    start = days[-1].t + STEP
    events = feed_stage(background, [power(start, False), *running(start + 1, 20, "ffmpeg", 115.0)])
    assert sorted(e.kind for e in events) == ["process.busy", "process.drain"]


def test_a_suspend_ends_an_open_episode_and_judges_nothing_until_the_window_refills() -> None:
    background, days = four_days()
    feed_stage(background, days)
    start = days[-1].t + STEP
    assert [e.kind for e in feed_stage(background, running(start, 15, "ffmpeg", 115.0))] == [
        "process.busy"
    ]
    woke = start + 15 * M + 2 * H  # asleep for two hours; the encoder is still running
    after = feed_stage(background, running(woke, WINDOW_S / 2 / M - 1, "ffmpeg", 115.0))
    assert [(e.kind, e.t) for e in after] == [("process.calm", woke)]


def test_each_minute_counts_once_by_its_last_ranking() -> None:
    """The sensor ranks once a minute and repeats the ranking in between: what the other
    polls of a minute said does not count, the minute's last ranking does."""
    _, days = four_days()
    start = days[-1].t + STEP
    encoding = running(start, 40, "ffmpeg", 115.0)
    last_poll: dict[int, float] = {}  # each clock minute's last poll
    for s in encoding:
        last_poll[int(s.t // M)] = s.t
    minute_ends = set(last_poll.values())
    quiet = [
        s if s.t in minute_ends else apps(s.t, "firefox", ("gnome-shell", 3.0)) for s in encoding
    ]
    said = []
    for trace in (encoding, quiet):
        loads = ProcessLoads()
        feed_stage(loads, days)
        said.append([(e.kind, e.subject, e.t, e.data) for e in feed_stage(loads, trace)])
    assert said[0] == said[1] and [k for k, *_ in said[0]] == ["process.busy"]
