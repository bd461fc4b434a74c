"""``vigil power calibrate``: watts per busy core, measured against the machine's own source.

Alternating busy blocks (one thread burning CPU) and idle blocks; each adjacent pair gives
the extra power of the busy block and the extra CPU it used, both measured: the busy thread
rarely gets exactly one core (other load, frequency scaling, a slow phone core), so the
CPU this process used in each block is read from its CPU clock rather than assumed.

    k = mean(P_busy - P_idle) / mean(cores_busy - cores_idle)

with a 95 % interval from a bootstrap over the pairs (fixed seed: the same blocks give the
same interval). The pairs' differences cancel what stays the same in both blocks of a pair
(the screen, other processes, the probe's own reading cost) and slow drifts between pairs.
"""

from __future__ import annotations

import logging
import os
import platform
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from agent import clock as clock_module
from agent.clock import Clock
from agent.errors import CalibrationError
from agent.power.probe import PowerProbe, ProbeSearch

logger = logging.getLogger(__name__)

#: What the report does without a calibration (see ``agent.power.coefficients``).
NO_SOURCE_FALLBACK = (
    "the power report will use an estimate instead (CPU time × a published coefficient)"
)

#: Below this many extra busy cores per busy block the ratio means nothing.
MIN_EXTRA_CORES = 0.05


@dataclass(frozen=True, slots=True)
class Pair:
    """One busy block and the idle block after it: mean watts, and this process's CPU
    seconds per second of each (``cores``)."""

    busy_w: float
    idle_w: float
    busy_cores: float
    idle_cores: float


@dataclass(frozen=True, slots=True)
class Block:
    """One measured block, as ``run_calibration`` reports its progress."""

    pair: int  # 0-based
    kind: str  # "busy" or "idle"
    power_w: float
    cores: float
    seconds: float


@dataclass(frozen=True, slots=True)
class Calibration:
    """The result, as the ``power_calibrations`` table stores it.

    ``k_w``: watts per busy core, ``ci_low_w``..``ci_high_w`` its 95 % interval; ``idle_w``
    and ``busy_w`` the mean power of the idle and of the busy blocks; ``blocks`` the number
    of busy/idle pairs; ``block_s`` the busy block's length; ``source`` the probe's label.
    """

    k_w: float
    ci_low_w: float
    ci_high_w: float
    idle_w: float
    busy_w: float
    blocks: int
    block_s: float
    source: str
    device: str


def estimate_k(
    pairs: Sequence[Pair],
    *,
    block_s: float = 0.0,
    source: str = "",
    device: str = "",
    resamples: int = 10_000,
    seed: int = 0,
) -> Calibration:
    """k and its 95 % percentile-bootstrap interval over ``pairs`` (a ratio of means,
    resampled by pair). ``CalibrationError`` for fewer than 2 pairs or busy blocks that
    were not busier than the idle ones."""
    if len(pairs) < 2:
        raise CalibrationError(f"{len(pairs)} pair(s) of blocks: at least 2 are needed")
    d_power = np.array([p.busy_w - p.idle_w for p in pairs], dtype=float)
    d_cores = np.array([p.busy_cores - p.idle_cores for p in pairs], dtype=float)
    extra = float(d_cores.mean())
    if extra < MIN_EXTRA_CORES:
        raise CalibrationError(
            f"the busy blocks used only {extra:.3f} cores more than the idle ones "
            "(was the burning thread starved?)"
        )
    k = float(d_power.mean()) / extra
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, len(pairs), size=(resamples, len(pairs)))
    numerators = d_power[picks].mean(axis=1)
    denominators = d_cores[picks].mean(axis=1)
    usable = denominators > MIN_EXTRA_CORES / 2  # a resample of starved blocks says nothing
    ratios = numerators[usable] / denominators[usable]
    low, high = np.percentile(ratios, [2.5, 97.5]) if ratios.size else (k, k)
    return Calibration(
        k_w=k,
        ci_low_w=float(low),
        ci_high_w=float(high),
        idle_w=float(np.mean([p.idle_w for p in pairs])),
        busy_w=float(np.mean([p.busy_w for p in pairs])),
        blocks=len(pairs),
        block_s=block_s,
        source=source,
        device=device,
    )


