"""Geofencing on the shared real traces: missed crossings, delays and flaps.

    python bench/geofence_eval.py [--data ../shared/data] [--seed 7]

Each trace is imported with vigil's importers and replayed through the pipeline's geofence
stage with fences this script places along the track (seeded): circles of 60-300 m and
squares of 150-500 m centred on points of the track, some offset so the track only grazes
them. Ground truth is the track itself (no accuracy): a **clear crossing** goes from more than
50 m outside a fence to more than 50 m inside it, or back. Reported per trace:

* clear crossings, transitions found, **missed** clear crossings (goal 0): no matching
  enter/exit between the neighbouring crossings; **imprecise**: how many of the missed had
  no fix precise enough for any verdict (its accuracy circle never wholly in, or wholly out
  by the gap), so that no accuracy-aware machine could have decided; **quick**: missed
  because the neighbouring crossing of that fence was less than 120 s away, so reporting
  both would be a flap (transitions are at least ``min_visit_s`` apart); **spike**: missed
  because the track was clearly on the new side for less than the exit delay (a fix or two
  jumping hundreds of metres and back: what the delay is there to ignore); **after**: an
  exit (enter) missed because the enter (exit) before it was missed, so there was no visit
  to end;
* **delay** from the first clearly-inside / clearly-outside fix to the transition, beyond the
  configured delay (enter 0 s, exit 60 s; goal <= 60 s);
* **flaps**: an enter and an exit of one fence less than 120 s apart (goal 0).

For contrast, **HA flaps**: the same fixes judged as Home Assistant does (inside when
distance - accuracy < radius, a transition on every change). Then the static telit-he910 log
with two fences whose edges pass 4 m from the receiver's mean position, one each side: after
the first decision, no transition at all. Learned places
against trackintel are in bench/places_eval.py.
"""

from __future__ import annotations

import argparse
import math
import random
import statistics
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agent.config import Config, GeofenceConfig
from agent.detect.fence_index import FenceIndex
from agent.detect.fences import Fence, parse_fences
from agent.detect.geofence import GeofenceTracker
from agent.importers import import_files
from agent.importers.common import ImportOptions
from agent.runtime.trace import ReadCounts, read_trace
from agent.samples import Event, Sample

CLEAR_M = 50.0
FLAP_S = 120.0

TRACES: list[tuple[str, str, list[str], ImportOptions]] = [
    ("haicom-305N", "nmea", ["traces/nmea/haicom-305N.log"], ImportOptions()),
    ("bundg_zeus_9", "nmea", ["traces/nmea/bundg_zeus_9.log"], ImportOptions()),
    ("nl2008u", "nmea", ["traces/nmea/nl2008u.log"], ImportOptions()),
    ("quectel-eg25-g", "nmea", ["traces/nmea/quectel-eg25-g.log"], ImportOptions()),
    ("korita-zbevnica", "gpx", ["traces/gpx/korita-zbevnica.gpx"], ImportOptions()),
    ("cerknicko-jezero", "gpx", ["traces/gpx/cerknicko-jezero.gpx"], ImportOptions()),
    ("around-visnjan", "gpx", ["traces/gpx/around-visnjan-with-car.gpx"], ImportOptions()),
    ("multitrackgpx", "gpx", ["traces/gpx/multitrackgpx.gpx"], ImportOptions()),
    ("owntracks-iphone", "owntracks", ["traces/phone/owntracks-demo-iphone.rec"], ImportOptions()),
    (
        "google",
        "csv",
        ["traces/phone/google_trajectory.csv"],
        ImportOptions(
            delimiter=";",
            time_column="tracked_at",
            lat_column="latitude",
            lon_column="longitude",
            accuracy_column="accuracy",
            alt_column="elevation",
        ),
    ),
    (
        "posmo",
        "csv",
        ["traces/phone/posmo_trajectory.csv"],
        ImportOptions(
            delimiter=";",
            time_column="tracked_at",
            lat_column="latitude",
            lon_column="longitude",
            accuracy_column="accuracy",
        ),
    ),
    ("geolife-003", "geolife", ["traces/geolife/plt-003"], ImportOptions()),
]


