"""SampleClock: sample times follow the system clock, never go back, and every step is told."""

from __future__ import annotations

from conftest import ManualClock

from agent.runtime.timeline import SLEW, STEP_S, SampleClock


def stepping() -> tuple[ManualClock, SampleClock, list[tuple[float, float]]]:
    clock = ManualClock()
    steps: list[tuple[float, float]] = []
    return clock, SampleClock(clock, on_step=lambda t, s: steps.append((t, s))), steps


def test_without_steps_sample_time_is_the_system_clock() -> None:
    clock, sample_clock, steps = stepping()
    for _ in range(5):
        assert sample_clock.now() == clock.t
        clock.advance(1.0)
    assert steps == []


def test_a_forward_step_is_taken_at_once_and_told() -> None:
    clock, sample_clock, steps = stepping()
    sample_clock.now()
    clock.advance(10.0)
    clock.t += 30 * 86_400.0  # NTP corrects a board that booted with an old date
    t = sample_clock.now()
    assert t == clock.t
    assert steps == [(clock.t, 30 * 86_400.0)]


def test_a_backward_step_never_stamps_the_past_and_slews_out() -> None:
    clock, sample_clock, steps = stepping()
    first = sample_clock.now()
    clock.advance(10.0)
    clock.t -= 3600.0
    t = sample_clock.now()
    assert t == first + 10.0 * (1 - SLEW)  # slowed, not stopped, not back
    assert steps == [(t, -3600.0)]
    times = [t]
    while times[-1] > clock.t:  # runs 10 % slow until the system clock catches up
        clock.advance(600.0)
        times.append(sample_clock.now())
    assert times == sorted(times) and len(set(times)) == len(times)
    assert times[-1] == clock.t
    assert len(times) - 1 == 60  # an hour's step takes ten hours at 10 %
    assert len(steps) == 1  # the slewing itself is not a step


def test_small_steps_are_absorbed_silently() -> None:
    clock, sample_clock, steps = stepping()
    previous = sample_clock.now()
    for jitter in (0.5, -0.3, STEP_S / 2, -STEP_S / 2):
        clock.advance(1.0)
        clock.t += jitter
        t = sample_clock.now()
        assert t > previous
        previous = t
    assert steps == []


def test_a_start_behind_the_stored_samples_continues_from_them() -> None:
    clock = ManualClock()
    steps: list[tuple[float, float]] = []
    newest = clock.t + 7200.0  # the phone came back from a reboot two hours in the past
    sample_clock = SampleClock(clock, not_before=newest, on_step=lambda t, s: steps.append((t, s)))
    assert sample_clock.now() == newest
    assert steps == [(newest, -7200.0)]
    clock.advance(100.0)
    assert sample_clock.now() == newest + 100.0 * (1 - SLEW)


def test_a_start_ahead_of_the_stored_samples_is_no_step() -> None:
    clock = ManualClock()
    steps: list[tuple[float, float]] = []
    sample_clock = SampleClock(
        clock, not_before=clock.t - 86_400.0, on_step=lambda t, s: steps.append((t, s))
    )
    assert sample_clock.now() == clock.t
    assert steps == []
