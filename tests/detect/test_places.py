"""Learned places over hand-worked tracks in Ljubljana (fixes every 30 s), and at 180 degrees."""

from __future__ import annotations

import json
import math

import pytest

from agent.detect.places import (
    DEFAULT_MAX_GAP_S,
    EARTH_RADIUS_M,
    Place,
    PlaceLearner,
    distance_m,
)
from agent.samples import Event, Sample, Scalar

T0 = 1_780_272_000.0
HOME = (46.0569, 14.5058)  # a block of flats north of Ljubljana's centre
CAFE = (46.0514, 14.5061)  # Preseren Square, about 610 m south of HOME
#: Jitter of a phone lying still, metres (north, east): every fix is within 20 m per axis of
#: HOME, so within 57 m of any other (never >= 100 m from the anchor).
JITTER = [(0, 0), (20, -15), (-18, 12), (10, 20), (-20, -20), (15, 5), (-5, -18)]


def at(base: tuple[float, float], north_m: float, east_m: float) -> tuple[float, float]:
    """``base`` moved on the sphere the learner measures on (exact to millimetres here)."""
    lat = base[0] + math.degrees(north_m / EARTH_RADIUS_M)
    lon = base[1] + math.degrees(east_m / (EARTH_RADIUS_M * math.cos(math.radians(base[0]))))
    return lat, lon


def fix(dt: float, pos: tuple[float, float], accuracy_m: float = 10.0) -> Sample:
    data: dict[str, Scalar] = {"lat": pos[0], "lon": pos[1], "accuracy_m": accuracy_m}
    return Sample("location", T0 + dt, data)