@dataclass
class Result:
    fixes: int = 0
    fences: int = 0
    crossings: int = 0
    found: int = 0
    missed: int = 0
    undecidable: int = 0
    quick: int = 0
    spikes: int = 0
    follows: int = 0
    flaps: int = 0
    ha_flaps: int = 0
    delays: list[float] = field(default_factory=list)


def _import(kind: str, sources: list[Path], options: ImportOptions, out: Path) -> list[Sample]:
    import_files(kind, sources, out, options)
    return [s for s in read_trace([out], ReadCounts()) if s.sensor == "location"]


def _offset(lat: float, lon: float, north_m: float, east_m: float) -> tuple[float, float]:
    dlat = north_m / 111_132.0
    dlon = east_m / (111_320.0 * max(0.01, math.cos(math.radians(lat))))
    return lat + dlat, lon + dlon


def place_fences(fixes: list[Sample], rng: random.Random) -> list[Fence]:
    """Fences along the track: about one per 40 fixes, at least 4, at most 40."""
    count = max(4, min(40, len(fixes) // 40))
    features: list[dict[str, Any]] = []
    for i in range(count):
        anchor = fixes[rng.randrange(len(fixes))].data
        lat, lon = float(anchor["lat"]), float(anchor["lon"])  # type: ignore[arg-type]
        shift = rng.uniform(0.0, 0.6)  # off the track by up to 60 % of the size: some graze it
        angle = rng.uniform(0.0, 2 * math.pi)
        props: dict[str, Any] = {"name": f"f{i:02d}"}
        if i % 2 == 0:
            radius = rng.uniform(60.0, 300.0)
            clat, clon = _offset(
                lat, lon, radius * shift * math.cos(angle), radius * shift * math.sin(angle)
            )
            props["radius_m"] = radius
            geometry: dict[str, Any] = {"type": "Point", "coordinates": [clon, clat]}
        else:
            half = rng.uniform(75.0, 250.0)
            clat, clon = _offset(
                lat, lon, half * shift * math.cos(angle), half * shift * math.sin(angle)
            )
            corners = [
                _offset(clat, clon, n * half, e * half)
                for n, e in ((-1, -1), (-1, 1), (1, 1), (1, -1), (-1, -1))
            ]
            ring = [[c[1], c[0]] for c in corners]
            geometry = {"type": "Polygon", "coordinates": [ring]}
        features.append({"type": "Feature", "properties": props, "geometry": geometry})
    return parse_fences({"type": "FeatureCollection", "features": features}, "eval")


def truth(fixes: list[Sample], index: FenceIndex) -> dict[str, list[tuple[float, str]]]:
    """Per fence, the clear crossings: (time of the first clear fix, "enter" or "exit")."""
    crossings: dict[str, list[tuple[float, str]]] = {n: [] for n in index.names}
    clear: dict[str, str] = {}
    for s in fixes:
        lat, lon = float(s.data["lat"]), float(s.data["lon"])  # type: ignore[arg-type]
        near = index.signed_distances(lat, lon, CLEAR_M + 1.0)
        for name in index.names:
            d = near.get(name, math.inf)
            state = "in" if d < -CLEAR_M else "out" if d > CLEAR_M else None
            if state is None:
                continue
            if clear.get(name) not in (None, state):
                crossings[name].append((s.t, "enter" if state == "in" else "exit"))
            clear[name] = state
    return crossings


def evaluate(fixes: list[Sample], fences: list[Fence], settings: GeofenceConfig) -> Result:
    index = FenceIndex(fences)
    tracker = GeofenceTracker(index, settings)
    events: list[Event] = []
    for s in fixes:
        events += tracker.feed(s)
    result = Result(fixes=len(fixes), fences=len(fences))
    result.ha_flaps = home_assistant_flaps(fixes, index)
    expected = truth(fixes, index)
    by_fence: dict[str, list[Event]] = {}
    for e in events:
        if e.kind in ("geofence.enter", "geofence.exit"):
            by_fence.setdefault(e.subject, []).append(e)
    for name, crossings in expected.items():
        result.crossings += len(crossings)
        mine = by_fence.get(name, [])
        result.found += len(mine)
        times = [-math.inf] + [t for t, _ in crossings] + [math.inf]
        previous_missed = False
        for i, (t, kind) in enumerate(crossings):
            # The machine may decide before the first *clear* fix (a precise fix 10 m inside
            # is certainly inside): any matching transition between the neighbouring
            # crossings counts; deciding early is no delay.
            lo, hi = times[i], times[i + 2]
            hit = next((e for e in mine if e.kind == f"geofence.{kind}" and lo < e.t < hi), None)
            if hit is None:
                result.missed += 1
                follows, previous_missed = previous_missed, True
                if not _decidable(fixes, index, name, kind, lo, hi, settings):
                    result.undecidable += 1
                elif min(t - lo, hi - t) < FLAP_S:
                    result.quick += 1  # reporting it would make a flap
                elif _clear_for(fixes, index, name, kind, t) < settings.exit_delay_s:
                    result.spikes += 1  # a jump of a fix or two, what the exit delay ignores
                elif follows:
                    result.follows += 1  # the crossing before was missed: nothing to undo
                continue
            previous_missed = False
            configured = settings.enter_delay_s if kind == "enter" else settings.exit_delay_s
            result.delays.append(max(0.0, hit.t - t - configured))
        for a, b in zip(mine, mine[1:], strict=False):
            if a.kind != b.kind and b.t - a.t < FLAP_S:
                result.flaps += 1
    return result


def home_assistant_flaps(fixes: list[Sample], index: FenceIndex) -> int:
    """The same fixes judged Home Assistant's way (inside when distance - accuracy < radius,
    a transition on every change): its enter/exit pairs less than 120 s apart."""
    inside: dict[str, bool] = {}
    last: dict[str, float] = {}
    flaps = 0
    for s in fixes:
        acc = float(s.data.get("accuracy_m") or 0.0)  # type: ignore[arg-type]
        lat, lon = float(s.data["lat"]), float(s.data["lon"])  # type: ignore[arg-type]
        near = index.signed_distances(lat, lon, acc + 1.0)
        for name in set(near) | {n for n, v in inside.items() if v}:
            now_in = near.get(name, math.inf) - acc < 0.0
            if name in inside and inside[name] != now_in:
                if s.t - last.get(name, -math.inf) < FLAP_S:
                    flaps += 1
                last[name] = s.t
            inside[name] = now_in
    return flaps


def _clear_for(fixes: list[Sample], index: FenceIndex, name: str, kind: str, t: float) -> float:
    """How long the track stayed clearly on the new side after the crossing at ``t``."""
    last = t
    for s in fixes:
        if s.t < t:
            continue
        lat, lon = float(s.data["lat"]), float(s.data["lon"])  # type: ignore[arg-type]
        d = index.signed_distances(lat, lon, CLEAR_M + 1.0).get(name, math.inf)
        if (d < -CLEAR_M) != (kind == "enter"):
            break
        last = s.t
    return last - t


def _decidable(
    fixes: list[Sample],
    index: FenceIndex,
    name: str,
    kind: str,
    lo: float,
    hi: float,
    settings: GeofenceConfig,
) -> bool:
    """Whether any fix between the neighbouring crossings was precise enough for a
    certainly-inside (enter) or certainly-outside (exit) verdict on this fence."""
    for s in fixes:
        if not lo < s.t < hi:
            continue
        acc = float(s.data.get("accuracy_m") or 0.0)  # type: ignore[arg-type]
        lat, lon = float(s.data["lat"]), float(s.data["lon"])  # type: ignore[arg-type]
        d = index.signed_distances(lat, lon, acc + settings.exit_gap_m + 1.0).get(name, math.inf)
        if (kind == "enter" and d + acc <= 0) or (kind == "exit" and d - acc > settings.exit_gap_m):
            return True
    return False


def static_check(fixes: list[Sample], settings: GeofenceConfig) -> tuple[int, int, int]:
    """Two circles whose edges pass 4 m from the mean position, one each side; the
    transitions after each fence's first one (goal 0), and the first ones."""
    lat = statistics.fmean(float(s.data["lat"]) for s in fixes)  # type: ignore[arg-type]
    lon = statistics.fmean(float(s.data["lon"]) for s in fixes)  # type: ignore[arg-type]
    features = []
    for name, radius in (("edge_inside", 104.0), ("edge_outside", 96.0)):
        clat, clon = _offset(lat, lon, 100.0, 0.0)  # the receiver 100 m south of the centre
        features.append(
            {
                "type": "Feature",
                "properties": {"name": name, "radius_m": radius},
                "geometry": {"type": "Point", "coordinates": [clon, clat]},
            }
        )
    index = FenceIndex(parse_fences({"type": "FeatureCollection", "features": features}))
    tracker = GeofenceTracker(index, settings)
    events = [e for s in fixes for e in tracker.feed(s) if e.kind != "geofence.dwell"]
    first: dict[str, Event] = {}
    later = 0
    for e in events:
        if e.subject in first:
            later += 1
        else:
            first[e.subject] = e
    return later, len(first), home_assistant_flaps(fixes, index)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--data", type=Path, default=Path(__file__).resolve().parents[1].parent / "shared" / "data"
    )
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    settings = Config().geofence
    header = (
        f"{'trace':<18} {'fixes':>6} {'fences':>6} {'clear':>6} {'found':>6} "
        f"{'missed':>6} {'imprecise':>9} {'quick':>5} {'spike':>5} {'after':>5} {'flaps':>5} "
        f"{'delay med':>9} "
        f"{'delay max':>9} {'HA flaps':>8}"
    )
    print(header)
    totals = Result()
    with tempfile.TemporaryDirectory() as tmp:
        for name, kind, sources, options in TRACES:
            fixes = _import(
                kind, [args.data / s for s in sources], options, Path(tmp) / f"{name}.jsonl"
            )
            r = evaluate(fixes, place_fences(fixes, random.Random(f"{args.seed}-{name}")), settings)
            med = statistics.median(r.delays) if r.delays else 0.0
            top = max(r.delays) if r.delays else 0.0
            print(
                f"{name:<18} {r.fixes:>6} {r.fences:>6} {r.crossings:>6} {r.found:>6} "
                f"{r.missed:>6} {r.undecidable:>9} {r.quick:>5} {r.spikes:>5} {r.follows:>5} "
                f"{r.flaps:>5} "
                f"{med:>8.0f}s "
                f"{top:>8.0f}s {r.ha_flaps:>8}"
            )
            keys = ("fixes", "fences", "crossings", "found", "missed", "undecidable", "quick")
            keys += ("spikes", "follows")
            for key in (*keys, "flaps", "ha_flaps"):
                setattr(totals, key, getattr(totals, key) + getattr(r, key))
            totals.delays += r.delays
        med = statistics.median(totals.delays) if totals.delays else 0.0
        print(
            f"{'all':<18} {totals.fixes:>6} {totals.fences:>6} {totals.crossings:>6} "
            f"{totals.found:>6} {totals.missed:>6} {totals.undecidable:>9} {totals.quick:>5} "
            f"{totals.spikes:>5} {totals.follows:>5} "
            f"{totals.flaps:>5} "
            f"{med:>8.0f}s "
            f"{max(totals.delays, default=0.0):>8.0f}s {totals.ha_flaps:>8}"
        )
        telit = _import(
            "nmea",
            [args.data / "traces/nmea/telit-he910.log"],
            ImportOptions(),
            Path(tmp) / "telit.jsonl",
        )
        later, first, ha = static_check(telit, settings)
        print(
            f"static telit-he910, {len(telit)} fixes, fence edges 4 m either side: "
            f"{first} first decision(s), {later} transitions after them (goal 0); "
            f"Home Assistant's rule: {ha} flaps"
        )


if __name__ == "__main__":
    main()
