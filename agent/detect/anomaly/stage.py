"""The always-on tier's stage: chunks of samples in, scores and episode events out.

A chunk is scored stream by stream (``scoring.py``: one model call for every full window of
the chunk, the rank histories in C), then source by source (the combined score), then run
through each source's episode machine (``episodes.py``), which only walks the samples where
something can happen. The live daemon feeds chunks of one sample, replay chunks of thousands:
the events are the same (the histories take entries at fixed points of sample time, and the
chunk is cut where the stage must look back: an hourly sweep of streams gone, a training
round).
"""

from __future__ import annotations

import bisect
import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, NamedTuple, cast

import numpy as np
import numpy.typing as npt

from agent.config import AnomalyConfig
from agent.detect.anomaly import codec
from agent.detect.anomaly.comove import CO_MOVING, RESIDUAL_EVERY_S, CoMovement, fill_down
from agent.detect.anomaly.context import (
    CHARGING,
    EXPLAINED_SURPRISE,
    I64,
    LEVEL_STREAMS,
    MIN_RESIDUAL,
    NO_PLACE,
    NOT_BY_HOUR,
    ON_BATTERY,
    HourProfiles,
    LocalTime,
)
from agent.detect.anomaly.episodes import SampleView, SourceEpisode, step
from agent.detect.anomaly.scoring import (
    F64,
    HALF_SCORE_SURPRISE,
    LOG10_2,
    MAX_VALUE,
    Columns,
    JointState,
    SourceScores,
    StreamState,
    WindowModel,
    score_source,
    to_score,
)
from agent.detect.novelty import ValueHistory, entry_times, feed_cells, next_entry
from agent.detect.personalise import Personaliser, SavedWeights
from agent.power.meter import NullMeter, PowerMeter
from agent.samples import Event

logger = logging.getLogger(__name__)

#: How often (in sample time) the stage drops the streams it has not seen for ``history_s``.
SWEEP_EVERY_S = 3600.0
#: The live path remembers each sample layout (its stream names in name order, and their
#: streams: ``_Layout``); past this many layouts (never, on a machine's few sensors) it
#: forgets them all.
MAX_LAYOUTS = 4096
#: ``_power``'s answer for one sample (read-only: shared by every live sample).
_ON_BATTERY = np.ones(1, dtype=np.bool_)
_ON_MAINS = np.zeros(1, dtype=np.bool_)
_ON_BATTERY.flags.writeable = _ON_MAINS.flags.writeable = False

#: No verdict on a stream before it has been seen this long: it is learning what is usual.
WARMUP_S = 2 * 3600.0

#: Co-movement names the stream moving against the others only in rows where fewer than
#: this share of the judged streams are surprising on their own (at ``LOUD_SURPRISE``, a
#: one-in-a-hundred number); chosen on the development corpus's servers (bench/nab_log.md).
CALM_SHARE = 0.05
LOUD_SURPRISE = 2.0

#: A sample with this many streams or more (a server's metrics, a machine's per-device
#: rates) has its source's surprise calibrated against the source's own past surprises, once
#: they span ``CALIBRATE_AFTER_S`` (on the values' grid): the best of many streams, their sum
#: and their co-movement make large surprises routine for such a source, and one threshold
#: should mean the same for it as for a single series (bench/nab_log.md: v2h). Before a day
#: of them a new install's first incidents would be judged against each other.
CALIBRATE_STREAMS = 10
CALIBRATE_AFTER_S = 86400.0
#: ...except in a calm row, where fewer than this share of the streams are loud on their own
#: (at ``LOUD_SURPRISE``): the calibration discounts the source's routine of broad surprises
#: (a load burst moves most of its metrics), and a stream odd alone (a metric decoupling from
#: the others, a leak) is not that routine. Chosen on the development corpus (standard,
#: seeds 0 / 1): calibrated in every row 64.35 / 62.14; a calm row below 2 % 64.35, 5 % 65.05
#: / 63.59, **10 %** 65.35 / 63.49, 20 % 65.04; at most one loud stream 64.82 / 63.59; never
#: calibrated 61.76 (bench/nab_log.md: v3h).
CALM_NODE_SHARE = 0.1


@dataclass(slots=True)
class AnomalyStep:
    """One sample's verdict: each stream's score, the model's alone, the source's."""

    scores: dict[str, float] = field(default_factory=dict)
    tiny: dict[str, float] = field(default_factory=dict)
    node: float | None = None
    events: list[Event] = field(default_factory=list)


@dataclass(slots=True)
class ChunkResult:
    """A chunk's verdicts, by position in the chunk: the sources' scores and the events;
    with ``keep_scores``, also each sample's ``AnomalyStep``."""

    node: F64
    events: dict[int, list[Event]] = field(default_factory=dict)
    steps: list[AnomalyStep] | None = None


#: log10 of stream counts, from ``math`` like every other log the ranks take (numpy's may
#: differ in the last bit).
_LOG10_FLOATS = [0.0] + [math.log10(k) for k in range(1, 4097)]
_LOG10 = np.array(_LOG10_FLOATS)


