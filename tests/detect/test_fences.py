"""Fences: GeoJSON parsing and refusals, local-frame accuracy against geographiclib (equator,
mid-latitude, poles, antimeridian), signed distances just inside / outside / on the edge, and
the index against brute force (live and batched)."""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
import pytest
from geographiclib.geodesic import Geodesic

from agent.detect import frames
from agent.detect.fence_index import FenceIndex
from agent.detect.fences import Fence, fence_to_feature, parse_fences
from agent.errors import ConfigError

WGS84 = Geodesic.WGS84
LJUBLJANA = (46.05140, 14.50620)

#: Where frames are checked: (name, lat, lon), each at the centre of a 50 km fence.
PLACES = [
    ("equator", 0.0, 0.0),
    ("45N", 45.0, 7.0),
    ("north pole 5.6 km", 89.95, 30.0),
    ("south pole", -90.0, 0.0),
    ("antimeridian", -16.5, 180.0),
    ("antimeridian 65N", 65.0, -179.99),
]


def direct(lat: float, lon: float, azimuth: float, distance_m: float) -> tuple[float, float]:
    g = WGS84.Direct(lat, lon, azimuth, distance_m)
    return g["lat2"], _wrap(g["lon2"])


def _wrap(lon: float) -> float:
    return (lon + 180.0) % 360.0 - 180.0


def circle(name: str, lat: float, lon: float, radius_m: float, **props: Any) -> dict[str, Any]:
    return {
        "type": "Feature",
        "properties": {"name": name, "radius_m": radius_m, **props},
        "geometry": {"type": "Point", "coordinates": [lon, lat]},
    }


def polygon(name: str, *rings: list[tuple[float, float]], **props: Any) -> dict[str, Any]:
    """A Polygon from rings of (lat, lon), closed here."""
    coords = [[[lon, lat] for lat, lon in [*ring, ring[0]]] for ring in rings]
    return {
        "type": "Feature",
        "properties": {"name": name, **props},
        "geometry": {"type": "Polygon", "coordinates": coords},
    }


def star(
    lat: float, lon: float, radii: list[float], turn: float = 0.0
) -> list[tuple[float, float]]:
    """Vertices at ``radii`` metres from the centre, evenly spaced in azimuth (geodesics)."""
    step = 360.0 / len(radii)
    return [direct(lat, lon, turn + i * step, r) for i, r in enumerate(radii)]


def collection(*features: dict[str, Any]) -> dict[str, Any]:
    return {"type": "FeatureCollection", "features": list(features)}


# -- parsing -----------------------------------------------------------------------------------


def test_parses_circles_polygons_multipolygons_and_round_trips() -> None:
    square = [(46.05, 14.50), (46.05, 14.51), (46.06, 14.51), (46.06, 14.50)]
    hole = [(46.054, 14.504), (46.054, 14.506), (46.056, 14.506), (46.056, 14.504)]
    multi = {
        "type": "Feature",
        "properties": {"name": "two"},
        "geometry": {
            "type": "MultiPolygon",
            "coordinates": [
                polygon("a", square)["geometry"]["coordinates"],
                polygon("b", [(a + 0.02, b) for a, b in square])["geometry"]["coordinates"],
            ],
        },
    }
    doc = collection(
        circle("home", *LJUBLJANA, 100, dwell_s=60), polygon("park", square, hole), multi
    )
    fences = parse_fences(json.dumps(doc), "fences.geojson")
    assert [f.name for f in fences] == ["home", "park", "two"]
    assert fences[0] == Fence("home", doc["features"][0]["geometry"], 100.0, 60.0)
    assert fences[1].radius_m is None and fences[1].dwell_s is None
    assert isinstance(fences[0].radius_m, float)
    for fence in fences:
        assert parse_fences(fence_to_feature(fence)) == [fence]
    assert parse_fences(collection(*map(fence_to_feature, fences))) == fences
    assert parse_fences(doc["features"][2]) == [fences[2]]  # a single Feature
    doc["features"][0]["geometry"]["coordinates"][0] = 0.0
    assert fences[0].geometry["coordinates"][0] == LJUBLJANA[1]  # a copy, not the caller's


