"""Stage 3, the always-on tier: every numeric stream scored -> anomaly scores per stream and
per source, and ``anomaly.start`` / ``anomaly.end`` events.

Per stream, at every sample that carries it, three numbers, each judged by its rank among
the stream's own recent ones (``novelty.py``: a tail p-value as a *surprise*, ``-log10 p``,
plus the distance past the range seen):

* **value**: the reading itself (two-sided): a dropout, a runaway, a spike, a new level;
* **shape**: the tiny model's reconstruction error of the stream's last W values, z-scored
  per window (one model for all streams; upper tail only): a pattern the model, trained on
  generic shapes and then on this machine's own (``personalise.py``), does not know;
* **spread**: the log standard deviation of those W values (two-sided): a sensor stuck on
  one value, noise that grows.

A stream's surprise is the largest of the three; its score is ``s / (s + 3)`` in [0, 1), so
0.5 is a one-in-a-thousand number. The ranks are this stream's online thresholds: what was
usual for it lately, kept in memory. The ``tiny`` score is the shape's alone.

Each history keeps ``history_n`` entries spanning about ``history_s`` of sample time: it
fills with every sample, then takes one entry per ``history_s / history_n`` seconds, so
the daemon (a sample every 10 s) remembers days, not hours. Time enters only there:
repeated or backward timestamps never add an entry early, gaps add one.

The streams of one sample are combined into one score per source (``system``, ``battery``,
a metric's name): the best stream's surprise corrected for the number of streams
(Bonferroni), or, if it says more, the rank of the sum of all the streams' surprises among
the source's own past sums (several streams a little odd at once, in a way the source has not
shown; streams that always move together make sums that are usual). That score drives the
events with hysteresis: start at ``start_score``, end after ``end_n`` samples below
``end_score`` with every involved stream's value back within the range it had before the
start (the ranks adapt within minutes; a runaway that goes on is still an anomaly), or
``hold_s`` after the start at the latest. A new surge past ``start_score`` while an anomaly
is only held open ends it and starts its own. The events name the streams involved.

Bad input: NaN and infinities never get here (the gate refuses them); values are clipped to
``MAX_VALUE``, so a reading of 1e300 is the largest surprise, never an overflow; a constant
stream's spread is floored and its ranks all tie, so it stays quiet; no verdict before
``WARMUP_N`` entries.
"""

from __future__ import annotations

import binascii
import logging
import math
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from agent.detect.novelty import ValueHistory
from agent.detect.personalise import Personaliser, SavedWeights
from agent.power.meter import NullMeter, PowerMeter
from agent.samples import Event

logger = logging.getLogger(__name__)

#: Values are clipped to this magnitude before any arithmetic: squares and sums of a window
#: stay finite, so a reading of 1e300 is the largest anomaly, never an overflow or a NaN.
MAX_VALUE = 1e100
#: The layout of ``state()`` / ``history_state()`` (1 was the Gaussian level and likelihood,
#: 2 had no joint histories).
STATE_FORMAT = 3
#: How often (in sample time) the stage drops the streams it has not seen for ``history_s``.
SWEEP_EVERY_S = 3600.0
_LOG10_2 = math.log10(2.0)
#: The surprise that scores 0.5 (a one-in-a-thousand number).
HALF_SCORE_SURPRISE = 3.0


def clip_value(value: float) -> float:
    return min(max(value, -MAX_VALUE), MAX_VALUE)


def to_score(surprise: float) -> float:
    return surprise / (surprise + HALF_SCORE_SURPRISE)


class WindowModel(Protocol):
    """The tiny model as this stage uses it (``agent.detect.tflite.TinyModel``)."""

    @property
    def window(self) -> int: ...

    def scale(self, windows: npt.ArrayLike) -> npt.NDArray[np.float32]: ...

    def infer(self, x: npt.ArrayLike) -> npt.NDArray[np.float32]: ...


def window_stats(
    model: WindowModel | None,
    windows: npt.NDArray[np.float64],
    meter: PowerMeter | None = None,
) -> tuple[npt.NDArray[np.float32] | None, npt.NDArray[np.float64]]:
    """The model's errors (None without a model) and the log spreads of raw windows
    ``[k, W]``. Row by row the same numbers for any k: the live path (k = the sample's
    streams) and replay's batched path (thousands of windows per call) agree."""
    spread = np.log(windows.std(axis=1) + 1e-9 + 1e-6 * np.abs(windows.mean(axis=1)))
    # float32 like the model's errors: both are then kept exactly in 4 bytes (history_state).
    spread = spread.astype(np.float32).astype(np.float64)
    if model is None:
        return None, spread
    if meter is None:
        return model.infer(model.scale(windows)), spread
    meter.lap("anomaly")
    errors = model.infer(model.scale(windows))
    meter.lap("tiny_model")
    return errors, spread