class AnomalyDetector:
    def __init__(self, model: WindowModel | None, settings: AnomalyConfig) -> None:
        self.model = model
        #: Laps around the model's calls (the pipeline hands over the loop's meter).
        self.meter: PowerMeter = NullMeter()
        self.window = model.window if model is not None else 32
        self.settings = settings
        self._entry_every_s = settings.history_s / settings.history_n
        self.streams: dict[str, StreamState] = {}
        self.sources: dict[str, SourceEpisode] = {}
        self.joint: dict[str, JointState] = {}
        self.comove: dict[str, CoMovement] = {}
        self.context: dict[str, HourProfiles] = {}
        self.local_time = LocalTime(settings.timezone)
        #: Whether the machine is on battery, as the last battery sample said (``_power``).
        self.on_battery = False
        #: Trains the model on this machine's normal windows (``personalise.py``), if set.
        self.personaliser: Personaliser | None = None
        self.sweep_t: float | None = None
        #: Build each sample's ``AnomalyStep`` (``vigil score`` reads the scores).
        self.keep_scores = False
        self._activities: dict[tuple[str, ...], tuple[I64, list[str], npt.NDArray[np.bool_]]] = {}
        #: The live samples' layouts, by their stream names in the sample's order.
        self._layouts: dict[tuple[str, ...], _Layout] = {}

    # -- feeding -------------------------------------------------------------------------------
    def feed(
        self, t: float, source: str, values: Mapping[str, float], place: int = NO_PLACE
    ) -> AnomalyStep:
        """One sample (a chunk of one)."""
        keep, self.keep_scores = self.keep_scores, True
        try:
            result = self.feed_chunk([t], [source], [values], [place])
        finally:
            self.keep_scores = keep
        assert result.steps is not None
        return result.steps[0]

    def feed_chunk(
        self,
        times: Sequence[float],
        sources: Sequence[str],
        values: Sequence[Mapping[str, float]],
        places: Sequence[int] | None = None,
    ) -> ChunkResult:
        """Samples in arrival order, each a source and its stream values (none empty), and
        the learned place the device was at (``NO_PLACE``; None: at none)."""
        ts = np.asarray(times, dtype=np.float64)
        at = None if places is None else np.asarray(places, dtype=np.int64)
        steps: list[AnomalyStep] | None = [AnomalyStep()] * len(ts) if self.keep_scores else None
        result = ChunkResult(np.zeros(len(ts)), {}, steps)
        start = 0
        while start < len(ts):
            stop = self._cut(ts, start)
            self._part(ts, sources, values, at, start, stop, result)
            t = float(ts[stop - 1])
            if self.sweep_t is None or t >= self.sweep_t:
                self._sweep(t)
            start = stop
        return result

    def _cut(self, ts: F64, start: int) -> int:
        """Where this part of the chunk ends: after the next sweep that could drop a stream,
        or after the next sample while the model trains on this machine (a round may follow
        any sample). Sweeps that cannot drop anything only move their schedule on (judged
        on when streams were seen before this part: a stream seen since is only younger)."""
        if self.personaliser is not None or self.sweep_t is None:
            return start + 1
        if start == len(ts) - 1 and ts[start] < self.sweep_t:  # the live daemon's sample
            return len(ts)
        while True:  # each sweep falls at the first sample past the last one + 1 h
            later = np.flatnonzero(ts[start:] >= self.sweep_t)
            if not len(later):
                return len(ts)
            start += int(later[0])
            if self._could_drop(float(ts[start])):
                return start + 1
            self.sweep_t = float(ts[start]) + SWEEP_EVERY_S

    def _could_drop(self, until: float) -> bool:
        """Whether a sweep up to sample time ``until`` could find a stream or a source's
        sums unseen for ``history_s``."""
        gone_before = until - self.settings.history_s
        seen = [s.last_t for s in self.streams.values()]
        seen += [j.last_t for j in self.joint.values()]
        return any(t is not None and t < gone_before for t in seen)

    def _part(
        self,
        ts: F64,
        sources: Sequence[str],
        values: Sequence[Mapping[str, float]],
        places: npt.NDArray[np.int64] | None,
        start: int,
        stop: int,
        result: ChunkResult,
    ) -> None:
        by_source: dict[str, list[int]] = {}
        for i in range(start, stop):
            by_source.setdefault(sources[i], []).append(i)
        power = self._power(sources, values, start, stop) if self.settings.context else None
        for source, rows in by_source.items():
            plan = self._score(ts, values, source, rows)
            if power is not None:  # (one source's part: its rows are the part's)
                whole = len(rows) == stop - start
                plan.battery = power if whole else power[np.array(rows) - start]
                if places is not None:
                    plan.place = places[start:stop] if whole else places[rows]
            self._combine(plan, result)
            self._episodes(plan, result)
            if self.personaliser is not None:
                self._personalise(plan, result)

    def _power(
        self, sources: Sequence[str], values: Sequence[Mapping[str, float]], start: int, stop: int
    ) -> npt.NDArray[np.bool_]:
        """Whether the machine was on battery at each sample of ``[start, stop)``: as the
        last battery sample at or before it said (``charging`` 0), else as before them."""
        on_battery = self.on_battery
        each: list[bool] = []
        for i in range(start, stop):
            if sources[i] == "battery":
                charging = values[i].get(CHARGING)
                if charging is not None:
                    on_battery = charging == 0.0
            each.append(on_battery)
        self.on_battery = on_battery
        if len(each) == 1:  # the live daemon's sample: a shared constant, not a new array
            return _ON_BATTERY if on_battery else _ON_MAINS
        return np.array(each, dtype=np.bool_)

    def _score(
        self, ts: F64, values: Sequence[Mapping[str, float]], source: str, rows: list[int]
    ) -> _Plan:
        """One source's samples as a matrix ``[sample, stream]`` (NaN where a sample lacks a
        stream: the gate lets no NaN through), scored."""
        nan = math.nan
        if len(rows) == 1:  # the live daemon's sample: every stream present, in name order
            one = values[rows[0]]
            key = tuple(one)
            names, streams, present = self._layouts.get(key) or self._layout(key)
            matrix = np.fromiter(map(one.__getitem__, names), np.float64, len(names))[None, :]
            # np.clip's bits; on a row of a few values np.clip costs twice these two
            np.maximum(matrix, -MAX_VALUE, out=matrix)
            np.minimum(matrix, MAX_VALUE, out=matrix)
            t = ts[rows[0] : rows[0] + 1]
        else:
            dicts = [values[i] for i in rows]
            names = sorted({name for d in dicts for name in d})
            matrix = np.array([[d.get(n, nan) for n in names] for d in dicts], dtype=np.float64)
            np.clip(matrix, -MAX_VALUE, MAX_VALUE, out=matrix)
            t = ts[rows]
            states = [self.streams.get(name) or self._new_stream(name) for name in names]
            streams = Columns(states)
            present = ~np.isnan(matrix)
        before = None  # one sample's are read after (``_explain_one``)
        if len(rows) > 1 and self.settings.co_movement and source in CO_MOVING and len(names) > 1:
            before = np.array([s.buffer[-1] if s.n else nan for s in streams.states])
        scores = score_source(
            streams,
            matrix,
            t,
            self.model,
            self.meter,
            self._entry_every_s,
            WARMUP_S,
            self.settings.shape_memory,
        )
        return _Plan(source, rows, t, names, matrix, present, scores, before, streams.states)

    def _layout(self, key: tuple[str, ...]) -> _Layout:
        """A live sample's layout (its stream names in its order: ``key``), kept until a
        stream is dropped or its error history replaced."""
        if len(self._layouts) >= MAX_LAYOUTS:  # (samples' layouts are few: a bound regardless)
            self._layouts.clear()
        names = sorted(key)
        states = [self.streams.get(name) or self._new_stream(name) for name in names]
        present = np.ones((1, len(names)), dtype=np.bool_)
        present.flags.writeable = False
        layout = self._layouts[key] = _Layout(names, Columns(states), present)
        return layout

    def streams_changed(self) -> None:
        """Streams were dropped or replaced, or their error histories: the live layouts go."""
        self._layouts.clear()

    def _new_stream(self, name: str) -> StreamState:
        size = self.settings.history_n
        state = StreamState(self.window, ValueHistory(size), ValueHistory(size), ValueHistory(size))
        self.streams[name] = state
        return state

    # -- the source's score --------------------------------------------------------------------
    def _combine(self, plan: _Plan, result: ChunkResult) -> None:
        """The source's surprise per sample: its best stream's (Bonferroni), or the rank of
        the sum of all its streams' against the source's own past sums, whichever says more
        (less log10(2) for asking twice), calibrated against its own past surprises where it
        has many streams and the row is not calm (``CALM_NODE_SHARE``; in a calm row each
        stream counts as far as it held, ``_held``). The sums are learned only once every
        stream is warm, and not for positions and the battery (``_combine_one`` says why)."""
        m, k = plan.matrix.shape
        if k > 1 and self.settings.co_movement and plan.source in CO_MOVING:
            self._co_movement(plan)
        if self.settings.context:
            self._context(plan)
        if m == 1:
            node_one = self._combine_one(plan)
            if node_one > EXPLAINED_SURPRISE and self._all_explained_one(plan):
                node_one = EXPLAINED_SURPRISE
            score = node_one / (node_one + HALF_SCORE_SURPRISE)
            plan.node = np.array([score])
            result.node[plan.rows[0]] = score
            return
        surprise = plan.scores.surprise
        warm: npt.NDArray[np.bool_] = ~np.any(plan.scores.learning, axis=1)
        count = plan.present.sum(axis=1)
        wide = np.flatnonzero(count >= CALIBRATE_STREAMS)
        calm = np.zeros(m, dtype=np.bool_)
        if len(wide):
            held = self._held(plan, wide)
            loud = ((surprise[wide] >= LOUD_SURPRISE) & plan.present[wide]).sum(axis=1)
            quiet = loud < CALM_NODE_SHARE * count[wide]
            calm[wide[quiet]] = True
            surprise = surprise.copy()
            surprise[wide[quiet]] = held[quiet]
        best = np.where(plan.present, surprise, -np.inf).max(axis=1)
        node = best.copy()
        many = count > 1
        node[many] = np.maximum(0.0, best[many] - _LOG10[np.minimum(count[many], 4096)])
        joint_rows = np.flatnonzero(many & warm)
        if plan.source in NOT_BY_HOUR:  # their streams' sum is not judged (``_combine_one``)
            joint_rows = joint_rows[:0]
        if len(joint_rows):
            total = np.zeros(m)
            for j in range(k):  # in name order, as a sum of the streams one by one
                total += surprise[:, j]
            joint = self._joint(plan.source)
            due, joint.entry_t = entry_times(plan.t[joint_rows], joint.entry_t, self._entry_every_s)
            sums = total[joint_rows]
            together, _ = joint.sums.feed(sums, due, upper_only=True)
            node[joint_rows] = np.maximum(node[joint_rows], together - LOG10_2)
        many_streams = wide[warm[wide]]
        if len(many_streams):
            calibrated = self._calibrate(plan.source, plan.t[many_streams], node[many_streams])
            node[many_streams] = np.where(calm[many_streams], node[many_streams], calibrated)
        if plan.source in self.joint:
            self.joint[plan.source].last_t = float(plan.t[-1])
        if plan.explained is not None:
            whole = (plan.explained | ~plan.present).all(axis=1)
            node[whole] = np.minimum(node[whole], EXPLAINED_SURPRISE)
        plan.node = node / (node + HALF_SCORE_SURPRISE)
        result.node[plan.rows] = plan.node

    def _held(self, plan: _Plan, rows: npt.NDArray[np.intp]) -> F64:
        """The streams' surprises in ``rows`` (samples of ``CALIBRATE_STREAMS`` streams or
        more), each the middle one of the stream's last three in such samples (the smaller
        of two where it has had only two): a stream counts as far as it was surprising in two
        samples of three. Each stream keeps its last two for the next chunk (and a restart).

        A calm row of such a source counts these: the best of dozens of streams makes
        one-sample blips routine, while a fault in one of them (a metric decoupling, shifted,
        stuck or leaking) lasts, and a fault's one quiet sample does not break it. The
        streams' own scores stay their own. Chosen on the development draws of
        bench/multivariate.py (seeds 10,000 / 10,001, best F1) and the development corpus
        (bench/nab_log.md: v3i)."""
        surprise = plan.scores.surprise[rows]
        present = plan.present[rows]
        held = surprise.copy()  # (a stream a row lacks: as it is, as on the live path)
        for j, state in enumerate(plan.states):
            here = present[:, j]
            values = surprise[here, j]
            # its surprises in order, the two before the chunk first (NaN: none)
            known = np.concatenate([state.last_surprises, values])
            state.last_surprises = (float(known[-2]), float(known[-1]))
            at = np.cumsum(here)[here] - 1  # each value's place among the chunk's
            now, one, two = values, known[at + 1], known[at]
            middle = np.maximum(np.minimum(now, one), np.minimum(np.maximum(now, one), two))
            held[here, j] = np.where(np.isnan(two), np.fmin(now, one), middle)
        return held

    def _all_explained_one(self, plan: _Plan) -> bool:
        """Whether every value of a part of one sample was explained by the hour. The live
        path explains only values above ``EXPLAINED_SURPRISE`` (``_context``); if none was,
        it asks now (the values are as they were: the explanation would not lower them)."""
        if not self.settings.context or plan.source not in NOT_BY_HOUR:
            return False
        if plan.explained is None:
            profiles = self.context[plan.source]
            usual = profiles.usual_of(plan.names)
            self._explain_by_hour(plan, profiles, *usual)
        assert plan.explained is not None
        return bool((plan.explained | ~plan.present).all())

    def _combine_one(self, plan: _Plan) -> float:
        """``_combine``'s surprise for a part of one sample (the live daemon's), with the
        same arithmetic on plain floats: a dozen numpy calls on arrays of one cost more than
        the rest of the sample's scoring."""
        row: list[float] = plan.scores.surprise[0].tolist()
        present: list[bool] = plan.present[0].tolist()
        calm = False
        if len(row) >= CALIBRATE_STREAMS and (count := sum(present)) >= CALIBRATE_STREAMS:
            held, loud = self._held_one(plan, row, present)
            calm = loud < CALM_NODE_SHARE * count
            if calm:
                row = held
        values = [s for s, here in zip(row, present, strict=True) if here]
        node = best = max(values)
        if len(values) > 1:
            node = max(0.0, best - _LOG10_FLOATS[min(len(values), 4096)])
            # Not for positions and the battery (``NOT_BY_HOUR``): their few streams move
            # together (latitude with longitude, current with power), so a sum of their
            # surprises counts one change several times, and a history of their sums, mostly
            # values the hour explained, makes any moderate sum rare.
            if plan.source not in NOT_BY_HOUR and not np.count_nonzero(plan.scores.learning[0]):
                total = 0.0
                for value in row:  # in name order, as the chunks' sums
                    total += value
                joint = self._joint(plan.source)
                t = float(plan.t[0])
                due, joint.entry_t = next_entry(joint.entry_t, t, self._entry_every_s)
                together, _, _ = joint.sums.feed_number(total, due, upper_only=True)
                node = max(node, together - LOG10_2)
                if len(values) >= CALIBRATE_STREAMS:
                    calibrated = self._calibrate_one(plan.source, t, node)
                    if not calm:  # (a calm row keeps its own)
                        node = calibrated
        if plan.source in self.joint:
            self.joint[plan.source].last_t = float(plan.t[-1])
        return node

    def _held_one(
        self, plan: _Plan, row: list[float], present: list[bool]
    ) -> tuple[list[float], int]:
        """``_held`` for one sample, in floats, and how many of its streams are loud as they
        are (a few comparisons a stream: the live daemon's system source has 13 or more
        streams on a laptop with per-device rates)."""
        held = []
        loud = 0
        for state, surprise, here in zip(plan.states, row, present, strict=True):
            if here:
                loud += surprise >= LOUD_SURPRISE
                two, one = state.last_surprises
                state.last_surprises = (one, surprise)
                if two == two:  # the middle of the three (NaN != NaN: fewer than two before)
                    low, high = (surprise, one) if surprise < one else (one, surprise)
                    surprise = low if two < low else high if two > high else two
                elif one < surprise:  # (False for NaN: none before)
                    surprise = one
            held.append(surprise)
        return held, loud

    def _calibrate(self, source: str, t: F64, node: F64) -> F64:
        """The source's surprises ``node`` at times ``t``, each ranked (upper tail) among the
        source's own past ones (an entry on the values' grid, none in between), or as far as it
        is above the largest of them, whichever is more, and never more than itself: a routine
        of large surprises is discounted, and an incident beyond all of them still counts.
        Until the history spans ``CALIBRATE_AFTER_S`` a surprise stays as it is."""
        joint = self._joint(source)
        if joint.nodes is None:
            joint.nodes = ValueHistory(self.settings.history_n)
        due, joint.node_entry_t = entry_times(t, joint.node_entry_t, self._entry_every_s)
        held = len(joint.nodes) + np.cumsum(due) - due  # entries before each surprise
        ranked, edges = joint.nodes.feed(node, due, upper_only=True, edges=True, fill=False)
        assert edges is not None
        largest = edges[:, 1]
        beyond = np.where(np.isnan(largest), node, node - largest)
        calibrated = np.minimum(node, np.maximum(ranked, beyond))
        ready = held * self._entry_every_s >= CALIBRATE_AFTER_S
        out: F64 = np.where(ready, calibrated, node)
        return out

    def _calibrate_one(self, source: str, t: float, node: float) -> float:
        """``_calibrate`` of one surprise (the live daemon's), the same arithmetic in floats
        around the one call that ranks it."""
        joint = self._joint(source)
        if joint.nodes is None:
            joint.nodes = ValueHistory(self.settings.history_n)
        held = len(joint.nodes)
        due, joint.node_entry_t = next_entry(joint.node_entry_t, t, self._entry_every_s)
        ranked, _, largest = joint.nodes.feed_number(node, due, upper_only=True, fill=False)
        if held * self._entry_every_s < CALIBRATE_AFTER_S:
            return node
        beyond = node if math.isnan(largest) else node - largest
        return min(node, max(ranked, beyond))

    def _joint(self, source: str) -> JointState:
        joint = self.joint.get(source)
        if joint is None:
            joint = self.joint[source] = JointState(ValueHistory(self.settings.history_n))
        return joint

    def _co_movement(self, plan: _Plan) -> None:
        """Judge each stream by what the source's other streams say (``comove.py``), its
        residual ranked among its own past residuals: a value they explain (within the range
        the stream has shown, and not its last value again: a frozen reading is no
        co-movement) is only as surprising as its residual; in a row where the streams are
        calm on their own (fewer than ``CALM_SHARE`` of them at ``LOUD_SURPRISE``), the stream
        with the most surprising residual (the one moving against the others) is as
        surprising as that, so an episode names it. In a row where many are loud (a burst),
        the largest residual is the linear model's own limit (latencies grow faster than the
        load, temperatures lag it), not a stream turning against the others."""
        model = self.comove.get(plan.source)
        if model is None:
            model = self.comove[plan.source] = CoMovement()
        scores = plan.scores
        if len(plan.t) == 1:  # the live daemon's sample
            t = float(plan.t[0])
            one = model.residuals_one(plan.names, plan.matrix[0], t)
            if one is None:
                return
            judged = ~np.isnan(one) & ~scores.learning[0]
            if not np.count_nonzero(judged):  # less than .any() on a row
                return
            if model.fill_until_t is None:
                model.fill_until_t = t + self.settings.history_s
            every = self._entry_every_s if t < model.fill_until_t else RESIDUAL_EVERY_S
            take, model.entry_t = next_entry(model.entry_t, t, every)
            ranked = self._rank_cells(
                plan.names, "residuals", one[None, :], judged[None, :], np.array([take]), fill=False
            )
            self._explain_one(plan, judged, ranked[0])
            return
        residual = model.residuals(plan.names, plan.matrix, plan.t)
        usable = ~np.isnan(residual) & ~scores.learning
        anywhere = np.flatnonzero(usable.any(axis=1))
        if not len(anywhere):
            return
        if model.fill_until_t is None:
            model.fill_until_t = float(plan.t[anywhere[0]]) + self.settings.history_s
        filling = plan.t[anywhere] < model.fill_until_t
        due, model.entry_t = _row_grid(
            plan.t, anywhere[filling], model.entry_t, self._entry_every_s
        )
        later, model.entry_t = _row_grid(
            plan.t, anywhere[~filling], model.entry_t, RESIDUAL_EVERY_S
        )
        due |= later
        ranked = self._rank_cells(plan.names, "residuals", residual, usable, due, fill=False)
        lo, hi = scores.edges[:, :, 0], scores.edges[:, :, 1]
        explained = usable & (plan.matrix >= lo) & (plan.matrix <= hi)  # new values stand
        explained &= plan.matrix != plan.previous()  # a frozen reading is not explained
        loud = ((scores.surprise >= LOUD_SURPRISE) & usable).sum(axis=1)
        calm = anywhere[loud[anywhere] < CALM_SHARE * usable[anywhere].sum(axis=1)]
        scores.surprise[explained] = np.minimum(scores.surprise[explained], ranked[explained])
        worst = (calm, ranked[calm].argmax(axis=1))
        scores.surprise[worst] = np.maximum(scores.surprise[worst], ranked[worst])

    def _explain_one(self, plan: _Plan, usable: npt.NDArray[np.bool_], ranked: F64) -> None:
        """``_co_movement``'s verdict for a part of one sample, on plain floats: a stream's
        value within its range (and not its last value again) is only as surprising as its
        ranked residual; in a calm row, the stream with the most surprising residual is at
        least as surprising as that. A stream's last value is the one before this sample in
        its window."""
        surprise: list[float] = plan.scores.surprise[0].tolist()
        ranks: list[float] = ranked.tolist()
        values: list[float] = plan.matrix[0].tolist()
        edges: list[list[float]] = plan.scores.edges[0].tolist()
        judged = usable.tolist()
        loud = sum(1 for j, use in enumerate(judged) if use and surprise[j] >= LOUD_SURPRISE)
        calm = loud < CALM_SHARE * sum(judged)
        states = plan.states
        for j, use in enumerate(judged):
            lo, hi = edges[j]
            # a judged stream is past its warm-up: its window holds the value before this one
            if use and lo <= values[j] <= hi and values[j] != states[j].buffer[-2]:
                surprise[j] = min(surprise[j], ranks[j])  # (a frozen reading stands)
        if calm:
            worst = ranks.index(max(ranks))  # the first of the largest, as argmax
            surprise[worst] = max(surprise[worst], ranks[worst])
        plan.scores.surprise[0] = surprise

    def _context(self, plan: _Plan) -> None:
        """Judge each activity stream (not ``LEVEL_STREAMS``) by what is usual for it at this
        hour, power and place (``context.py``): a residual of at least ``MIN_RESIDUAL`` above
        the usual level, ranked among the stream's own past residuals, counts like its other
        judgements (the largest says). A position or a battery value is only explained by it
        (``_explain_by_hour``). A level held from a busy hour into a quiet one (swap kept
        after a pressure, at bedtime) changes nothing but the hour: the level streams are
        left to their values, spreads and shapes, which see a level arrive.

        The residual is ``(x - level) / max(spread, floor)``, at least 0; the history takes
        one on the values' grid, never more while filling (the first hours a slot is ready
        do not stand for the days after), and ranks only those that may count. A live
        sample that is not due and lies within ``MIN_RESIDUAL`` spreads of its level costs
        nothing more: the floor only lowers a residual."""
        profiles = self.context.get(plan.source)
        if profiles is None:
            profiles = self.context[plan.source] = HourProfiles()
        t = float(plan.t[-1])
        profiles.last_t = t
        routine = plan.source in NOT_BY_HOUR  # only explained by the hour
        if len(plan.t) == 1:  # the live daemon's sample: most are quiet and not due
            hour, day_hour = self.local_time.hour(t)
            if plan.battery is not None and plan.battery[0]:
                day_hour += ON_BATTERY
            place = NO_PLACE if plan.place is None else int(plan.place[0])
            if routine:
                profiles.keep(plan.names, plan.matrix, hour, day_hour, place)
                if np.count_nonzero(plan.scores.surprise[0] > EXPLAINED_SURPRISE):
                    usual = profiles.usual_of(plan.names)
                    self._explain_by_hour(plan, profiles, *usual)
                return
            quiet = profiles.keep_one(plan.names, plan.matrix, hour, day_hour, place)
            known: tuple[F64, F64, F64] | None = None  # usual_of's, once asked
            if self._any_new(plan):  # (most samples have no new value: nothing to explain)
                known = profiles.usual_of(plan.names)
                self._explain_at_place(plan, profiles, *known)
            if quiet:
                profiles.stop_runs(plan.names, plan.matrix, ~plan.scores.learning[0], t)
                entry_t = profiles.entry_t
                if entry_t is None:  # no residual yet: only a usable one starts the grid
                    if not profiles.ready(plan.names):
                        return
                elif t < entry_t + self._entry_every_s:
                    return
            if known is None:
                known = profiles.usual_of(plan.names)
            x, level, spread = known
        else:
            hours, day_hours = self.local_time.hours(plan.t)
            if plan.battery is not None:
                day_hours = day_hours + ON_BATTERY * plan.battery
            x, level, spread = profiles.usual(plan.names, plan.matrix, hours, day_hours, plan.place)
            if routine:
                self._explain_by_hour(plan, profiles, x, level, spread)
                return
            self._explain_at_place(plan, profiles, x, level, spread)
        scores = plan.scores
        above = x - level
        near = above / spread  # NaN where absent or no slot ready
        usable = ~np.isnan(near)
        usable &= ~scores.learning
        usable &= self._activity(plan.names)[2]
        anywhere = cast(npt.NDArray[np.bool_], usable.any(axis=1))
        if len(anywhere) == 1:  # the live daemon's sample
            if not anywhere[0]:
                return
            take, profiles.entry_t = next_entry(profiles.entry_t, t, self._entry_every_s)
            if not take and not np.count_nonzero(usable & (near >= MIN_RESIDUAL)):
                profiles.stop_runs(plan.names, plan.matrix, usable[0], t)
                return
            due = np.array([take])
        else:
            due, profiles.entry_t = _row_grid(
                plan.t, anywhere, profiles.entry_t, self._entry_every_s
            )
        floor = profiles.floor(plan.names, scores.edges)
        residual = np.maximum(above / np.fmax(spread, floor), 0.0)
        telling = usable & (residual >= MIN_RESIDUAL)
        taken = telling | (usable & due[:, None])
        self._sustained(plan, profiles, np.where(usable, residual, np.nan), due)
        if not taken.any():
            return
        ranked = self._rank_cells(plan.names, "context", residual, taken, due, fill=False)
        scores.surprise[telling] = np.maximum(scores.surprise[telling], ranked[telling])

    def _sustained(
        self, plan: _Plan, profiles: HourProfiles, residual: F64, due: npt.NDArray[np.bool_]
    ) -> None:
        """Judge each activity stream (not ``LEVEL_STREAMS``) by its sustained residual
        (``SUSTAIN_S``: the lowest of a run of its context residual five minutes old), ranked
        among its own on the context's grid (0 where it is in no such run), once that history
        is full: a level held above the hour's for minutes, which the day's bursts of a minute
        or two never do, is judged against a history they do not fill. A runaway at 37 % at
        03:00 ranks about 1 in 500 among a day's instantaneous residuals, and past everything
        among the sustained ones. Until the history spans ``history_s`` of judged hours it
        cannot say how rare a run is here (a new machine's first runs are its routine being
        learned), so it only learns. ``residual`` is NaN where a cell has none."""
        columns, names, _ = self._activity(plan.names)
        if not names:
            return
        mine = residual[:, columns]
        held = profiles.sustained(names, plan.t, mine)
        judged = ~np.isnan(mine)
        telling = judged & (held >= MIN_RESIDUAL)
        taken = telling | (judged & due[:, None])
        if not taken.any():
            return
        counts = telling
        if telling.any():  # those whose history is full before them
            size = self.settings.history_n
            held_n = [len(self.streams[n].own_history("sustained", size)) for n in names]
            entries = (taken & due[:, None]).astype(np.int64)
            counts = telling & (np.array(held_n) + np.cumsum(entries, axis=0) - entries >= size)
        kept = np.where(judged, held, np.nan)
        ranked = self._rank_cells(names, "sustained", kept, taken, due, fill=False)
        if counts.any():
            surprise = plan.scores.surprise[:, columns]
            surprise[counts] = np.maximum(surprise[counts], ranked[counts])
            plan.scores.surprise[:, columns] = surprise

    def _activity(self, names: list[str]) -> tuple[I64, list[str], npt.NDArray[np.bool_]]:
        """The columns of ``names`` that are not ``LEVEL_STREAMS``, their names, and which of
        ``names`` they are (kept per layout)."""
        key = tuple(names)
        found = self._activities.get(key)
        if found is None:
            mask = np.array([not n.startswith(LEVEL_STREAMS) for n in names], dtype=np.bool_)
            columns = np.flatnonzero(mask)
            found = self._activities[key] = (columns, [names[j] for j in columns], mask)
        return found

    def _explain_by_hour(
        self, plan: _Plan, profiles: HourProfiles, x: F64, level: F64, spread: F64
    ) -> None:
        """A value of a source that follows routines (``NOT_BY_HOUR``) less than
        ``MIN_RESIDUAL`` of its hour's spreads (never less than the floor) from the hour's
        usual level, either way, or whose hour has no usual level yet, is no more surprising
        than ``EXPLAINED_SURPRISE`` (and a sample of such values only, ``_combine``)."""
        scores = plan.scores
        near = _in_band(plan, profiles, x, level, spread)
        near |= np.isnan(level)  # (broadcasts: [k] when the rows share one key)
        explained = near & ~scores.learning
        scores.surprise[explained] = np.minimum(scores.surprise[explained], EXPLAINED_SURPRISE)
        plan.explained = explained

    def _explain_at_place(
        self, plan: _Plan, profiles: HourProfiles, x: F64, level: F64, spread: F64
    ) -> None:
        """An activity stream's value (not ``LEVEL_STREAMS``: a leak is a level new to the
        last days and inside a busy hour's band) new to its values history (past either
        edge) that lies within ``MIN_RESIDUAL`` of its hour's spreads (never less than the
        floor) of the usual level of its learned place's own slot (``HourProfiles.placed``:
        that hour, power and kind of day at this place has ``READY_VISITS`` visits) is no
        more surprising than ``EXPLAINED_SURPRISE``: a weekly routine (the office's busy
        Monday afternoons after four days of light ones at home) falls out of the last days'
        histories every week, and the place's hour knows it."""
        scores, edges = plan.scores, plan.scores.edges
        cells = (plan.matrix > edges[:, :, 1]) | (plan.matrix < edges[:, :, 0])  # NaN: False
        if not cells.any():
            return
        cells &= profiles.placed(plan.names) & self._activity(plan.names)[2] & ~scores.learning
        cells &= scores.surprise > EXPLAINED_SURPRISE  # (the only ones it can change)
        if not cells.any():
            return
        scores.surprise[cells & _in_band(plan, profiles, x, level, spread)] = EXPLAINED_SURPRISE

    @staticmethod
    def _any_new(plan: _Plan) -> bool:
        """Whether a value of the one sample of ``plan`` with a surprise above
        ``EXPLAINED_SURPRISE`` is past its values history's edges (in floats: a few cells)."""
        row = plan.matrix[0]
        edges = plan.scores.edges[0]
        for j in (plan.scores.surprise[0] > EXPLAINED_SURPRISE).nonzero()[0].tolist():
            x, (lo, hi) = float(row[j]), edges[j].tolist()
            if x > hi or x < lo:  # (NaN: neither)
                return True
        return False

    def _rank_cells(
        self,
        names: list[str],
        kind: Literal["residuals", "context", "sustained"],
        residual: F64,
        cells: npt.NDArray[np.bool_],
        due: npt.NDArray[np.bool_],
        *,
        fill: bool = True,
    ) -> F64:
        """The ``residual`` of each of ``cells`` ranked (upper tail) among its stream's own
        of ``kind`` (an entry where its row is ``due``, and with ``fill`` every one until the
        history is full); -1 elsewhere."""
        kept = residual.astype(np.float32).astype(np.float64)  # exact in 4 bytes
        kept[~cells] = np.nan
        size = self.settings.history_n
        histories = [self.streams[name].own_history(kind, size) for name in names]
        return feed_cells(histories, kept, due, upper_only=True, fill=fill)

    # -- events --------------------------------------------------------------------------------
    def _episodes(self, plan: _Plan, result: ChunkResult) -> None:
        """Walk the source's machine over the samples where it can change: all of them
        while an episode is open, else only those past ``start_score``."""
        settings = self.settings
        if (
            result.steps is None
            and len(plan.rows) == 1
            and plan.source not in self.sources
            and plan.node[0] < settings.start_score
        ):
            return  # a quiet live sample: nothing can start
        src = self.sources.setdefault(plan.source, SourceEpisode())
        candidates = np.flatnonzero(plan.node >= settings.start_score).tolist()
        steps = result.steps
        m = len(plan.rows)
        i = 0
        while i < m:
            if not src.active and steps is None:
                at = bisect.bisect_left(candidates, i)
                if at == len(candidates):
                    break
                i = candidates[at]
            view = plan.view(i)
            events = step(src, plan.source, view, settings)
            if events:
                result.events.setdefault(plan.rows[i], []).extend(events)
            if steps is not None:
                self._keep_step(plan, i, view, events, result)
            i += 1
        if not src.active:
            del self.sources[plan.source]

    def _keep_step(
        self, plan: _Plan, i: int, view: SampleView, events: list[Event], result: ChunkResult
    ) -> None:
        assert result.steps is not None
        tiny = plan.tiny(i, self.model is not None)
        result.steps[plan.rows[i]] = AnomalyStep(dict(view.scores), tiny, view.node, list(events))

    # -- personalisation -------------------------------------------------------------------------
    def _personalise(self, plan: _Plan, result: ChunkResult) -> None:
        """Offer the windows judged normal; run a training round when one is due (parts of
        one sample each, so a round falls after the same sample at any chunk size)."""
        personaliser = self.personaliser
        assert personaliser is not None and self.model is not None
        t = float(plan.t[-1])
        if plan.source not in self.sources:
            end = self.settings.end_score
            view = plan.view(len(plan.rows) - 1)
            for name, score in view.scores.items():
                if score < end and plan.scores.full[-1, plan.names.index(name)]:
                    s = self.streams[name]  # scored by the model: a full window
                    personaliser.offer(name, s.n, s.window)
        if not personaliser.due(t):
            return
        self.meter.split("anomaly", calls=0)
        personaliser.train(t)
        if personaliser.last_factors is not None:  # a kept round
            # New weights, new errors: each stream's error history is carried into the new
            # weights' units (times how much their errors on its windows waiting grew or
            # shrank), its upper tail kept. Started again from the windows judged normal, a
            # history had no tail, and ordinary errors ranked as rare (the model alone on
            # the development corpus: 31.28 against 38.28 carried over).
            factors, pooled = personaliser.last_factors
            for name, s in self.streams.items():
                s.errors.rescale(factors.get(name, pooled))
        self.meter.split("personalise")

    # -- streams that come and go ---------------------------------------------------------------
    def _sweep(self, t: float) -> None:
        """Drop the streams and sources unseen for ``history_s`` (network interfaces and
        disks come and go under new names: their histories, about 21 KB a stream, must not
        pile up for months)."""
        self.sweep_t = t + SWEEP_EVERY_S
        gone_before = t - self.settings.history_s
        for name, s in list(self.streams.items()):
            if s.last_t is not None and s.last_t < gone_before:
                del self.streams[name]
                self.streams_changed()
        tables: list[dict[str, Any]] = [self.joint, self.comove, self.context]
        for table in tables:
            for key, c in list(table.items()):
                if c.last_t is not None and c.last_t < gone_before and key not in self.sources:
                    del table[key]

    # -- state kept across restarts ------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        """What changes every sample (small: committed with every batch)."""
        return codec.state(self)

    def history_state(self) -> dict[str, Any]:
        """The histories (about 21 KB per stream: committed less often)."""
        return codec.history_state(self)

    def restore(
        self,
        saved: Mapping[str, Any],
        history: Mapping[str, Any] | None = None,
        weights: SavedWeights | None = None,
    ) -> bool:
        """Put back ``state()`` and ``history_state()``; False when they were unreadable
        (logged; the stage learns afresh)."""
        return codec.restore(self, saved, history, weights)


