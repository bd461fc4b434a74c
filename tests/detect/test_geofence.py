"""Fence state machines with real coordinates: a 100 m circle around Ljubljana's Prešeren
Square, fixes just inside, just outside and on the edge (distances from geographiclib)."""

from __future__ import annotations

from geographiclib.geodesic import Geodesic

from agent.config import GeofenceConfig
from agent.detect.geofence import GeofenceTracker
from agent.samples import Event, Sample

CENTER = (46.05140, 14.50620)
RADIUS_M = 100.0
WGS84 = Geodesic.WGS84  # type: ignore[attr-defined]


class CircleIndex:
    """Exact signed distances to circles, for testing the machine apart from the index."""

    def __init__(self, circles: dict[str, tuple[float, float, float]], dwell: float | None = None):
        self.circles = circles
        self.dwell = dwell

    def signed_distances(self, lat: float, lon: float, reach_m: float) -> dict[str, float]:
        out = {}
        for name, (clat, clon, radius) in self.circles.items():
            signed = WGS84.Inverse(clat, clon, lat, lon)["s12"] - radius
            if signed <= reach_m:
                out[name] = signed
        return out

    def dwell_s(self, name: str) -> float | None:
        return self.dwell


def at(distance_m: float, azimuth: float = 90.0) -> tuple[float, float]:
    """The point ``distance_m`` from the centre along ``azimuth`` (east by default)."""
    g = WGS84.Direct(CENTER[0], CENTER[1], azimuth, distance_m)
    return g["lat2"], g["lon2"]


def fix(t: float, distance_m: float, accuracy_m: float = 5.0) -> Sample:
    lat, lon = at(distance_m)
    return Sample("location", t, {"lat": lat, "lon": lon, "accuracy_m": accuracy_m})


def run(tracker: GeofenceTracker, fixes: list[Sample]) -> list[tuple[float, str]]:
    events: list[Event] = []
    for sample in fixes:
        events += tracker.feed(sample)
    return [(e.t, e.kind) for e in events]


def tracker(**settings: float) -> GeofenceTracker:
    index = CircleIndex({"square": (*CENTER, RADIUS_M)})
    return GeofenceTracker(index, GeofenceConfig(**settings))


def test_enter_fires_once_never_twice() -> None:
    # 94 m from the centre with 5 m accuracy: 1 m inside the certainly-inside limit.
    fixes = [fix(float(t), 94.0) for t in range(0, 300, 30)]
    assert run(tracker(), fixes) == [(0.0, "geofence.enter")]


def test_just_outside_from_unknown_gives_nothing() -> None:
    # 101 m: outside by 1 m, but within accuracy + gap: uncertain; 126 m: certainly outside.
    assert run(tracker(), [fix(0.0, 101.0), fix(30.0, 126.0), fix(60.0, 400.0)]) == []


def test_on_the_edge_changes_nothing_either_way() -> None:
    t = tracker(dwell_s=1e9)
    assert run(t, [fix(0.0, 50.0)]) == [(0.0, "geofence.enter")]
    edge = [fix(30.0 * i, 100.0 + (-3.0 if i % 2 else 3.0)) for i in range(1, 40)]
    assert run(t, edge) == []  # twenty minutes of jitter across the edge: no flap


def test_poor_accuracy_near_the_edge_changes_nothing() -> None:
    t = tracker(dwell_s=1e9)
    assert run(t, [fix(0.0, 20.0)]) == [(0.0, "geofence.enter")]
    # 300 m accuracy 150 m out: could be inside; never counts as outside, whatever its centre.
    assert run(t, [fix(30.0 + i, 150.0, accuracy_m=300.0) for i in range(0, 600, 30)]) == []
    fresh = tracker()
    assert run(fresh, [fix(0.0, 0.0, accuracy_m=150.0)]) == []  # nor as inside


def test_exit_after_the_delay_and_a_return_cancels_it() -> None:
    t = tracker(exit_delay_s=60.0)
    fixes = [
        fix(0.0, 10.0),  # enter
        fix(30.0, 200.0),  # certainly out: exit pending since 30
        fix(60.0, 60.0),  # certainly in again: cancelled
        fix(90.0, 200.0),  # pending since 90
        fix(120.0, 110.0),  # uncertain: neither confirms nor cancels
        fix(150.0, 200.0),  # 60 s since 90: exit
        fix(180.0, 300.0),
    ]
    assert run(t, fixes) == [(0.0, "geofence.enter"), (150.0, "geofence.exit")]


def test_enter_delay_and_dwell() -> None:
    t = tracker(enter_delay_s=60.0, dwell_s=300.0)
    fixes = [fix(float(s), 10.0) for s in range(0, 900, 30)]
    assert run(t, fixes) == [(60.0, "geofence.enter"), (360.0, "geofence.dwell")]


def test_per_fence_dwell_and_overlapping_fences_are_independent() -> None:
    index = CircleIndex({"square": (*CENTER, 100.0), "old_town": (*CENTER, 1000.0)}, dwell=120.0)
    t = GeofenceTracker(index, GeofenceConfig())
    events = []
    for s in [fix(0.0, 500.0), fix(30.0, 50.0), fix(200.0, 50.0), fix(260.0, 400.0)]:
        events += [(e.t, e.kind, e.subject) for e in t.feed(s)]
    assert events == [
        (0.0, "geofence.enter", "old_town"),
        (30.0, "geofence.enter", "square"),
        (200.0, "geofence.dwell", "old_town"),  # fence dwell_s 120, first fix past it
        (200.0, "geofence.dwell", "square"),
        # 400 m: out of the square, and its last certainly-inside fix (200) is 60 s old
        (260.0, "geofence.exit", "square"),
    ]


def test_state_survives_a_restart() -> None:
    t = tracker()
    run(t, [fix(0.0, 10.0)])
    saved = t.state()
    again = tracker()
    again.restore(saved)
    assert run(again, [fix(30.0, 20.0)]) == []  # still inside: no second enter
    assert run(again, [fix(60.0, 300.0), fix(130.0, 300.0)]) == [(130.0, "geofence.exit")]


def test_non_location_samples_are_ignored() -> None:
    assert tracker().feed(Sample("system", 0.0, {"cpu_pct": 5.0})) == []


def test_a_quick_pass_gives_one_pair_two_minutes_apart() -> None:
    t = tracker()
    fixes = [fix(0.0, 300.0), fix(10.0, 50.0), fix(20.0, 300.0)] + [
        fix(float(s), 400.0) for s in range(30, 300, 10)
    ]
    # A car through the square: in for one fix; the exit waits for the 120 s minimum visit.
    assert run(t, fixes) == [(10.0, "geofence.enter"), (130.0, "geofence.exit")]


def test_after_a_gap_one_certain_fix_is_enough_to_exit() -> None:
    t = tracker()
    fixes = [fix(0.0, 10.0), fix(200.0, 20.0), fix(3600.0, 500.0)]
    # An hour without fixes, then certainly out: nothing certainly inside for 3400 s.
    assert run(t, fixes) == [(0.0, "geofence.enter"), (3600.0, "geofence.exit")]