@dataclass(frozen=True)
class AnomalySettings:
    history_n: int = 1000  # entries per history
    history_s: float = 4 * 86400.0  # sample time a full history spans
    warmup_s: float = 2 * 3600.0  # no verdict on a stream before it has been seen this long
    start_score: float = 0.55
    end_score: float = 0.45
    end_n: int = 3
    hold_s: float = 3600.0  # an anomaly beyond its edges this long is the new normal


@dataclass
class _Stream:
    window: deque[float]
    values: ValueHistory
    errors: ValueHistory
    spreads: ValueHistory
    n: int = 0
    entry_t: float | None = None  # when the histories last took an entry
    first_t: float | None = None
    last_t: float | None = None  # when it last carried a value


@dataclass
class _Joint:
    """A source's sum of stream surprises, ranked against its own past sums: streams that
    always move together (CPU, load, temperature) make large sums that are usual; several
    streams odd at once in a way never seen make a sum past the edge."""

    sums: ValueHistory
    entry_t: float | None = None
    last_t: float | None = None


@dataclass
class _Source:
    active: bool = False
    below_n: int = 0
    since: float | None = None
    streams: set[str] = field(default_factory=set)
    #: The involved streams' (smallest, largest) values before the anomaly started: it stays
    #: open while a value is beyond them (a runaway goes on), for at most ``hold_s``.
    edges: dict[str, tuple[float, float]] = field(default_factory=dict)
    held: bool = False  # its score has fallen back, its values have not


@dataclass
class AnomalyStep:
    scores: dict[str, float] = field(default_factory=dict)
    tiny: dict[str, float] = field(default_factory=dict)
    node: float | None = None
    events: list[Event] = field(default_factory=list)


