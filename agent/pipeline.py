"""Sample -> features -> detectors -> triggers -> events. No I/O, no clock."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypedDict, TypeGuard

from agent.config import Config
from agent.detect.anomaly import AnomalyDetector, WindowModel
from agent.detect.anomaly.context import NO_PLACE
from agent.detect.geofence import GeofenceTracker
from agent.detect.growth import MemoryGrowth
from agent.detect.heat import HeatAtLoad
from agent.detect.outages import OutageTracker
from agent.detect.personalise import (
    Personaliser,
    SavedWeights,
    TrainableModel,
)
from agent.detect.places import Place, PlaceLearner, Where
from agent.detect.processes import ProcessLoads
from agent.detect.stuck import StuckReadings
from agent.detect.volume import RateVolumes
from agent.escalation.policy import WakePolicy, WakeRequest
from agent.features.sessions import AppSession, SessionTracker
from agent.features.streams import stream_values
from agent.power.meter import NullMeter, PowerMeter
from agent.samples import Event, Sample
from agent.triggers.rules import RuleSet

if TYPE_CHECKING:
    from agent.detect.fences import Fence

logger = logging.getLogger(__name__)


class StageState(TypedDict):
    """The stages' state, as typed values in sample time; the memory maps it to rows."""

    fence_state: dict[str, dict[str, Any]]
    detector_state: dict[str, Any]
    places: list[Place]
    weights: SavedWeights | None  # the personalised model's, when training kept a round


@dataclass(slots=True)
class Step:
    """What one sample produced: events, and app sessions that changed (for the store)."""

    events: list[Event] = field(default_factory=list)
    sessions: list[AppSession] = field(default_factory=list)
    #: Anomaly scores in [0, 1] of the streams this sample carried: the full detector's, the
    #: tiny model's alone, and the sample's combined (node) score.
    scores: dict[str, float] = field(default_factory=dict)
    tiny: dict[str, float] = field(default_factory=dict)
    node: float | None = None
    #: Wakes of the larger model due at this sample (the escalation stage runs them).
    wakes: list[WakeRequest] = field(default_factory=list)


