"""Stage 3 (tiny model): raw anomaly scores -> anomaly likelihoods, online, per stream.

Numenta's anomaly likelihood is the model: a raw score (here the tiny model's prediction
error) means little on its own, since every stream has its own noise. So each stream keeps
the distribution of its recent raw scores (a long-term Gaussian, exponentially weighted over
about ``long_n`` scores: O(1) memory and a state small enough to commit), and the likelihood
of a sample is how far the *short-term* mean of its scores sits in that distribution's upper
tail: ``Phi((short_mean - long_mean) / long_std)``. A stream whose errors are always large is
normal; a stream whose errors suddenly grow is not. Pure, sample count only.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field
from typing import Any

#: Below this spread, scores are treated as constant (a flat stream): no false alarms from
#: dividing by almost zero.
MIN_STD = 1e-3


@dataclass(frozen=True)
class LikelihoodSettings:
    long_n: int = 1000  # the long-term distribution's memory, in scores
    short_n: int = 10  # scores averaged for the short-term mean
    warmup_n: int = 100  # no verdict before this many scores (likelihood 0.5)


@dataclass
class _Stream:
    short: deque[float] = field(default_factory=deque)
    n: int = 0
    mean: float = 0.0
    var: float = 0.0


class AnomalyLikelihood:
    """One tracker per stream name, fed raw scores in time order."""

    def __init__(self, settings: LikelihoodSettings | None = None) -> None:
        self.settings = settings or LikelihoodSettings()
        self._streams: dict[str, _Stream] = {}

    def update(self, stream: str, raw: float) -> float:
        """Add ``raw`` (finite, >= 0) for ``stream``; return its likelihood in [0, 1]."""
        s = self._streams.get(stream)
        if s is None:
            s = self._streams[stream] = _Stream()
        settings = self.settings
        s.short.append(raw)
        if len(s.short) > settings.short_n:
            s.short.popleft()
        likelihood = 0.5
        if s.n >= settings.warmup_n:
            std = max(math.sqrt(s.var), MIN_STD)
            short_mean = sum(s.short) / len(s.short)
            likelihood = _normal_cdf((short_mean - s.mean) / std)
        # Exponentially weighted mean and variance; plain averages until long_n scores.
        s.n += 1
        a = 1.0 / min(s.n, settings.long_n)
        diff = raw - s.mean
        s.mean += a * diff
        s.var = (1.0 - a) * (s.var + a * diff * diff)
        return likelihood

    def state(self) -> dict[str, Any]:
        return {
            name: {"n": s.n, "mean": s.mean, "var": s.var, "short": list(s.short)}
            for name, s in sorted(self._streams.items())
        }

    def restore(self, saved: dict[str, Any]) -> None:
        self._streams = {
            name: _Stream(deque(d["short"]), int(d["n"]), float(d["mean"]), float(d["var"]))
            for name, d in saved.items()
        }


def _normal_cdf(z: float) -> float:
    return 0.5 * math.erfc(-z / math.sqrt(2.0))


def log_score(likelihood: float, floor: float = 1e-10) -> float:
    """Likelihood -> a score in [0, 1] that spreads the far tail out (Numenta's log
    transform): 0.5 -> ~0.03, 1 - 1e-5 -> 0.5, 1 - 1e-10 and beyond -> 1."""
    tail = max(1.0 - likelihood, floor)
    return min(1.0, math.log(tail) / math.log(floor))
