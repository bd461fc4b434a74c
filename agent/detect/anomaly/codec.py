"""The always-on tier's state as plain data for the memory, and back.

``state()`` is small and changes every sample (windows, counts, open episodes, the training
schedule); ``history_state()`` is the rank histories and the shape memories, about 50 KB a
stream after a laptop's week (11 KB of it the shape memory), committed less often. State this
version cannot read (an older format, a damaged row) is dropped with one log line, and the
stage learns afresh.
"""

from __future__ import annotations

import binascii
import logging
import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from agent.detect.anomaly.comove import CoMovement, from_b64, to_b64
from agent.detect.anomaly.context import HourProfiles
from agent.detect.anomaly.episodes import SourceEpisode
from agent.detect.anomaly.scoring import (
    MEMORY_SIZE,
    MEMORY_WIDTH,
    JointState,
    StreamState,
    window_sum,
)
from agent.detect.novelty import ValueHistory

if TYPE_CHECKING:
    from agent.detect.anomaly.stage import AnomalyDetector
    from agent.detect.personalise import SavedWeights

logger = logging.getLogger(__name__)

#: The layout of ``state()`` / ``history_state()`` (1 was the Gaussian level and likelihood,
#: 2 had no joint histories).
STATE_FORMAT = 3


def state(stage: AnomalyDetector) -> dict[str, Any]:
    personaliser = stage.personaliser
    return {
        "format": STATE_FORMAT,
        "streams": {
            n: {
                "window": s.window.tolist(),
                "n": s.n,
                "entry_t": s.entry_t,
                "first_t": s.first_t,
                "last_t": s.last_t,
                "step": s.step,
                **_last_surprises(s),
            }
            for n, s in sorted(stage.streams.items())
        },
        "sweep_t": stage.sweep_t,
        "on_battery": stage.on_battery,
        "sources": {
            n: {
                "since": s.since,
                "below_n": s.below_n,
                "streams": sorted(s.streams),
                "edges": {k: list(v) for k, v in sorted(s.edges.items())},
                "held": s.held,
            }
            for n, s in sorted(stage.sources.items())
            if s.active
        },
        **({"personalise": personaliser.state()} if personaliser else {}),
    }


def _last_surprises(s: StreamState) -> dict[str, Any]:
    """A stream's last two surprises in samples of many streams, once it has one (None for
    none: JSON has no NaN)."""
    older, newer = s.last_surprises
    if math.isnan(newer):
        return {}
    return {"last_surprises": [None if math.isnan(older) else older, newer]}


def _number(x: float | None) -> float:
    return math.nan if x is None else float(x)


def _model_sha(stage: AnomalyDetector) -> str | None:
    return stage.model.sha256 if stage.model is not None else None


def history_state(stage: AnomalyDetector) -> dict[str, Any]:
    return {
        #: The model whose errors the ``errors`` histories rank: another model's errors are
        #: on another scale, so they are kept only for the same model.
        "model": _model_sha(stage),
        "streams": {
            n: {
                "values": s.values.encode(),
                "errors": s.errors.encode("<f4"),
                "spreads": s.spreads.encode("<f4"),
                **{
                    kind: h.encode("<f4")
                    for kind, h in (
                        ("residuals", s.residuals),
                        ("context", s.context),
                        ("sustained", s.sustained),
                        ("novelty", s.novelty),
                    )
                    if h is not None
                },
                **_memory(s),
            }
            for n, s in sorted(stage.streams.items())
        },
        "joint": {
            n: {
                "sums": j.sums.encode(),
                "entry_t": j.entry_t,
                "last_t": j.last_t,
                "nodes": None if j.nodes is None else j.nodes.encode(),
                "node_entry_t": j.node_entry_t,
            }
            for n, j in sorted(stage.joint.items())
        },
        "comove": {n: c.encode() for n, c in sorted(stage.comove.items())},
        "context": {n: c.encode() for n, c in sorted(stage.context.items())},
    }


def _memory(s: StreamState) -> dict[str, Any]:
    """A stream's memory of its shapes, once a value went through it (none without the shape
    memory): the windows it holds, as exact float64, and where the next one goes."""
    held, oldest, lo, hi, step_t, have = s.bank_meta.tolist()
    if not math.isfinite(lo):
        return {}
    return {
        "memory": {
            "recent": to_b64(s.recent[len(s.recent) - int(have) :]),
            "bank": to_b64(s.bank[: int(held)]),
            "oldest": oldest,
            "lo": lo,
            "hi": hi,
            "step_t": None if math.isnan(step_t) else step_t,
        }
    }