class Pipeline:
    """Every stage's state, fed one checked sample at a time in arrival order."""

    def __init__(
        self,
        config: Config,
        fences: Sequence[Fence] = (),
        model: WindowModel | None = None,
        *,
        keep_scores: bool = False,
    ) -> None:
        """``model`` is the tiny model (loaded by the caller: this class does no I/O); without
        one the anomaly stage still judges values and spreads. ``keep_scores`` fills each
        step's per-stream scores (``vigil score``; the daemon needs only the events)."""
        self._meter: PowerMeter = NullMeter()
        self.outages = OutageTracker()
        self.stuck = StuckReadings()
        self.volumes = RateVolumes()
        self.heat = HeatAtLoad()
        self.processes = ProcessLoads()
        self.growth = MemoryGrowth()
        self.sessions = SessionTracker(config.sensors.apps.pulsetime_s)
        self.rules = RuleSet(config.rules)
        wake_rules = [r for r in config.rules if r.action == "wake"]
        self.wakes = WakePolicy(
            config.escalation,
            [r.name for r in wake_rules],
            {r.name: r.debounce_s for r in wake_rules if r.debounce_s is not None},
        )
        self.fences: dict[str, Fence] = {}
        self.geofence: GeofenceTracker | None = None
        self._geofence_settings = config.geofence
        self.set_fences(fences)
        a = config.anomaly
        self.anomaly = AnomalyDetector(model, a) if a.enabled else None
        if self.anomaly is not None and a.personalise and _trainable(model):
            self.anomaly.personaliser = Personaliser(model, a, "tiny")
        if self.anomaly is not None:
            self.anomaly.keep_scores = keep_scores
        p = config.places
        self.places = (
            PlaceLearner(dist_m=p.dist_m, min_stay_s=p.min_stay_s, merge_m=p.merge_m)
            if p.enabled
            else None
        )

    @property
    def meter(self) -> PowerMeter:
        """Each stage splits on it (``drive`` hands over the ledger's, and laps around the
        pipeline); the model's calls in the anomaly stage split too."""
        return self._meter

    @meter.setter
    def meter(self, meter: PowerMeter) -> None:
        self._meter = meter
        if self.anomaly is not None:
            self.anomaly.meter = meter

    def feed(self, sample: Sample) -> Step:
        """One sample: a chunk of one (the live daemon)."""
        return self.feed_chunk([sample])[0]

    def feed_chunk(self, samples: Sequence[Sample]) -> list[Step]:
        """Checked samples in arrival order -> one ``Step`` each. Each stage takes the whole
        chunk in turn (the anomaly stage as columns); then, sample by sample, the rules and
        the wake policy see each sample's events in the order one sample at a time gives."""
        meter = self._meter
        steps = [Step() for _ in samples]
        values_of: list[dict[str, float]] = []
        for sample, step in zip(samples, steps, strict=True):
            step.sessions = self.sessions.feed(sample)
            values_of.append(stream_values(sample))
        meter.split("features", calls=len(samples))
        where = self.places.where() if self.places is not None else (None, None)
        fixes: list[tuple[int, Where]] = []
        if self.geofence is not None or self.places is not None:
            fixes = self._locations(samples, steps)
        if self.anomaly is not None:
            self._anomaly(samples, values_of, steps, self._places_at(samples, where, fixes))
        for sample, step, values in zip(samples, steps, values_of, strict=True):
            if sample.sensor == "status":
                event = self.outages.feed(sample)
                if event is not None:
                    if event.kind == "sensor.down":
                        self.rules.sensor_down(event.subject)
                    step.events = [event]
            elif sample.sensor == "clock":  # the live source saw the system clock step
                data = {"step_s": sample.data["step_s"]}
                step.events = [Event(sample.t, "clock.jump", "system", data)]
            elif values:
                step.events += self.stuck.feed(sample, values)
                if sample.sensor == "system":  # the byte rates, the temperature at its load
                    step.events += self.volumes.feed(sample, values)
                    step.events += self.heat.feed(sample, values)
                elif sample.sensor in ("apps", "battery"):  # the busiest processes, the power
                    step.events += self.processes.feed(sample)
                    if sample.sensor == "apps":  # the largest processes
                        step.events += self.growth.feed(sample)
            if step.events:
                step.events += self.rules.on_events(step.events)
            if values:
                step.events += self.rules.feed(sample.t, values)
            step.wakes = self.wakes.feed(sample.t, step.events)
        meter.split("triggers", calls=len(samples))
        return steps

    def _locations(self, samples: Sequence[Sample], steps: list[Step]) -> list[tuple[int, Where]]:
        """Location samples through the geofence and places stages; for each, its position
        in the chunk and the places stage's ``where()`` after it (none without that stage)."""
        located = [i for i, s in enumerate(samples) if s.sensor == "location"]
        fixes: list[tuple[int, Where]] = []
        if self.geofence is not None:
            for i in located:
                steps[i].events += self.geofence.feed(samples[i])
            self._meter.split("geofence", calls=len(located))
        if self.places is not None:
            for i in located:
                steps[i].events += self.places.feed(samples[i])
                fixes.append((i, self.places.where()))
            self._meter.split("places", calls=len(located))
        return fixes

    def _places_at(
        self,
        samples: Sequence[Sample],
        where: Where,
        fixes: list[tuple[int, Where]],
    ) -> list[int] | None:
        """The learned place the device was at at each sample, for the anomaly stage's
        context: the stay's place as the last location sample at or before it left the places
        stage (``where`` before the chunk), while its last usable fix is fresh
        (``PlaceLearner.place_at``); ``NO_PLACE`` where none. None when the chunk was at no
        place (no location, or none learned)."""
        places = self.places
        if places is None or self.anomaly is None or not self.anomaly.settings.context:
            return None
        if len(samples) == 1:  # the live daemon's sample
            place = places.place_at(fixes[0][1] if fixes else where, samples[0].t)
            return None if place is None else [place]
        if where[0] is None and all(fix[0] is None for _, fix in fixes):
            return None
        out: list[int] = []
        next_fix = 0
        for i, sample in enumerate(samples):
            while next_fix < len(fixes) and fixes[next_fix][0] <= i:
                where = fixes[next_fix][1]
                next_fix += 1
            place = places.place_at(where, sample.t)
            out.append(NO_PLACE if place is None else place)
        return out

    def _anomaly(
        self,
        samples: Sequence[Sample],
        values_of: list[dict[str, float]],
        steps: list[Step],
        places: list[int] | None,
    ) -> None:
        assert self.anomaly is not None
        rows = [i for i, values in enumerate(values_of) if values]
        if not rows:
            return
        found = self.anomaly.feed_chunk(
            [samples[i].t for i in rows],
            [source_of(samples[i]) for i in rows],
            [values_of[i] for i in rows],
            None if places is None else [places[i] for i in rows],
        )
        for k, i in enumerate(rows):
            step = steps[i]
            step.node = float(found.node[k])
            if k in found.events:
                step.events += found.events[k]
            if found.steps is not None:
                step.scores, step.tiny = found.steps[k].scores, found.steps[k].tiny
        self._meter.split("anomaly", calls=len(rows))

    def set_fences(self, fences: Sequence[Fence]) -> set[str]:
        """Use these fences from now on. Unchanged fences keep their state; returns the names
        of fences added, changed or removed."""
        new = {f.name: f for f in fences}
        changed = {n for n in new.keys() | self.fences.keys() if new.get(n) != self.fences.get(n)}
        self.fences = new
        if not new:
            self.geofence = None
            return changed
        from agent.detect.fence_index import (
            FenceIndex,  # shapely: loaded only when there are fences
        )

        index = FenceIndex(list(new.values()))
        if self.geofence is None:
            self.geofence = GeofenceTracker(index, self._geofence_settings)
        else:
            self.geofence.replace_index(index, changed)
        return changed

    # -- state kept in memory across restarts --------------------------------------------------
    def snapshot(self, full: bool = True) -> StageState:
        """The stages' state for the memory; ``full`` adds the anomaly stage's histories."""
        places = self.places.places if self.places is not None else []
        detector: dict[str, object] = {}
        if self.places is not None:
            detector["places"] = self.places.state()
        detector["escalation"] = self.wakes.state()
        detector["rules"] = self.rules.state()
        detector["stuck"] = self.stuck.state()
        detector["volumes"] = self.volumes.state()
        detector["heat"] = self.heat.state()
        detector["processes"] = self.processes.state()
        detector["growth"] = self.growth.state()
        if self.anomaly is not None:
            detector["anomaly"] = self.anomaly.state()
            if full:
                detector["anomaly_history"] = self.anomaly.history_state()
        return {
            "fence_state": self.geofence.state() if self.geofence is not None else {},
            "detector_state": detector,
            "places": list(places),
            "weights": self._saved_weights(),
        }

    def _saved_weights(self) -> SavedWeights | None:
        if self.anomaly is None or self.anomaly.personaliser is None:
            return None
        return self.anomaly.personaliser.saved

    def restore(self, state: StageState) -> list[str]:
        """Put back what the memory kept; returns the parts dropped as unreadable (each
        logged once; those stages start afresh)."""
        dropped: list[str] = []
        wakes = state["detector_state"].get("escalation")
        if isinstance(wakes, dict):
            try:
                self.wakes.restore(wakes)
            except (KeyError, TypeError, ValueError) as exc:
                logger.warning("escalation state unreadable, starting afresh: %s", exc)
                dropped.append("escalation")
        rules = state["detector_state"].get("rules")
        if isinstance(rules, dict):
            try:
                self.rules.restore(rules)
            except (KeyError, TypeError, ValueError) as exc:
                logger.warning("rules state unreadable, starting afresh: %s", exc)
                dropped.append("rules")
        parts = (
            ("stuck", StuckReadings),
            ("volumes", RateVolumes),
            ("heat", HeatAtLoad),
            ("processes", ProcessLoads),
            ("growth", MemoryGrowth),
        )
        for part, fresh in parts:
            saved_part = state["detector_state"].get(part)
            if not isinstance(saved_part, dict):
                continue
            try:
                skipped = getattr(self, part).restore(saved_part)
            except (AttributeError, TypeError, ValueError) as exc:  # not the shape it saves
                logger.warning("%s state unreadable, starting afresh: %s", part, exc)
                setattr(self, part, fresh())
                dropped.append(part)
                continue
            if skipped:
                logger.warning(
                    "%s state: %d unreadable entries skipped, the rest kept", part, skipped
                )
                dropped.append(part)
        if self.geofence is not None:
            known = {n: s for n, s in state["fence_state"].items() if n in self.fences}
            self.geofence.restore(known)
        saved_anomaly = state["detector_state"].get("anomaly")
        history = state["detector_state"].get("anomaly_history")
        if self.anomaly is not None:
            if not self.anomaly.restore(
                saved_anomaly if isinstance(saved_anomaly, dict) else {},
                history if isinstance(history, dict) else None,
                state.get("weights"),
            ):
                dropped.append("anomaly")
        if self.places is not None:
            saved = state["detector_state"].get("places")
            self.places.restore(list(state["places"]), saved if isinstance(saved, dict) else None)
        return dropped


def source_of(sample: Sample) -> str:
    """The anomaly stage's source of a sample: a metric's name, else the sensor."""
    return str(sample.data["name"]) if sample.sensor == "metric" else sample.sensor


def _trainable(model: WindowModel | None) -> TypeGuard[TrainableModel]:
    return model is not None and hasattr(model, "train") and hasattr(model, "weights_blob")