def run_calibration(
    probe: PowerProbe,
    clock: Clock,
    *,
    pairs: int = 10,
    busy_s: float = 20.0,
    idle_s: float = 20.0,
    on_block: Callable[[Block], None] | None = None,
    sleep: Callable[[float], None] = clock_module.sleep,
    cpu_time: Callable[[], float] = time.process_time,
    device: str | None = None,
) -> Calibration:
    """Measure ``pairs`` busy/idle pairs against ``probe`` and estimate k.

    Takes ``pairs * (busy_s + idle_s)`` seconds. ``cpu_time`` is this process's CPU clock:
    the busy thread and everything else the process does count in both kinds of block.
    """
    if pairs < 2:
        raise CalibrationError(f"{pairs} pair(s) of blocks: at least 2 are needed")
    if busy_s <= 0 or idle_s <= 0:
        raise CalibrationError(f"blocks of {busy_s:g} s and {idle_s:g} s: both must be > 0")
    measured: list[Pair] = []
    for index in range(pairs):
        busy = _block(probe, clock, index, "busy", busy_s, sleep, cpu_time)
        if on_block is not None:
            on_block(busy)
        idle = _block(probe, clock, index, "idle", idle_s, sleep, cpu_time)
        if on_block is not None:
            on_block(idle)
        measured.append(Pair(busy.power_w, idle.power_w, busy.cores, idle.cores))
    if all(p.busy_w == 0 and p.idle_w == 0 for p in measured):
        raise CalibrationError(f"{probe.label} read 0 W in every block: it does not count here")
    return estimate_k(
        measured,
        block_s=busy_s,
        source=probe.label,
        device=device_name() if device is None else device,
    )


def require_probe(search: ProbeSearch) -> PowerProbe:
    """The probe ``find_probe`` found, or ``CalibrationError`` naming why there is none."""
    if search.probe is None:
        why = "; ".join(search.reasons) or "no source tried"
        raise CalibrationError(f"no measured power source ({why}); {NO_SOURCE_FALLBACK}")
    return search.probe


def _block(
    probe: PowerProbe,
    clock: Clock,
    index: int,
    kind: str,
    duration_s: float,
    sleep: Callable[[float], None],
    cpu_time: Callable[[], float],
) -> Block:
    burner = _Burner() if kind == "busy" else None
    try:
        cpu_start, start = cpu_time(), clock.monotonic()
        watts = probe.block_power_w(duration_s, clock, sleep=sleep)
        seconds, cpu = clock.monotonic() - start, cpu_time() - cpu_start
    finally:
        if burner is not None:
            burner.stop()
    if seconds <= 0:
        raise CalibrationError(f"no time passed in a {duration_s:g} s block")
    block = Block(index, kind, watts, cpu / seconds, seconds)
    logger.debug("calibration block: %s", block)
    return block


class _Burner:
    """One thread spinning on the CPU until stopped (started on creation)."""

    def __init__(self) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=_burn, args=(self._stop,), daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


def _burn(stop: threading.Event) -> None:
    x = 1
    while not stop.is_set():
        for i in range(10_000):  # about a millisecond between checks
            x = (x * 31 + i) & 0xFFFF


def device_name(cpuinfo: str | Path = "/proc/cpuinfo") -> str:
    """``host: CPU model, N CPUs``: which machine a calibration belongs to."""
    return f"{platform.node() or 'unknown host'}: {cpu_model(cpuinfo)}, {os.cpu_count()} CPUs"


def cpu_model(cpuinfo: str | Path = "/proc/cpuinfo") -> str:
    """The CPU's name from ``cpuinfo`` (x86's "model name", ARM's "Hardware"...)."""
    try:
        text = Path(cpuinfo).read_text(encoding="utf-8", errors="replace")
    except OSError:
        text = ""
    for key in ("model name", "Hardware", "Processor", "cpu model"):
        for line in text.splitlines():
            name, sep, value = line.partition(":")
            if sep and name.strip() == key and value.strip():
                return " ".join(value.split())
    return platform.processor() or platform.machine() or "unknown CPU"
