"""``vigil score`` (a CSV of anomaly scores per sample) and ``bench/nab.py`` (NAB results)."""

from __future__ import annotations

import csv
import json
import math
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import pytest

from agent.cli import main
from agent.features.streams import stream_values
from agent.pipeline import Pipeline, Step
from agent.samples import Sample

REPO = Path(__file__).resolve().parent.parent
NAB = REPO.parent / "shared" / "data" / "nab"

# Times written with their exact repr, so the CSV must repeat them character for character.
TRACE = [
    '{"vigil_trace": 1, "created": 1780272060.5, "host": "test", "source": "hand-written"}',
    '{"t": 1780272000.125, "sensor": "system", "cpu_pct": 12.5, "mem_pct": 40.0}',
    '{"t": 1780272000.25, "sensor": "metric", "name": "door", "value": 1.0}',
    '{"t": 1780272010.125, "sensor": "system", "cpu_pct": 13.0, "mem_pct": 40.5}',
    '{"t": 1780272010.125, "sensor": "nope", "value": 1.0}',  # rejected: not a sample
    '{"t": 1780272020.0, "sensor": "metric", "name": "door", "value": 0.0}',
    '{"t": 1780272030.875, "sensor": "system", "cpu_pct": 99.5, "mem_pct": 41.0}',
]
STREAMS = ["door", "system.cpu_pct", "system.mem_pct"]


def _trace(tmp_path: Path) -> Path:
    path = tmp_path / "hand.jsonl"
    path.write_text("\n".join(TRACE) + "\n")
    return path


def _score(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))  # no user config: defaults
    out = tmp_path / "out" / "scores.csv"
    out.parent.mkdir()
    assert main(["score", str(_trace(tmp_path)), "-o", str(out)]) == 0
    with out.open(newline="") as f:
        return list(csv.reader(f))


def _kept() -> list[dict[str, object]]:
    return [json.loads(line) for line in TRACE[1:] if '"nope"' not in line]


