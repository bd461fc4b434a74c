"""Rate volumes: a quarter of an hour's upload against the last 4 days' largest, and a night's
disk reads against the same hour on the days before."""

from __future__ import annotations

import json
import random

from agent.detect.volume import (
    ENTRY_S,
    RECENT_S,
    SPAN_S,
    TIMES_HOUR,
    TIMES_RECORD,
    WINDOW_S,
    YOUNG_TIMES,
    RateVolumes,
)
from agent.samples import Sample
from tests._tools import feed_stage

T0 = 1_780_272_000.0  # a Monday, 00:00 UTC
DAY, H, M = 86_400.0, 3_600.0, 60.0
STEP = 10.0  # the system sensor's interval


def day_of_rates(day: int, rng: random.Random) -> list[Sample]:
    """A working day every 10 s: uploads of a few kB/s, and a video call from 14:00 to 15:00
    at 120 kB/s; a page load's burst of 2 MB/s for 20 s every hour."""
    out = []
    for i in range(int(DAY / STEP)):
        t = T0 + day * DAY + i * STEP
        clock = i * STEP
        tx = rng.uniform(2e3, 8e3)
        if 14 * H <= clock < 15 * H:
            tx = rng.uniform(100e3, 140e3)
        elif clock % H < 20.0:
            tx = 2e6
        out.append(Sample("system", t, {"net_tx_Bps": tx, "cpu_pct": rng.uniform(2, 20)}))
    return out


def upload(start: float, minutes: float, rate: float) -> list[Sample]:
    n = int(minutes * M / STEP)
    return [Sample("system", start + i * STEP, {"net_tx_Bps": rate}) for i in range(n)]


def four_days() -> tuple[RateVolumes, list[Sample]]:
    rng = random.Random(7)
    samples = [s for d in range(5) for s in day_of_rates(d, rng) if s.t < T0 + 4 * DAY + 9 * H]
    return RateVolumes(), samples


def test_an_upload_past_the_largest_quarter_hour_opens_and_closes_an_episode() -> None:
    volumes, days = four_days()
    assert feed_stage(volumes, days) == []  # every day's call and bursts: the usual
    start = days[-1].t + STEP
    # 300 kB/s: the call's quarter hours held about 120 kB/s, the bursts' far less
    events = feed_stage(volumes, upload(start, 40, 300e3))
    events += feed_stage(volumes, upload(start + 40 * M, 30, 3e3))
    assert [(e.kind, e.subject) for e in events] == [
        ("volume.high", "system.net_tx_Bps"),
        ("volume.end", "system.net_tx_Bps"),
    ]
    high, end = events
    record = high.data["record_Bps"]
    assert 100e3 < record < 200e3  # the call's quarter hours (with a page load at 15:00)
    assert high.data["mean_Bps"] > TIMES_RECORD * record
    assert high.t - start < WINDOW_S  # found before the window is all upload
    assert end.data["mean_Bps"] <= record and start + 40 * M < end.t < start + 40 * M + WINDOW_S


def test_seconds_of_a_high_rate_are_judged_by_their_volume() -> None:
    """2 MB/s for 30 s (a page load, 60 MB) is under the call's quarter hours (about 110 MB)
    and is nothing; 20 MB/s for as long moves 600 MB, and is news."""
    for rate, said in ((2e6, []), (20e6, ["volume.high", "volume.end"])):
        volumes, days = four_days()
        feed_stage(volumes, days)
        start = days[-1].t + STEP
        events = feed_stage(volumes, [*upload(start, 0.5, rate), *upload(start + 30, 20, 3e3)])
        assert [e.kind for e in events] == said


def test_a_young_record_judges_from_its_second_day_with_a_higher_bar() -> None:
    """Nothing is judged on the stream's first day; from its second until the record spans
    its days, the bar is ``YOUNG_TIMES`` higher: 325 kB/s, past 1.5 times the call's quarter
    hours (100-200 kB/s) but not by ``YOUNG_TIMES`` again, is nothing on day 2 at 04:00;
    2 MB/s is. At 14:00, the hour of the first day's call, 1.5 MB/s is past the young bar but
    within ``TIMES_HOUR`` of the call, and is nothing: a young record also waits for the
    hour's bar."""
    assert YOUNG_TIMES * TIMES_RECORD * 100e3 > 325e3 > TIMES_RECORD * 200e3 / YOUNG_TIMES
    assert YOUNG_TIMES * TIMES_RECORD * 150e3 < 1.5e6 < TIMES_HOUR * 100e3  # the call's hour
    assert 2e6 > TIMES_HOUR * (2e6 * 20 / WINDOW_S + 8e3)  # a night hour's page load
    for day, clock, rate, said in (
        (0.5, 0.0, 10e6, []),
        (2, 4 * H, 325e3, []),
        (2, 4 * H, 2e6, ["volume.high", "volume.end"]),
        (2, 14 * H, 1.5e6, []),
    ):
        rng = random.Random(7)
        volumes = RateVolumes()
        start = T0 + day * DAY + clock
        before = [s for d in range(3) for s in day_of_rates(d, rng) if s.t < start]
        events = feed_stage(
            volumes, [*before, *upload(start, 40, rate), *upload(start + 40 * M, 30, 3e3)]
        )
        assert [e.kind for e in events] == said, (day, clock, rate)
        if said:
            assert events[0].data["hour_record_Bps"] < 2e6 / TIMES_HOUR
    assert SPAN_S > 3 * DAY


