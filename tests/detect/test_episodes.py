"""Anomaly episodes (``agent/detect/anomaly/episodes.py``): when a held anomaly's score comes
back, whether it is the same anomaly or a new one."""

from __future__ import annotations

from agent.config import AnomalyConfig
from agent.detect.anomaly.episodes import SampleView, SourceEpisode, step

SETTINGS = AnomalyConfig()


def _sample(t: float, scores: dict[str, float], values: dict[str, float]) -> SampleView:
    """A sample of ``system`` scored by its largest stream score; every stream's range
    before it 0-50, none young."""
    return SampleView(
        t,
        max(scores.values()),
        scores,
        values,
        edges=lambda name: (0.0, 50.0),
        young=lambda name: False,
    )


def _run(samples: list[SampleView]) -> list[tuple[str, float, list[str]]]:
    episode = SourceEpisode()
    out = []
    for s in samples:
        for e in step(episode, "system", s, SETTINGS):
            out.append((e.kind, e.t, e.data["streams"]))
    return out


def test_a_held_anomaly_whose_own_stream_surges_again_goes_on() -> None:
    """CPU jumps to 90 % and stays there (held open: past its range); its score dips under
    ``end_score`` for one sample and comes back: the same anomaly, not a second start."""
    cpu = [0.9, 0.9, 0.3, 0.9, 0.9]
    samples = [
        _sample(
            30.0 * i,
            {"system.cpu_pct": c, "system.mem_used_pct": 0.1},
            {
                "system.cpu_pct": 90.0,
                "system.mem_used_pct": 40.0,
            },
        )
        for i, c in enumerate(cpu)
    ]
    assert _run(samples) == [("anomaly.start", 0.0, ["system.cpu_pct"])]


def test_a_held_anomaly_does_not_hide_another_streams_surge() -> None:
    """The same, but what comes back is memory: a new anomaly naming it."""
    scores = [(0.9, 0.1), (0.9, 0.1), (0.3, 0.1), (0.3, 0.9)]
    samples = [
        _sample(
            30.0 * i,
            {"system.cpu_pct": c, "system.mem_used_pct": m},
            {
                "system.cpu_pct": 90.0,
                "system.mem_used_pct": 40.0,
            },
        )
        for i, (c, m) in enumerate(scores)
    ]
    assert _run(samples) == [
        ("anomaly.start", 0.0, ["system.cpu_pct"]),
        ("anomaly.end", 90.0, ["system.cpu_pct"]),
        ("anomaly.start", 90.0, ["system.mem_used_pct"]),
    ]
