"""A level held above the hour's: runs of a stream's context residual, judged by their lowest
residual among the stream's own once five minutes old (``context.py``'s ``SUSTAIN_S``)."""

from __future__ import annotations

import math
import random
from datetime import UTC, datetime

import numpy as np

from agent.config import AnomalyConfig
from agent.detect.anomaly.context import MIN_RESIDUAL, SUSTAIN_N, SUSTAIN_S, HourProfiles
from agent.detect.anomaly.stage import AnomalyDetector

MONDAY = datetime(2026, 1, 5, tzinfo=UTC).timestamp()
#: Rows of five minutes: a run is ``SUSTAIN_N`` of them (40 minutes) before it is judged.
STEP_S = 300.0
RUNAWAY_ROWS = 12


def _nights_with_jobs(days: int, runaway_day: int | None) -> tuple[list[dict[str, float]], int]:
    """A machine busy every afternoon (13:00-18:00, CPU 55-90 %), quiet otherwise, with a job
    at the afternoon's level for one row at any hour about once in 30 rows; memory in use
    swings by the row. With ``runaway_day``, an hour from 02:00 that day with CPU held at
    30-45 %. The rows, and the runaway's first row."""
    rng = random.Random(5)
    rows = []
    for i in range(days * 288):
        hour = (i % 288) / 12.0
        busy = 13.0 <= hour < 18.0
        cpu = rng.uniform(55.0, 90.0) if busy else rng.uniform(2.0, 10.0)
        if not busy and rng.random() < 0.03:
            cpu = rng.uniform(55.0, 90.0)
        rows.append({"system.cpu_pct": cpu, "system.mem_used_pct": 40.0 + i % 7})
    at = -1 if runaway_day is None else runaway_day * 288 + 2 * 12
    for i in range(at, at + RUNAWAY_ROWS) if runaway_day is not None else ():
        rows[i]["system.cpu_pct"] = rng.uniform(30.0, 45.0)
    return rows, at


def _times(n: int) -> list[float]:
    return [MONDAY + STEP_S * i for i in range(n)]


def _live(rows: list[dict[str, float]]) -> tuple[AnomalyDetector, list[float], list[int]]:
    """The rows one at a time: the detector, each row's score and the rows where an
    anomaly started (after the first day, the routine being learned)."""
    detector = AnomalyDetector(None, AnomalyConfig(timezone="UTC"))
    nodes, starts = [], []
    for i, (t, row) in enumerate(zip(_times(len(rows)), rows, strict=True)):
        step = detector.feed(t, "system", row)
        nodes.append(step.node)
        starts += [i for e in step.events if e.kind == "anomaly.start" and i >= 288]
    return detector, nodes, starts


def test_a_runaway_held_at_night_is_an_anomaly_and_the_nights_short_jobs_are_not() -> None:
    """Jobs at the afternoon's level come at any hour, so a night value well above the
    night's is routine for the instantaneous judgement; a CPU held at 30-45 % for an hour
    at 02:00 on the thirteenth day never was: it starts an anomaly once its run is
    ``SUSTAIN_N`` rows old, naming CPU. Memory in use, a level stream, has no history of
    runs (it is judged by its values)."""
    rows, at = _nights_with_jobs(14, 12)
    detector, _, starts = _live(rows)
    assert starts == [at + SUSTAIN_N - 1]
    cpu = detector.streams["system.cpu_pct"]
    assert cpu.sustained is not None and len(cpu.sustained) == detector.settings.history_n
    assert detector.streams["system.mem_used_pct"].sustained is None
    _, _, quiet = _live(_nights_with_jobs(14, None)[0])
    assert quiet == []


def test_a_run_is_not_judged_until_its_streams_history_spans_the_days_it_keeps() -> None:
    """The same runaway on the sixth day: its stream's history of runs does not yet hold the
    ``history_s`` of judged hours that says how rare a run is here (a new machine's first
    runs are the routine being learned), and the instantaneous judgement alone lets it pass."""
    rows, at = _nights_with_jobs(6, 5)
    detector, _, starts = _live(rows[: at + RUNAWAY_ROWS])
    cpu = detector.streams["system.cpu_pct"]
    assert cpu.sustained is not None and 0 < len(cpu.sustained) < detector.settings.history_n
    assert [i for i in starts if i >= at] == []


