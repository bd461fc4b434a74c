"""Stage 2: the fence index. Signed distances from fixes to any number of fences, one fix at
a time (live) or in batches (replay), each fence measured in its own local frame."""

from __future__ import annotations

import logging
import math
from collections import Counter
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
import numpy.typing as npt
import shapely

from agent.detect import frames
from agent.detect.fences import Fence, localize
from agent.errors import ConfigError

logger = logging.getLogger(__name__)

#: Polygon distances are measured in the fence's plane: d metres from its centre they come out
#: longer than true by about d^3/(12 R^2), so 0.1 m at 35 km, 2 m at 100 km, 2 km at 1000 km
#: (circles are exact at any distance). Past this reach nothing is measured.
MAX_REACH_M = 1_000_000.0
#: Up to this many candidates the live path measures one by one; past it, vectorised.
_FEW = 8


class FenceHits(NamedTuple):
    """Batched results, one row per (fix, fence) pair within reach, sorted by fix then fence."""

    fix: npt.NDArray[np.intp]
    fence: npt.NDArray[np.intp]
    distance_m: npt.NDArray[np.float64]


class FenceIndex:
    """Signed distances in metres from fixes to fences: negative inside (minus the distance to
    the boundary), positive outside. Candidates come from an STRtree over each fence's lat/lon
    box; each candidate is measured exactly in its own frame (circles analytically, polygons
    with shapely on prepared geometries)."""

    def __init__(self, fences: Sequence[Fence]) -> None:
        self._fences = list(fences)
        self._names = tuple(f.name for f in self._fences)
        self._by_name = {name: i for i, name in enumerate(self._names)}
        if len(self._by_name) != len(self._names):
            dup = next(n for n, count in Counter(self._names).items() if count > 1)
            raise ConfigError("<fences>", dup, "duplicate name")
        local = localize(self._fences, "<fences>", check=True)
        rot, off, two_r = frames.frames(local.lat, local.lon)
        # One row per fence (rotation, offset, 2R) for the live path, and views into it.
        self._frame = np.column_stack([rot.reshape(-1, 9), off, two_r])
        self._rot = self._frame[:, :9].reshape(-1, 3, 3)
        self._off, self._two_r = self._frame[:, 9:12], self._frame[:, 12]
        self._circle = np.array([shape is None for shape in local.shape], dtype=bool)
        self._radius = np.array([f.radius_m or 0.0 for f in self._fences], dtype=np.float64)
        # Polygons apart, in slots of their own: shapely's array functions take them as is.
        self._slot = np.cumsum(~self._circle) - 1
        self._area = local.shape[~self._circle]
        shapely.prepare(self._area)
        self._edge = shapely.boundary(self._area)
        boxes, self._box_fence = frames.cap_boxes(local.lat, local.lon, local.rho_m)
        self._tree = shapely.STRtree(np.asarray(shapely.box(*boxes.T)))
        logger.debug("fence index: %d fences, %d boxes", len(self), len(boxes))

    @property
    def names(self) -> tuple[str, ...]:
        return self._names

    def __len__(self) -> int:
        return len(self._fences)

    def fence(self, name: str) -> Fence:
        return self._fences[self._by_name[name]]

    def dwell_s(self, name: str) -> float | None:
        return self.fence(name).dwell_s

    def signed_distances(self, lat: float, lon: float, reach_m: float) -> dict[str, float]:
        """Every fence whose boundary is within ``reach_m`` of the fix or that contains it, with
        its signed distance. Fences left out are farther than ``reach_m`` outside. One fix: the
        live path. ``reach_m`` must be within [0, MAX_REACH_M] (ValueError)."""
        if not 0.0 <= reach_m <= MAX_REACH_M:
            _check_reach(np.array([reach_m]))
        boxes = frames.cap_box_one(lat, lon, reach_m)
        if len(boxes) == 1:
            hits = self._tree.query(shapely.box(*boxes[0]))
        else:
            hits = self._tree.query(shapely.box(*np.array(boxes).T))[1]
        if not len(hits):
            return {}
        p = frames.ecef_one(lat, lon)
        candidates = set(self._box_fence[hits].tolist())
        if len(candidates) > _FEW:
            idx = np.fromiter(candidates, np.intp, len(candidates))
            dist = self._distances(idx, np.broadcast_to(np.array(p), (len(idx), 3)))
            keep = np.flatnonzero(dist <= reach_m)
            return {self._names[idx[k]]: float(dist[k]) for k in keep.tolist()}
        # Few candidates: plain floats and one shapely call each beat numpy's per-call cost.
        out: dict[str, float] = {}
        for i in candidates:
            x, y = frames.project_one(self._frame[i].tolist(), p)
            if self._circle[i]:
                two_r = float(self._two_r[i])
                d = two_r * math.atan(math.hypot(x, y) / two_r) - float(self._radius[i])
            else:
                slot = self._slot[i]
                d = float(shapely.distance(self._edge[slot], shapely.Point(x, y)))
                if shapely.contains_xy(self._area[slot], x, y):
                    d = -d
            if d <= reach_m:
                out[self._names[i]] = d
        return out

    def signed_distance_pairs(
        self, lats: npt.ArrayLike, lons: npt.ArrayLike, reaches_m: npt.ArrayLike
    ) -> FenceHits:
        """``signed_distances`` for many fixes at once (the replay path), as (fix, fence,
        distance) arrays: one STRtree query, one projection and one shapely call per kind."""
        lat, lon = np.asarray(lats, np.float64), np.asarray(lons, np.float64)
        reach = np.broadcast_to(np.asarray(reaches_m, np.float64), lat.shape)
        _check_reach(reach)
        n = max(len(self), 1)
        boxes, owner = frames.cap_boxes(lat, lon, reach)
        q = self._tree.query(shapely.box(*boxes.T))
        fix, fence = np.divmod(np.unique(owner[q[0]] * n + self._box_fence[q[1]]), n)
        d = self._distances(fence, frames.ecef(lat, lon)[fix])
        keep = d <= reach[fix]
        return FenceHits(fix[keep], fence[keep], d[keep])

    def signed_distances_many(
        self, lats: npt.ArrayLike, lons: npt.ArrayLike, reaches_m: npt.ArrayLike
    ) -> list[dict[str, float]]:
        hits = self.signed_distance_pairs(lats, lons, reaches_m)
        return self.hits_to_dicts(hits, len(np.atleast_1d(np.asarray(lats))))

    def hits_to_dicts(self, hits: FenceHits, n_fixes: int) -> list[dict[str, float]]:
        out: list[dict[str, float]] = [{} for _ in range(n_fixes)]
        for i, k, d in zip(
            hits.fix.tolist(), hits.fence.tolist(), hits.distance_m.tolist(), strict=True
        ):
            out[i][self._names[k]] = d
        return out

    def signed_distances_all(self, lat: float, lon: float) -> npt.NDArray[np.float64]:
        """The signed distance to every fence, in ``names`` order, without the index: the
        vectorised brute force the index is checked and benchmarked against."""
        idx = np.arange(len(self))
        return self._distances(idx, np.broadcast_to(frames.ecef(lat, lon), (len(idx), 3)))

    def _distances(
        self, idx: npt.NDArray[np.intp], points: frames.Array
    ) -> npt.NDArray[np.float64]:
        x, y = frames.project(self._rot[idx], self._off[idx], self._two_r[idx], points)
        out = np.empty(len(idx))
        circle = self._circle[idx]
        if circle.any():
            # 2R atan(r / 2R) undoes the stereographic stretch of the distance to the centre.
            two_r = self._two_r[idx[circle]]
            rho = two_r * np.arctan(np.hypot(x[circle], y[circle]) / two_r)
            out[circle] = rho - self._radius[idx[circle]]
        if not circle.all():
            slot, px, py = self._slot[idx[~circle]], x[~circle], y[~circle]
            dist = shapely.distance(self._edge[slot], shapely.points(px, py))
            inside = shapely.contains_xy(self._area[slot], px, py)
            out[~circle] = np.where(inside, -dist, dist)
        return out


def _check_reach(reach: frames.Array) -> None:
    if not np.all((reach >= 0) & (reach <= MAX_REACH_M)):
        raise ValueError(f"reach_m must be within [0, {MAX_REACH_M:g}] m")
