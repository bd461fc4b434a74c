"""Stage 2, learned places: location samples -> stay points -> places, place.* events. No I/O."""

from __future__ import annotations

import logging
import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from agent.numbers import finite_float
from agent.samples import Event, Sample

logger = logging.getLogger(__name__)

#: The WGS84 mean radius R1 = (2a + b) / 3. Haversine on this sphere differs from the
#: ellipsoidal geodesic by at most about 0.56 % (the meridional radius of curvature at the
#: equator, 6,335,439 m, is the farthest from R1): under 0.6 m at the 100 m scale used here.
EARTH_RADIUS_M = 6_371_008.8

#: trackintel's ``gap_threshold`` default (15 min, ``generate_staypoints``): consecutive usable
#: fixes further apart than this cut the stay, as nobody knows where the person was meanwhile.
DEFAULT_MAX_GAP_S = 900.0
#: An arrival is *settled* once the first place was learned this long before it: in the first
#: day every place is new (home, the office, the shop), which is the routine being learned,
#: not an unusual place (the default ``new_place`` rule asks for settled arrivals).
SETTLED_S = 86_400.0

_Vec = tuple[float, float, float]
#: ``PlaceLearner.where()``: the stay's place once arrived, and the last usable fix's time.
Where = tuple[int | None, float | None]


def distance_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance (haversine on the WGS84 mean sphere), metres; well conditioned
    for short distances and across the antimeridian."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    h = (
        math.sin((p2 - p1) / 2) ** 2
        + math.cos(p1) * math.cos(p2) * math.sin(math.radians(lon2 - lon1) / 2) ** 2
    )
    return 2 * EARTH_RADIUS_M * math.asin(math.sqrt(min(1.0, h)))


def _unit(lat: float, lon: float) -> _Vec:
    p, q = math.radians(lat), math.radians(lon)
    return (math.cos(p) * math.cos(q), math.cos(p) * math.sin(q), math.sin(p))


def _latlon(v: _Vec) -> tuple[float, float]:
    """The direction of ``v`` (any length > 0) as degrees; the mean of unit vectors is the
    centre on the sphere, with no wrap-around at +-180 degrees longitude."""
    x, y, z = v
    return math.degrees(math.atan2(z, math.hypot(x, y))), math.degrees(math.atan2(y, x))


@dataclass(frozen=True)
class Place:
    """A learned place: stay points whose centres fell within ``radius_m`` of its centre.

    ``lat``/``lon`` is the dwell-weighted mean (on the sphere) of its finished stays' centres
    (the first stay's partial centre until that stay ends). ``radius_m`` is the matching radius,
    ``merge_m`` when the place was learned. ``visits`` counts arrivals (a visit counts from its
    ``place.arrive``); ``dwell_s`` sums finished stays' dwell. ``first_t`` is the first stay's
    start; ``last_t`` the latest arrival or, once that stay ended, its last fix (sample time).
    Two places whose centres drift closer than ``radius_m`` stay two: ids are never reused
    or merged, as events and the store refer to them.
    """

    id: int
    lat: float
    lon: float
    radius_m: float
    visits: int
    dwell_s: float
    first_t: float
    last_t: float

    @property
    def name(self) -> str:
        """The events' subject: ``place-<id>``."""
        return f"place-{self.id}"


@dataclass(frozen=True)
class Stay:
    """The stay in progress: fixes since ``since`` (its anchor) all within ``dist_m`` of the
    anchor; ``place_id`` is set once it lasted ``min_stay_s`` (``place.arrive`` was sent)."""

    since: float
    last_t: float
    lat: float
    lon: float
    fixes: int
    place_id: int | None
    arrived_t: float | None


