"""Stage 3, on-device personalisation: the tiny model trained on this user's normal windows.

The shipped model learned generic shapes; what is normal for one machine (a backup's burst
every ten minutes, a charger's sawtooth) may look odd to it. So the anomaly stage offers the
windows it judged normal (every ``STRIDE``-th window of a stream whose score stayed below the
end score, outside any open anomaly, not flat) to a ring of the ``KEEP_WINDOWS`` most recent.
Every ``personalise_every_s`` of *sample time* (``[anomaly]`` in the config), once
``personalise_min_windows`` new ones came since the last round (so a slow stream is not
trained on the same windows again and again), a round runs: the windows are split (every
fourth held out), the optimiser starts fresh from the current weights, ``personalise_steps``
batches of the model's fixed training size are drawn with a generator seeded by the round
number, and the new weights are kept only if the held-out loss went down; otherwise the old
ones come back. Everything depends on the samples alone, so a replay trains at the same
samples on the same windows and gives the same events every time.

The weights (``np.savez`` bytes) and the round's figures are what the memory keeps
(``model_weights`` table); after a restart ``restore`` puts them back with ``set_weights``,
and refuses weights trained for another model file. The ring itself is not kept: it refills
from the live streams before the next round.
"""

from __future__ import annotations

import logging
import math
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from agent.config import AnomalyConfig
from agent.detect.tflite import WindowScaling
from agent.errors import ModelError

logger = logging.getLogger(__name__)

F32 = npt.NDArray[np.float32]


class TrainableModel(Protocol):
    """The parts of ``agent.detect.tflite.TinyModel`` a round uses."""

    @property
    def window(self) -> int: ...

    @property
    def train_batch(self) -> int: ...

    @property
    def sha256(self) -> str: ...

    @property
    def scaling(self) -> WindowScaling: ...

    def scale(self, windows: npt.ArrayLike) -> F32: ...

    def infer(self, x: npt.ArrayLike) -> F32: ...

    def train(self, x_batch: npt.ArrayLike, lr: float) -> float: ...

    def get_weights(self) -> dict[str, F32]: ...

    def set_weights(self, weights: Mapping[str, npt.ArrayLike]) -> None: ...

    def weights_blob(self) -> bytes: ...

    def load_weights_blob(self, blob: bytes) -> None: ...


#: The most recent normal windows kept for training.
KEEP_WINDOWS = 4096
#: About one window in ``STRIDE`` per stream is offered: neighbours overlap almost wholly.
STRIDE = 8
#: Windows whose context (the samples the newest is read against) is flatter than this teach
#: nothing and are skipped: the model would learn a clipped step as normal.
MIN_STD = 1e-3


@dataclass(frozen=True)
class Round:
    """One training round's outcome, as the memory keeps it."""

    t: float
    number: int
    windows: int
    loss_before: float  # held-out mean error with the weights the round started from
    loss_after: float
    kept: bool


@dataclass(frozen=True)
class SavedWeights:
    """The personalised weights and the round that made them (a ``model_weights`` row)."""

    model: str
    sha256: str
    blob: bytes
    rounds: int
    last: Round


