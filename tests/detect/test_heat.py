"""Heat at load: a CPU far hotter than this machine's usual temperature at the same load (a
blocked fan), and not a hot CPU under the load that always heats it."""

from __future__ import annotations

import json
import math
import random
from collections.abc import Iterator

import pytest

from agent.detect.heat import MIN_OVER_C, HeatAtLoad
from agent.samples import Sample
from tests._tools import feed_stage

T0 = 1_780_272_000.0  # a Monday, 00:00 UTC
DAY, H, M = 86_400.0, 3_600.0, 60.0
STEP = 10.0  # the system sensor's interval


def readings(
    start: float, minutes: float, cpu: float, temp: float, rng: random.Random, *, noise: float = 1.0
) -> Iterator[Sample]:
    for i in range(int(minutes * M / STEP)):
        values = {"cpu_pct": cpu + rng.uniform(-3, 3), "temp_C": temp + rng.gauss(0, noise)}
        yield Sample("system", start + i * STEP, values)


def usual_day(day: int, rng: random.Random) -> list[Sample]:
    """Idle most of the day at 35-50 °C (the room warms it by day), a build at a quarter of
    the CPU from 14:00 to 15:00 at 62 °C, a game at 90 % from 20:00 to 22:00 at 88 °C."""
    out: list[Sample] = []
    base = T0 + day * DAY
    for hour in range(24):
        start = base + hour * H
        if hour == 14:
            out += readings(start, 60, 25.0, 62.0, rng)
        elif hour in (20, 21):
            out += readings(start, 60, 90.0, 88.0, rng)
        else:
            room = 35.0 + 15.0 * max(0.0, 1.0 - abs(hour - 13) / 7.0)
            out += readings(start, 60, 3.0, room, rng, noise=2.0)
    return out


def settled(days: int = 3) -> tuple[HeatAtLoad, random.Random]:
    rng = random.Random(11)
    heat = HeatAtLoad()
    assert feed_stage(heat, [s for d in range(days) for s in usual_day(d, rng)]) == []
    return heat, rng


def blocked_fan(start: float, rng: random.Random, cpu: float = 25.0) -> list[Sample]:
    """The build's load, but the temperature climbing from 62 to 90 °C over ten minutes,
    held for twenty, then the load and the heat gone."""
    out: list[Sample] = []
    for minute in range(30):
        temp = 62.0 + 28.0 * min(1.0, minute / 10.0)
        out += readings(start + minute * M, 1, cpu, temp, rng)
    out += readings(start + 30 * M, 20, 3.0, 45.0, rng)
    return out


def test_a_blocked_fan_at_a_load_that_usually_runs_cool_opens_and_ends_an_episode() -> None:
    heat, rng = settled()
    start = T0 + 3 * DAY + 14 * H
    events = feed_stage(heat, blocked_fan(start, rng))
    assert [e.kind for e in events] == ["heat.high", "heat.end"]
    high, end = events
    assert high.subject == "system.temp_C"
    assert start + 3 * M < high.t < start + 10 * M  # some minutes into the climb
    assert high.data["usual_C"] == pytest.approx(62.0, abs=1.5)
    assert high.data["temp_C"] >= high.data["usual_C"] + MIN_OVER_C
    assert 20.0 <= high.data["cpu_pct"] <= 30.0
    assert start + 30 * M <= end.t < start + 40 * M  # cooled once the load was gone


def test_the_same_heat_under_the_load_that_always_gives_it_is_nothing() -> None:
    heat, rng = settled()
    evening = T0 + 3 * DAY + 20 * H
    # 90 °C at 90 % of the CPU: two degrees over the evenings' usual
    assert feed_stage(heat, list(readings(evening, 120, 90.0, 90.0, rng))) == []


def lagging(loads: list[float], start: float, rng: random.Random, temp: float) -> list[Sample]:
    """A machine whose temperature follows its load with a lag of two minutes (its heat
    sink), 41 °C idle and 61 °C held at 35 %: one sample every STEP seconds, each minute at
    its load of ``loads``."""
    out: list[Sample] = []
    keep = math.exp(-STEP / 120.0)
    for minute, load in enumerate(loads):
        for i in range(int(M / STEP)):
            temp = temp * keep + (40.0 + 0.6 * load) * (1.0 - keep)
            values = {"cpu_pct": load + rng.uniform(-2, 2), "temp_C": temp + rng.gauss(0, 0.3)}
            out.append(Sample("system", start + minute * M + i * STEP, values))
    return out


def test_a_load_shown_only_in_short_bursts_is_not_judged_by_their_first_cool_minutes() -> None:
    # Three days idle at 3 % with a one-minute burst at 35 % every ten minutes by day: a
    # burst's minute is still cool (about 46 °C), as the heat lags. Then the load held for
    # six minutes warms the machine to about 60 °C, what 35 % gives when held: no fan is
    # blocked. Learned at its own load, each burst's cool minute would make 46 °C the
    # band's usual, and the held load three spreads over it.
    rng = random.Random(5)
    day = [35.0 if 8 * 60 <= m < 20 * 60 and m % 10 == 0 else 3.0 for m in range(1440)]
    held = [3.0] * (10 * 60 + 2) + [35.0] * 6 + [3.0] * 30
    samples = lagging(day * 3 + held, T0, rng, 41.8)
    heat = HeatAtLoad()
    assert feed_stage(heat, samples) == []
    assert heat.state()["smoothed"][1] < 10.0  # idle again


def test_a_new_install_learns_before_it_judges() -> None:
    rng = random.Random(11)
    heat = HeatAtLoad()
    day_one = usual_day(0, rng)
    assert feed_stage(heat, day_one) == []
    # the second day's afternoon: the build's band has an hour, the machine one day
    assert feed_stage(heat, blocked_fan(T0 + DAY + 14 * H, rng)) == []


def test_a_fan_that_stays_blocked_is_not_learned_as_the_loads_usual() -> None:
    heat, rng = settled()
    # Six builds with the fan blocked, each 20 minutes hot: more hot minutes than the three
    # days' builds gave the band, which would make them its usual if they were learned.
    for build in range(6):
        fan = blocked_fan(T0 + 3 * DAY + (8 + 2 * build) * H, rng)
        assert [e.kind for e in feed_stage(heat, fan)] == ["heat.high", "heat.end"], build


def test_the_state_survives_a_restart() -> None:
    heat, rng = settled()
    fan = blocked_fan(T0 + 3 * DAY + 14 * H, rng)
    half = int(3 * M / STEP)  # three minutes into the climb, before the episode opens
    assert feed_stage(heat, fan[:half]) == []
    again = HeatAtLoad()
    assert again.restore(json.loads(json.dumps(heat.state()))) == 0
    assert again.state() == heat.state()  # every part kept, the smoothed load too
    assert feed_stage(again, fan[half:]) == feed_stage(heat, fan[half:])
    assert [e.kind for e in feed_stage(HeatAtLoad(), fan[half:])] == []  # none: it was young


def test_readings_without_a_temperature_or_with_nan_are_skipped() -> None:
    heat = HeatAtLoad()
    samples = [
        Sample("system", T0, {"cpu_pct": 10.0}),
        Sample("system", T0 + 60, {"cpu_pct": float("nan"), "temp_C": 50.0}),
        Sample("system", T0 + 120, {"cpu_pct": 10.0, "temp_C": float("inf")}),
    ]
    assert feed_stage(heat, samples) == []
    assert heat.state()["first_minute"] is None