class PlaceLearner:
    """Online stay points (trackintel's ``sliding`` method, after Li et al. 2008) -> places.

    The first usable fix is the *anchor*. Each next fix within ``dist_m`` of the anchor joins
    the stay; the first one at least ``min_stay_s`` after the anchor sends ``place.arrive`` at
    its time, for the known place whose centre is nearest the stay's centre within its
    ``radius_m``, or for a new place. The first fix ``dist_m`` or more from the anchor ends the
    stay (``place.leave`` at its time if the stay had arrived; the dwell runs from the anchor
    to the stay's last fix) and becomes the next anchor. Differences from trackintel, which
    sees the whole track at once:

    * a stay counts once *observed* for ``min_stay_s`` (a fix inside that late); trackintel
      also accepts a stay whose first fix *outside* is ``min_stay_s`` after the anchor, taking
      the person as stationary until then, and ends its staypoint at that fix;
    * a gap longer than ``max_gap_s`` between usable fixes ends the stay (``place.leave`` with
      ``reason`` ``gap`` if it had arrived) and the fix after it is the next anchor; trackintel
      drops a staypoint in progress at a gap, but an online ``place.arrive`` cannot be taken
      back;
    * fixes whose ``accuracy_m`` exceeds ``dist_m`` are ignored (counted in ``skipped``): their
      error alone could move them out of the stay. They neither extend nor end a stay, and
      the gap is measured between usable fixes, so a long run of poor fixes is a gap too.

    Events depend only on the samples' contents and times, so a replay gives the same events.
    """

    def __init__(
        self,
        dist_m: float = 100.0,
        min_stay_s: float = 300.0,
        merge_m: float = 100.0,
        max_gap_s: float = DEFAULT_MAX_GAP_S,
    ) -> None:
        self.dist_m = dist_m
        self.min_stay_s = min_stay_s
        self.merge_m = merge_m
        self.max_gap_s = max_gap_s
        #: Location samples not used, per reason (``poor_accuracy``, ``no_fix``, ``time_backward``).
        self.skipped: Counter[str] = Counter()
        self._places: dict[int, Place] = {}
        self._next_id = 1
        self._prev_t: float | None = None  # the last usable fix
        self._anchor: tuple[float, float, float] | None = None  # t, lat, lon
        self._sum: _Vec = (0.0, 0.0, 0.0)  # of the stay's fixes' unit vectors
        self._fixes = 0
        self._last_t = 0.0  # the stay's last fix
        self._place_id: int | None = None
        self._arrived_t: float | None = None

    @property
    def places(self) -> list[Place]:
        """Every learned place, by id."""
        return [self._places[k] for k in sorted(self._places)]

    @property
    def stay(self) -> Stay | None:
        """The stay in progress, if any."""
        if self._anchor is None:
            return None
        lat, lon = _latlon(self._sum)
        return Stay(
            self._anchor[0], self._last_t, lat, lon, self._fixes, self._place_id, self._arrived_t
        )

    def where(self) -> Where:
        """The place of the stay in progress once it arrived there (None: none yet) and the
        time of the last usable fix (None: none)."""
        return self._place_id, self._prev_t

    def place_at(self, where: Where, t: float) -> int | None:
        """The place ``where()`` said, at time ``t``: None once its last usable fix is more
        than ``max_gap_s`` old (a gap that long ends the stay when the next fix comes)."""
        place, fix_t = where
        if place is None or fix_t is None or t - fix_t > self.max_gap_s:
            return None
        return place

    def feed(self, sample: Sample) -> list[Event]:
        """The ``place.*`` events this sample causes; samples of other sensors give ``[]``."""
        if sample.sensor != "location":
            return []
        lat, lon, acc = (finite_float(sample.data.get(k)) for k in ("lat", "lon", "accuracy_m"))
        if lat is None or lon is None:
            self.skipped["no_fix"] += 1
            return []
        if acc is not None and acc > self.dist_m:
            self.skipped["poor_accuracy"] += 1
            return []
        t = sample.t
        if self._prev_t is not None and t < self._prev_t:
            self.skipped["time_backward"] += 1
            return []
        gap_s = None if self._prev_t is None else t - self._prev_t
        self._prev_t = t
        events: list[Event] = []
        if self._anchor is None or gap_s is None:
            self._start(t, lat, lon)
        elif gap_s > self.max_gap_s:
            if self._place_id is not None:
                events.append(self._leave(t, "gap"))
            self._start(t, lat, lon)
        elif distance_m(self._anchor[1], self._anchor[2], lat, lon) >= self.dist_m:
            if self._place_id is not None:
                events.append(self._leave(t, "moved"))
            self._start(t, lat, lon)
        else:
            x, y, z = _unit(lat, lon)
            self._sum = (self._sum[0] + x, self._sum[1] + y, self._sum[2] + z)
            self._fixes += 1
            self._last_t = t
            if self._place_id is None and t - self._anchor[0] >= self.min_stay_s:
                events.append(self._arrive(t))
        return events

    def _start(self, t: float, lat: float, lon: float) -> None:
        self._anchor = (t, lat, lon)
        self._sum, self._fixes, self._last_t = _unit(lat, lon), 1, t
        self._place_id = self._arrived_t = None

    def _arrive(self, t: float) -> Event:
        assert self._anchor is not None
        since = self._anchor[0]
        lat, lon = _latlon(self._sum)
        place = self._nearest(lat, lon)
        new = place is None
        first = min((p.first_t for p in self._places.values()), default=None)
        settled = first is not None and t - first >= SETTLED_S
        if place is None:
            place = Place(self._next_id, lat, lon, self.merge_m, 1, 0.0, since, t)
            self._next_id += 1
        else:
            place = replace(place, visits=place.visits + 1, last_t=t)
        self._places[place.id] = place
        self._place_id, self._arrived_t = place.id, t
        logger.debug("%s: arrived at %s (since %s, visit %d)", place.name, t, since, place.visits)
        data = {"place_id": place.id, "lat": place.lat, "lon": place.lon, "since": since}
        data |= {"visits": place.visits, "new": new, "settled": settled}
        return Event(t, "place.arrive", place.name, data)

    def _leave(self, t: float, reason: str) -> Event:
        assert self._anchor is not None and self._place_id is not None
        since = self._anchor[0]
        dwell_s = self._last_t - since
        place = self._places[self._place_id]
        stay_lat, stay_lon = _latlon(self._sum)
        # The place's centre moves towards this stay by its share of the total dwell.
        old, new = _unit(place.lat, place.lon), _unit(stay_lat, stay_lon)
        total = place.dwell_s + dwell_s
        w = dwell_s / total if total > 0 else 1.0
        lat, lon = _latlon(
            (
                old[0] * (1 - w) + new[0] * w,
                old[1] * (1 - w) + new[1] * w,
                old[2] * (1 - w) + new[2] * w,
            )
        )
        place = replace(place, lat=lat, lon=lon, dwell_s=total, last_t=self._last_t)
        self._places[place.id] = place
        logger.debug("%s: left at %s (%s, dwell %.0f s)", place.name, t, reason, dwell_s)
        data = {
            "place_id": place.id,
            "since": since,
            "arrived_t": self._arrived_t,
            "last_t": self._last_t,
            "dwell_s": dwell_s,
            "reason": reason,
            "visits": place.visits,
            "total_dwell_s": place.dwell_s,
            "lat": place.lat,
            "lon": place.lon,
            "stay_lat": stay_lat,
            "stay_lon": stay_lon,
        }
        return Event(t, "place.leave", place.name, data)

    def _nearest(self, lat: float, lon: float) -> Place | None:
        best: tuple[float, int] | None = None
        for place in self._places.values():
            d = distance_m(lat, lon, place.lat, place.lon)
            if d <= place.radius_m and (best is None or (d, place.id) < best):
                best = (d, place.id)
        return None if best is None else self._places[best[1]]

    # -- persistence ---------------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        """The stay in progress as JSON-able data (the places themselves are ``places``)."""
        return {
            "version": 1,
            "next_id": self._next_id,
            "prev_t": self._prev_t,
            "anchor": None if self._anchor is None else list(self._anchor),
            "sum": list(self._sum),
            "fixes": self._fixes,
            "last_t": self._last_t,
            "place_id": self._place_id,
            "arrived_t": self._arrived_t,
        }

    def restore(self, places: Sequence[Place], state: Mapping[str, Any] | None) -> None:
        """Take back ``places`` and what ``state()`` returned (None: no stay in progress)."""
        self._places = {p.id: p for p in places}
        self._next_id = max(self._places, default=0) + 1
        self._start_over()
        if not state:
            return
        if state.get("version") != 1:
            raise ValueError(f"places state version {state.get('version')!r} is not 1")
        self._next_id = max(self._next_id, int(state["next_id"]))
        self._prev_t = None if state["prev_t"] is None else float(state["prev_t"])
        if state["anchor"] is None:
            return
        place_id = state["place_id"]
        if place_id is not None and place_id not in self._places:
            logger.warning("stay at unknown place %s dropped on restore", place_id)
            return
        t, lat, lon = (float(v) for v in state["anchor"])
        x, y, z = (float(v) for v in state["sum"])
        self._anchor, self._sum = (t, lat, lon), (x, y, z)
        self._fixes, self._last_t = int(state["fixes"]), float(state["last_t"])
        self._place_id = None if place_id is None else int(place_id)
        arrived = state["arrived_t"]
        self._arrived_t = None if arrived is None else float(arrived)

    def _start_over(self) -> None:
        self._prev_t = self._anchor = self._place_id = self._arrived_t = None
        self._sum, self._fixes, self._last_t = (0.0, 0.0, 0.0), 0, 0.0
