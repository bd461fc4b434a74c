"""On-device personalisation with the real model: rounds on a schedule in sample time, the
held-out check, weights kept in SQLite and put back after a restart, and the same events in
replay's chunks as one sample at a time while the weights change under it."""

from __future__ import annotations

import dataclasses
import logging
import random
from pathlib import Path

import numpy as np
import pytest

from agent.config import AnomalyConfig, Config
from agent.detect.personalise import Personaliser, _spread, error_factors
from agent.detect.tflite import TinyModel, load_or_explain
from agent.doctor import check_database
from agent.memory.db import open_engine, upgrade
from agent.memory.store import MemoryStore
from agent.pipeline import Pipeline, Step
from agent.samples import Sample

T0 = 1_780_000_000.0


def _model() -> TinyModel:
    model = load_or_explain()
    assert isinstance(model, TinyModel)  # LiteRT is installed for the tests: never skipped
    return model


def _bursts(n: int, seed: int = 1) -> list[float]:
    """A backup job's writes: quiet, then a two-sample burst every ten samples."""
    rng = random.Random(seed)
    return [20.0 + rng.gauss(0.0, 2.0) + (60.0 if i % 10 < 2 else 0.0) for i in range(n)]


def _samples(values: list[float], step_s: float = 60.0) -> list[Sample]:
    return [
        Sample("metric", T0 + i * step_s, {"name": "disk", "value": v})
        for i, v in enumerate(values)
    ]


def _config(*, shipped: bool = False, **overrides: object) -> Config:
    """Personalisation on: with its shipped settings, or quick ones (rounds every hour of
    sample time on 64 windows, 100 steps) plus ``overrides``."""
    config = Config()
    settings: dict[str, object] = {"personalise": True}
    if not shipped:
        settings |= {
            "personalise_every_s": 3600.0,
            "personalise_min_windows": 64,
            "personalise_steps": 100,
            **overrides,
        }
    return dataclasses.replace(config, anomaly=dataclasses.replace(config.anomaly, **settings))


def _settings(**personalise: float) -> AnomalyConfig:
    return dataclasses.replace(AnomalyConfig(), **personalise)


def _pipeline(config: Config) -> Pipeline:
    model = load_or_explain()
    return Pipeline(config, (), model, keep_scores=True)


def _personaliser(pipeline: Pipeline) -> Personaliser:
    assert pipeline.anomaly is not None and pipeline.anomaly.personaliser is not None
    return pipeline.anomaly.personaliser


def test_windows_are_spread_over_every_phase_of_a_periodic_stream() -> None:
    """A fixed stride of 8 on a period of 10 would keep even phases only."""
    kept = [n for n in range(8000) if _spread(n) % 8 == 0]
    assert 800 < len(kept) < 1200
    assert {n % 10 for n in kept} == set(range(10))


def test_a_round_fits_this_streams_normal_windows_better() -> None:
    model = _model()
    personaliser = Personaliser(model, _settings(personalise_min_windows=64), "tiny")
    shipped = model.get_weights()
    values = _bursts(2000)
    for n in range(32, len(values) + 1):
        personaliser.offer("m", n, values[n - 32 : n])
    assert personaliser.waiting >= 64
    assert not personaliser.due(T0)  # the first sample starts the schedule
    assert not personaliser.due(T0 + 6 * 3600.0 - 1)
    assert personaliser.due(T0 + 6 * 3600.0)
    done = personaliser.train(T0 + 6 * 3600.0)
    assert done.kept and done.loss_after < done.loss_before / 2
    assert personaliser.saved is not None and personaliser.saved.rounds == 1
    assert any(not np.array_equal(shipped[k], v) for k, v in model.get_weights().items())


def test_a_round_that_does_not_help_is_discarded(caplog: pytest.LogCaptureFixture) -> None:
    model = _model()
    personaliser = Personaliser(model, _settings(personalise_steps=20, personalise_lr=50.0), "tiny")
    before = model.get_weights()
    values = _bursts(1000)
    for n in range(32, len(values) + 1):
        personaliser.offer("m", n, values[n - 32 : n])
    with caplog.at_level(logging.INFO, logger="agent.detect.personalise"):
        done = personaliser.train(T0)
    assert not done.kept and done.loss_after >= done.loss_before
    assert personaliser.saved is None and personaliser.rounds == 1
    after = model.get_weights()
    assert all(np.array_equal(before[k], after[k]) for k in before)
    assert "discarded" in caplog.text


