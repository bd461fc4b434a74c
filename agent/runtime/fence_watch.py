"""Fences for the running pipeline: read from the fences table, reloaded on SIGHUP or when
the table's version changes (checked once per commit interval of sample time)."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING

from agent.errors import ConfigError
from agent.memory.fences import FenceStore
from agent.pipeline import Pipeline
from agent.samples import Sample

if TYPE_CHECKING:
    from agent.detect.fences import Fence

logger = logging.getLogger(__name__)


def load_fences(store: FenceStore) -> list[Fence]:
    """Every valid fence in the table; an invalid row (written by hand?) is logged and skipped."""
    features = store.features()
    if not features:
        return []  # shapely and numpy stay unloaded on a phone without fences
    from agent.detect.fences import parse_fences

    try:  # all at once is several times faster; one by one only to skip a bad row
        return parse_fences({"type": "FeatureCollection", "features": features}, "fences table")
    except ConfigError:
        pass
    fences: list[Fence] = []
    for feature in features:
        try:
            fences += parse_fences(feature, "fences table")
        except ConfigError as exc:
            logger.error("fence skipped: %s", exc)
    return fences


class FenceWatcher:
    def __init__(self, store: FenceStore, pipeline: Pipeline, *, check_every_s: float) -> None:
        self._store = store
        self._pipeline = pipeline
        self._every_s = check_every_s
        self._version = store.version()
        self._checked_t: float | None = None
        self._requested = False

    def request(self) -> None:
        """Reload at the next sample whatever the version says (SIGHUP)."""
        self._requested = True

    def watch(self, samples: Iterable[Sample]) -> Iterator[Sample]:
        for sample in samples:
            due = self._checked_t is None or sample.t - self._checked_t >= self._every_s
            if self._requested or due:
                self._check(sample.t)
            yield sample

    def _check(self, t: float) -> None:
        self._checked_t = t
        version = self._store.version()
        if version == self._version and not self._requested:
            return
        self._requested, self._version = False, version
        changed = self._pipeline.set_fences(load_fences(self._store))
        logger.info(
            "fences reloaded: %d in all, %d changed", len(self._pipeline.fences), len(changed)
        )