class Personaliser:
    def __init__(self, model: TrainableModel, settings: AnomalyConfig, name: str) -> None:
        """``settings``' ``personalise_*`` fields say how often and how long it trains."""
        self.model = model
        self.settings = settings
        self.name = name
        self._ring: deque[tuple[str, F32]] = deque(maxlen=KEEP_WINDOWS)
        self.next_t: float | None = None
        self.rounds = 0  # rounds run (kept or not): the seed of the next round's draws
        self._new = 0  # windows offered since the last round
        self.saved: SavedWeights | None = None
        #: After a kept round: how much larger the new weights' errors are than the old ones'
        #: (``error_factors``), per stream and pooled; None after a discarded round.
        self.last_factors: tuple[dict[str, float], float] | None = None

    def offer(self, stream: str, n: int, window: Iterable[float]) -> None:
        """A stream's current full window (its ``n``-th value is the last), judged normal."""
        if _spread(n) % STRIDE:
            return
        raw = np.fromiter(window, dtype=np.float64)
        if float(raw[: self.model.scaling.context].std()) >= MIN_STD:
            self._ring.append((stream, self.model.scale(raw[None, :])[0]))
            self._new += 1

    @property
    def waiting(self) -> int:
        return len(self._ring)

    def due(self, t: float) -> bool:
        """True when a round should run at sample time ``t`` (the first sample starts the
        schedule: a round every ``personalise_every_s`` after it)."""
        if self.next_t is None:
            self.next_t = t + self.settings.personalise_every_s
            return False
        if t < self.next_t:
            return False
        self.next_t = t + self.settings.personalise_every_s
        return self._new >= self.settings.personalise_min_windows

    def train(self, t: float) -> Round:
        """Run one round at sample time ``t`` on the windows waiting; keep the new weights
        only if they score the held-out windows lower (they forecast and rebuild them
        better)."""
        s = self.settings
        windows = np.stack([w for _, w in self._ring])
        self._new = 0
        held = windows[3::4]
        train = np.delete(windows, np.s_[3::4], axis=0)
        before = self.model.get_weights()
        loss_before = float(np.mean(self.model.infer(held)))
        self.model.set_weights(before)  # a fresh optimiser each round, as after a restart
        rng = np.random.default_rng(self.rounds)
        batch = self.model.train_batch
        for _ in range(s.personalise_steps):
            self.model.train(train[rng.choice(len(train), batch, replace=False)], s.personalise_lr)
        loss_after = float(np.mean(self.model.infer(held)))
        kept = loss_after < loss_before
        self.last_factors = self._factors(before) if kept else None
        if not kept:
            self.model.set_weights(before)
        self.rounds += 1
        done = Round(t, self.rounds, len(windows), loss_before, loss_after, kept)
        if kept:
            self.saved = SavedWeights(
                self.name, self.model.sha256, self.model.weights_blob(), self.rounds, done
            )
        logger.info(
            "personalisation round %d on %d windows: held-out error %.4f -> %.4f, %s",
            done.number,
            done.windows,
            loss_before,
            loss_after,
            "kept" if kept else "discarded",
        )
        return done

    def _factors(self, old: Mapping[str, npt.ArrayLike]) -> tuple[dict[str, float], float]:
        """``error_factors`` of the kept weights against ``old`` on the windows waiting: the
        old weights put back for one inference (only for a kept round), then the new."""
        new = self.model.get_weights()
        self.model.set_weights(old)
        errors_before = self.recent_errors()
        self.model.set_weights(new)
        return error_factors(errors_before, self.recent_errors())

    def recent_errors(self) -> dict[str, list[float]]:
        """The current weights' errors on each stream's normal windows waiting, oldest
        first."""
        if not self._ring:
            return {}
        errors = self.model.infer(np.stack([w for _, w in self._ring]))
        out: dict[str, list[float]] = {}
        for (stream, _), err in zip(self._ring, errors, strict=True):
            out.setdefault(stream, []).append(float(err))
        return out

    # -- state kept across restarts ------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        return {"next_t": self.next_t, "rounds": self.rounds}

    def restore(self, saved: Mapping[str, Any], weights: SavedWeights | None) -> None:
        """Put back the schedule and, when they belong to this model file, the weights."""
        next_t = saved.get("next_t")
        self.next_t = float(next_t) if next_t is not None else None
        self.rounds = int(saved.get("rounds", 0))
        if weights is None:
            return
        if weights.sha256 != self.model.sha256:
            logger.warning(
                "personalised weights were trained for another %s model file (sha256 %s); "
                "starting again from the shipped weights",
                weights.model,
                weights.sha256[:12],
            )
            return
        try:
            self.model.load_weights_blob(weights.blob)
        except ModelError as exc:
            logger.error("%s; starting again from the shipped weights", exc)
            return
        self.saved = weights


def error_factors(
    before: Mapping[str, list[float]], after: Mapping[str, list[float]]
) -> tuple[dict[str, float], float]:
    """How many times larger the new weights' errors are than the old ones' on the same
    windows (``recent_errors`` before and after a round): per stream, the ratio of their
    medians, and over every window (for a stream with none waiting). 1.0 where a median is
    not positive."""

    def ratio(old: list[float], new: list[float]) -> float:
        a, b = float(np.median(old)), float(np.median(new))
        return b / a if a > 0.0 and b > 0.0 and math.isfinite(b / a) else 1.0

    each = {name: ratio(before[name], new) for name, new in after.items() if before.get(name)}
    if not after:
        return each, 1.0
    pooled = ratio([e for v in before.values() for e in v], [e for v in after.values() for e in v])
    return each, pooled


def _spread(n: int) -> int:
    """``n`` scrambled (Knuth's multiplicative hash, high bits): taking every n with
    ``n % stride == 0`` would alias with a periodic stream (a job every 10 samples, a stride
    of 8: only even phases kept), so windows are chosen by this instead. Deterministic."""
    return ((n * 2654435761) & 0xFFFFFFFF) >> 16