def _restore_memory(s: StreamState, saved: Mapping[str, Any]) -> None:
    """``_memory``'s data back into ``s``; ``ValueError`` if it does not fit."""
    bank = from_b64(saved["bank"], (-1, MEMORY_WIDTH)) if saved["bank"] else np.zeros((0, 0))
    # (a memory saved before it kept its own steps has none: its window fills again)
    recent = from_b64(saved["recent"], (1, -1))[0] if saved.get("recent") else np.zeros(0)
    held, oldest, have = len(bank), int(saved["oldest"]), len(recent)
    lo, hi = float(saved["lo"]), float(saved["hi"])
    if held > MEMORY_SIZE or not 0 <= oldest < max(held, 1) or not lo <= hi:
        raise ValueError("a stream's memory of its shapes does not fit")
    if have > MEMORY_WIDTH:
        raise ValueError("a stream's recent steps do not fit its memory's window")
    if held:
        s.bank[:held] = bank
        s.bank_sums[:held] = [window_sum(w) for w in bank]
    if have:
        s.recent[MEMORY_WIDTH - have :] = recent
    step_t = saved.get("step_t", saved.get("entry_t"))
    step = math.nan if step_t is None else float(step_t)
    s.bank_meta[:] = (held, oldest, lo, hi, step, have)


def restore(
    stage: AnomalyDetector,
    saved: Mapping[str, Any],
    history: Mapping[str, Any] | None,
    weights: SavedWeights | None,
) -> bool:
    if stage.personaliser is not None:
        stage.personaliser.restore(saved.get("personalise", {}), weights)
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
    size = stage.settings.history_n
    same_model = history.get("model") == _model_sha(stage)
    if history.get("streams") and not same_model:
        logger.warning(
            "the tiny model is not the one the saved model errors came from: each stream "
            "ranks the new model's errors afresh (its values and spreads are kept)"
        )
    try:
        streams = {}
        for name, d in saved["streams"].items():
            h = history.get("streams", {}).get(name, {})
            streams[name] = StreamState(
                stage.window,
                ValueHistory.decode(size, h.get("values", {})),
                ValueHistory.decode(size, h.get("errors", {}) if same_model else {}, "<f4"),
                ValueHistory.decode(size, h.get("spreads", {}), "<f4"),
                np.asarray(d["window"], dtype=np.float64),
                int(d["n"]),
                d["entry_t"],
                d.get("first_t"),
                d.get("last_t"),
                d.get("step"),  # (none in states saved before it)
            )
            older, newer = d.get("last_surprises", (None, None))  # (none saved before them)
            streams[name].last_surprises = (_number(older), _number(newer))
            if "residuals" in h:
                streams[name].residuals = ValueHistory.decode(size, h["residuals"], "<f4")
            if "context" in h:
                streams[name].context = ValueHistory.decode(size, h["context"], "<f4")
            if "sustained" in h:
                streams[name].sustained = ValueHistory.decode(size, h["sustained"], "<f4")
            if "novelty" in h:
                streams[name].novelty = ValueHistory.decode(size, h["novelty"], "<f4")
            if "memory" in h:
                _restore_memory(streams[name], h["memory"])
        sources = {
            n: SourceEpisode(
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
            n: JointState(
                ValueHistory.decode(size, d["sums"]),
                d["entry_t"],
                d.get("last_t"),
                ValueHistory.decode(size, d["nodes"]) if d.get("nodes") else None,
                d.get("node_entry_t"),
            )
            for n, d in history.get("joint", {}).items()
        }
        comove = {n: CoMovement.decode(d) for n, d in history.get("comove", {}).items()}
        context = {n: HourProfiles.decode(d) for n, d in history.get("context", {}).items()}
        sweep_t = saved.get("sweep_t")
        on_battery = bool(saved.get("on_battery", False))
    except (KeyError, TypeError, ValueError, AttributeError, binascii.Error) as exc:
        logger.warning("anomaly state in the database is damaged (%r): learning afresh", exc)
        return False
    stage.streams, stage.sources, stage.joint, stage.sweep_t = streams, sources, joint, sweep_t
    stage.streams_changed()
    stage.comove, stage.context, stage.on_battery = comove, context, on_battery
    return True
