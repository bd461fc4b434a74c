"""Stage 3, the always-on tier: every numeric stream scored by the tiny model -> anomaly
scores, likelihoods and ``anomaly.start`` / ``anomaly.end`` events.

Per stream, at every sample that carries it:

* **shape**: the tiny model's reconstruction error of the stream's last W values, z-scored
  per window (one model for all streams), divided by the model card's 99th percentile of
  normal errors; this alone is the ``tiny`` score (``min(1, error / (4 * p99))``);
* **level**: how far the value sits from the stream's own running mean, in running standard
  deviations (exponentially weighted), since a z-scored window cannot see a level shift;
* the raw score ``max(shape, (level / 3)**2)`` goes through the stream's anomaly likelihood
  (``likelihood.py``); the detector's score is its log transform, in [0, 1].

Bad input: NaN and infinities never get here (the gate refuses them); values are clipped to
``MAX_VALUE``; a constant stream's spread is floored, so it stays quiet; time is not used at
all (a stream's clock is its sample count), so repeated or out-of-order timestamps and gaps
change nothing; each stream is judged only after its warm-up.

Streams of one sample are combined (Stouffer's z over their likelihoods) into one score per
source (``system``, ``battery``, a metric's name...), which drives the events with hysteresis:
start at ``start_score``, end after ``end_n`` samples below ``end_score``. The events name the
streams involved. Time is the samples' only; each stream's time is its sample count.
"""

from __future__ import annotations

import logging
import math
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from statistics import NormalDist
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from agent.detect.likelihood import AnomalyLikelihood, LikelihoodSettings, log_score
from agent.samples import Event

logger = logging.getLogger(__name__)

_NORMAL = NormalDist()
#: Values are clipped to this magnitude before any arithmetic: squares and sums of a window
#: stay finite, so a reading of 1e300 is the largest anomaly, never an overflow or a NaN.
MAX_VALUE = 1e100
#: Raw scores are capped here: a value of 1e300 must not turn into inf or NaN downstream.
MAX_RAW = 1e6


def clip_value(value: float) -> float:
    return min(max(value, -MAX_VALUE), MAX_VALUE)


class WindowModel(Protocol):
    """The tiny model as this stage uses it (``agent.detect.tflite.TinyModel``)."""

    @property
    def window(self) -> int: ...

    def scale(self, windows: npt.ArrayLike) -> npt.NDArray[np.float32]: ...

    def infer(self, x: npt.ArrayLike) -> npt.NDArray[np.float32]: ...


@dataclass(frozen=True)
class AnomalySettings:
    level_alpha: float = 0.01  # weight of a new value in the running mean and variance
    level_warmup_n: int = 30  # no level verdict before this many values
    start_score: float = 0.5  # likelihood 1 - 1e-5
    end_score: float = 0.3
    end_n: int = 3
    likelihood: LikelihoodSettings = field(default_factory=LikelihoodSettings)


@dataclass
class _Stream:
    values: deque[float]
    n: int = 0
    mean: float = 0.0
    var: float = 0.0


@dataclass
class _Source:
    active: bool = False
    below_n: int = 0
    since: float | None = None
    streams: set[str] = field(default_factory=set)


@dataclass
class AnomalyStep:
    scores: dict[str, float] = field(default_factory=dict)
    tiny: dict[str, float] = field(default_factory=dict)
    node: float | None = None
    events: list[Event] = field(default_factory=list)