def test_runs_are_followed_the_same_live_in_chunks_and_across_a_restore() -> None:
    """One row at a time, in chunks of 7 and of 4096, and live with the state saved and
    restored in the middle of the run: the same scores, and the same runs kept."""
    rows, at = _nights_with_jobs(14, 12)
    times = _times(len(rows))
    live, nodes, _ = _live(rows)
    for chunk in (7, 4096):
        other = AnomalyDetector(None, AnomalyConfig(timezone="UTC"))
        found: list[float] = []
        for a in range(0, len(rows), chunk):
            result = other.feed_chunk(
                times[a : a + chunk], ["system"] * len(rows[a : a + chunk]), rows[a : a + chunk]
            )
            found += result.node.tolist()
        assert found == nodes
        assert other.history_state() == live.history_state()
        assert other.context["system"].encode() == live.context["system"].encode()
    cut = at + SUSTAIN_N // 2
    first = AnomalyDetector(None, AnomalyConfig(timezone="UTC"))
    for t, row in zip(times[:cut], rows[:cut], strict=True):
        first.feed(t, "system", row)
    column = first.context["system"].names.index("system.cpu_pct")
    assert not math.isnan(first.context["system"].run_start[column])  # saved inside the run
    again = AnomalyDetector(None, AnomalyConfig(timezone="UTC"))
    assert again.restore(first.state(), first.history_state())
    rest = [
        again.feed(t, "system", row).node for t, row in zip(times[cut:], rows[cut:], strict=True)
    ]
    assert rest == nodes[cut:]


def _one_stream(residuals: list[float], times: list[float], chunk: int) -> list[float]:
    profiles = HourProfiles()
    profiles.usual(["system.cpu_pct"], np.zeros((1, 1)), np.array([0]), np.array([0]))
    out: list[float] = []
    r, t = np.array(residuals)[:, None], np.array(times)
    for a in range(0, len(residuals), chunk):
        out += profiles.sustained(["system.cpu_pct"], t[a : a + chunk], r[a : a + chunk])[
            :, 0
        ].tolist()
    return out


def test_a_run_is_its_lowest_residual_once_old_enough_and_a_gap_or_a_low_value_ends_it() -> None:
    """Ten-second rows: a run's sustained residual is its lowest so far once it is
    ``SUSTAIN_S`` old and ``SUSTAIN_N`` rows long; a row without a residual (NaN) neither
    breaks nor extends it, a residual under ``MIN_RESIDUAL`` ends it, and so does a gap
    longer than ``SUSTAIN_S``. The same in one call and row by row."""
    n = 40
    times = [10.0 * i for i in range(n)]
    residuals = [MIN_RESIDUAL + 3.0 - (i % 5) * 0.5 for i in range(n)]
    residuals[5] = math.nan
    residuals[35] = MIN_RESIDUAL - 0.1
    times[36:] = [t + SUSTAIN_S + 1.0 for t in times[36:]]
    whole = _one_stream(residuals, times, n)
    assert _one_stream(residuals, times, 1) == whole
    old = int(SUSTAIN_S // 10.0)  # the first row SUSTAIN_S after the run began
    assert whole[:old] == [0.0] * old
    lowest = min(r for r in residuals[: old + 1] if not math.isnan(r))
    assert whole[old] == lowest == MIN_RESIDUAL + 1.0
    assert whole[5] == 0.0 and whole[35] == 0.0  # no residual; one under the floor
    assert whole[36:] == [0.0] * (n - 36)  # a new run after the gap, too young


def test_profiles_saved_before_runs_were_kept_restore_with_none_open() -> None:
    """Hour profiles saved without the runs' state (an older release) restore with no run
    open, and a run open when saved comes back as it was."""
    rows, at = _nights_with_jobs(14, 12)
    detector, _, _ = _live(rows[: at + SUSTAIN_N // 2])
    saved = detector.context["system"].encode()
    column = saved["names"].index("system.cpu_pct")
    again = HourProfiles.decode(saved)
    assert (
        again.run_start[column]
        == detector.context["system"].run_start[column]
        == 300.0 * at + MONDAY
    )
    older = {k: v for k, v in saved.items() if not k.startswith("run_")}
    assert np.isnan(HourProfiles.decode(older).run_start).all()
