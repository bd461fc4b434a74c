"""Stage 2, geofences: fence state machines over location samples -> geofence.* events.

Each fence is judged with the fix's accuracy, never by its centre alone (ARCHITECTURE.md, stage 2):

* **certainly inside**: the whole accuracy circle is in the fence (signed distance +
  accuracy <= 0); **certainly outside**: it is out by more than ``exit_gap_m`` (signed
  distance - accuracy > gap). Anything between is *uncertain* and changes nothing, so GPS
  jitter at the edge, or one bad fix, cannot flap a fence the way ``distance - accuracy <
  radius`` does (Home Assistant), and a poor fix never widens a fence.
* **enter** after ``enter_delay_s`` of certainly-inside fixes (0: the first one, as Android's
  ENTER); **exit** on a certainly-outside fix once nothing certainly inside has been seen for
  ``exit_delay_s``. A fence's transitions are at least ``min_visit_s`` apart (a car through
  a small fence gives one enter and one exit two minutes apart, never a burst, and a quick
  return re-enters two minutes after the exit); **dwell** once per
  visit after the fence's ``dwell_s`` inside.
* From the unknown state (start, a new fence) inside gives ``geofence.enter`` and outside
  gives nothing (OwnTracks drops unknown -> leave too). Fences are independent: overlapping
  fences each keep their own state.

Time comes from the samples only; the state is plain data so the store can keep it across
restarts.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any, Protocol

from agent.config import GeofenceConfig
from agent.samples import Event, Sample

logger = logging.getLogger(__name__)


class DistanceIndex(Protocol):
    """Signed distances from a fix to fences (negative inside), for every fence whose boundary
    is within ``reach_m`` or that contains the fix; fences left out are farther outside."""

    def signed_distances(self, lat: float, lon: float, reach_m: float) -> dict[str, float]: ...

    def dwell_s(self, name: str) -> float | None: ...


@dataclass
class FenceState:
    """One fence's machine. ``inside`` is None while unknown."""

    inside: bool | None = None
    entered_t: float | None = None
    enter_since: float | None = None  # first certainly-inside fix of a pending enter
    exit_since: float | None = None  # first certainly-outside fix of a pending exit
    last_in_t: float | None = None  # the last certainly-inside fix
    exited_t: float | None = None  # the last exit
    dwelt: bool = False


class GeofenceTracker:
    def __init__(self, index: DistanceIndex, settings: GeofenceConfig) -> None:
        self.index = index
        self.settings = settings
        self.states: dict[str, FenceState] = {}

    def feed(self, sample: Sample) -> list[Event]:
        if sample.sensor != "location":
            return []
        lat, lon = sample.data.get("lat"), sample.data.get("lon")
        accuracy = sample.data.get("accuracy_m")
        if not isinstance(lat, int | float) or not isinstance(lon, int | float):
            return []
        acc = float(accuracy) if isinstance(accuracy, int | float) else 0.0
        reach = acc + self.settings.exit_gap_m + 1.0
        distances = self.index.signed_distances(float(lat), float(lon), reach)
        # Fences not near the fix are certainly outside; only those that are inside or about
        # to enter need to hear that.
        tracked = [n for n, s in self.states.items() if s.inside or s.enter_since is not None]
        events: list[Event] = []
        for name in sorted(set(distances) | set(tracked)):
            signed = distances.get(name, float("inf"))
            event = self._step(name, sample.t, signed, acc)
            if event is not None:
                events.append(event)
        return events

    def _step(self, name: str, t: float, signed: float, acc: float) -> Event | None:
        state = self.states.setdefault(name, FenceState())
        certainly_in = signed + acc <= 0.0
        certainly_out = signed - acc > self.settings.exit_gap_m
        if state.inside:
            if certainly_in:
                state.exit_since, state.last_in_t = None, t
            elif certainly_out:
                if state.exit_since is None:
                    state.exit_since = t
                if self._exit_due(state, t):
                    return self._exit(name, state, t)
            return self._dwell(name, state, t)
        if certainly_in:
            if state.enter_since is None:
                state.enter_since = t
            away = state.exited_t is None or t - state.exited_t >= self.settings.min_visit_s
            if t - state.enter_since >= self.settings.enter_delay_s and away:
                return self._enter(name, state, t, signed, acc)
        elif certainly_out:
            state.inside, state.enter_since = False, None
        return None

    def _exit_due(self, state: FenceState, t: float) -> bool:
        """Certainly outside now, and nothing certainly inside for ``exit_delay_s``: either
        this exit has been pending that long, or the last certainly-inside fix is that old (a
        gap in fixes need not be waited out again). Never sooner than ``min_visit_s`` after
        the enter (and an enter comes no sooner than that after an exit), so a fence's
        transitions are always at least ``min_visit_s`` apart."""
        delay = self.settings.exit_delay_s
        assert state.exit_since is not None
        last_in = state.last_in_t if state.last_in_t is not None else state.entered_t
        waited = t - state.exit_since >= delay or (last_in is not None and t - last_in >= delay)
        visited = state.entered_t is None or t - state.entered_t >= self.settings.min_visit_s
        return waited and visited

    def _enter(self, name: str, state: FenceState, t: float, signed: float, acc: float) -> Event:
        data = {"since": state.enter_since, "distance_m": round(signed, 2), "accuracy_m": acc}
        state.inside, state.entered_t, state.enter_since = True, t, None
        state.exit_since, state.last_in_t, state.dwelt = None, t, False
        return Event(t, "geofence.enter", name, data)

    def _exit(self, name: str, state: FenceState, t: float) -> Event:
        entered = state.entered_t if state.entered_t is not None else t
        data = {"since": state.exit_since, "entered_t": entered, "dwell_s": round(t - entered, 3)}
        self.states[name] = FenceState(inside=False, exited_t=t)
        return Event(t, "geofence.exit", name, data)

    def _dwell(self, name: str, state: FenceState, t: float) -> Event | None:
        if state.dwelt or state.entered_t is None or state.exit_since is not None:
            return None
        dwell_s = self.index.dwell_s(name)
        limit = self.settings.dwell_s if dwell_s is None else dwell_s
        if t - state.entered_t < limit:
            return None
        state.dwelt = True
        return Event(t, "geofence.dwell", name, {"entered_t": state.entered_t, "dwell_s": limit})

    # -- persistence and reloads ---------------------------------------------------------------
    def state(self) -> dict[str, dict[str, Any]]:
        """Plain data for the store: the machines that know something."""
        return {
            n: asdict(s)
            for n, s in sorted(self.states.items())
            if s.inside is not None or s.enter_since is not None
        }

    def restore(self, saved: Mapping[str, Mapping[str, Any]]) -> None:
        self.states = {n: FenceState(**dict(s)) for n, s in saved.items()}

    def replace_index(self, index: DistanceIndex, changed: set[str]) -> None:
        """New fences: unchanged ones keep their state; changed or removed ones start over."""
        self.index = index
        self.states = {n: s for n, s in self.states.items() if n not in changed}