def test_only_normal_windows_with_spread_are_offered() -> None:
    """Flat windows teach nothing; windows scored at or above the end score, or of a source
    in an open anomaly, are not this machine's normal."""
    pipeline = _pipeline(_config())
    values = [5.0] * 600 + _bursts(2400)
    values[2500:2560] = [500.0] * 60  # an incident: a runaway writer
    offered: list[int] = []
    personaliser = _personaliser(pipeline)
    original = personaliser.offer

    def spy(stream: str, n: int, window: object) -> None:
        offered.append(n)
        original(stream, n, window)  # type: ignore[arg-type]

    personaliser.offer = spy  # type: ignore[method-assign]
    steps = [pipeline.feed(s) for s in _samples(values)]
    assert any(e.kind == "anomaly.start" for e in steps[2500].events)
    ring = [w for _, w in personaliser._ring]
    assert ring, "the bursty part offers windows"
    context = personaliser.model.scaling.context  # in units of its context, never flat:
    assert all(abs(float(w[:context].std()) - 1.0) < 1e-3 for w in ring)
    active, open_at = [False] * len(steps), False
    for i, step in enumerate(steps):
        kinds = {e.kind for e in step.events}
        open_at = (open_at or "anomaly.start" in kinds) and "anomaly.end" not in kinds
        active[i] = open_at
    for n in offered:  # the stream's n-th value is sample n - 1
        assert steps[n - 1].scores["disk"] < AnomalyConfig().end_score
        assert not active[n - 1]
    kept = [n for n in offered if _spread(n) % 8 == 0]
    assert 0 < len(personaliser._ring) <= len(kept) < len(offered) / 8 * 1.3  # one in eight


def _feed_all(pipeline: Pipeline, samples: list[Sample]) -> list[Step]:
    return [pipeline.feed(s) for s in samples]


def test_error_factors_are_the_ratio_of_medians() -> None:
    """Per stream, new median over old; a stream with no window waiting takes the ratio over
    every window; a median of zero changes nothing."""
    before = {"a": [1.0, 2.0, 3.0], "b": [4.0, 4.0], "flat": [0.0, 0.0]}
    after = {"a": [0.5, 1.0, 9.0], "b": [1.0, 1.0], "flat": [1.0, 1.0]}
    each, pooled = error_factors(before, after)
    assert each == {"a": 0.5, "b": 0.25, "flat": 1.0}
    assert pooled == pytest.approx(1.0 / 2.0)  # medians 2.0 and 1.0 over all seven
    assert error_factors({}, {}) == ({}, 1.0)


def test_a_kept_round_carries_each_streams_error_history_over() -> None:
    """New weights give errors in new units: a kept round rescales each stream's error
    history into them and keeps its entries, upper tail included. (Started again from the
    windows waiting, all judged normal, a history had no tail, and ordinary errors after a
    round ranked as rare.)"""
    pipeline = _pipeline(_config())
    personaliser = _personaliser(pipeline)
    assert pipeline.anomaly is not None
    streams = pipeline.anomaly.streams
    checked = 0
    for sample in _samples(_bursts(3000)):
        kept = personaliser.saved.rounds if personaliser.saved else 0
        before = {
            n: np.sort(np.asarray(s.errors._sorted)[: len(s.errors)]) for n, s in streams.items()
        }  # type: ignore[attr-defined]
        pipeline.feed(sample)
        if (personaliser.saved.rounds if personaliser.saved else 0) == kept:
            continue
        for name, old in before.items():
            errors = streams[name].errors
            new = np.sort(np.asarray(errors._sorted)[: len(errors)])  # type: ignore[attr-defined]
            assert len(new) >= len(old) > 100  # (the sample's own error may have joined)
            factor = np.median(new) / np.median(old)
            assert abs(factor - 1.0) > 0.01  # the units changed
            tail_old = np.quantile(old, 0.99) / np.median(old)
            tail_new = np.quantile(new, 0.99) / np.median(new)
            assert tail_new == pytest.approx(tail_old, rel=0.05)
            checked += 1
    assert checked >= 2


def test_weights_survive_a_restart_through_sqlite(tmp_path: Path) -> None:
    config = _config()
    samples = _samples(_bursts(3000))
    engine = open_engine(tmp_path / "vigil.db")
    upgrade(engine)
    first = _pipeline(config)
    store = MemoryStore(engine)
    store.attach_state(first.snapshot)
    for sample in samples[:2000]:
        first.feed(sample)
        store.record(sample, [])
    store.close()
    saved = _personaliser(first).saved
    assert saved is not None and saved.rounds >= 1
    checks = {c.name: c for c in check_database(str(tmp_path / "vigil.db"))}
    memory, said = checks["memory"], checks["personalisation"]
    assert memory.ok
    assert f"round {saved.rounds} kept" in said.detail and " -> " in said.detail

    second = _pipeline(config)
    second.restore(MemoryStore(engine).load_state())
    assert second.anomaly is not None and first.anomaly is not None
    trained, restored = first.anomaly.model, second.anomaly.model
    assert isinstance(trained, TinyModel) and isinstance(restored, TinyModel)
    a, b = trained.get_weights(), restored.get_weights()
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert _personaliser(second).rounds == _personaliser(first).rounds
    assert _personaliser(second).next_t == _personaliser(first).next_t
    # From here on both give the same scores.
    for sample in samples[2000:2100]:
        assert first.feed(sample).scores == second.feed(sample).scores


