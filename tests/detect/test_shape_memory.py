"""Each stream's memory of its own shapes (``scoring.memory_novelties``): a window unlike
every one the stream has shown is novel even inside the usual range, one it has shown is
not, the memory counts only after a day, and it survives a restart exactly."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from agent.config import AnomalyConfig
from agent.detect.anomaly import AnomalyDetector
from agent.detect.anomaly.scoring import (
    _RECENT,
    _STEP_T,
    MEMORY_SIZE,
    MODEL_MARGIN,
    NOVELTY_WARMUP_S,
    StreamState,
    score_source,
)
from agent.detect.novelty import KernelHistory, ReferenceHistory, kernel
from agent.detect.tflite import load_or_explain
from agent.power.meter import NullMeter

STEP_S = 300.0
PERIOD = 24  # a falling ramp every two hours


def _falling(n: int) -> np.ndarray:
    return (PERIOD - 1 - np.arange(n) % PERIOD).astype(np.float64)


def _rising(n: int) -> np.ndarray:
    return (np.arange(n) % PERIOD).astype(np.float64)


def _score(
    values: np.ndarray, history: type = KernelHistory, shape_memory: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """(novelty surprise, whole surprise) of one stream fed in chunks of a day."""
    state = StreamState(32, history(1000), history(1000), history(1000))
    times = STEP_S * np.arange(len(values))
    novelty, surprise = [], []
    for a in range(0, len(values), 288):
        out = score_source(
            [state],
            values[a : a + 288, None],
            times[a : a + 288],
            None,
            NullMeter(),
            345.6,
            7200.0,
            shape_memory=shape_memory,
        )
        judged = out.novelty is not None  # None: no window judged in the chunk
        novelty.append(out.novelty[:, 0] if judged else np.zeros(len(out.surprise)))
        surprise.append(out.surprise[:, 0])
    return np.concatenate(novelty), np.concatenate(surprise)


@pytest.mark.parametrize("history", [KernelHistory, ReferenceHistory])
def test_a_shape_never_seen_inside_the_usual_range_is_novel(history: type) -> None:
    """Five days of falling ramps, then two hours of rising ones over the same values: each
    value is usual, the turn's windows are new (rarer than one in a thousand of the stream's
    distances once its first day's learning has left their history), and raise the value's
    surprise by as much, but never more than the model's margin above the value's and
    spread's own (a shape judgement, as the model's); then the falling ramps again, and the
    turn is a shape the stream has shown."""
    days = 5 * 288
    values = np.concatenate([_falling(days), _rising(2 * PERIOD), _falling(2 * 288)])
    novelty, surprise = _score(values, history)
    _, own = _score(values, history, shape_memory=False)
    # The memory holds some of the ramp's 24 windows; the others are a step away from one
    # (closer than the vigilance): usual distances, never rare ones.
    assert 0.0 < novelty[days - 288 : days].max() < 1.5
    turn = novelty[days : days + 2 * PERIOD]
    at = days + int(turn.argmax())
    assert turn.max() > own[at] + MODEL_MARGIN > own[at] + 1.0
    assert surprise[at] == pytest.approx(own[at] + MODEL_MARGIN)
    assert np.all(surprise >= own) and np.all(surprise <= own + MODEL_MARGIN + 1e-12)
    assert np.all(surprise == np.maximum(own, np.minimum(novelty, own + MODEL_MARGIN)))
    assert novelty[days + 2 * PERIOD + 8 :].max() < 2.0


def test_the_memory_counts_after_a_day() -> None:
    """The same turn ten hours in: the memory already holds the falling ramps, but a stream
    a few hours old is not judged by it."""
    early = int(10 * 3600 / STEP_S)
    values = np.concatenate([_falling(early), _rising(2 * PERIOD), _falling(288)])
    novelty, _ = _score(values)
    first_day = int(NOVELTY_WARMUP_S / STEP_S)
    assert (early + 2 * PERIOD) < first_day
    assert novelty[:first_day].max() == 0.0 and novelty[first_day:].max() > 0.0


def test_a_noisy_stream_keeps_at_most_its_memory() -> None:
    state = StreamState(32, KernelHistory(100), KernelHistory(100), KernelHistory(100))
    values = np.random.default_rng(1).normal(size=(3000, 1))
    score_source([state], values, 60.0 * np.arange(3000), None, NullMeter(), 345.6, 7200.0, True)
    held, oldest = state.bank_meta[:2]
    assert held == MEMORY_SIZE and 0 <= oldest < MEMORY_SIZE  # full: the oldest leave


@pytest.mark.skipif(kernel() is None, reason="the kernel was not built")
@pytest.mark.parametrize("offset", [0.0, 1e9, -3e12])
def test_kernel_and_reference_keep_the_same_memory(offset: float) -> None:
    """The kernel passes over windows by their sums; the reference compares every one: the
    same memory and novelties, also far from zero, where the sums round."""
    rng = np.random.default_rng(2)
    values = offset + np.round(rng.normal(size=(2000, 3)).cumsum(axis=0), 1)
    values[rng.random(values.shape) < 0.3] = np.nan
    times = 60.0 * np.arange(2000)
    fast = [
        StreamState(32, KernelHistory(200), KernelHistory(200), KernelHistory(200))
        for _ in range(3)
    ]
    slow = [
        StreamState(32, ReferenceHistory(200), ReferenceHistory(200), ReferenceHistory(200))
        for _ in range(3)
    ]
    for a in range(0, 2000, 333):
        args = (values[a : a + 333], times[a : a + 333], None, NullMeter(), 345.6, 3600.0, True)
        x, y = score_source(fast, *args), score_source(slow, *args)
        assert np.array_equal(x.novelty, y.novelty) and np.array_equal(x.surprise, y.surprise)
    for f, s in zip(fast, slow, strict=True):
        assert np.array_equal(f.bank, s.bank) and np.array_equal(f.bank_meta, s.bank_meta)
        assert np.array_equal(f.bank_sums, s.bank_sums)
    assert all(f.bank_meta[0] > 1 for f in fast)  # a memory to search


def _detector() -> AnomalyDetector:
    model = load_or_explain()
    assert model is not None
    return AnomalyDetector(model, AnomalyConfig(shape_memory=True))


def test_the_memory_restores_exactly(caplog: pytest.LogCaptureFixture) -> None:
    """Two days in, the state saved and put back: the same scores after, novelty judged;
    a memory that does not fit is damaged state (one log line, learned afresh)."""
    values = np.concatenate([_falling(600), _rising(60), _falling(300)])
    first = _detector()
    for i, v in enumerate(values[:600]):
        first.feed(STEP_S * i, "m", {"m": float(v)})
    saved = first.history_state()
    assert saved["streams"]["m"]["memory"]["bank"]
    second = _detector()
    assert second.restore(first.state(), saved)
    assert np.array_equal(second.streams["m"].bank, first.streams["m"].bank)
    assert np.array_equal(second.streams["m"].bank_meta, first.streams["m"].bank_meta)
    assert np.array_equal(second.streams["m"].bank_sums, first.streams["m"].bank_sums)
    novel = 0.0
    for i, v in enumerate(values[600:], start=600):
        a = first.feed(STEP_S * i, "m", {"m": float(v)})
        b = second.feed(STEP_S * i, "m", {"m": float(v)})
        assert (a.scores, a.tiny, a.node, a.events) == (b.scores, b.tiny, b.node, b.events)
        novel = max(novel, a.scores["m"])
    assert novel > 0.5  # the rising ramps, two days in
    broken = {**saved, "streams": {"m": {**saved["streams"]["m"]}}}
    broken["streams"]["m"]["memory"] = {**saved["streams"]["m"]["memory"], "oldest": 10_000}
    with caplog.at_level(logging.WARNING):
        assert not _detector().restore(first.state(), broken)
    assert "damaged" in caplog.text


def test_a_memory_saved_without_its_steps_restores() -> None:
    """A memory saved before it kept its own recent steps (its grid's time was called
    ``entry_t``): its windows come back, its window of steps fills again."""
    values = _falling(600)
    first = _detector()
    for i, v in enumerate(values):
        first.feed(STEP_S * i, "m", {"m": float(v)})
    saved = first.history_state()
    memory = dict(saved["streams"]["m"]["memory"])
    del memory["recent"]
    memory["entry_t"] = memory.pop("step_t")
    older = {**saved, "streams": {"m": {**saved["streams"]["m"], "memory": memory}}}
    second = _detector()
    assert second.restore(first.state(), older)
    assert np.array_equal(second.streams["m"].bank, first.streams["m"].bank)
    assert second.streams["m"].bank_meta[_RECENT] == 0
    assert second.streams["m"].bank_meta[_STEP_T] == first.streams["m"].bank_meta[_STEP_T]


def test_off_nothing_is_kept() -> None:
    """``[anomaly] shape_memory`` is off by default; off: no novelty, no memory, nothing
    saved."""
    assert not AnomalyConfig().shape_memory
    model = load_or_explain()
    det = AnomalyDetector(model, AnomalyConfig(shape_memory=False))
    values = np.concatenate([_falling(600), _rising(60)])
    for i, v in enumerate(values):
        det.feed(STEP_S * i, "m", {"m": float(v)})
    assert det.streams["m"].bank_meta[0] == 0 and det.streams["m"].novelty is None
    assert "memory" not in det.history_state()["streams"]["m"]


def test_a_fast_stream_is_judged_on_the_memory_grid() -> None:
    """Values every 10 s: the memory steps about every 86.4 s (its windows span minutes, not
    80 s of noise), so about one value in nine has a novelty; the others only their own."""
    state = StreamState(32, KernelHistory(1000), KernelHistory(1000), KernelHistory(1000))
    n = int(3 * 86400 / 10)
    times = 10.0 * np.arange(n)
    values = np.sin(times / 3600.0)[:, None] + np.random.default_rng(3).normal(0, 0.1, (n, 1))
    novel = np.zeros(n, dtype=np.bool_)
    for a in range(0, n, 1000):
        out = score_source(
            [state],
            values[a : a + 1000],
            times[a : a + 1000],
            None,
            NullMeter(),
            345.6,
            7200.0,
            True,
        )
        if out.novelty is not None:
            novel[a : a + 1000] = out.novelty[:, 0] > 0.0
    judged_t = times[novel]
    assert len(judged_t) > 0.5 * (n - 8640) / 9  # after the first day, most steps
    assert np.diff(judged_t).min() >= 86.4 - 10.0  # never two in one step of the grid
    assert novel.sum() < (n / 8.6)