SQUARE = [[14.50, 46.05], [14.51, 46.05], [14.51, 46.06], [14.50, 46.06], [14.50, 46.05]]


def _feature(name: Any = "f", geometry: Any = None, **props: Any) -> dict[str, Any]:
    geometry = geometry or {"type": "Polygon", "coordinates": [SQUARE]}
    return {"type": "Feature", "properties": {"name": name, **props}, "geometry": geometry}


def _point(coords: Any, **props: Any) -> dict[str, Any]:
    return _feature("pt", {"type": "Point", "coordinates": coords}, **props)


def _ring(ring: list[list[float]], name: str = "ring") -> dict[str, Any]:
    return _feature(name, {"type": "Polygon", "coordinates": [ring]})


BOW_TIE = [[14.50, 46.05], [14.51, 46.06], [14.51, 46.05], [14.50, 46.06], [14.50, 46.05]]
WIDE = [[14.0, 46.05], [14.7, 46.05], [14.7, 46.06], [14.0, 46.06], [14.0, 46.05]]  # 54 km

INVALID = [
    (_point([200.0, 46.0], radius_m=10), "pt", "longitude 200.0 is out of range"),
    (_point([14.5, -91.0], radius_m=10), "pt", "latitude -91.0 is out of range"),
    (_point(["14.5", 46.0], radius_m=10), "pt", "is not [lon, lat] numbers"),
    (_point([True, 46.0], radius_m=10), "pt", "is not [lon, lat] numbers"),
    (_point([14.5], radius_m=10), "pt", "is not [lon, lat] numbers"),
    (_point([float("nan"), 46.0], radius_m=10), "pt", "is not finite"),
    (_point([14.5, 46.0]), "pt", "a Point fence needs properties.radius_m"),
    (_point([14.5, 46.0], radius_m=0), "pt", "radius_m must be a number >= 1, got 0"),
    (_point([14.5, 46.0], radius_m=-5.0), "pt", "radius_m must be a number >= 1, got -5.0"),
    (_point([14.5, 46.0], radius_m="100"), "pt", "radius_m must be a number >= 1, got '100'"),
    (_point([14.5, 46.0], radius_m=0.5), "pt", "radius_m must be a number >= 1, got 0.5"),
    (_point([14.5, 46.0], radius_m=math.inf), "pt", "radius_m must be a number >= 1, got inf"),
    (_point([14.5, 46.0], radius_m=10**400), "pt", ">= 1, got an integer of 1329 bits"),
    (_point([10**400, 46.0], radius_m=10), "pt", "position [1000000000000000000000"),
    (_point([14.5, 46.0], radius_m=30_000), "pt", "60 km across; fences may be at most 50 km"),
    (_ring(BOW_TIE, "bow"), "bow", "Polygon is not valid: Self-intersection near lat 46.055"),
    (_ring(WIDE, "wide"), "wide", "is 54.2 km across; fences may be at most 50 km across"),
    (_ring(SQUARE[:4], "open"), "open", "ring 1 is not closed"),
    (_ring(SQUARE[:2] + SQUARE[:1], "few"), "few", "ring 1 needs at least 4 positions"),
    (_ring([[14.5, 46.0], [14.5, 91.0], [14.6, 46.0], [14.5, 46.0]], "r"), "r", "latitude 91.0"),
    (_feature("line", {"type": "LineString", "coordinates": SQUARE}), "line", "unsupported"),
    (_feature("gc", {"type": "GeometryCollection", "geometries": []}), "gc", "unsupported"),
    (_feature(None), "feature #1", "needs properties.name, a non-empty string"),
    (_feature("  "), "feature #1", "needs properties.name, a non-empty string"),
    (_feature("f", radius_m=10), "f", "radius_m is only for Point fences"),
    (_feature("f", dwell_s=-1), "f", "dwell_s must be a number from 0 to 604,800 (a week), got -1"),
    (_feature("f", dwell_s="long"), "f", "dwell_s must be a number from 0 to 604,800"),
    (_feature("f", dwell_s=1e9), "f", "dwell_s must be a number from 0 to 604,800"),
    (_feature("\ud800"), "feature #1", "properties.name '\\ud800' must be printable text"),
    (_feature("a\tb"), "feature #1", "properties.name 'a\\tb' must be printable text"),
    (_feature("n" * 201), "feature #1", "properties.name has 201 characters; at most 200"),
    (_feature("f", {"type": "\ud800"}), "f", "unsupported geometry type '\\ud800'"),
    (_feature("f", {"type": "Polygon"}), "f", "needs a non-empty list of coordinates"),
    ({"type": "Feature", "properties": {"name": "g"}}, "g", "has no geometry"),
    ({"name": "x"}, "feature #1", "is not a GeoJSON Feature"),
]


