"""k, watts per busy core: the estimate on synthetic pairs with a known k, the runner's
wiring on the test's clock, and the whole calibration for real against a live RAPL tree
whose counter follows this process's own CPU time."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from _rapl import LiveRapl
from conftest import ManualClock

from agent.clock import SystemClock
from agent.errors import CalibrationError
from agent.power.calibrate import (
    Block,
    Pair,
    device_name,
    estimate_k,
    require_probe,
    run_calibration,
)
from agent.power.probe import Reading, SampledProbe, find_probe


def _pairs(n: int, k: float, rng: np.random.Generator, noise_w: float = 0.3) -> list[Pair]:
    """Pairs from a machine drawing 4 W idle (drifting) plus ``k`` per busy core, with
    measurement noise; the busy thread gets 0.6 to 1 core, the idle block a little."""
    out = []
    for i in range(n):
        base = 4.0 + 0.05 * i
        busy_cores, idle_cores = rng.uniform(0.6, 1.0), rng.uniform(0.0, 0.1)
        out.append(
            Pair(
                busy_w=base + k * busy_cores + rng.normal(0, noise_w),
                idle_w=base + k * idle_cores + rng.normal(0, noise_w),
                busy_cores=busy_cores,
                idle_cores=idle_cores,
            )
        )
    return out


def test_estimate_recovers_k_and_its_interval_narrows_with_more_pairs() -> None:
    rng = np.random.default_rng(7)
    few = estimate_k(_pairs(10, 5.0, rng), block_s=20.0, source="test", device="here")
    many = estimate_k(_pairs(80, 5.0, rng))
    for cal in (few, many):
        assert cal.ci_low_w < 5.0 < cal.ci_high_w
        assert cal.ci_low_w < cal.k_w < cal.ci_high_w
    assert many.ci_high_w - many.ci_low_w < 0.6 * (few.ci_high_w - few.ci_low_w)
    assert (few.blocks, few.block_s, few.source, few.device) == (10, 20.0, "test", "here")
    assert few.idle_w == pytest.approx(4.0 + 0.05 * 4.5 + 5.0 * 0.05, abs=0.3)
    assert few.busy_w > few.idle_w


def test_the_interval_covers_the_truth_about_95_percent_of_the_time() -> None:
    rng = np.random.default_rng(11)
    trials = 200
    covered = sum(
        cal.ci_low_w <= 3.0 <= cal.ci_high_w
        for cal in (estimate_k(_pairs(10, 3.0, rng), resamples=2000) for _ in range(trials))
    )
    # A percentile bootstrap over 10 pairs covers a little less than its nominal 95 %.
    assert covered >= 0.85 * trials


def test_estimate_is_reproducible() -> None:
    pairs = _pairs(10, 5.0, np.random.default_rng(3))
    assert estimate_k(pairs) == estimate_k(list(pairs))


def test_estimate_refuses_what_it_cannot_use() -> None:
    one = [Pair(busy_w=9.0, idle_w=4.0, busy_cores=1.0, idle_cores=0.0)]
    with pytest.raises(CalibrationError, match="at least 2 are needed"):
        estimate_k(one)
    starved = [Pair(busy_w=4.1, idle_w=4.0, busy_cores=0.02, idle_cores=0.01)] * 3
    with pytest.raises(CalibrationError, match=r"only 0\.010 cores more"):
        estimate_k(starved)


def test_runner_alternates_blocks_and_divides_by_the_cpu_used(clock: ManualClock) -> None:
    """On the test's clock: the probe sees 3 W, plus 6 W while the burning thread runs;
    the process's CPU clock counts 0.75 s per second while it runs, 0.05 otherwise."""
    idle_threads = threading.active_count()
    cpu = [0.0]

    def burning() -> bool:
        return threading.active_count() > idle_threads

    def sleep(seconds: float) -> None:
        cpu[0] += seconds * (0.75 if burning() else 0.05)
        clock.advance(seconds)

    probe = SampledProbe("bench", lambda: Reading(9.0 if burning() else 3.0, ""), poll_s=1.0)
    blocks: list[Block] = []
    cal = run_calibration(
        probe,
        clock,
        pairs=3,
        busy_s=4.0,
        idle_s=2.0,
        on_block=blocks.append,
        sleep=sleep,
        cpu_time=lambda: cpu[0],
        device="bench machine",
    )
    assert [(b.pair, b.kind, b.seconds) for b in blocks] == [
        (i, kind, s) for i in range(3) for kind, s in (("busy", 4.0), ("idle", 2.0))
    ]
    expected = {"busy": (9.0, pytest.approx(0.75)), "idle": (3.0, pytest.approx(0.05))}
    assert all((b.power_w, b.cores) == expected[b.kind] for b in blocks)
    assert cal.k_w == pytest.approx(6.0 / 0.7)  # not 6 W: the thread got 0.7 core more
    assert (cal.ci_low_w, cal.ci_high_w) == (pytest.approx(cal.k_w), pytest.approx(cal.k_w))
    assert (cal.idle_w, cal.busy_w, cal.blocks, cal.block_s) == (3.0, 9.0, 3, 4.0)
    assert (cal.source, cal.device) == ("bench", "bench machine")
    assert threading.active_count() == idle_threads  # no burning thread left behind