class AnomalyDetector:
    def __init__(self, model: WindowModel | None, settings: AnomalySettings) -> None:
        self.model = model
        #: Laps around the model's calls (the pipeline hands over the loop's meter).
        self.meter: PowerMeter = NullMeter()
        self.window = model.window if model is not None else 32
        self.settings = settings
        self._entry_every_s = settings.history_s / settings.history_n
        self._streams: dict[str, _Stream] = {}
        self._sources: dict[str, _Source] = {}
        self._joint: dict[str, _Joint] = {}
        #: (stream, value count) -> (model error, log spread) computed ahead (replay).
        self.prefetched: dict[tuple[str, int], tuple[float | None, float]] = {}
        #: The windows behind ``prefetched``, batch by batch, rescored after a training round.
        self._ahead: list[tuple[list[tuple[str, int]], npt.NDArray[np.float64]]] = []
        #: Trains the model on this machine's normal windows (``personalise.py``), if set.
        self.personaliser: Personaliser | None = None
        #: Value counts of streams dropped as gone, so a stream that comes back keeps its
        #: numbering (replay's prefetch keys) without keeping its histories.
        self._retired_n: dict[str, int] = {}
        self._sweep_t: float | None = None

    def feed(self, t: float, source: str, values: Mapping[str, float]) -> AnomalyStep:
        step = AnomalyStep()
        if not values:
            return step
        names = sorted(values)
        surprise: dict[str, float] = {}
        for name in names:
            s = self._stream(name)
            v = clip_value(values[name])
            surprise[name] = s.values.surprise(v)
            s.window.append(v)
            s.n += 1
        stats = self._window_stats(names)
        warm = True  # every stream of the sample past its warm-up
        for name in names:
            s = self._streams[name]
            err, spread = stats.get(name, (None, None))
            if spread is not None:
                surprise[name] = max(surprise[name], s.spreads.surprise(spread))
            shape = s.errors.surprise(err, upper_only=True) if err is not None else 0.0
            surprise[name] = max(surprise[name], shape)
            if s.first_t is None:
                s.first_t = t
            if t - s.first_t < self.settings.warmup_s:  # still learning what is usual
                surprise[name] = shape = 0.0
                warm = False
            if err is not None:
                step.tiny[name] = to_score(shape)
            step.scores[name] = to_score(surprise[name])
        step.node = to_score(self._node(t, source, list(surprise.values()), warm))
        step.events += self._events(t, source, step, values)
        for name in names:  # after the events: an anomaly's edges are those from before it
            err, spread = stats.get(name, (None, None))
            self._remember(self._streams[name], t, err, spread)
        if self.personaliser is not None:
            self._personalise(t, source, step)
        self._streams_seen(t, names, source)
        return step

    def _streams_seen(self, t: float, names: list[str], source: str) -> None:
        """Note who was seen; once per ``SWEEP_EVERY_S`` of sample time, drop the streams
        and sources unseen for ``history_s`` (network interfaces and disks come and go under
        new names: their histories, about 21 KB a stream, must not pile up for months)."""
        for name in names:
            self._streams[name].last_t = t
        if source in self._joint:
            self._joint[source].last_t = t
        if self._sweep_t is not None and t < self._sweep_t:
            return
        self._sweep_t = t + SWEEP_EVERY_S
        gone_before = t - self.settings.history_s
        for name, s in list(self._streams.items()):
            if s.last_t is not None and s.last_t < gone_before:
                del self._streams[name]
                self._retired_n[name] = s.n
        for key, j in list(self._joint.items()):
            if j.last_t is not None and j.last_t < gone_before and key not in self._sources:
                del self._joint[key]
        for key, src in list(self._sources.items()):
            if not src.active and key not in self._joint:
                del self._sources[key]

    def _node(self, t: float, source: str, surprises: list[float], warm: bool) -> float:
        """The source's surprise: its best stream's (Bonferroni), or the rank of the sum of
        all its streams' against the source's own past sums, whichever says more (less
        log10(2) for asking twice). The sums are learned only once every stream is warm."""
        best = combine(surprises)
        if len(surprises) < 2 or not warm:
            return best
        joint = self._joint.get(source)
        if joint is None:
            joint = self._joint[source] = _Joint(ValueHistory(self.settings.history_n))
        total = sum(surprises)
        together = joint.sums.surprise(total, upper_only=True) - _LOG10_2
        due, joint.entry_t = _next_entry(joint.entry_t, t, self._entry_every_s)
        if due or len(joint.sums) < self.settings.history_n:
            joint.sums.add(total)
        else:
            joint.sums.observe(total)
        return max(best, together)

    def _remember(self, s: _Stream, t: float, err: float | None, spread: float | None) -> None:
        """Add this sample's numbers to the histories that are still filling, or to all of
        them once per ``history_s / history_n`` of sample time."""
        due, s.entry_t = _next_entry(s.entry_t, t, self._entry_every_s)
        full = self.settings.history_n
        for history, x in ((s.values, s.window[-1]), (s.spreads, spread), (s.errors, err)):
            if x is None:
                continue
            if due or len(history) < full:
                history.add(x)
            else:
                history.observe(x)

    def _stream(self, name: str) -> _Stream:
        s = self._streams.get(name)
        if s is None:
            size = self.settings.history_n
            s = self._streams[name] = _Stream(
                deque(maxlen=self.window),
                ValueHistory(size),
                ValueHistory(size),
                ValueHistory(size),
                self._retired_n.pop(name, 0),
            )
        return s

    def _window_stats(self, names: list[str]) -> dict[str, tuple[float | None, float]]:
        """(model error, log spread) of the streams with a full window, in one batch (or from
        ``prefetched``, filled ahead in batches by replay)."""
        full = [n for n in names if len(self._streams[n].window) == self.window]
        if len(full) < len(names) and self.prefetched:
            # A stream back after it was dropped as gone fills its window afresh; replay's
            # batched path kept the old values, so its scores for these values go unused.
            for name in set(names).difference(full):
                self.prefetched.pop((name, self._streams[name].n), None)
        found: dict[str, tuple[float | None, float]] = {}
        missing = []
        for name in full:
            cached = self.prefetched.pop((name, self._streams[name].n), None)
            if cached is None:
                missing.append(name)
            else:
                found[name] = cached
        if missing:
            windows = np.array([self._streams[n].window for n in missing], dtype=np.float64)
            errors, spreads = window_stats(self.model, windows, self.meter)
            for i, name in enumerate(missing):
                found[name] = (float(errors[i]) if errors is not None else None, float(spreads[i]))
        return found

    def positions(self) -> dict[str, tuple[list[float], int]]:
        """Each stream's window and value count: where replay's batched path goes on from
        after a restore (its keys are ``(stream, n)``)."""
        return {name: (list(s.window), s.n) for name, s in self._streams.items()}

    def prefetch(self, batch: list[tuple[str, int, list[float]]]) -> None:
        """Replay's batched path: the window numbers of many windows in one call, each keyed
        by (stream, n): the window as it will be when that stream's n-th value arrives."""
        if not batch:
            return
        windows = np.array([w for _, _, w in batch], dtype=np.float64)
        errors, spreads = window_stats(self.model, windows, self.meter)
        keys = [(name, n) for name, n, _ in batch]
        for i, key in enumerate(keys):
            err = float(errors[i]) if errors is not None else None
            self.prefetched[key] = (err, float(spreads[i]))
        if self.personaliser is not None:
            self._ahead = [a for a in self._ahead if any(k in self.prefetched for k in a[0])]
            self._ahead.append((keys, windows))

    def _personalise(self, t: float, source: str, step: AnomalyStep) -> None:
        """Offer the windows judged normal; run a training round when one is due."""
        personaliser = self.personaliser
        assert personaliser is not None
        if not self._sources[source].active:
            end = self.settings.end_score
            for name, score in step.scores.items():
                if score < end and name in step.tiny:  # scored by the model: a full window
                    s = self._streams[name]
                    personaliser.offer(name, s.n, s.window)
        if not personaliser.due(t):
            return
        self.meter.lap("anomaly")
        kept = personaliser.train(t).kept
        self.meter.lap("personalise")
        if kept:
            # New weights, new errors: the old ones are not comparable, so each stream's
            # error history starts again from its recent normal windows, scored anew.
            recent = personaliser.recent_errors()
            for name, s in self._streams.items():
                s.errors = ValueHistory(self.settings.history_n)
                for err in recent.get(name, ()):
                    s.errors.add(err)
            self._rescore_ahead()

    def _rescore_ahead(self) -> None:
        """New weights: the errors computed ahead with the old ones are computed again."""
        assert self.model is not None
        for keys, windows in self._ahead:
            rows = [i for i, k in enumerate(keys) if k in self.prefetched]
            if not rows:
                continue
            self.meter.lap("anomaly")
            errors = self.model.infer(self.model.scale(windows[rows]))
            self.meter.lap("tiny_model")
            for i, err in zip(rows, errors, strict=True):
                self.prefetched[keys[i]] = (float(err), self.prefetched[keys[i]][1])

    def _events(
        self,
        t: float,
        source: str,
        step: AnomalyStep,
        values: Mapping[str, float],
    ) -> list[Event]:
        src = self._sources.setdefault(source, _Source())
        node = step.node if step.node is not None else 0.0
        settings = self.settings
        involved = {n for n, s in step.scores.items() if s >= settings.end_score}
        if src.active and src.held and node >= settings.start_score:
            # A new surge while the last one is only held open: its own anomaly.
            return [self._end(t, source), *self._events(t, source, step, values)]
        if not src.active:
            if node < settings.start_score:
                return []
            src.active, src.since, src.below_n, src.streams = True, t, 0, set(involved)
            edges = {n: self._streams[n].values.edges() for n in involved}
            src.edges = {n: e for n, e in edges.items() if e is not None}
            data = {"score": round(node, 6), "streams": sorted(involved)}
            return [Event(t, "anomaly.start", source, data)]
        src.streams |= involved
        if node >= settings.end_score:
            src.below_n, src.held = 0, False
            return []
        beyond = any(
            not lo <= clip_value(values[n]) <= hi
            for n, (lo, hi) in src.edges.items()
            if n in values
        )
        if beyond and t - (src.since or t) < settings.hold_s:
            src.below_n, src.held = 0, True
            return []
        src.below_n += 1
        if src.below_n < settings.end_n:
            return []
        return [self._end(t, source)]

    def _end(self, t: float, source: str) -> Event:
        src = self._sources[source]
        data = {"since": src.since, "streams": sorted(src.streams)}
        self._sources[source] = _Source()
        return Event(t, "anomaly.end", source, data)

    # -- state kept across restarts ------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        """What changes every sample: windows, counts, open anomalies, the training schedule
        (small: committed with every batch)."""
        return {
            "format": STATE_FORMAT,
            "streams": {
                n: {
                    "window": list(s.window),
                    "n": s.n,
                    "entry_t": s.entry_t,
                    "first_t": s.first_t,
                    "last_t": s.last_t,
                }
                for n, s in sorted(self._streams.items())
            },
            "retired_n": dict(sorted(self._retired_n.items())),
            "sweep_t": self._sweep_t,
            "sources": {
                n: {
                    "since": s.since,
                    "below_n": s.below_n,
                    "streams": sorted(s.streams),
                    "edges": {k: list(v) for k, v in sorted(s.edges.items())},
                    "held": s.held,
                }
                for n, s in sorted(self._sources.items())
                if s.active
            },
            **({"personalise": self.personaliser.state()} if self.personaliser else {}),
        }

    def history_state(self) -> dict[str, Any]:
        """The histories (about 21 KB per stream: committed less often, see MemoryStore)."""
        return {
            "streams": {
                n: {
                    "values": s.values.encode(),
                    "errors": s.errors.encode("<f4"),
                    "spreads": s.spreads.encode("<f4"),
                }
                for n, s in sorted(self._streams.items())
            },
            "joint": {
                n: {"sums": j.sums.encode(), "entry_t": j.entry_t, "last_t": j.last_t}
                for n, j in sorted(self._joint.items())
            },
        }

    def restore(
        self,
        saved: Mapping[str, Any],
        history: Mapping[str, Any] | None = None,
        weights: SavedWeights | None = None,
    ) -> bool:
        """Put back ``state()`` and ``history_state()``; ``weights`` are the personalised
        weights the memory kept. State this version cannot read (an older format, a damaged
        row) is dropped with one log line, and the stage learns afresh: returns False then."""
        if self.personaliser is not None:
            self.personaliser.restore(saved.get("personalise", {}), weights)
        if not saved.get("streams"):
            return True  # nothing kept yet
        if saved.get("format") != STATE_FORMAT:
            logger.warning(
                "anomaly state in the database is format %s, this vigil reads %d: "
                "the always-on tier learns afresh",
                saved.get("format", 1),
                STATE_FORMAT,
            )
            return False
        history = history or {}
        size = self.settings.history_n
        try:
            streams = {}
            for name, d in saved["streams"].items():
                h = history.get("streams", {}).get(name, {})
                streams[name] = _Stream(
                    deque(d["window"], maxlen=self.window),
                    ValueHistory.decode(size, h.get("values", {})),
                    ValueHistory.decode(size, h.get("errors", {}), "<f4"),
                    ValueHistory.decode(size, h.get("spreads", {}), "<f4"),
                    int(d["n"]),
                    d["entry_t"],
                    d.get("first_t"),
                    d.get("last_t"),
                )
            sources = {
                n: _Source(
                    True,
                    int(d["below_n"]),
                    d["since"],
                    set(d["streams"]),
                    {k: (float(lo), float(hi)) for k, (lo, hi) in d["edges"].items()},
                    bool(d["held"]),
                )
                for n, d in saved.get("sources", {}).items()
            }
            joint = {
                n: _Joint(ValueHistory.decode(size, d["sums"]), d["entry_t"], d.get("last_t"))
                for n, d in history.get("joint", {}).items()
            }
            retired = {str(k): int(v) for k, v in saved.get("retired_n", {}).items()}
            sweep_t = saved.get("sweep_t")
        except (KeyError, TypeError, ValueError, AttributeError, binascii.Error) as exc:
            logger.warning("anomaly state in the database is damaged (%r): learning afresh", exc)
            return False
        self._streams, self._sources, self._joint = streams, sources, joint
        self._retired_n, self._sweep_t = retired, sweep_t
        return True


def _next_entry(entry_t: float | None, t: float, every: float) -> tuple[bool, float | None]:
    """Whether a history takes an entry at ``t``, and its new entry time: on a grid of
    ``every`` from the first entry (so entries keep the mean spacing whatever the sample
    interval), restarted after a gap."""
    if entry_t is None:
        return True, t
    if t < entry_t + every:
        return False, entry_t
    return True, (t if t - entry_t >= 2 * every else entry_t + every)


def combine(surprises: list[float]) -> float:
    """The best of several streams' surprises (read as p-values ``10**-s``), corrected for
    how many there are (Bonferroni). Fisher's method on the same p-values, tried for streams
    odd together, fired on every stir of correlated streams (CPU, load and temperature move
    together) in the demo day, 43 of 92 starts: the joint sums are ranked instead."""
    k = len(surprises)
    if k == 1:
        return surprises[0]
    return max(0.0, max(surprises) - math.log10(k))