@pytest.mark.parametrize(("feature", "name", "reason"), INVALID)
def test_invalid_fences_are_refused_with_name_and_reason(
    feature: dict[str, Any], name: str, reason: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_fences(collection(feature), "fences.geojson")
    assert caught.value.path == "fences.geojson"
    assert caught.value.key == name
    assert reason in caught.value.reason
    assert str(caught.value).startswith(f"fences.geojson: {name}: ")


def test_more_invalid_shapes() -> None:
    outer = [[14.50, 46.05], [14.51, 46.05], [14.51, 46.06], [14.50, 46.06], [14.50, 46.05]]
    away = [[15.0, 46.0], [15.001, 46.0], [15.001, 46.001], [15.0, 46.0]]
    with pytest.raises(ConfigError, match=r"holed: Polygon is not valid: Hole lies outside"):
        parse_fences(_feature("holed", {"type": "Polygon", "coordinates": [outer, away]}))
    shifted = [[x + 0.005, y] for x, y in outer]
    overlap = {"type": "MultiPolygon", "coordinates": [[outer], [shifted]]}
    with pytest.raises(ConfigError, match=r"both: MultiPolygon is not valid: Self-intersection"):
        parse_fences(_feature("both", overlap))
    a, b = SQUARE, [[x + 0.8, y] for x, y in SQUARE]  # two small parts, 62 km apart
    with pytest.raises(ConfigError, match=r"far: is 6\d\.\d km across"):
        parse_fences(_feature("far", {"type": "MultiPolygon", "coordinates": [[a], [b]]}))
    with pytest.raises(ConfigError, match=r"spans half the globe"):
        parse_fences(_ring([[0.0, 0.0], [120.0, 0.0], [-120.0, 0.0], [0.0, 0.0]], "belt"))


def test_duplicate_names_and_bad_documents() -> None:
    doc = collection(_point([14.5, 46.0], radius_m=10), _point([14.6, 46.0], radius_m=10))
    with pytest.raises(ConfigError, match=r"^x.json: pt: duplicate name \(feature #1 has it too\)"):
        parse_fences(doc, "x.json")
    with pytest.raises(ConfigError, match=r"^<fences>: not valid JSON"):
        parse_fences("{nope")
    with pytest.raises(ConfigError, match=r"expected a GeoJSON FeatureCollection or Feature"):
        parse_fences({"type": "Point", "coordinates": [0, 0]})
    with pytest.raises(ConfigError, match=r"expected a GeoJSON FeatureCollection or Feature"):
        parse_fences("[]")
    assert parse_fences(collection()) == []


def test_the_index_refuses_what_parsing_refuses() -> None:
    bow = Fence("bow", {"type": "Polygon", "coordinates": [BOW_TIE]})
    with pytest.raises(ConfigError, match=r"^<fences>: bow: Polygon is not valid"):
        FenceIndex([bow])
    ok = Fence("ok", {"type": "Point", "coordinates": [14.5, 46.0]}, 10.0)
    with pytest.raises(ConfigError, match=r"ok: duplicate name"):
        FenceIndex([ok, ok])
    bare = Fence("bare", {"type": "Point", "coordinates": [14.5, 46.0]})
    with pytest.raises(ConfigError, match=r"bare: a Point fence needs properties.radius_m"):
        FenceIndex([ok, bare])
    lazy = Fence("lazy", ok.geometry, 10.0, dwell_s=-1.0)
    with pytest.raises(ConfigError, match=r"lazy: properties.dwell_s must be a number from 0"):
        FenceIndex([lazy])
    wide = Fence("wide", {"type": "Polygon", "coordinates": [WIDE]})
    with pytest.raises(ConfigError, match=r"wide: is 54.2 km across"):
        FenceIndex([ok, wide])


# -- frames against geographiclib ---------------------------------------------------------------


def _plane(lat0: float, lon0: float, lats: Any, lons: Any) -> tuple[np.ndarray, np.ndarray]:
    rot, off, two_r = frames.frames(np.array([lat0]), np.array([lon0]))
    k = len(lats)
    return frames.project(
        np.broadcast_to(rot, (k, 3, 3)),
        np.broadcast_to(off, (k, 3)),
        np.broadcast_to(two_r, (k,)),
        frames.ecef(np.asarray(lats), np.asarray(lons)),
    )


def frame_errors(lat0: float, lon0: float, n: int = 400) -> tuple[float, float]:
    """Largest |plane - geodesic| for distances from the centre and between two points, all
    within 35.4 km of the centre (the farthest a point of a 50 km fence is from its frame's
    centre: half the diagonal of its box)."""
    rng = np.random.default_rng(7)
    az, dist = rng.uniform(0, 360, (n, 2)), rng.uniform(0, 35_355, (n, 2))
    a = [direct(lat0, lon0, az[i, 0], dist[i, 0]) for i in range(n)]
    b = [direct(lat0, lon0, az[i, 1], dist[i, 1]) for i in range(n)]
    xa, ya = _plane(lat0, lon0, *zip(*a, strict=True))
    xb, yb = _plane(lat0, lon0, *zip(*b, strict=True))
    radial = np.abs(np.hypot(xa, ya) - dist[:, 0]).max()
    truth = np.array([WGS84.Inverse(*p, *q)["s12"] for p, q in zip(a, b, strict=True)])
    pair = np.abs(np.hypot(xa - xb, ya - yb) - truth).max()
    return float(radial), float(pair)


@pytest.mark.parametrize(("place", "lat0", "lon0"), PLACES)
def test_frame_distances_within_a_metre_of_geodesics(place: str, lat0: float, lon0: float) -> None:
    radial, pair = frame_errors(lat0, lon0)
    assert radial < 0.2, place  # measured: 0.09 m everywhere
    assert pair < 0.5, place  # measured: 0.2-0.3 m


def test_scalar_twins_agree_with_the_vectorised_projection() -> None:
    rot, off, two_r = frames.frames(np.array([89.95, -16.5]), np.array([30.0, 180.0]))
    for k, (lat, lon) in enumerate([(89.9, -150.0), (-16.6, -179.95)]):
        p = frames.ecef(np.array([lat]), np.array([lon]))
        x, y = frames.project(rot[k : k + 1], off[k : k + 1], two_r[k : k + 1], p)
        row = [*rot[k].ravel(), *off[k], two_r[k]]
        assert frames.ecef_one(lat, lon) == pytest.approx(tuple(p[0]), abs=1e-8)
        assert frames.project_one(row, frames.ecef_one(lat, lon)) == pytest.approx(
            (x[0], y[0]), abs=1e-8
        )


def test_far_side_of_the_earth_is_far() -> None:
    x, y = _plane(46.0, 14.5, [-46.0, 0.0], [-165.5, 104.5])  # antipode; 90 degrees away
    assert np.all(np.hypot(x, y) > 1e7)


# -- signed distances with real coordinates ----------------------------------------------------


def boundary_distance(lat: float, lon: float, ring: list[tuple[float, float]]) -> float:
    """The geodesic distance from a point to a ring of geodesic edges (golden-section search
    along each edge: the distance along a short geodesic is unimodal)."""
    best = math.inf
    for (lat1, lon1), (lat2, lon2) in zip(ring, [*ring[1:], ring[0]], strict=True):
        line = WGS84.InverseLine(lat1, lon1, lat2, lon2)

        def dist(s: float, line: Any = line) -> float:
            p = line.Position(s)
            return float(WGS84.Inverse(lat, lon, p["lat2"], p["lon2"])["s12"])

        lo, hi = 0.0, line.s13
        g = (math.sqrt(5) - 1) / 2
        while hi - lo > 1e-3:
            m1, m2 = hi - g * (hi - lo), lo + g * (hi - lo)
            lo, hi = (lo, m2) if dist(m1) < dist(m2) else (m1, hi)
        best = min(best, dist(lo), dist(0.0), dist(line.s13))
    return best


def edge_points(ring: list[tuple[float, float]], edge: int) -> dict[str, tuple[float, float]]:
    """The midpoint of one edge (a geodesic) and points 1 m either side of it, normal to it."""
    (lat1, lon1), (lat2, lon2) = ring[edge], ring[(edge + 1) % len(ring)]
    line = WGS84.InverseLine(lat1, lon1, lat2, lon2)
    mid = line.Position(line.s13 / 2)
    # The ring runs anticlockwise (azimuths increase clockwise): inside is to the left.
    left = mid["azi2"] - 90.0
    return {
        "edge": (mid["lat2"], mid["lon2"]),
        "inside": direct(mid["lat2"], mid["lon2"], left, 1.0),
        "outside": direct(mid["lat2"], mid["lon2"], left + 180.0, 1.0),
    }


@pytest.mark.parametrize(("place", "lat0", "lon0"), PLACES)
def test_polygon_just_inside_outside_and_on_the_edge(place: str, lat0: float, lon0: float) -> None:
    # A 40 km wide octagon (vertices 20-24 km out) drawn anticlockwise around the place:
    # it contains the poles where the place is one, and straddles lon 180 where it is there.
    radii = [24_000.0, 20_000.0, 23_000.0, 21_000.0, 24_000.0, 20_500.0, 22_000.0, 21_500.0]
    ring = star(lat0, lon0, radii)[::-1]
    index = FenceIndex(parse_fences(collection(polygon("octagon", ring))))
    worst = 0.0
    for edge in (0, 3, 6):
        for where, (lat, lon) in edge_points(ring, edge).items():
            truth = boundary_distance(lat, lon, ring)
            got = index.signed_distances(lat, lon, 50.0)["octagon"]
            assert truth == pytest.approx(0.0 if where == "edge" else 1.0, abs=0.01)
            signed = {"inside": -truth, "outside": truth, "edge": 0.0}[where]
            if where != "edge":
                assert (got < 0) == (where == "inside"), (place, edge, where, got)
            worst = max(worst, abs(got - signed))
    centre = index.signed_distances(lat0, lon0, 0.0)["octagon"]  # deep inside: ~ -19 km
    worst = max(worst, abs(centre + boundary_distance(lat0, lon0, ring)))
    far = direct(lat0, lon0, 10.0, 27_000.0)  # 3-5 km outside
    worst = max(
        worst,
        abs(index.signed_distances(*far, 10_000.0)["octagon"] - boundary_distance(*far, ring)),
    )
    assert worst < 1.0, place  # measured: < 0.1 m


@pytest.mark.parametrize(("place", "lat0", "lon0"), PLACES)
def test_circle_just_inside_outside_and_on_the_edge(place: str, lat0: float, lon0: float) -> None:
    index = FenceIndex(parse_fences(collection(circle("c", lat0, lon0, 25_000.0))))
    for azimuth in (0.0, 77.0, 180.0, 300.0):
        for offset in (-1.0, 0.0, 1.0, -25_000.0, 5_000.0):
            lat, lon = direct(lat0, lon0, azimuth, 25_000.0 + offset)
            truth = WGS84.Inverse(lat0, lon0, lat, lon)["s12"] - 25_000.0
            got = index.signed_distances(lat, lon, 10_000.0)["c"]
            assert got == pytest.approx(truth, abs=0.05), (place, azimuth, offset)
            if offset:
                assert (got < 0) == (offset < 0)


def test_small_real_circle_and_polygon_in_ljubljana() -> None:
    ring = star(*LJUBLJANA, [150.0, 120.0, 160.0, 140.0, 130.0])[::-1]
    index = FenceIndex(
        parse_fences(collection(circle("square", *LJUBLJANA, 100.0), polygon("block", ring)))
    )
    for offset, sign in ((-1.0, -1), (1.0, 1)):
        lat, lon = direct(*LJUBLJANA, 42.0, 100.0 + offset)
        assert index.signed_distances(lat, lon, 30.0)["square"] == pytest.approx(sign, abs=0.01)
    for where, (lat, lon) in edge_points(ring, 2).items():
        d = index.signed_distances(lat, lon, 30.0)["block"]
        assert d == pytest.approx({"inside": -1.0, "outside": 1.0, "edge": 0.0}[where], abs=0.01)
    assert index.signed_distances(*direct(*LJUBLJANA, 0.0, 2000.0), 100.0) == {}


def test_multipolygon_and_hole() -> None:
    a = star(*LJUBLJANA, [500.0] * 6)[::-1]
    far = direct(*LJUBLJANA, 90.0, 3000.0)
    b = star(*far, [500.0] * 6)[::-1]
    hole = star(*LJUBLJANA, [200.0] * 6)[::-1]
    multi = {
        "type": "Feature",
        "properties": {"name": "pair"},
        "geometry": {
            "type": "MultiPolygon",
            "coordinates": [
                polygon("a", a, hole)["geometry"]["coordinates"],
                polygon("b", b)["geometry"]["coordinates"],
            ],
        },
    }
    index = FenceIndex(parse_fences(collection(multi)))
    in_hole = index.signed_distances(*LJUBLJANA, 1000.0)["pair"]
    assert in_hole == pytest.approx(boundary_distance(*LJUBLJANA, hole), abs=0.05)
    assert in_hole > 150
    in_b = index.signed_distances(*far, 1000.0)["pair"]
    assert in_b == pytest.approx(-boundary_distance(*far, b), abs=0.05)
    assert in_b < -400
    between = direct(*LJUBLJANA, 90.0, 1500.0)
    d = index.signed_distances(*between, 2000.0)["pair"]
    assert d == pytest.approx(min(boundary_distance(*between, r) for r in (a, b)), abs=0.05)


# -- the index never misses --------------------------------------------------------------------


def random_fences(rng: np.random.Generator) -> list[dict[str, Any]]:
    """Circles and star polygons around a region, both poles and the antimeridian."""
    centres = [(46.0, 14.5, 0.3), (89.9, 0.0, 0.2), (-89.95, 0.0, 0.2), (-16.5, 180.0, 0.3)]
    features = []
    for c, (lat0, lon0, spread) in enumerate(centres):
        for i in range(60):
            az, dist = rng.uniform(0, 360), rng.uniform(0, spread * 111_000)
            lat, lon = direct(lat0, lon0, az, dist)
            size = float(np.exp(rng.uniform(math.log(50), math.log(20_000))))
            name = f"c{c}-{i}"
            if i % 2:
                features.append(circle(name, lat, lon, size))
            else:
                radii = list(size * rng.uniform(0.5, 1.0, int(rng.integers(3, 9))))
                features.append(polygon(name, star(lat, lon, radii, rng.uniform(0, 360))[::-1]))
    return features


def brute(index: FenceIndex, lat: float, lon: float, reach: float) -> dict[str, float]:
    d = index.signed_distances_all(lat, lon)
    return {index.names[k]: float(d[k]) for k in np.flatnonzero(d <= reach)}


def test_index_finds_every_fence_within_reach_live_and_batched() -> None:
    rng = np.random.default_rng(11)
    index = FenceIndex(parse_fences(collection(*random_fences(rng))))
    assert len(index) == 240
    fixes = []
    for lat0, lon0 in [(46.0, 14.5), (89.9, 0.0), (-89.95, 0.0), (-16.5, 180.0)]:
        for _ in range(60):
            fixes.append(direct(lat0, lon0, rng.uniform(0, 360), rng.uniform(0, 60_000)))
    fixes += [(90.0, 0.0), (90.0, 123.0), (-90.0, 0.0), (-16.5, 180.0), (-16.5, -180.0)]
    fixes += [(-16.5, 179.999999), (-16.5, -179.999999), (0.0, 0.0), (-45.0, 100.0)]
    reaches = rng.choice([0.0, 10.0, 500.0, 5_000.0, 50_000.0, 300_000.0], len(fixes))
    lats, lons = np.array(fixes).T
    batched = index.signed_distances_many(lats, lons, reaches)
    found = 0
    for (lat, lon), reach, many in zip(fixes, reaches, batched, strict=True):
        live = index.signed_distances(lat, lon, float(reach))
        truth = brute(index, lat, lon, float(reach))
        assert live.keys() == truth.keys() == many.keys(), (lat, lon, reach)
        for name, d in truth.items():
            assert live[name] == pytest.approx(d, abs=1e-6)
            assert many[name] == pytest.approx(d, abs=1e-6)
        found += len(truth)
    assert found > 500  # the comparison is not vacuous


def test_fence_containing_the_pole_is_found_from_any_longitude() -> None:
    ring = star(-90.0, 0.0, [10_000.0] * 8)[::-1]
    index = FenceIndex(parse_fences(collection(polygon("cap", ring))))
    for lon in (-180.0, -90.0, 0.0, 45.0, 180.0):
        d = index.signed_distances(-89.95, lon, 0.0)  # 5.6 km from the pole
        assert d["cap"] == pytest.approx(-boundary_distance(-89.95, lon, ring), abs=0.5)
    assert index.signed_distances(-90.0, 0.0, 0.0)["cap"] < -9000


def test_api_names_len_fence_dwell_and_reach() -> None:
    fences = parse_fences(collection(circle("a", 1.0, 2.0, 10.0, dwell_s=5), circle("b", 3, 4, 5)))
    index = FenceIndex(fences)
    assert index.names == ("a", "b") and len(index) == 2
    assert index.fence("b") is fences[1]
    assert index.dwell_s("a") == 5.0 and index.dwell_s("b") is None
    with pytest.raises(KeyError):
        index.fence("zzz")
    with pytest.raises(ValueError, match="reach_m"):
        index.signed_distances(1.0, 2.0, -1.0)
    with pytest.raises(ValueError, match="reach_m"):
        index.signed_distances(1.0, 2.0, float("nan"))
    empty = FenceIndex([])
    assert empty.signed_distances(1.0, 2.0, 100.0) == {}
    assert empty.signed_distances_many([1.0], [2.0], [100.0]) == [{}]
    hits = index.signed_distance_pairs([1.0, 50.0, 3.0], [2.0, 50.0, 4.0], 20.0)
    assert hits.fix.tolist() == [0, 2] and hits.fence.tolist() == [0, 1]
    assert hits.distance_m.tolist() == pytest.approx([-10.0, -5.0])