def _row_grid(
    t: F64, rows: npt.NDArray[Any], entry_t: float | None, every_s: float
) -> tuple[npt.NDArray[np.bool_], float | None]:
    """Which of the times ``t`` take a history entry, on one grid of ``every_s`` from
    ``entry_t`` that only ``rows`` (a mask or positions) move on; and the grid's new time."""
    due = np.zeros(len(t), dtype=np.bool_)
    due[rows], entry_t = entry_times(t[rows], entry_t, every_s)
    return due, entry_t


class _Layout(NamedTuple):
    """A live sample's streams as the stage scores them, built once for each layout the
    samples repeat (a sensor's fields, in its order)."""

    names: list[str]  # in name order
    streams: Columns  # the names' streams, in that order
    present: npt.NDArray[np.bool_]  # ``_Plan.present`` of a sample of this layout (read-only)


@dataclass(slots=True)
class _Plan:
    """One source's part of a chunk, as columns, and its scores."""

    source: str
    rows: list[int]  # positions in the chunk
    t: F64
    names: list[str]
    matrix: F64  # clipped values [sample, stream], NaN where absent
    present: npt.NDArray[np.bool_]
    scores: SourceScores
    #: Each stream's last value before the part (NaN: none), where co-movement judges a
    #: chunk (a part of one sample reads it from the streams' windows).
    before: F64 | None = None
    #: The streams' states, in the order of ``names``.
    states: list[StreamState] = field(default_factory=list)
    node: F64 = field(default_factory=lambda: np.zeros(0))
    #: Whether the machine was on battery at each sample (with ``[anomaly] context``).
    battery: npt.NDArray[np.bool_] | None = None
    #: The learned place the device was at, at each sample (``NO_PLACE``; None: unknown).
    place: npt.NDArray[np.int64] | None = None
    #: The cells the hour explained (``_explain_by_hour``), where it was asked.
    explained: npt.NDArray[np.bool_] | None = None

    def previous(self) -> F64:
        """Each cell's stream's last value before it (NaN: none yet)."""
        assert self.before is not None
        return fill_down(np.vstack([self.before[None, :], self.matrix[:-1]]))

    def view(self, i: int) -> SampleView:
        cols = np.flatnonzero(self.present[i]).tolist()
        surprise, row = self.scores.surprise[i].tolist(), self.matrix[i].tolist()
        scores = {self.names[j]: to_score(surprise[j]) for j in cols}
        values = {self.names[j]: row[j] for j in cols}

        def edges(name: str) -> tuple[float, float] | None:
            lo, hi = self.scores.edges[i, self.names.index(name)].tolist()
            return None if math.isnan(lo) else (lo, hi)

        def young(name: str) -> bool:
            return bool(self.scores.young[i, self.names.index(name)])

        return SampleView(float(self.t[i]), float(self.node[i]), scores, values, edges, young)

    def tiny(self, i: int, with_model: bool) -> dict[str, float]:
        if not with_model:
            return {}
        shape = self.scores.shape[i].tolist()
        return {self.names[j]: to_score(shape[j]) for j in np.flatnonzero(self.scores.full[i])}


def _in_band(
    plan: _Plan, profiles: HourProfiles, x: F64, level: F64, spread: F64
) -> npt.NDArray[np.bool_]:
    """Which values ``x`` lie within ``MIN_RESIDUAL`` of their hour's spreads (never less
    than the floor) of the hour's usual ``level``, either way: the band where the hour
    explains a value (NaN: not in it)."""
    floor = profiles.floor(plan.names, plan.scores.edges)
    near: npt.NDArray[np.bool_] = np.abs(x - level) < MIN_RESIDUAL * np.fmax(spread, floor)
    return near
