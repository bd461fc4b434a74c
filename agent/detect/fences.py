"""Stage 2: fences. GeoJSON in, validated fences, and an index of signed distances from fixes.

Pure geometry: no I/O beyond the text or dict given, no clock. Each fence is measured in its own
local metric frame (``frames.py``: error <= 1 m for fences up to 50 km across, anywhere on
Earth); candidates come from an STRtree over lat/lon boxes, so the number of fences is not
limited. Polygon edges are geodesics (straight lines in the fence's frame), not straight lines
in degrees: on a 50 km east-west edge they are 49 m apart at 45 degrees, 85 m at 60.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
import numpy.typing as npt

from agent.detect import frames
from agent.errors import ConfigError
from agent.numbers import is_number

logger = logging.getLogger(__name__)

_KINDS = ("Point", "Polygon", "MultiPolygon")

#: Limits that keep a fence, and a file of fences, to seconds of work, with room to spare.
#: Checking a polygon's validity grows faster than its vertices: on a 2-core machine a fence
#: of 10,000 takes about 0.5 s to check and index, one of 100,000 about 25 s. A fence is at
#: most 50 km across, so 10,000 vertices is one every 15 m along a 150 km outline: simplify
#: anything finer. A circle (a Point) counts as one vertex.
MAX_VERTICES = 10_000
#: Per file: 100,000 fences (bench/geofence.py's set: read, checked and indexed in seconds)
#: and 1,000,000 vertices in all (that set has about 400,000).
MAX_FENCES_PER_FILE = 100_000
MAX_VERTICES_PER_FILE = 1_000_000
MAX_NAME_CHARS = 200
#: A circle smaller than a metre can never be entered: no fix is that accurate. The largest
#: is 25 km (fences are at most 50 km across: ``frames.MAX_ACROSS_M``).
MIN_RADIUS_M = 1.0
MAX_DWELL_S = 7 * 86_400.0


@dataclass(frozen=True)
class Fence:
    """One named fence. ``geometry`` is the GeoJSON geometry as given (lon/lat degrees): a Point
    with ``radius_m`` (a circle, metres), a Polygon or a MultiPolygon. ``dwell_s`` (seconds)
    overrides the default time inside before ``geofence.dwell``."""

    name: str
    geometry: dict[str, Any]
    radius_m: float | None = None
    dwell_s: float | None = None


class _Invalid(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def parse_fences(
    geojson: str | Mapping[str, Any],
    source: str = "<fences>",
    *,
    max_fences: int | None = None,
    max_vertices: int | None = None,
) -> list[Fence]:
    """A FeatureCollection (or one Feature) -> fences, or ``ConfigError(source, name, reason)``.

    A file's fences also keep within ``max_fences`` and ``max_vertices`` in all (the fences
    table, filled by many imports, does not)."""
    doc: Any = geojson
    if isinstance(geojson, str):
        try:
            doc = json.loads(geojson)
        except RecursionError:
            raise ConfigError(source, "", "not valid GeoJSON: nested too deeply") from None
        except ValueError as exc:  # JSONDecodeError, or an integer of more than 4300 digits
            raise ConfigError(source, "", f"not valid JSON: {exc}") from None
    kind = doc.get("type") if isinstance(doc, Mapping) else type(doc).__name__
    if kind == "Feature":
        features = [doc]
    elif kind == "FeatureCollection" and isinstance(doc.get("features"), list):
        features = doc["features"]
    else:
        kind = _show(kind)
        raise ConfigError(source, "", f"expected a GeoJSON FeatureCollection or Feature: {kind}")
    if max_fences is not None and len(features) > max_fences:
        reason = f"{len(features):,} fences; at most {max_fences:,} in one file: split it"
        raise ConfigError(source, "", reason)
    if max_vertices is not None:
        geometries = (f.get("geometry") for f in features if isinstance(f, Mapping))
        vertices = sum(_vertices(g) for g in geometries if isinstance(g, Mapping))
        if vertices > max_vertices:
            reason = f"{vertices:,} vertices; at most {max_vertices:,} in one file: split it"
            raise ConfigError(source, "", reason)
    fences: list[Fence] = []
    seen: dict[str, int] = {}
    for number, feature in enumerate(features, 1):
        label = f"feature #{number}"
        try:
            label = _name(feature)
            if label in seen:
                raise _Invalid(f"duplicate name (feature #{seen[label]} has it too)")
            seen[label] = number
            fences.append(_fence(label, feature))
        except _Invalid as exc:
            raise ConfigError(source, label, exc.reason) from None
        except RecursionError:
            raise ConfigError(source, label, "nested too deeply to be GeoJSON") from None
    localize(fences, source)
    return fences


def fence_to_feature(fence: Fence) -> dict[str, Any]:
    """The GeoJSON Feature ``parse_fences`` reads back as this fence."""
    properties: dict[str, Any] = {"name": fence.name}
    if fence.radius_m is not None:
        properties["radius_m"] = fence.radius_m
    if fence.dwell_s is not None:
        properties["dwell_s"] = fence.dwell_s
    return {"type": "Feature", "properties": properties, "geometry": _copy(fence.geometry)}


def _copy(value: Any) -> Any:
    """A deep copy of JSON-like data (much faster than ``copy.deepcopy`` for 100,000 fences)."""
    if isinstance(value, float | int | str | None):  # most values: numbers, before the ABCs
        return value
    if isinstance(value, list | tuple):
        return [_copy(v) for v in value]
    if isinstance(value, dict | Mapping):
        return {k: _copy(v) for k, v in value.items()}
    return value


def _finite(value: Any) -> bool:
    """A finite number (an integer beyond any float is not)."""
    try:
        return is_number(value) and math.isfinite(value)
    except OverflowError:
        return False


def _show(value: Any) -> str:
    """A short repr for messages: never a control character or a lone surrogate, never huge."""
    if isinstance(value, int) and abs(value) >= 10**20:
        return f"an integer of {value.bit_length()} bits"
    try:
        text = repr(value)
    except (RecursionError, ValueError):  # nested too deeply, or too many digits
        return f"a {type(value).__name__}"
    return text if len(text) <= 60 else f"{text[:50]}... ({len(text)} characters)"


def _name(feature: Any) -> str:
    if not isinstance(feature, Mapping) or feature.get("type") != "Feature":
        raise _Invalid("is not a GeoJSON Feature")
    props = feature.get("properties")
    name = props.get("name") if isinstance(props, Mapping) else None
    if not isinstance(name, str) or not name.strip():
        raise _Invalid("needs properties.name, a non-empty string")
    if len(name) > MAX_NAME_CHARS:
        raise _Invalid(f"properties.name has {len(name):,} characters; at most {MAX_NAME_CHARS}")
    if not name.isprintable():  # a lone surrogate, a control or invisible character
        raise _Invalid(f"properties.name {_show(name)} must be printable text (valid Unicode)")
    return name


def _fence(name: str, feature: Mapping[str, Any]) -> Fence:
    props = feature["properties"]
    geometry = feature.get("geometry")
    if not isinstance(geometry, Mapping):
        raise _Invalid("has no geometry")
    radius, dwell = props.get("radius_m"), props.get("dwell_s")
    _check(geometry, radius, dwell)
    return Fence(
        name,
        {"type": geometry["type"], "coordinates": _copy(geometry.get("coordinates"))},
        None if radius is None else float(radius),
        None if dwell is None else float(dwell),
    )


def _check(geometry: Mapping[str, Any], radius: Any, dwell: Any) -> None:
    """The kind, size and properties, as given in GeoJSON or to ``Fence`` directly; the
    coordinates are read later, all at once (``localize``)."""
    kind = geometry.get("type")
    if kind not in _KINDS:
        raise _Invalid(
            f"unsupported geometry type {_show(kind)}: use a Point with properties.radius_m, "
            "a Polygon or a MultiPolygon"
        )
    count = _vertices(geometry)
    if count > MAX_VERTICES:
        raise _Invalid(f"has {count:,} vertices; at most {MAX_VERTICES:,} per fence: simplify it")
    if kind == "Point" and radius is None:
        raise _Invalid("a Point fence needs properties.radius_m (the circle's radius in metres)")
    if kind != "Point" and radius is not None:
        raise _Invalid("properties.radius_m is only for Point fences (circles)")
    if radius is not None and not (_finite(radius) and radius >= MIN_RADIUS_M):
        radius = _show(radius)
        raise _Invalid(f"properties.radius_m must be a number >= {MIN_RADIUS_M:g}, got {radius}")
    if dwell is not None and not (_finite(dwell) and 0 <= dwell <= MAX_DWELL_S):
        raise _Invalid(
            f"properties.dwell_s must be a number from 0 to {MAX_DWELL_S:,.0f} (a week), "
            f"got {_show(dwell)}"
        )


def _position(value: Any, where: str) -> tuple[float, float]:
    if not isinstance(value, list | tuple) or len(value) < 2 or not all(map(is_number, value)):
        raise _Invalid(f"{where}: position {_show(value)} is not [lon, lat] numbers")
    if not (_finite(value[0]) and _finite(value[1])):
        raise _Invalid(f"{where}: position {_show(value)} is not finite")
    lon, lat = float(value[0]), float(value[1])
    if not -180.0 <= lon <= 180.0:
        raise _Invalid(f"{where}: longitude {lon} is out of range [-180, 180]")
    if not -90.0 <= lat <= 90.0:
        raise _Invalid(f"{where}: latitude {lat} is out of range [-90, 90]")
    return lon, lat


def _polygons(geometry: Mapping[str, Any]) -> list[list[frames.Array]]:
    """Polygon or MultiPolygon coordinates -> polygons -> rings -> ``(k, 2)`` lon/lat arrays."""
    coords = geometry.get("coordinates")
    multi = geometry["type"] == "MultiPolygon"
    if not isinstance(coords, list) or not coords:
        raise _Invalid(f"a {geometry['type']} needs a non-empty list of coordinates")
    polygons = coords if multi else [coords]
    out: list[list[frames.Array]] = []
    for p, rings in enumerate(polygons, 1):
        if not isinstance(rings, list) or not rings:
            raise _Invalid(f"polygon {p} has no rings")
        out.append([])
        for r, ring in enumerate(rings, 1):
            where = f"polygon {p}, ring {r}" if multi else f"ring {r}"
            if not isinstance(ring, list) or len(ring) < 4:
                raise _Invalid(f"{where} needs at least 4 positions (the first repeated last)")
            xy = np.array([_position(v, where) for v in ring])
            if not np.array_equal(xy[0], xy[-1]):
                raise _Invalid(f"{where} is not closed: its last position differs from its first")
            out[-1].append(xy)
    return out


def _vertices(geometry: Mapping[str, Any]) -> int:
    """The positions of a geometry, counted before any is read (a Point is one)."""
    coords = geometry.get("coordinates")
    if geometry.get("type") == "Point" or not isinstance(coords, list):
        return 1
    polygons = coords if geometry.get("type") == "MultiPolygon" else [coords]
    rings = (ring for p in polygons if isinstance(p, list) for ring in p if isinstance(ring, list))
    return sum(map(len, rings))


class Located(NamedTuple):
    lat: frames.Array
    lon: frames.Array
    shape: npt.NDArray[np.object_]  # polygons in plane metres; None for circles
    rho_m: frames.Array  # every point of a fence is this close to its centre


def localize(fences: Sequence[Fence], source: str, *, check: bool = False) -> Located:
    """Every fence in its own frame, checked (coordinates, size, validity; properties too with
    ``check``): polygons all at once, vectorised, as numpy's per-call cost would dominate one
    by one (100,000 fences in seconds)."""
    n = len(fences)
    lat, lon, rho = np.zeros(n), np.zeros(n), np.zeros(n)
    polygons: list[list[list[frames.Array]]] = []
    poly_ids = []
    for i, fence in enumerate(fences):
        try:
            if check:
                _check(fence.geometry, fence.radius_m, fence.dwell_s)
            if fence.geometry.get("type") == "Point":
                lon[i], lat[i] = _position(fence.geometry.get("coordinates"), "Point")
                rho[i] = radius = fence.radius_m or 0.0
                if 2 * radius > frames.MAX_ACROSS_M:
                    across = f"{radius / 500:g} km across"
                    raise _Invalid(f"radius_m {radius:g} is {across}; {frames.TOO_LARGE}")
            else:
                polygons.append(_polygons(fence.geometry))
                poly_ids.append(i)
        except _Invalid as exc:
            raise ConfigError(source, fence.name, exc.reason) from None
    shape = np.full(n, None, dtype=object)
    if polygons:
        kinds = [fences[i].geometry["type"] for i in poly_ids]
        local = frames.local_polygons(polygons, kinds)
        for i, problem in zip(poly_ids, local.problem, strict=True):
            if problem is not None:
                raise ConfigError(source, fences[i].name, problem)
        lat[poly_ids], lon[poly_ids], rho[poly_ids] = local.lat, local.lon, local.rho_m
        shape[poly_ids] = local.shape
    return Located(lat, lon, shape, rho)
