"""Geofence distances with many fences: the live path, the batched replay path, brute force.

Generates fences (circles and small polygons, most over a country-sized region, some anywhere
on Earth, fixed seed) and a random-walk track of fixes through them, then times per fix:

* live: ``FenceIndex.signed_distances``, one call per fix (goal <= 100 us with 100,000 fences);
* batched: ``FenceIndex.signed_distance_pairs`` over the whole track (goal <= 10 us per fix);
* brute force: every fence for every fix, vectorised (numpy projection into all frames, then
  shapely's array functions), on fewer fixes;

prints the ratios, and checks that the three agree on a sample.

    python bench/geofence.py [--fences 100000] [--fixes 20000] [--brute-fixes 200]
"""

from __future__ import annotations

import argparse
import math
import statistics
import time
from typing import Any

import numpy as np

from agent.detect.fence_index import FenceIndex
from agent.detect.fences import parse_fences

REGION = (45.8, 47.8, 6.0, 10.5)  # lat_min, lat_max, lon_min, lon_max: about 220 x 350 km
ELSEWHERE = 0.05  # the share of fences anywhere on Earth (poles and antimeridian included)
M_PER_DEG = 111_320.0


def make_fences(n: int, rng: np.random.Generator) -> dict[str, Any]:
    lat0, lat1, lon0, lon1 = REGION
    far = rng.random(n) < ELSEWHERE
    lat = np.where(far, np.degrees(np.arcsin(rng.uniform(-1, 1, n))), rng.uniform(lat0, lat1, n))
    lon = np.where(far, rng.uniform(-180, 180, n), rng.uniform(lon0, lon1, n))
    lat = np.clip(lat, -89.0, 89.0)  # small polygons drawn in degrees need a pole-free spot
    size = np.exp(rng.uniform(math.log(30), math.log(800), n))
    circle = rng.random(n) < 0.6
    features = []
    for i in range(n):
        props: dict[str, Any] = {"name": f"f{i:06d}"}
        if circle[i]:
            props["radius_m"] = round(float(size[i]), 1)
            geometry = {"type": "Point", "coordinates": [float(lon[i]), float(lat[i])]}
        else:
            k = int(rng.integers(4, 12))
            angle = (np.arange(k) + rng.uniform(0, 0.8, k)) * 2 * math.pi / k  # star-shaped
            r = size[i] * rng.uniform(0.5, 1.0, k)
            dlat = r * np.sin(angle) / M_PER_DEG
            dlon = r * np.cos(angle) / (M_PER_DEG * math.cos(math.radians(lat[i])))
            ring = [[_wrap(lon[i] + a), float(lat[i] + b)] for a, b in zip(dlon, dlat, strict=True)]
            geometry = {"type": "Polygon", "coordinates": [ring + ring[:1]]}
        features.append({"type": "Feature", "properties": props, "geometry": geometry})
    return {"type": "FeatureCollection", "features": features}


def _wrap(lon: float) -> float:
    return float((lon + 180.0) % 360.0 - 180.0)


def make_track(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A drive through the region: 1 s fixes at ~25 m/s with a wandering heading."""
    lat0, lat1, lon0, lon1 = REGION
    lat, lon = np.empty(n), np.empty(n)
    la, lo, heading = (lat0 + lat1) / 2, (lon0 + lon1) / 2, 0.0
    for i in range(n):
        heading += rng.normal(0, 0.15)
        step = rng.uniform(15, 35)
        la += step * math.cos(heading) / M_PER_DEG
        lo += step * math.sin(heading) / (M_PER_DEG * math.cos(math.radians(la)))
        if not (lat0 < la < lat1 and lon0 < lo < lon1):
            heading += math.pi
            la, lo = min(max(la, lat0), lat1), min(max(lo, lon0), lon1)
        lat[i], lon[i] = la, lo
    accuracy = rng.uniform(3, 30, n)
    return lat, lon, accuracy + 21.0  # reach as the geofence tracker asks: acc + gap + 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fences", type=int, default=100_000)
    parser.add_argument("--fixes", type=int, default=20_000)
    parser.add_argument("--brute-fixes", type=int, default=200)
    parser.add_argument("--seed", type=int, default=20261123)
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)

    start = time.perf_counter()
    doc = make_fences(args.fences, rng)
    lats, lons, reaches = make_track(args.fixes, rng)
    print(f"generated {args.fences:,} fences, {args.fixes:,} fixes: {_since(start):.1f} s")
    start = time.perf_counter()
    fences = parse_fences(doc)
    print(f"parse_fences:  {_since(start):6.2f} s")
    start = time.perf_counter()
    index = FenceIndex(fences)
    print(f"FenceIndex():  {_since(start):6.2f} s")

    live_us, live = [], []
    for lat, lon, reach in zip(lats.tolist(), lons.tolist(), reaches.tolist(), strict=True):
        t0 = time.perf_counter_ns()
        live.append(index.signed_distances(lat, lon, reach))
        live_us.append((time.perf_counter_ns() - t0) / 1000)
    start = time.perf_counter()
    hits = index.signed_distance_pairs(lats, lons, reaches)
    batched_us = _since(start) * 1e6 / args.fixes
    start = time.perf_counter()
    batched = index.hits_to_dicts(hits, args.fixes)
    dicts_us = _since(start) * 1e6 / args.fixes

    n_brute = min(args.brute_fixes, args.fixes)
    brute = []
    start = time.perf_counter()
    for i in range(n_brute):
        d = index.signed_distances_all(float(lats[i]), float(lons[i]))
        near = np.flatnonzero(d <= reaches[i])
        brute.append({index.names[k]: float(d[k]) for k in near})
    brute_us = _since(start) * 1e6 / n_brute

    live_mean = statistics.fmean(live_us)
    inside = sum(any(v < 0 for v in r.values()) for r in live)
    print(
        f"track: {sum(map(len, live)) / args.fixes:.2f} fences within reach per fix, "
        f"{inside:,} fixes inside a fence"
    )
    p99 = float(np.percentile(live_us, 99))
    print(
        f"live     per fix: median {statistics.median(live_us):7.1f} us, mean {live_mean:7.1f} us"
        f", 99th percentile {p99:.1f} us"
    )
    print(f"batched  per fix: {batched_us:7.2f} us (+ {dicts_us:.2f} us to build dicts)")
    print(f"brute    per fix: {brute_us:9.1f} us (over {n_brute} fixes, all fences each)")
    print(f"ratios: live/brute {live_mean / brute_us:.5f} ({brute_us / live_mean:,.0f}x faster)")
    print(
        f"        batched/brute {batched_us / brute_us:.6f} ({brute_us / batched_us:,.0f}x faster)"
    )

    worst_live, worst_brute, pairs = 0.0, 0.0, 0
    for i in range(args.fixes):
        assert live[i].keys() == batched[i].keys(), i
        assert i >= n_brute or live[i].keys() == brute[i].keys(), i
        for name, value in live[i].items():
            worst_live = max(worst_live, abs(value - batched[i][name]))
            if i < n_brute:
                worst_brute = max(worst_brute, abs(value - brute[i][name]))
        pairs += len(live[i])
    print(
        f"agree: the same {pairs:,} (fix, fence) pairs live and batched, largest difference "
        f"{worst_live:.1e} m; brute force on the first {n_brute} fixes: {worst_brute:.1e} m"
    )


def _since(start: float) -> float:
    return time.perf_counter() - start


if __name__ == "__main__":
    main()