def still(start: float, end: float, base: tuple[float, float], step: float = 30) -> list[Sample]:
    """Fixes every ``step`` s from ``start`` to ``end`` (inclusive) jittering around ``base``."""
    n = int((end - start) // step) + 1
    return [fix(start + i * step, at(base, *JITTER[i % len(JITTER)])) for i in range(n)]


def run(learner: PlaceLearner, samples: list[Sample]) -> list[Event]:
    return [e for s in samples for e in learner.feed(s)]


def walk_home_to_cafe(start: float) -> list[Sample]:
    """Walking south 120 m per 30 s from HOME to CAFE: every fix >= 100 m from the last."""
    return [fix(start + 30 * i, at(HOME, -120 * i, 0)) for i in range(1, 6)]


def test_home_visit_leave_and_return_is_one_place_with_two_visits() -> None:
    learner = PlaceLearner()
    # 10 min at home: nothing until the stay has lasted 300 s since the anchor (t=0).
    home1 = still(0, 600, HOME)
    events = run(learner, home1[:10])  # t = 0 .. 270
    assert events == []
    (arrive,) = learner.feed(home1[10])  # t = 300
    assert (arrive.t, arrive.kind, arrive.subject) == (T0 + 300, "place.arrive", "place-1")
    assert arrive.data["place_id"] == 1 and arrive.data["since"] == T0
    assert arrive.data["visits"] == 1 and arrive.data["new"] is True
    assert distance_m(arrive.data["lat"], arrive.data["lon"], *HOME) < 10
    assert run(learner, home1[11:]) == []  # t = 330 .. 600 stays
    # Walking away: the fix at 630 is 120 m from the anchor -> leave; dwell to the fix at 600.
    walk = walk_home_to_cafe(600)
    (leave,) = learner.feed(walk[0])
    assert (leave.t, leave.kind, leave.subject) == (T0 + 630, "place.leave", "place-1")
    assert leave.data["since"] == T0 and leave.data["arrived_t"] == T0 + 300
    assert leave.data["last_t"] == T0 + 600 and leave.data["dwell_s"] == 600.0
    assert leave.data["reason"] == "moved" and leave.data["total_dwell_s"] == 600.0
    assert run(learner, walk[1:]) == []  # each walking fix is a new anchor
    # A 4-minute coffee (t = 780 .. 1020), then back home: nothing for the cafe.
    assert run(learner, still(780, 1020, CAFE)) == []
    back = [fix(1050 + 30 * i, at(CAFE, 120 * i, 0)) for i in range(1, 5)]
    assert run(learner, back) == []
    # Home again from t=1200 for 8 min: the same place, second visit.
    home2 = still(1200, 1680, HOME)
    events = run(learner, home2)
    assert [(e.t, e.kind, e.subject) for e in events] == [(T0 + 1500, "place.arrive", "place-1")]
    assert events[0].data["visits"] == 2 and events[0].data["new"] is False
    (leave,) = learner.feed(fix(1710, CAFE))
    assert leave.data["dwell_s"] == 480.0 and leave.data["total_dwell_s"] == 1080.0
    (place,) = learner.places
    assert (place.id, place.visits, place.dwell_s) == (1, 2, 1080.0)
    assert (place.first_t, place.last_t, place.radius_m) == (T0, T0 + 1680, 100.0)
    assert distance_m(place.lat, place.lon, *HOME) < 10


def test_stop_of_four_minutes_is_no_place() -> None:
    learner = PlaceLearner()
    # Anchor at 0, last fix inside at 240, leaving at 270: 4.5 min is not 5.
    track = [*still(0, 240, CAFE), fix(270, HOME)]
    assert run(learner, track) == [] and learner.places == []


def test_exactly_min_stay_arrives_and_the_boundary_is_trackintels() -> None:
    learner = PlaceLearner()
    assert run(learner, [fix(0, HOME), fix(150, at(HOME, 99.9, 0))]) == []
    (arrive,) = learner.feed(fix(300, HOME))
    assert arrive.t == T0 + 300
    # Exactly dist_m from the anchor leaves (trackintel: delta_dist >= dist_threshold).
    (leave,) = learner.feed(fix(330, at(HOME, 0, 100.0001)))
    assert leave.data["dwell_s"] == 300.0


def test_poor_accuracy_burst_is_ignored() -> None:
    learner = PlaceLearner()
    assert [e.kind for e in run(learner, still(0, 300, HOME))] == ["place.arrive"]
    # Two minutes of network fixes 400 m away, 500 m accuracy: not a move.
    burst = [fix(330 + 30 * i, at(HOME, 400, 0), accuracy_m=500.0) for i in range(5)]
    assert run(learner, burst) == []
    assert learner.skipped == {"poor_accuracy": 5}
    assert run(learner, still(480, 600, HOME)) == []
    (leave,) = learner.feed(fix(630, CAFE))
    assert leave.data["dwell_s"] == 600.0
    # A fix without a position is counted too; other sensors are not looked at.
    assert learner.feed(Sample("location", T0 + 660, {"accuracy_m": 5.0})) == []
    assert learner.feed(Sample("system", T0 + 660, {"cpu_pct": 99.0})) == []
    assert learner.skipped == {"poor_accuracy": 5, "no_fix": 1}


def test_gap_longer_than_threshold_cuts_the_stay() -> None:
    assert DEFAULT_MAX_GAP_S == 900.0  # trackintel's gap_threshold default, 15 min
    learner = PlaceLearner()
    assert [e.kind for e in run(learner, still(0, 600, HOME))] == ["place.arrive"]
    # Exactly 15 min without a fix does not cut (trackintel: gap > gap_threshold).
    assert learner.feed(fix(1500, HOME)) == []
    # 15 min and 1 s does: leave at the fix after the gap, dwell to the fix before it.
    (leave,) = learner.feed(fix(2401, HOME))
    assert leave.t == T0 + 2401 and leave.data["reason"] == "gap"
    assert leave.data["last_t"] == T0 + 1500 and leave.data["dwell_s"] == 1500.0
    # The fix after the gap anchors a new stay: a second visit 300 s later.
    events = run(learner, still(2431, 2701, HOME))
    assert [(e.t, e.data["visits"]) for e in events] == [(T0 + 2701, 2)]


def test_gap_before_arrival_restarts_the_stay() -> None:
    learner = PlaceLearner()
    # 4 min, a 16 min gap, 4 min: each part alone is too short, so no place.
    assert run(learner, [*still(0, 240, HOME), *still(1200, 1440, HOME)]) == []
    assert learner.stay is not None and learner.stay.since == T0 + 1200


def test_stays_merge_within_merge_m_and_nearest_place_wins() -> None:
    learner = PlaceLearner()
    far = at(HOME, 0, 250)
    run(learner, [*still(0, 300, HOME), fix(330, far)])  # place 1 at HOME, left at 330
    run(learner, [*still(330, 660, far), fix(690, HOME)])  # 250 m east: place 2
    assert [p.id for p in learner.places] == [1, 2]
    # A stay centred 140 m east of HOME: 140 m > 100 m from place 1, 110 m from place 2 -> new.
    mid = at(HOME, 0, 140)
    events = run(learner, [*still(690, 990, mid)])
    assert [(e.subject, e.data["new"]) for e in events] == [("place-3", True)]
    run(learner, [fix(1020, CAFE)])
    # A stay 60 m north of place 3 (within 100 m of places 1 and 3): the nearest, place 3.
    events = run(learner, still(1050, 1350, at(mid, 60, 0)))
    assert [(e.subject, e.data["visits"]) for e in events] == [("place-3", 2)]


def test_antimeridian_centre() -> None:
    # Taveuni, Fiji: the 180th meridian crosses the island. Fixes alternate 20 m either side.
    east, west = (-16.8, 179.99981), (-16.8, -179.99981)
    assert 35 < distance_m(*east, *west) < 45
    learner = PlaceLearner()
    track = [fix(30 * i, east if i % 2 else west) for i in range(11)]
    (arrive,) = run(learner, track)
    assert abs(arrive.data["lat"] + 16.8) < 1e-6 and abs(abs(arrive.data["lon"]) - 180) < 1e-3
    # A second visit, all on the east side: the centre moves east by its dwell share, and
    # stays near 180 degrees (a plain mean of longitudes would put it near 0 degrees).
    run(learner, [fix(330, (-16.7, 179.9))])
    run(learner, [fix(360 + 30 * i, east) for i in range(12)])
    run(learner, [fix(720, (-16.7, 179.9))])
    (place,) = learner.places
    assert place.visits == 2 and place.dwell_s == 300.0 + 330.0
    assert distance_m(place.lat, place.lon, -16.8, 180.0) < 20


def test_replay_gives_the_same_events() -> None:
    track = [
        *still(0, 600, HOME),
        *walk_home_to_cafe(600),
        *still(780, 1500, CAFE),
        fix(1530, HOME),
        *still(3000, 3600, HOME),
        fix(5000, HOME),  # after a gap
    ]
    first, second = PlaceLearner(), PlaceLearner()
    events = run(first, track)
    assert [(e.kind, e.subject) for e in events] == [
        ("place.arrive", "place-1"),
        ("place.leave", "place-1"),
        ("place.arrive", "place-2"),
        ("place.leave", "place-2"),
        ("place.arrive", "place-1"),
        ("place.leave", "place-1"),
    ]
    assert events[-1].data["reason"] == "gap"
    assert [e.to_json() for e in events] == [e.to_json() for e in run(second, track)]
    assert first.places == second.places


@pytest.mark.parametrize("cut", [5, 11, 20, 25, 30, 40])
def test_state_survives_a_restart(cut: int) -> None:
    track = [
        *still(0, 600, HOME),
        *walk_home_to_cafe(600),
        *still(780, 1500, CAFE),
        fix(1530, HOME),
        *still(1560, 1900, HOME),
    ]
    expected = run(PlaceLearner(), track)
    before = PlaceLearner()
    events = run(before, track[:cut])
    # What a store would keep: the places' fields and the state, through JSON.
    rows = json.loads(json.dumps([vars(p) for p in before.places]))
    state = json.loads(json.dumps(before.state()))
    after = PlaceLearner()
    after.restore([Place(**row) for row in rows], state)
    assert after.stay == before.stay and after.places == before.places
    events += run(after, track[cut:])
    assert [e.to_json() for e in events] == [e.to_json() for e in expected]


def test_restore_without_state_keeps_ids_growing() -> None:
    learner = PlaceLearner()
    learner.restore([Place(7, *CAFE, 100.0, 3, 900.0, T0 - 9000, T0 - 8000)], None)
    (arrive,) = run(learner, still(0, 300, HOME))
    assert arrive.subject == "place-8" and [p.id for p in learner.places] == [7, 8]
    with pytest.raises(ValueError, match="version"):
        learner.restore([], {"version": 2})


def test_arrivals_are_settled_once_the_first_place_is_a_day_old() -> None:
    """Home at T0, the cafe the same evening: both new, neither settled (a new install's
    first day, every place is new). The next day, back at the cafe (not new) and at a new
    place 610 m past it: settled, a day after home was learned; so is a restored learner's."""
    learner = PlaceLearner()
    day = 86_400.0
    track = [
        *still(0, 600, HOME),
        *walk_home_to_cafe(600),
        *still(780, 1500, CAFE),
        *still(day, day + 600, CAFE),
        *still(day + 3600, day + 4200, at(CAFE, -610, 0)),
    ]
    arrivals = [e.data for e in run(learner, track) if e.kind == "place.arrive"]
    assert [(a["new"], a["settled"]) for a in arrivals] == [
        (True, False),
        (True, False),
        (False, True),
        (True, True),
    ]
    later = PlaceLearner()
    later.restore(learner.places, None)
    (arrive,) = run(later, still(day + 7200, day + 7500, HOME))
    assert arrive.data["settled"] and not arrive.data["new"]


def test_haversine_is_within_0_6_percent_of_the_ellipsoid() -> None:
    geodesic = pytest.importorskip("geographiclib.geodesic").Geodesic.WGS84
    worst = 0.0
    for lat in range(-85, 90, 5):
        for azimuth in range(0, 360, 15):
            line = geodesic.Direct(lat, 14.5, azimuth, 100.0)
            worst = max(worst, abs(distance_m(lat, 14.5, line["lat2"], line["lon2"]) - 100.0))
    assert 0.4 < worst < 0.6  # metres at 100 m
    assert distance_m(0.0, 179.9995, 0.0, -179.9995) == pytest.approx(111.195, abs=1e-3)