class AnomalyDetector:
    def __init__(self, model: WindowModel | None, p99: float, settings: AnomalySettings) -> None:
        self.model = model
        self.window = model.window if model is not None else 32
        self.p99 = max(p99, 1e-9)
        self.settings = settings
        self.likelihood = AnomalyLikelihood(settings.likelihood)
        self._streams: dict[str, _Stream] = {}
        self._sources: dict[str, _Source] = {}
        #: (stream, value count) -> shape score computed ahead (replay's batched path).
        self.prefetched: dict[tuple[str, int], float] = {}

    def feed(self, t: float, source: str, values: Mapping[str, float]) -> AnomalyStep:
        step = AnomalyStep()
        if not values:
            return step
        names = sorted(values)
        level = {name: self._level(name, clip_value(values[name])) for name in names}
        shape = self._shapes(names)
        zs = []
        for name in names:
            err = shape.get(name)
            if err is not None:
                step.tiny[name] = min(1.0, err / 4.0)
            raw = min(MAX_RAW, max(err or 0.0, (level[name] / 3.0) ** 2))
            likelihood = self.likelihood.update(name, raw)
            step.scores[name] = log_score(likelihood)
            zs.append(_NORMAL.inv_cdf(min(max(likelihood, 1e-12), 1.0 - 1e-12)))
        node_likelihood = _NORMAL.cdf(sum(zs) / math.sqrt(len(zs)))
        step.node = log_score(node_likelihood)
        event = self._events(t, source, step)
        if event is not None:
            step.events.append(event)
        return step

    # -- state kept across restarts ------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        """Plain data: each stream's window and running level, likelihoods, open anomalies."""
        return {
            "streams": {
                n: {"values": list(s.values), "n": s.n, "mean": s.mean, "var": s.var}
                for n, s in sorted(self._streams.items())
            },
            "likelihood": self.likelihood.state(),
            "sources": {
                n: {"since": s.since, "below_n": s.below_n, "streams": sorted(s.streams)}
                for n, s in sorted(self._sources.items())
                if s.active
            },
        }

    def restore(self, saved: Mapping[str, Any]) -> None:
        self._streams = {
            n: _Stream(deque(d["values"], maxlen=self.window), int(d["n"]), d["mean"], d["var"])
            for n, d in saved.get("streams", {}).items()
        }
        self.likelihood.restore(saved.get("likelihood", {}))
        self._sources = {
            n: _Source(True, int(d["below_n"]), d["since"], set(d["streams"]))
            for n, d in saved.get("sources", {}).items()
        }

    def _level(self, name: str, value: float) -> float:
        """The value's distance from the stream's running mean, in running deviations."""
        s = self._streams.get(name)
        if s is None:
            s = self._streams[name] = _Stream(deque(maxlen=self.window), mean=value)
        s.values.append(value)
        s.n += 1
        a = self.settings.level_alpha
        diff = value - s.mean
        z = 0.0
        if s.n > self.settings.level_warmup_n:
            z = abs(diff) / max(math.sqrt(s.var), 1e-9 + 1e-6 * abs(s.mean))
        s.mean += a * diff
        s.var = (1.0 - a) * (s.var + a * diff * diff)
        return min(z, 1e3)

    def _shapes(self, names: list[str]) -> dict[str, float]:
        """The tiny model's error / p99 for the streams with a full window, in one batch
        (or from ``prefetched``, filled ahead in batches by replay)."""
        if self.model is None:
            return {}
        full = [n for n in names if len(self._streams[n].values) == self.window]
        if not full:
            return {}
        shapes: dict[str, float] = {}
        missing = []
        for name in full:
            cached = self.prefetched.pop((name, self._streams[name].n), None)
            if cached is None:
                missing.append(name)
            else:
                shapes[name] = cached
        if missing:
            windows = np.array([self._streams[n].values for n in missing], dtype=np.float64)
            errors = self.model.infer(self.model.scale(windows))
            shapes.update({n: float(e) / self.p99 for n, e in zip(missing, errors, strict=True)})
        return shapes

    def prefetch(self, batch: list[tuple[str, int, list[float]]]) -> None:
        """Replay's batched path: the model's errors for many windows in one call, each keyed
        by (stream, n): the window as it will be when that stream's n-th value arrives."""
        if self.model is None or not batch:
            return
        windows = np.array([w for _, _, w in batch], dtype=np.float64)
        errors = self.model.infer(self.model.scale(windows))
        for (name, n, _), e in zip(batch, errors, strict=True):
            self.prefetched[(name, n)] = float(e) / self.p99

    def _events(self, t: float, source: str, step: AnomalyStep) -> Event | None:
        src = self._sources.setdefault(source, _Source())
        node = step.node if step.node is not None else 0.0
        settings = self.settings
        involved = {n for n, s in step.scores.items() if s >= settings.end_score}
        if not src.active:
            if node < settings.start_score:
                return None
            src.active, src.since, src.below_n, src.streams = True, t, 0, set(involved)
            data = {"score": round(node, 6), "streams": sorted(involved)}
            return Event(t, "anomaly.start", source, data)
        src.streams |= involved
        if node >= settings.end_score:
            src.below_n = 0
            return None
        src.below_n += 1
        if src.below_n < settings.end_n:
            return None
        data = {"since": src.since, "streams": sorted(src.streams)}
        self._sources[source] = _Source()
        return Event(t, "anomaly.end", source, data)
