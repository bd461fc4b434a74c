"""Stage 2: fences' local metric frames (WGS84 -> ECEF -> tangent plane) and lat/lon boxes.

Each fence gets its own frame centred on it: geodetic -> ECEF (WGS84, height 0) -> ENU at the
centre (an exact rotation), then the tangent-plane point is scaled by ``2R / (2R + up)``,
which makes it the stereographic projection from the antipode (on the sphere of the centre's
Gaussian radius R). Compared with dropping Up (orthographic), this costs one division and
halves the scale error: the scale is ``1 + d^2/(4R^2)`` in every direction d metres from the
centre (conformal; 8e-6 at 35 km, the farthest a point of a 50 km fence is from it, so < 0.4 m
on any length inside the fence; measured: 0.09 m from the centre, 0.25 m between two points),
and it is one-to-one over the whole globe, so a point on the far side of the Earth can never
land on the fence as it can with orthographic. Per fix it is a few multiply-adds per fence.

Boxes in degrees only pre-select candidates for the STRtree; they are conservative bounds
(a path of length L moves latitude by at most L/M_min and longitude by at most L/(N cos lat)
at the latitude nearest the pole it can reach), so they can only add candidates, never lose one.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
import numpy.typing as npt
import shapely

logger = logging.getLogger(__name__)

Array = npt.NDArray[np.float64]

A_M = 6378137.0  # WGS84 semi-major axis
F = 1 / 298.257223563
E2 = F * (2 - F)
M_MIN_M = A_M * (1 - E2)  # the smallest meridian radius of curvature (at the equator)
#: Slack for the degree boxes: frame lengths differ from true ones by far less than this.
_BOX_SLACK = 1.001
_BOX_PAD_M = 1.0
#: The frame's 1 m guarantee holds up to this size (the largest distance between two points).
MAX_ACROSS_M = 50_000.0
TOO_LARGE = "fences may be at most 50 km across (the local frame's 1 m accuracy stops there)"
#: A point more than about 90 degrees from a fence is "far": its plane coordinates are set here.
FAR_M = 1e9


def ecef(lat_deg: npt.ArrayLike, lon_deg: npt.ArrayLike) -> Array:
    """WGS84 geodetic (degrees, height 0) -> ECEF metres, shape ``(..., 3)``."""
    lat, lon = np.radians(lat_deg), np.radians(lon_deg)
    sin_lat, cos_lat = np.sin(lat), np.cos(lat)
    n = A_M / np.sqrt(1 - E2 * sin_lat * sin_lat)
    out = np.empty((*np.shape(lat), 3))
    out[..., 0] = n * cos_lat * np.cos(lon)
    out[..., 1] = n * cos_lat * np.sin(lon)
    out[..., 2] = n * (1 - E2) * sin_lat
    return out


def frames(lat0_deg: Array, lon0_deg: Array) -> tuple[Array, Array, Array]:
    """Frames centred on each ``(lat0, lon0)``: rotations ``(n, 3, 3)`` (rows east, north, up),
    offsets ``rot @ ecef(centre)`` ``(n, 3)`` and ``2R`` ``(n,)`` (R: the Gaussian radius)."""
    lat, lon = np.radians(lat0_deg), np.radians(lon0_deg)
    sl, cl, so, co = np.sin(lat), np.cos(lat), np.sin(lon), np.cos(lon)
    rot = np.zeros((len(lat), 3, 3))
    rot[:, 0, 0], rot[:, 0, 1] = -so, co
    rot[:, 1, 0], rot[:, 1, 1], rot[:, 1, 2] = -sl * co, -sl * so, cl
    rot[:, 2, 0], rot[:, 2, 1], rot[:, 2, 2] = cl * co, cl * so, sl
    off = np.einsum("kij,kj->ki", rot, ecef(lat0_deg, lon0_deg))
    return rot, off, 2 * A_M * math.sqrt(1 - E2) / (1 - E2 * sl * sl)  # 2 sqrt(M N)


def project(rot: Array, off: Array, two_r: Array, points: Array) -> tuple[Array, Array]:
    """ECEF ``points`` ``(k, 3)``, each into its frame ``rot[k], off[k], two_r[k]`` -> x east,
    y north (metres). Points more than ~90 degrees from their frame's centre come out at
    ``FAR_M`` (so far that no reach gets there)."""
    v = np.einsum("kij,kj->ki", rot, points) - off
    denom = two_r + v[:, 2]
    near = denom > 0.5 * two_r
    scale = two_r / np.where(near, denom, two_r)
    return np.where(near, v[:, 0] * scale, FAR_M), np.where(near, v[:, 1] * scale, FAR_M)


def ecef_one(lat_deg: float, lon_deg: float) -> tuple[float, float, float]:
    """``ecef`` for one point, in plain floats (the live path: numpy's per-call cost is more
    than the arithmetic)."""
    lat, lon = math.radians(lat_deg), math.radians(lon_deg)
    sin_lat, cos_lat = math.sin(lat), math.cos(lat)
    n = A_M / math.sqrt(1 - E2 * sin_lat * sin_lat)
    return n * cos_lat * math.cos(lon), n * cos_lat * math.sin(lon), n * (1 - E2) * sin_lat


def project_one(frame: Sequence[float], p: tuple[float, float, float]) -> tuple[float, float]:
    """``project`` for one point in plain floats; ``frame`` is rot (9, row-major), off (3), 2R."""
    e0, e1, e2, n0, n1, n2, u0, u1, u2, o0, o1, o2, two_r = frame
    vx = e0 * p[0] + e1 * p[1] + e2 * p[2] - o0
    vy = n0 * p[0] + n1 * p[1] + n2 * p[2] - o1
    denom = two_r + (u0 * p[0] + u1 * p[1] + u2 * p[2] - o2)
    if denom <= 0.5 * two_r:
        return FAR_M, FAR_M
    scale = two_r / denom
    return vx * scale, vy * scale


def unproject(rot: Array, off: Array, two_r: Array, x: Array, y: Array) -> tuple[Array, Array]:
    """Plane points, each of its frame, back to (lat, lon) degrees: on the frame's sphere, so
    good to a few metres; used only to place frame centres and to name places in messages."""
    rho = np.hypot(x, y)
    theta = 2 * np.arctan(rho / two_r)
    scale = two_r / 2 * np.sin(theta) / np.where(rho > 0, rho, 1.0)
    local = np.stack([x * scale, y * scale, -two_r / 2 * (1 - np.cos(theta))], axis=-1)
    return _geodetic(np.einsum("kji,kj->ki", rot, local + off))  # rot is orthonormal


def _geodetic(p: Array) -> tuple[Array, Array]:
    """ECEF near the surface -> (lat, lon) degrees; exact at height 0."""
    lat = np.degrees(np.arctan2(p[..., 2], np.hypot(p[..., 0], p[..., 1]) * (1 - E2)))
    return lat, np.degrees(np.arctan2(p[..., 1], p[..., 0]))


def cap_boxes(lat: Array, lon: Array, dist_m: Array) -> tuple[Array, npt.NDArray[np.intp]]:
    """Lat/lon boxes ``(k, 4)`` (lon_min, lat_min, lon_max, lat_max) holding every point within
    ``dist_m`` of each ``(lat, lon)``, and the index of the point each box is for. A range
    crossing the antimeridian is split in two; one reaching near a pole takes every longitude."""
    reach = dist_m * _BOX_SLACK + _BOX_PAD_M
    dlat = np.degrees(reach / M_MIN_M)
    lat_lo, lat_hi = lat - dlat, lat + dlat
    polar = (lat_hi >= 90.0) | (lat_lo <= -90.0)
    far = np.radians(np.minimum(np.maximum(np.abs(lat_lo), np.abs(lat_hi)), 90.0))
    parallel = A_M / np.sqrt(1 - E2 * np.sin(far) ** 2) * np.cos(far)  # N cos(lat)
    full = polar | (reach >= math.pi * parallel)
    dlon = np.where(full, 180.0, np.degrees(reach / np.where(full, 1.0, parallel)))
    lo = np.where(full, -180.0, lon - dlon)
    hi = np.where(full, 180.0, lon + dlon)
    lat_lo, lat_hi = np.maximum(lat_lo, -90.0), np.minimum(lat_hi, 90.0)
    owner = np.arange(len(lat))
    main = np.stack([np.maximum(lo, -180.0), lat_lo, np.minimum(hi, 180.0), lat_hi], axis=-1)
    west, east = lo < -180.0, hi > 180.0
    wrap_w = np.stack([lo[west] + 360.0, lat_lo[west], np.full(west.sum(), 180.0), lat_hi[west]])
    wrap_e = np.stack([np.full(east.sum(), -180.0), lat_lo[east], hi[east] - 360.0, lat_hi[east]])
    boxes = np.concatenate([main, wrap_w.T, wrap_e.T])
    return boxes, np.concatenate([owner, owner[west], owner[east]])


def cap_box_one(lat: float, lon: float, dist_m: float) -> list[tuple[float, float, float, float]]:
    """``cap_boxes`` for one point, in plain floats (the live path: no numpy overhead)."""
    reach = dist_m * _BOX_SLACK + _BOX_PAD_M
    dlat = math.degrees(reach / M_MIN_M)
    lat_lo, lat_hi = lat - dlat, lat + dlat
    if lat_hi >= 90.0 or lat_lo <= -90.0:
        return [(-180.0, max(lat_lo, -90.0), 180.0, min(lat_hi, 90.0))]
    far = math.radians(max(abs(lat_lo), abs(lat_hi)))
    parallel = A_M / math.sqrt(1 - E2 * math.sin(far) ** 2) * math.cos(far)
    if reach >= math.pi * parallel:
        return [(-180.0, lat_lo, 180.0, lat_hi)]
    dlon = math.degrees(reach / parallel)
    lo, hi = lon - dlon, lon + dlon
    boxes = [(max(lo, -180.0), lat_lo, min(hi, 180.0), lat_hi)]
    if lo < -180.0:
        boxes.append((lo + 360.0, lat_lo, 180.0, lat_hi))
    if hi > 180.0:
        boxes.append((-180.0, lat_lo, hi - 360.0, lat_hi))
    return boxes


class LocalPolygons(NamedTuple):
    """Polygon fences in their own frames: centres (degrees), the shapes in plane metres, a
    radius around each centre that holds all of it, and per fence a problem (or None)."""

    lat: Array
    lon: Array
    shape: npt.NDArray[np.object_]
    rho_m: Array
    problem: list[str | None]


def local_polygons(polygons: Sequence[list[list[Array]]], kinds: Sequence[str]) -> LocalPolygons:
    """Fences given as polygons -> rings -> ``(k, 2)`` lon/lat arrays (closed), ``kinds``
    "Polygon" (one polygon) or "MultiPolygon"; all at once, vectorised over every vertex.
    Each is checked for size, and for validity in its own plane metres (GEOS)."""
    m = len(polygons)
    parts_all = [part for fence in polygons for part in fence]
    rings = [ring for part in parts_all for ring in part]
    ring_part = np.repeat(np.arange(len(parts_all)), [len(part) for part in parts_all])
    part_fence = np.repeat(np.arange(m), [len(fence) for fence in polygons])
    ring_len = np.array([len(r) for r in rings])
    vertex_fence = np.repeat(part_fence[ring_part], ring_len)
    starts = np.searchsorted(vertex_fence, np.arange(m))
    points = ecef(*np.concatenate(rings)[:, ::-1].T)
    mean = np.add.reduceat(points, starts) / np.bincount(vertex_fence, minlength=m)[:, None]
    problem: list[str | None] = [None] * m
    for i in np.flatnonzero(np.linalg.norm(mean, axis=1) < A_M / 2).tolist():
        problem[i], mean[i] = f"spans half the globe; {TOO_LARGE}", (A_M, 0.0, 0.0)
    # The final frames are centred on each fence's box in a first frame (at the mean of the
    # vertices): no point is then farther than D/sqrt(2) (35 km) from the centre.
    first = frames(*_geodetic(mean))
    x, y = project(first[0][vertex_fence], first[1][vertex_fence], first[2][vertex_fence], points)
    x0, x1 = np.minimum.reduceat(x, starts), np.maximum.reduceat(x, starts)
    y0, y1 = np.minimum.reduceat(y, starts), np.maximum.reduceat(y, starts)
    for i in np.flatnonzero(np.hypot(x1 - x0, y1 - y0) > MAX_ACROSS_M).tolist():
        own = slice(starts[i], starts[i + 1] if i + 1 < m else len(x))
        hull = shapely.convex_hull(shapely.multipoints(np.column_stack([x[own], y[own]])))
        across = _diameter(shapely.get_coordinates(hull))
        if across > MAX_ACROSS_M and problem[i] is None:
            problem[i] = f"is {across / 1000:.1f} km across; {TOO_LARGE}"
    lat, lon = unproject(*first, (x0 + x1) / 2, (y0 + y1) / 2)
    final = frames(lat, lon)
    x, y = project(final[0][vertex_fence], final[1][vertex_fence], final[2][vertex_fence], points)
    ring_ids = np.repeat(np.arange(len(rings)), ring_len)
    edges = np.asarray(shapely.linearrings(np.column_stack([x, y]), indices=ring_ids))
    parts = np.asarray(shapely.polygons(edges, indices=ring_part))
    shape = np.empty(m, dtype=object)
    multi = np.array([kind == "MultiPolygon" for kind in kinds], dtype=bool)
    single = ~multi[part_fence]
    shape[part_fence[single]] = parts[single]
    if multi.any():
        owners, slots = np.unique(part_fence[~single], return_inverse=True)
        shape[owners] = shapely.multipolygons(parts[~single], indices=slots)
    for i, reason in enumerate(shapely.is_valid_reason(shape)):
        if reason != "Valid Geometry" and problem[i] is None:
            where = (final[0][i : i + 1], final[1][i : i + 1], final[2][i : i + 1])
            problem[i] = f"{kinds[i]} is not valid: {_placed(str(reason), where)}"
    return LocalPolygons(lat, lon, shape, np.maximum.reduceat(np.hypot(x, y), starts), problem)


def _diameter(xy: Array) -> float:
    """The largest distance between two of the points (hull vertices: few), in chunks."""
    best = 0.0
    for i in range(0, len(xy), 256):
        dx, dy = (
            xy[i : i + 256, None, 0] - xy[None, :, 0],
            xy[i : i + 256, None, 1] - xy[None, :, 1],
        )
        best = max(best, float(np.hypot(dx, dy).max()))
    return best


def _placed(reason: str, where: tuple[Array, Array, Array]) -> str:
    """GEOS's reason with its plane coordinates (in frame ``where``) turned into lat/lon."""

    def place(match: re.Match[str]) -> str:
        lat, lon = unproject(*where, np.array([float(match[1])]), np.array([float(match[2])]))
        return f" near lat {float(lat[0]):.6f}, lon {float(lon[0]):.6f}"

    return re.sub(r"\[(\S+) (\S+)\]", place, reason)