def test_runner_refuses_bad_arguments_and_a_dead_source(clock: ManualClock) -> None:
    probe = SampledProbe("dead", lambda: Reading(0.0, ""), poll_s=1.0)
    with pytest.raises(CalibrationError, match="at least 2"):
        run_calibration(probe, clock, pairs=1)
    with pytest.raises(CalibrationError, match="must be > 0"):
        run_calibration(probe, clock, busy_s=0.0)
    cpu = [0.0]

    def sleep(seconds: float) -> None:
        cpu[0] += seconds * 0.5
        clock.advance(seconds)

    with pytest.raises(CalibrationError, match="dead read 0 W in every block"):
        run_calibration(probe, clock, pairs=2, sleep=sleep, cpu_time=lambda: cpu[0])


def test_no_measured_source_is_refused_with_the_fallback(tmp_path: Path) -> None:
    search = find_probe(
        powercap_root=tmp_path / "none", power_supply_dir=tmp_path / "none", termux=False
    )
    with pytest.raises(CalibrationError) as caught:
        require_probe(search)
    message = str(caught.value)
    assert message.startswith("power calibration: no measured power source (no RAPL")
    assert message.endswith("(CPU time × a published coefficient)")
    assert "\n" not in message
    assert all(reason in message for reason in search.reasons)


@pytest.fixture
def live_rapl(tmp_path: Path) -> Iterator[Path]:
    # The file lags the truth by the writer's wake-up (milliseconds, more on a loaded
    # machine): an error of about idle_w x lag at each block's edges. A small idle_w keeps
    # it well below k's share.
    root = tmp_path / "powercap"
    with LiveRapl(root, idle_w=1.0, k_w=10.0):
        yield root


def test_calibration_against_a_live_counter(live_rapl: Path) -> None:
    """The real clock, a real burning thread, the real CPU clock: k within 15 % of the
    truth, however much CPU the burning thread gets on a loaded machine."""
    search = find_probe(powercap_root=live_rapl, termux=False)
    probe = require_probe(search)
    assert probe.label == "RAPL psys"
    blocks: list[Block] = []
    try:
        cal = run_calibration(
            probe, SystemClock(), pairs=6, busy_s=0.5, idle_s=0.5, on_block=blocks.append
        )
    finally:
        probe.close()
    assert cal.k_w == pytest.approx(10.0, rel=0.15)
    assert cal.ci_low_w <= cal.k_w <= cal.ci_high_w
    assert 1.0 <= cal.idle_w < cal.busy_w  # the writing thread's own CPU counts a little
    assert [b.kind for b in blocks] == ["busy", "idle"] * 6
    busy, idle = (np.mean([b.cores for b in blocks if b.kind == kind]) for kind in ("busy", "idle"))
    assert busy > idle + 0.05  # the burning thread ran, however much a loaded machine let it
    assert (cal.source, cal.blocks, cal.block_s) == ("RAPL psys", 6, 0.5)
    assert cal.device == device_name()


def test_device_name(tmp_path: Path) -> None:
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text(
        "processor\t: 0\nvendor_id\t: GenuineIntel\n"
        "model name\t: Intel(R) Core(TM) i7-8650U CPU @ 1.90GHz\n\nprocessor\t: 1\n"
    )
    name = device_name(cpuinfo)
    assert name.endswith(f": Intel(R) Core(TM) i7-8650U CPU @ 1.90GHz, {os.cpu_count()} CPUs")
    cpuinfo.write_text("processor\t: 0\nBogoMIPS\t: 38.40\nHardware\t: Qualcomm SM8150\n")
    assert ": Qualcomm SM8150, " in device_name(cpuinfo)
    assert device_name(tmp_path / "absent")  # falls back to what platform knows
