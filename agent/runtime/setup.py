"""The pipeline as every command builds it: the daemon, replay, ``vigil score`` and the
benchmarks load the configured tiny model the same way and hand it the same settings."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from agent.config import Config
from agent.detect.tflite import load_or_explain
from agent.pipeline import Pipeline

if TYPE_CHECKING:
    from agent.detect.fences import Fence


def build_pipeline(
    config: Config, fences: Sequence[Fence] = (), *, keep_scores: bool = False
) -> Pipeline:
    """A fresh pipeline with the configured model (or, when it cannot load, none: the reason
    is logged once and the always-on tier judges values and spreads alone)."""
    model = load_or_explain(config.anomaly.model, own=config.anomaly.own_model)
    return Pipeline(config, fences, model, keep_scores=keep_scores)