def test_score_writes_one_row_per_sample(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    header, *rows = _score(tmp_path, monkeypatch)
    assert header == ["t", "score", *STREAMS]
    kept = _kept()
    assert len(rows) == len(kept)
    expected_t = [line.split('"t": ')[1].split(",")[0] for line in TRACE[1:] if "nope" not in line]
    assert [r[0] for r in rows] == expected_t
    for row, sample in zip(rows, kept, strict=True):
        carried = {"door"} if sample["sensor"] == "metric" else {"system.cpu_pct", "system.mem_pct"}
        for name, cell in zip(STREAMS, row[2:], strict=True):
            if name not in carried:
                assert cell == ""
            else:  # the anomaly stage scores every stream a sample carries, in [0, 1]
                assert 0.0 <= float(cell) <= 1.0
        assert 0.0 <= float(row[1]) <= 1.0


def test_score_columns_come_from_the_step(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A stand-in anomaly stage with known scores: each lands in its stream's column."""
    feed_chunk = Pipeline.feed_chunk

    def stand_in(self: Pipeline, samples: Sequence[Sample]) -> list[Step]:
        steps = feed_chunk(self, samples)
        for sample, step in zip(samples, steps, strict=True):
            values = stream_values(sample)
            step.scores = {k: v / 1000.0 for k, v in values.items()}
            step.node = None if sample.sensor == "metric" else sample.t % 1.0
        return steps

    monkeypatch.setattr(Pipeline, "feed_chunk", stand_in)
    _, *rows = _score(tmp_path, monkeypatch)
    assert rows == [
        ["1780272000.125", "0.125", "", "0.0125", "0.04"],
        ["1780272000.25", "", "0.001", "", ""],
        ["1780272010.125", "0.125", "", "0.013", "0.0405"],
        ["1780272020.0", "", "0.0", "", ""],
        ["1780272030.875", "0.875", "", "0.0995", "0.041"],
    ]


# -- bench/nab.py ------------------------------------------------------------------------------
def _nab_rows(path: Path) -> list[list[str]]:
    with path.open(newline="") as f:
        return list(csv.reader(f))[1:]


def _check_results(out: Path, data: Path, names: list[str]) -> dict[str, list[float]]:
    """Every results file well formed, row for row the data file; the vigil scores by file."""
    scores: dict[str, list[float]] = {}
    for name in names:
        category, file = name.split("/")
        rows = _nab_rows(data / "data" / name)
        for detector in ("vigil", "vigilTiny", "windowedGaussian"):
            path = out / detector / category / f"{detector}_{file}"
            with path.open(newline="") as f:
                header, *got = list(csv.reader(f))
            assert header == ["timestamp", "value", "anomaly_score", "label"]
            assert len(got) == len(rows), path
            assert [r[:2] for r in got] == rows  # NAB's times and values, in the file's order
            values = [float(r[2]) for r in got]
            assert all(math.isfinite(v) and 0.0 <= v <= 1.0 for v in values)
            assert {r[3] for r in got} <= {"0", "1"}
            if detector == "vigil":
                scores[name] = values
    return scores


def test_bench_nab_first_two_files(tmp_path: Path) -> None:
    if not (NAB / "data").is_dir():
        pytest.skip(f"no NAB corpus at {NAB}")
    out = tmp_path / "results"
    run = subprocess.run(
        [sys.executable, str(REPO / "bench" / "nab.py"), "--data", str(NAB), "--out", str(out)]
        + ["--files", "2"],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    names = sorted(p.relative_to(NAB / "data").as_posix() for p in (NAB / "data").glob("*/*.csv"))
    scores = _check_results(out, NAB, names[:2])
    assert len(list(out.rglob("*.csv"))) == 6
    assert any(v > 0.0 for v in scores[names[0]])
    for name in names[:2]:  # the baseline is NAB's own, number for number
        category, file = name.split("/")
        mine = _nab_rows(out / "windowedGaussian" / category / f"windowedGaussian_{file}")
        published = NAB / "results" / "windowedGaussian" / category / f"windowedGaussian_{file}"
        theirs = _nab_rows(published)
        assert len(mine) == len(theirs) > 1000
        assert all(
            abs(float(a[2]) - float(b[2])) <= 1e-12 for a, b in zip(mine, theirs, strict=True)
        )
    assert "nothing to score" in run.stdout  # neither file has a window
    assert "[2/2]" in run.stderr and "us per row" in run.stdout


def test_bench_nab_duplicates_and_windows(tmp_path: Path) -> None:
    """A two-file corpus with repeated timestamps and exact duplicate rows, and windows:
    labels agree with the scorer's windows, duplicates keep their rows, and it scores."""
    if not (NAB / "data").is_dir():
        pytest.skip(f"no NAB corpus at {NAB}")
    names = [
        "realAWSCloudwatch/ec2_disk_write_bytes_1ef3de.csv",  # one row 12 times
        "realAdExchange/exchange-2_cpc_results.csv",  # 12:00:01 twice, two values
    ]
    data = tmp_path / "nab"
    for name in names:
        (data / "data" / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(NAB / "data" / name, data / "data" / name)
    (data / "config").mkdir()
    shutil.copy(NAB / "config" / "profiles.json", data / "config" / "profiles.json")
    windows = json.loads((NAB / "labels" / "combined_windows.json").read_text())
    (data / "labels").mkdir()
    (data / "labels" / "combined_windows.json").write_text(
        json.dumps({n: windows[n] for n in names})
    )
    out = tmp_path / "results"
    run = subprocess.run(
        [sys.executable, str(REPO / "bench" / "nab.py"), "--data", str(data), "--out", str(out)],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    scores = _check_results(out, data, names)
    rows = _nab_rows(data / "data" / names[0])
    repeated = [i for i, r in enumerate(rows) if r == ["2014-03-09 03:00:00", "0.0"]]
    assert len(repeated) == 12 and len({scores[names[0]][i] for i in repeated}) == 1
    for detector in ("vigil", "vigilTiny"):
        assert sum(1 for line in run.stdout.splitlines() if line.startswith(detector + " ")) == 3
