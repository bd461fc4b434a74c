"""Anomaly episodes: per source, the combined score -> ``anomaly.start`` / ``anomaly.end``.

Hysteresis: an episode starts at ``start_score``; it ends after ``end_n`` samples below
``end_score`` with every involved stream's value back within the range it had before the
start (the ranks adapt within minutes; a runaway that goes on is still an anomaly), or
``hold_s`` after the start at the latest. A new surge past ``start_score`` while an episode
is only held open, led by a stream that did not start it, ends it and starts its own; the
streams that started it surging again (a score that dipped for a sample or two) resume it.
The events name the streams involved, and say whether the anomaly is *settled*: whether a
stream it names (or, naming none, any stream of the sample) has a day of history
(``scoring.SETTLED_S``). A new install's first day, or a new stream's, is the routine being
learned: its every morning habit is news to histories that hold only the night before. The
default rule wakes the larger model only for settled ones.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from agent.config import AnomalyConfig
from agent.samples import Event


@dataclass
class SourceEpisode:
    """One source's machine; ``active`` while an anomaly is open."""

    active: bool = False
    below_n: int = 0
    since: float | None = None
    streams: set[str] = field(default_factory=set)
    #: The involved streams' (smallest, largest) values before the anomaly started: it stays
    #: open while a value is beyond them (a runaway goes on), for at most ``hold_s``.
    edges: dict[str, tuple[float, float]] = field(default_factory=dict)
    held: bool = False  # its score has fallen back, its values have not


@dataclass(frozen=True)
class SampleView:
    """What the machine reads of one sample: the source's score, each stream's score and
    (clipped) value, and, on demand, a stream's value range before this sample."""

    t: float
    node: float
    scores: Mapping[str, float]
    values: Mapping[str, float]
    edges: Callable[[str], tuple[float, float] | None]
    #: Whether a stream is still in its first day (``scoring.SETTLED_S``).
    young: Callable[[str], bool]


def step(src: SourceEpisode, source: str, s: SampleView, settings: AnomalyConfig) -> list[Event]:
    """The events of one sample (changes ``src`` in place)."""
    involved = {n for n, score in s.scores.items() if score >= settings.end_score}
    if src.active and src.held and s.node >= settings.start_score and _another(src, s):
        # A new surge while the last one is only held open: its own anomaly.
        return [end(src, source, s.t), *step(src, source, s, settings)]
    if not src.active:
        if s.node < settings.start_score:
            return []
        src.active, src.since, src.below_n, src.streams = True, s.t, 0, set(involved)
        edges = {n: s.edges(n) for n in involved}
        src.edges = {n: e for n, e in edges.items() if e is not None}
        settled = any(not s.young(n) for n in (involved or s.scores))
        data = {"score": round(s.node, 6), "streams": sorted(involved), "settled": settled}
        return [Event(s.t, "anomaly.start", source, data)]
    src.streams |= involved
    if s.node >= settings.end_score:
        src.below_n, src.held = 0, False
        return []
    beyond = any(not lo <= s.values[n] <= hi for n, (lo, hi) in src.edges.items() if n in s.values)
    if beyond and s.t - (src.since or s.t) < settings.hold_s:
        src.below_n, src.held = 0, True
        return []
    src.below_n += 1
    if src.below_n < settings.end_n:
        return []
    return [end(src, source, s.t)]


def _another(src: SourceEpisode, s: SampleView) -> bool:
    """Whether a surge while ``src`` is held is another anomaly: its loudest stream is not
    one that started ``src`` (those it kept the ranges of). The same stream back above the
    start after a dip of a sample or two is the anomaly going on."""
    if not s.scores:
        return True
    return max(s.scores, key=s.scores.__getitem__) not in src.edges


def end(src: SourceEpisode, source: str, t: float) -> Event:
    """Close the episode: the machine is back to its start."""
    data = {"since": src.since, "streams": sorted(src.streams)}
    src.__init__()  # type: ignore[misc]
    return Event(t, "anomaly.end", source, data)