def test_a_long_transfer_does_not_raise_its_own_bar_for_an_hour() -> None:
    """Entries join the record only after RECENT_S: an upload held for hours stays high for
    at least that hour, then its own windows become the usual and the episode ends."""
    volumes, days = four_days()
    feed_stage(volumes, days)
    start = days[-1].t + STEP
    events = feed_stage(volumes, upload(start, 180, 300e3))
    kinds = [(e.kind, e.t - start) for e in events]
    assert [k for k, _ in kinds] == ["volume.high", "volume.end"]
    assert kinds[1][1] >= RECENT_S
    assert kinds[1][1] <= RECENT_S + ENTRY_S + WINDOW_S


def test_a_restart_keeps_the_record_and_the_open_window() -> None:
    first, days = four_days()
    feed_stage(first, days)
    start = days[-1].t + STEP
    feed_stage(first, upload(start, 3, 300e3))
    second = RateVolumes()
    second.restore(json.loads(json.dumps(first.state())))
    rest = upload(start + 3 * M, 30, 300e3)
    said = feed_stage(second, rest)
    assert said == feed_stage(first, rest) and [e.kind for e in said] == ["volume.high"]
    assert feed_stage(RateVolumes(), rest) == []  # afresh it would have no record


def day_of_reads(day: int, rng: random.Random, *, awake_at_night: bool = True) -> list[Sample]:
    """Disk reads every 10 s: a few kB/s at night (00:00-07:00), 50-500 kB/s by day; on day
    1 a swap storm reads 12 MB/s from 12:00 to 12:40. ``awake_at_night`` False: the machine
    sleeps from 01:00 to 06:00 (no samples)."""
    out = []
    for i in range(int(DAY / STEP)):
        clock = i * STEP
        if not awake_at_night and H <= clock < 6 * H:
            continue
        read = rng.uniform(0.0, 4e3) if clock < 7 * H else rng.uniform(50e3, 500e3)
        if day == 1 and 12 * H <= clock < 12 * H + 40 * M:
            read = rng.uniform(10e6, 14e6)
        out.append(Sample("system", T0 + day * DAY + clock, {"disk_read_Bps": read}))
    return out


def scan(start: float, minutes: float, rate: float) -> list[Sample]:
    n = int(minutes * M / STEP)
    return [Sample("system", start + i * STEP, {"disk_read_Bps": rate}) for i in range(n)]


def test_a_night_scan_under_the_record_is_news_at_its_hour() -> None:
    """Day 4, 04:00: 8 MB/s for 30 minutes, less than day 1's storm (12 MB/s, the record)
    but thousands of times the nights' reads: it opens an episode that says the hour's
    largest; the same scan at 12:00, the storm's hour on day 1, is nothing; nor at 04:00 on
    a machine that slept through every night before (no hour to judge by)."""
    for awake, at, said in (
        (True, 4 * H, ["volume.high", "volume.end"]),
        (True, 12 * H, []),
        (False, 4 * H, []),
    ):
        rng = random.Random(3)
        volumes = RateVolumes()
        days = [s for d in range(4) for s in day_of_reads(d, rng, awake_at_night=awake)]
        storm = feed_stage(volumes, days)  # day 1's storm, past the young record's bar
        assert [(e.kind, (e.t - T0) // H) for e in storm] == [
            ("volume.high", 36),
            ("volume.end", 36),
        ]
        lead = [s for s in day_of_reads(4, rng) if s.t < T0 + 4 * DAY + at]
        assert feed_stage(volumes, lead) == []
        start = T0 + 4 * DAY + at
        events = feed_stage(volumes, [*scan(start, 30, 8e6), *scan(start + 30 * M, 30, 2e3)])
        assert [e.kind for e in events] == said, (awake, at)
        if said:
            high = events[0]
            assert high.data["record_Bps"] > 8e6 > TIMES_HOUR * high.data["hour_record_Bps"]
            assert high.t - start < WINDOW_S / 2


def test_a_restart_keeps_the_hours() -> None:
    """The hours' largest entries are kept in the state (a state saved before they were
    kept restores with none, and judges by the 4-day record alone)."""
    rng = random.Random(3)
    first = RateVolumes()
    feed_stage(first, [s for d in range(4) for s in day_of_reads(d, rng)])
    feed_stage(first, [s for s in day_of_reads(4, rng) if s.t < T0 + 4 * DAY + 4 * H])
    saved = json.loads(json.dumps(first.state()))
    night = scan(T0 + 4 * DAY + 4 * H, 30, 8e6)
    second = RateVolumes()
    second.restore(saved)
    assert [e.kind for e in feed_stage(second, night)] == ["volume.high"]
    older = RateVolumes()
    for rate in saved.values():
        del rate["hours"]
    older.restore(saved)
    assert feed_stage(older, night) == []
