"""Anomaly likelihood: a stream's own normal is learned; a sudden rise is in the tail."""

from __future__ import annotations

import math
import random

from agent.detect.likelihood import AnomalyLikelihood, LikelihoodSettings, log_score


def test_warmup_gives_one_half() -> None:
    al = AnomalyLikelihood(LikelihoodSettings(warmup_n=5))
    assert [al.update("s", 1.0) for _ in range(5)] == [0.5] * 5


def test_noisy_stream_is_normal_and_a_jump_is_not() -> None:
    rng = random.Random(3)
    al = AnomalyLikelihood(LikelihoodSettings(long_n=500, short_n=5, warmup_n=100))
    # half-normal errors: mean 0.80, std 0.60; five errors of 6 are (6 - 0.8) / 0.6 = 8.7
    # deviations out: likelihood Phi(8.7), 1 - 1.7e-18
    normal = [al.update("noisy", abs(rng.gauss(0.0, 1.0))) for _ in range(600)]
    assert max(normal[100:]) < 0.9999  # big but usual errors stay out of the far tail
    jump = [al.update("noisy", 6.0) for _ in range(5)]
    assert jump[-1] > 0.99999


def test_streams_are_independent_and_flat_streams_do_not_alarm() -> None:
    al = AnomalyLikelihood(LikelihoodSettings(warmup_n=10))
    for _ in range(50):
        al.update("flat", 0.0)
        al.update("loud", 100.0)
    assert al.update("flat", 0.0) == 0.5  # (0 - 0) / MIN_STD = 0: the median of the tail
    assert al.update("loud", 100.0) == 0.5


def test_state_round_trip() -> None:
    a = AnomalyLikelihood(LikelihoodSettings(warmup_n=3))
    for v in (0.1, 0.2, 0.3, 0.2, 0.1):
        a.update("s", v)
    b = AnomalyLikelihood(LikelihoodSettings(warmup_n=3))
    b.restore(a.state())
    assert a.update("s", 0.9) == b.update("s", 0.9)


def test_log_score() -> None:
    assert math.isclose(log_score(1 - 1e-5), 0.5)
    assert log_score(1.0) == 1.0 and 0.0 < log_score(0.5) < 0.05