def test_weights_of_another_model_file_or_a_corrupt_blob_are_refused(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    engine = open_engine(tmp_path / "vigil.db")
    upgrade(engine)
    pipeline = _pipeline(_config())
    store = MemoryStore(engine)
    store.attach_state(pipeline.snapshot)
    for sample in _samples(_bursts(2000)):
        pipeline.feed(sample)
        store.record(sample, [])
    store.close()
    state = MemoryStore(engine).load_state()
    saved = state["weights"]
    assert saved is not None
    shipped = _model().get_weights()

    for bad, message in (
        (dataclasses.replace(saved, sha256="0" * 64), "trained for another tiny model file"),
        (dataclasses.replace(saved, blob=b"not an npz"), "unreadable weights blob"),
    ):
        fresh = _pipeline(_config())
        with caplog.at_level(logging.WARNING):
            fresh.restore({**state, "weights": bad})
        assert message in caplog.text
        assert fresh.anomaly is not None and isinstance(fresh.anomaly.model, TinyModel)
        now = fresh.anomaly.model.get_weights()
        assert all(np.array_equal(shipped[k], now[k]) for k in shipped)
        caplog.clear()


def test_chunks_equal_single_samples_across_rounds() -> None:
    """Rounds change the weights in the middle of a chunk: the scores after a round are
    those of the new weights, as one sample at a time."""
    config = _config(personalise_every_s=1800.0)
    values = _bursts(3000)
    values[2500:2540] = [300.0] * 40
    samples = _samples(values)
    live = _pipeline(config)
    live_steps = _feed_all(live, samples)
    chunked = _pipeline(config)
    chunk_steps = [
        step for i in range(0, 3000, 700) for step in chunked.feed_chunk(samples[i : i + 700])
    ]
    assert _personaliser(live).rounds >= 3
    assert _personaliser(chunked).rounds == _personaliser(live).rounds
    assert [s.events for s in chunk_steps] == [s.events for s in live_steps]
    assert [s.scores for s in chunk_steps] == [s.scores for s in live_steps]


def test_the_routine_trace_with_personalisation_on() -> None:
    """bench/personalise.py's trace (a level that shifts twice a day, a backup every ten
    minutes): rounds are kept, and the runaway, the stuck reading and the spike start
    anomalies; no false alarm on the last day. (The missing backup is not caught: see
    bench/personalise.py for both configurations side by side.)"""
    from agent import synthetic

    pipeline = _pipeline(_config(shipped=True))
    starts = [
        e.t
        for sample in synthetic.routine(6, 1)
        for e in pipeline.feed(sample).events
        if e.kind == "anomaly.start"
    ]
    assert (saved := _personaliser(pipeline).saved) is not None and saved.rounds >= 1
    day = synthetic.START_T + 5 * synthetic.DAY_S
    windows = [(day + a - 300.0, day + b + 1800.0) for a, b in synthetic.ROUTINE_INCIDENTS]
    for a, b in windows[:3]:
        assert any(a <= t <= b for t in starts), (a, b)
    assert not [t for t in starts if t >= day and not any(a <= t <= b for a, b in windows)]


def test_personalisation_cuts_the_models_false_alarms_without_missing_incidents() -> None:
    """The model's own verdict at its card threshold, on the routine trace (a level that
    shifts twice a day, a backup every ten minutes): the shipped weights flag a fifth of the
    normal windows; after five normal days of rounds, none, and every incident still crosses
    it."""
    from agent import synthetic

    days = 6
    pipeline = _pipeline(_config(shipped=True))
    for sample in synthetic.routine(days - 1, 1):
        pipeline.feed(sample)
    trained, shipped = _personaliser(pipeline).model, _model()
    assert isinstance(trained, TinyModel) and _personaliser(pipeline).saved is not None
    threshold = shipped.card.thresholds["score_p99_normal"]
    values = np.array([float(s.data["value"]) for s in synthetic.routine(days, 1)])
    windows = np.lib.stride_tricks.sliding_window_view(values, 32)  # row i ends at i + 31
    last = (days - 1) * 1440
    normal = np.arange(last - 1440, last) - 31
    incidents = [
        np.arange(last + int(a / 60), last + int(b / 60) + 32) - 31
        for a, b in synthetic.ROUTINE_INCIDENTS
    ]

    def flagged(model: TinyModel, rows: np.ndarray) -> np.ndarray:
        return model.infer(model.scale(windows[rows])) > threshold

    assert flagged(shipped, normal).mean() > 0.1
    assert flagged(trained, normal).mean() < 0.01
    assert all(flagged(trained, rows).any() for rows in incidents)


def test_personalisation_is_off_by_default() -> None:
    assert not Config().anomaly.personalise
    pipeline = _pipeline(Config())
    assert pipeline.anomaly is not None and pipeline.anomaly.personaliser is None
    assert pipeline.snapshot()["weights"] is None
