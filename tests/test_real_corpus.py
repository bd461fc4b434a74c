"""bench/real_corpus.py: real recorded series with injected anomalies, in NAB's layout."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
from _tools import load_script, real_wheels

from agent.evaluation.nab_score import probationary_length

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def real() -> ModuleType:
    return load_script(REPO / "bench" / "real_corpus.py")


@pytest.fixture(scope="module")
def series(real: ModuleType) -> list:
    return real.read_series(real_wheels())


def test_the_wheels_give_regular_runs_of_real_readings(real: ModuleType, series: list) -> None:
    names = {s.name for s in series}
    assert {"household_Voltage", "house_T1", "station_temperature", "buoy_temperature"} <= names
    for s in series:
        for times, values in s.pieces:
            assert len(times) == len(values) >= real.dc.MIN_ROWS
            assert np.isfinite(values).all()
            steps = np.diff(np.array(times, dtype="datetime64[s]")).astype(np.int64)
            assert len(set(steps.tolist())) == 1  # one interval within a run


def test_a_file_is_the_recording_until_its_first_anomaly(real: ModuleType, series: list) -> None:
    voltage = next(s for s in series if s.name == "household_Voltage")
    drawn = real.draw_real(voltage, 3, seed=5, key=7)
    again = real.draw_real(voltage, 3, seed=5, key=7)
    assert drawn.times == again.times and np.array_equal(drawn.values, again.values)
    n = len(drawn.times)
    assert real.dc.MIN_ROWS <= n <= real.dc.MAX_ROWS
    first = min(a.row for a in drawn.anomalies)
    assert first > probationary_length(n)
    times, values = next(
        (t, v) for t, v in voltage.pieces if drawn.times[0] in t and drawn.times[-1] in t
    )
    start = times.index(drawn.times[0])
    source = values[start : start + n]
    assert np.array_equal(drawn.values[:first], source[:first])
    assert not np.array_equal(drawn.values, source)  # the anomalies changed it
    clean = real.draw_real(voltage, 0, seed=5, key=7)
    assert clean.anomalies == []


def test_the_corpus_is_in_nabs_layout(real: ModuleType, series: list, tmp_path: Path) -> None:
    summary = real.write_corpus(tmp_path, series, seed=3)
    windows = json.loads((tmp_path / "labels" / "combined_windows.json").read_text())
    kinds = json.loads((tmp_path / "labels" / "dev_anomalies.json").read_text())
    assert summary.files == len(windows) == len(list((tmp_path / "data").rglob("*.csv")))
    assert summary.clean == sum(1 for w in windows.values() if not w) > 0
    for name, spans in windows.items():
        with (tmp_path / "data" / name).open() as f:
            rows = list(csv.reader(f))
        assert rows[0] == ["timestamp", "value"]
        assert len(spans) == len(kinds[name])
        times = [r[0] for r in rows[1:]]
        for (a, b), anomaly in zip(spans, kinds[name], strict=True):
            assert a.removesuffix(".000000") <= anomaly["time"] <= b.removesuffix(".000000")
            assert anomaly["time"] in times
