"""Context: the same value at night and in the afternoon, plugged in and on battery, at the
office and at home, through vigil's pipeline.

A generated laptop, four weeks of ``system`` samples a minute. On Mondays and Tuesdays it is
at the office (08:30 to 18:00), with busy afternoons at the desk, plugged in (CPU 55-90 %,
load and temperature with it); on Wednesdays to Fridays its user works from home, where the
afternoons are light (CPU 10-25 %); nights and weekends are quiet (CPU 2-10 %), at home. On
Tuesdays (at the office) and Thursdays (at home) from 13:00 to 17:00 a meeting, on battery
and quiet. A ``battery`` sample a minute says whether it charges, and a ``location`` fix
every five minutes where it is (home, the office 3 km away, the road between). After two
weeks of that routine, the third and fourth weeks hold, each on its own day:

* ``night``: at 02:00, CPU, load and temperature at an ordinary busy afternoon's level for 40
  minutes (a runaway while nobody works: an anomaly);
* ``afternoon``: the same values at 15:00 on a Monday at the office (the routine: no anomaly);
* ``place``: the same values at 14:00 on a Friday at home (the office's load where the
  afternoons are light: an anomaly; at 14:00 on working days at the office it is the
  routine, so working days' 14:00 alone cannot tell);
* ``weekend``: the same values at 15:00 on a Sunday (unusual for a Sunday: an anomaly);
* ``battery``: the same values at 14:00 on a Thursday, in the meeting, on battery (the desk's
  load draining the battery: an anomaly).

For each, the largest combined score of the ``system`` source (``Step.node``) in the 40
minutes, and whether an ``anomaly.start`` opened there, for the default config (which judges
values by their hour, power and place: ``[anomaly] context``), without context, without
co-movement (``[anomaly] co_movement = false``), without the location's samples (a machine
that cannot tell where it is: the hour and the power), and without the battery's samples
either (the hour alone); all in UTC, the trace's zone. Context-aware detection flags
``night``, ``place``, ``weekend`` and ``battery`` and not ``afternoon``; the scores are
printed side by side, and the anomalies of ``system`` that opened anywhere else in the third
and fourth weeks are counted, so a detector that flags everything (or nothing) shows as
such. So are those of ``battery`` and ``location``: the charger unplugged on Tuesdays and
the office on Mondays are the routine, though each falls out of the values history's last 4
days every week (the hour's profiles explain them), and the first of each is the routine
being learned. The
``battery`` event is in the second week, after three meetings; the events are farther from
each other than the span of a stream's context history (its last 1,000 entries, here about
4.7 days): an incident within that span makes the next of its size less rare (the ``place``
event, on the Wednesday after the night's, scored 0.46).
The output depends only on the seed. With ``--routine``, the four weeks without the events
(the routine alone, no incident): every anomaly of ``system`` the default config opens.

    python bench/context.py [--seed S] [--routine]
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
from multivariate import lag
from rich.console import Console
from rich.table import Table

from agent.config import Config
from agent.runtime.replay import chunked
from agent.runtime.setup import build_pipeline
from agent.samples import Sample

DAY = 1440  # rows of one minute
START_T = datetime(2026, 1, 5, tzinfo=UTC).timestamp()  # a Monday, 00:00 UTC
DAYS = 28
EVENT_ROWS = 40
#: (name, day of the trace, hour, anomalous): the events, each on its own day.
EVENTS = (
    ("night", 15, 2.0, True),  # a Tuesday, 02:00
    ("afternoon", 14, 15.0, False),  # a Monday, 15:00, at the office
    ("place", 25, 14.0, True),  # a Friday, 14:00, at home
    ("weekend", 20, 15.0, True),  # a Sunday, 15:00
    ("battery", 10, 14.0, True),  # a Thursday, 14:00, in the meeting at home
)
#: Where the laptop is: home, and the office about 3 km to the north-east (Berlin).
HOME = (52.5200, 13.4050)
OFFICE = (52.5420, 13.4350)
FIX_EVERY = 5  # rows between location fixes


@dataclass(frozen=True)
class Event:
    name: str
    start: int  # row
    anomalous: bool


def _meeting(day: int, hour: float) -> bool:
    """On battery: Tuesdays and Thursdays, 13:00 to 17:00."""
    return day % 7 in (1, 3) and 13.0 <= hour < 17.0


def _office_day(day: int) -> bool:
    return day % 7 in (0, 1)


def _afternoon(day: int, hour: float) -> bool:
    """Working at the desk: working days, 13:00 to 18:00, out of meetings."""
    return day % 7 < 5 and 13.0 <= hour < 18.0 and not _meeting(day, hour)


def _position(day: int, hour: float) -> tuple[float, float]:
    """At the office 08:30 to 18:00 on office days, on the road half an hour either side
    (halfway), else at home."""
    if not _office_day(day) or not 8.0 <= hour < 18.5:
        return HOME
    if 8.5 <= hour < 18.0:
        return OFFICE
    return ((HOME[0] + OFFICE[0]) / 2, (HOME[1] + OFFICE[1]) / 2)


def generate(
    seed: int, events_at: Sequence[tuple[str, int, float, bool]] = EVENTS
) -> tuple[list[Sample], list[Event]]:
    """The trace's samples and the events placed in it (``events_at``: none, the routine
    alone)."""
    rng = np.random.default_rng(seed)
    rows = DAYS * DAY
    minute = np.arange(rows)
    day, hour = minute // DAY, (minute % DAY) / 60.0
    when = list(zip(day.tolist(), hour.tolist(), strict=True))
    working = np.array([_afternoon(d, h) for d, h in when])
    office = np.array([_office_day(d) for d, _ in when])
    meeting = [_meeting(d, h) for d, h in when]
    quiet = rng.uniform(2.0, 10.0, rows)
    cpu = np.where(working, np.where(office, rng.uniform(55.0, 90.0, rows), 0.0), quiet)
    cpu = np.where(working & ~office, rng.uniform(10.0, 25.0, rows), cpu)
    events = []
    for name, on_day, at_hour, anomalous in events_at:
        start = on_day * DAY + int(at_hour * 60)
        cpu[start : start + EVENT_ROWS] = rng.uniform(60.0, 85.0, EVENT_ROWS)
        events.append(Event(name, start, anomalous))
    load = lag(cpu / 25.0, 5.0) + rng.normal(0.0, 0.05, rows)
    temp = 38.0 + lag(cpu, 20.0) * 0.35 + rng.normal(0.0, 0.3, rows)
    rows_of = zip(cpu.tolist(), load.tolist(), temp.tolist(), strict=True)
    jitter = rng.normal(0.0, 0.00005, (rows, 2))  # about 5 m
    samples = []
    for i, (c, q, t) in enumerate(rows_of):
        at = START_T + 60.0 * i
        if i % FIX_EVERY == 0:
            lat, lon = _position(*when[i])
            fix = {
                "lat": round(lat + jitter[i, 0], 6),
                "lon": round(lon + jitter[i, 1], 6),
                "accuracy_m": 10.0,
            }
            samples.append(Sample("location", at, fix))
        samples.append(Sample("battery", at, {"charging": not meeting[i]}))
        samples.append(
            Sample(
                "system",
                at,
                {"cpu_pct": round(c, 2), "load1": round(max(q, 0.0), 3), "temp_C": round(t, 2)},
            )
        )
    return samples, events


@dataclass
class Run:
    """Each minute's ``system`` node score (0 where none), the minutes where an anomaly of
    ``system`` started, and the times where one of ``battery`` or ``location`` did."""

    scores: np.ndarray
    starts: list[int]
    routine: list[float]


def run(samples: list[Sample], config: Config) -> Run:
    pipeline = build_pipeline(config, keep_scores=True)
    out = Run(np.zeros(sum(s.sensor == "system" for s in samples)), [], [])
    i = 0
    for chunk in chunked(samples):
        for sample, step in zip(chunk, pipeline.feed_chunk(chunk), strict=True):
            started = [e for e in step.events if e.kind == "anomaly.start"]
            out.routine += [e.t for e in started if e.subject in ("battery", "location")]
            if sample.sensor == "system":
                out.scores[i] = step.node or 0.0
                out.starts += [i for e in started if e.subject == "system"]
                i += 1
    return out


def configs() -> dict[str, Config]:
    """The variants compared, all in UTC (the trace's days are UTC days)."""
    anomaly = dataclasses.replace(Config().anomaly, timezone="UTC")
    variants = {
        "default": anomaly,
        "without context": dataclasses.replace(anomaly, context=False),
        "without co-movement": dataclasses.replace(anomaly, co_movement=False),
    }
    return {name: dataclasses.replace(Config(), anomaly=a) for name, a in variants.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=1, help="random seed (default: %(default)s)")
    parser.add_argument(
        "--routine",
        action="store_true",
        help="the four weeks without the events: each anomaly of system, default config",
    )
    args = parser.parse_args(argv)
    if args.routine:
        return routine_only(args.seed)
    samples, events = generate(args.seed)
    table = Table(title="the same values at five times (max node score; anomaly started?)")
    table.add_column("event")
    table.add_column("anomalous", justify="center")
    results = {name: run(samples, config) for name, config in configs().items()}
    # a machine that cannot tell where it is: the hour and the power
    unplaced = [s for s in samples if s.sensor != "location"]
    results["without the place"] = run(unplaced, configs()["default"])
    # and one without a battery either, always on power: the hour alone
    system_only = [s for s in samples if s.sensor == "system"]
    results["without place or power"] = run(system_only, configs()["default"])
    for name in results:
        table.add_column(name, justify="right")
    right = dict.fromkeys(results, 0)
    for event in events:
        cells = []
        for name, result in results.items():
            span = range(event.start, event.start + EVENT_ROWS)
            opened = any(s in span for s in result.starts)
            right[name] += opened == event.anomalous
            peak = result.scores[span.start : span.stop].max()
            cells.append(f"{peak:.3f} {'yes' if opened else 'no'}")
        table.add_row(event.name, "yes" if event.anomalous else "no", *cells)
    table.add_row("right", "", *(f"{right[n]}/{len(events)}" for n in results), style="bold")
    spans = [range(e.start, e.start + EVENT_ROWS) for e in events]
    third = 2 * 7 * DAY  # weeks 3 and 4
    others = [
        sum(1 for s in result.starts if s >= third and not any(s in span for span in spans))
        for result in results.values()
    ]
    table.add_row("other starts, weeks 3-4", "", *(str(n) for n in others))
    routine = [
        str(len(result.routine)) if name != "without place or power" else "-"
        for name, result in results.items()  # (the last has neither source)
    ]
    table.add_row("battery, location starts", "", *routine)
    Console(width=140).print(table)
    return 0


def routine_only(seed: int) -> int:
    """Every anomaly of ``system`` in the routine alone (none is an incident): the first
    week's are the routine being learned; a Monday at the office after four days at home is
    one every week while nothing of the office's own hours explains it."""
    samples, _ = generate(seed, ())
    result = run(samples, configs()["default"])
    table = Table(title="the routine alone: anomalies of system (default config)")
    table.add_column("start (UTC)")
    table.add_column("score", justify="right")
    for i in result.starts:
        when = datetime.fromtimestamp(START_T + 60.0 * i, UTC)
        table.add_row(when.strftime("%a %m-%d %H:%M"), f"{result.scores[i]:.3f}")
    Console(width=140).print(table)
    print(f"battery, location starts: {len(result.routine)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
