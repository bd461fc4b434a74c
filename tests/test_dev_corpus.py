"""bench/dev_corpus.py: a generated corpus in NAB's layout (to tune on; NAB is for evaluation)."""

from __future__ import annotations

import csv
import json
import math
import re
import subprocess
import sys
from itertools import pairwise
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
from _tools import load_script

from agent.evaluation.nab_io import CostProfile, ResultFile, load_profiles, load_windows
from agent.evaluation.nab_score import prepare_file, probationary_length

REPO = Path(__file__).resolve().parent.parent
SCRIPT = REPO / "bench" / "dev_corpus.py"
SEED = 11
CATEGORIES = {
    "devSeasonal",
    "devWalk",
    "devBursty",
    "devSawtooth",
    "devFlat",
    "devContext",
    "devMultivariate",
    "devSteady",
    "devNoAnomaly",
}
ANOMALY_KINDS = {
    "spike",
    "dip",
    "level_up",
    "level_down",
    "variance",
    "stuck",
    "dropout",
    "drift",
    "period",
    "loss",
    "ramp",
}
#: devContext's (the working hours' level at night), devMultivariate's (bench/multivariate.py's
#: faults; its "stuck" is a group of metrics)
OTHER_KINDS = {"night", "decoupling", "leak", "stuck", "shift"}
SUMMARY = re.compile(
    r"dev corpus: (\d+) files \((\d+) without anomalies\), ([\d,]+) rows, (\d+) windows -> "
)


@pytest.fixture(scope="module")
def dev() -> ModuleType:
    return load_script(SCRIPT)


def _write(dev: ModuleType, out: Path, seed: int) -> Path:
    assert dev.main(["--out", str(out), "--seed", str(seed), "--files-per-kind", "1"]) == 0
    return out


@pytest.fixture(scope="module")
def corpus(dev: ModuleType, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _write(dev, tmp_path_factory.mktemp("dev") / "corpus", SEED)


def _tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def _names(root: Path) -> list[str]:
    return sorted(p.relative_to(root / "data").as_posix() for p in root.glob("data/*/*.csv"))


def _servers(names: list[str]) -> list[str]:
    """The files of several metrics a row (the rest have one value a row)."""
    return [n for n in names if n.split("/")[1].startswith("server_")]


def _times(root: Path, name: str) -> np.ndarray:
    """The rows' times (datetime64[us]) of any data file."""
    with (root / "data" / name).open(newline="") as f:
        return np.array([r[0] for r in list(csv.reader(f))[1:]], dtype="datetime64[us]")


def _rows(root: Path, name: str) -> tuple[np.ndarray, list[str]]:
    """(times as datetime64[us], value texts) of one data file; checks its header."""
    with (root / "data" / name).open(newline="") as f:
        header, *rows = list(csv.reader(f))
    assert header == ["timestamp", "value"], name
    assert all(len(r) == 2 for r in rows), name
    return np.array([r[0] for r in rows], dtype="datetime64[us]"), [r[1] for r in rows]


def test_same_seed_same_bytes_other_seed_other_corpus(
    dev: ModuleType, corpus: Path, tmp_path: Path
) -> None:
    first = _tree(corpus)
    assert _tree(_write(dev, tmp_path / "again", SEED)) == first
    other = _tree(_write(dev, tmp_path / "other", SEED + 1))
    data = [k for k in first if k.startswith("data/devSeasonal/")]
    assert data and all(other[k] != first[k] for k in data)
    assert other["labels/combined_windows.json"] != first["labels/combined_windows.json"]
    assert other["config/profiles.json"] == first["config/profiles.json"]


def test_files_are_nab_data_files(dev: ModuleType, corpus: Path) -> None:
    names = _names(corpus)
    assert {n.split("/")[0] for n in names} == CATEGORIES
    # one per kind and two without anomalies; an office, a server and a steady reading, with
    # one clean each
    assert len(names) == len(dev.KINDS) + 2 + 6
    assert len(_servers(names)) == 2
    starts, scales = set(), []
    for name in sorted(set(names) - set(_servers(names))):
        times, texts = _rows(corpus, name)
        assert 2000 <= len(times) <= 6000, name
        assert set(np.diff(times).tolist()) == {np.timedelta64(5, "m")}, name
        assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", str(times[0]).replace("T", " ")[:19])
        values = np.array([float(t) for t in texts])
        assert np.isfinite(values).all(), name
        assert not any(t.startswith("-0") and float(t) == 0.0 for t in texts), name
        starts.add(str(times[0])[:10])
        scales.append(float(np.median(np.abs(values))))
    assert len(starts) > len(names) // 2  # start dates vary
    assert max(scales) / max(min(scales), 1e-12) > 1e6  # many orders of magnitude


def test_nab_readers_read_windows_and_profiles(corpus: Path) -> None:
    windows = load_windows(corpus / "labels" / "combined_windows.json")
    assert sorted(windows) == _names(corpus)  # every file listed, as NAB lists them
    assert load_profiles(corpus / "config" / "profiles.json") == {
        "standard": CostProfile("standard", 1.0, 0.11, 1.0),
        "reward_low_FP_rate": CostProfile("reward_low_FP_rate", 1.0, 0.22, 1.0),
        "reward_low_FN_rate": CostProfile("reward_low_FN_rate", 1.0, 0.11, 2.0),
    }
    raw = json.loads((corpus / "config" / "profiles.json").read_text())
    assert {spec["CostMatrix"]["tnWeight"] for spec in raw.values()} == {1.0}
    text = (corpus / "labels" / "combined_windows.json").read_text()
    assert re.search(r'"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.000000"', text)


def test_windows_on_rows_after_probation_and_centred(corpus: Path) -> None:
    windows = load_windows(corpus / "labels" / "combined_windows.json")
    injected = json.loads((corpus / "labels" / "dev_anomalies.json").read_text())
    for name in _names(corpus):
        times = _times(corpus, name)
        n, wins = len(times), windows[name]
        assert len(wins) == len(injected[name])
        if name.startswith("devNoAnomaly/"):
            assert wins == []
            continue
        assert 1 <= len(wins) <= 4, name
        bounds = []
        for (a, b), anomaly in zip(wins, injected[name], strict=True):
            i, j = (int(k) for k in np.searchsorted(times, [a, b]))
            assert times[i] == a and times[j] == b and i < j < n, name  # on rows, in the file
            assert i > math.floor(0.15 * n) and i >= probationary_length(n), name
            assert anomaly["row"] == (i + j) // 2 and (i + j) % 2 == 0, name  # centred
            assert anomaly["time"] == str(times[anomaly["row"]]).replace("T", " ")[:19]
            assert anomaly["kind"] in ANOMALY_KINDS | OTHER_KINDS
            bounds.append((i, j))
        assert all(j < k for (_, j), (k, _) in pairwise(bounds)), name  # apart, sorted
        covered = sum(j - i + 1 for i, j in bounds)
        assert abs(covered - 0.1 * n) <= len(bounds), name  # 10 % of the rows in all


def test_no_anomaly_share(dev: ModuleType, corpus: Path) -> None:
    windows = load_windows(corpus / "labels" / "combined_windows.json")
    clean = [n for n in windows if n.startswith("devNoAnomaly/")]
    assert len(clean) == 5 and all(windows[n] == [] for n in clean)
    assert all(windows[n] for n in windows if n not in clean)
    planned = dev.plan(SEED, 3)  # the default size
    share = sum(1 for f in planned if f.anomalies == 0) / len(planned)
    assert 40 <= len(planned) <= 60 and 0.12 <= share <= 0.18


def test_anomalies_change_their_window_and_nothing_before(dev: ModuleType) -> None:
    """Each file drawn with and without its anomalies: identical up to the first onset, and
    every anomaly changes the values between its onset and its window's end."""
    seen: set[str] = set()
    for k, kind in enumerate(dev.ALL_KINDS):
        for key in range(6):
            clean = dev.draw(kind, 4, SEED, 100 * k + key, inject=False)
            drawn = dev.draw(kind, 4, SEED, 100 * k + key)
            assert clean.anomalies == [] and len(drawn.anomalies) == 4
            assert drawn.times == clean.times
            n, half = len(drawn.values), dev.window_half(len(drawn.values), 4)
            first = drawn.anomalies[0].row
            assert np.array_equal(drawn.values[:first], clean.values[:first]), kind
            for a in drawn.anomalies:
                end = a.row + half + 1
                assert end < n
                changed = drawn.values[a.row : end] != clean.values[a.row : end]
                assert changed.any(), (kind, a)
                if a.kind == "dropout":
                    assert (drawn.values[a.row : a.row + 3] == 0.0).all()
                if a.kind == "stuck":
                    assert (drawn.values[a.row : a.row + 6] == drawn.values[a.row]).all()
            assert all(a.kind != "ramp" for a in drawn.anomalies[:-1])  # a failure comes last
            seen |= {a.kind for a in drawn.anomalies}
    assert seen == ANOMALY_KINDS


def test_cli_summary_and_existing_corpus(tmp_path: Path) -> None:
    out = tmp_path / "corpus"
    args = [sys.executable, str(SCRIPT), "--out", str(out), "--seed", "3", "--files-per-kind", "1"]
    run = subprocess.run(args, capture_output=True, text=True, check=True, timeout=60)
    lines = run.stdout.splitlines()
    assert len(lines) == 1
    match = SUMMARY.match(lines[0])
    assert match, lines
    files, clean, rows, wins = match.groups()
    windows = load_windows(out / "labels" / "combined_windows.json")
    names = _names(out)
    assert int(files) == len(names) and int(clean) == 5
    assert int(rows.replace(",", "")) == sum(len(_times(out, n)) for n in names)
    assert int(wins) == sum(len(w) for w in windows.values())
    again = subprocess.run(args, capture_output=True, text=True, timeout=60)
    assert again.returncode == 2 and "--force" in again.stderr  # never mixes two corpora
    subprocess.run([*args, "--force"], capture_output=True, check=True, timeout=60)
    assert _names(out) == names


def _bench_nab(
    corpus: Path, out: Path, *args: str, timeout: float
) -> subprocess.CompletedProcess[str]:
    """``bench/nab.py`` on the corpus as a user runs it; checks it succeeded."""
    command = [sys.executable, str(REPO / "bench" / "nab.py"), "--data", str(corpus)]
    run = subprocess.run(
        [*command, "--out", str(out), *args], capture_output=True, text=True, timeout=timeout
    )
    assert run.returncode == 0, run.stderr
    return run


def test_bench_nab_scores_the_corpus(corpus: Path, tmp_path: Path) -> None:
    out = tmp_path / "results"
    run = _bench_nab(corpus, out, "--files", "3", timeout=120)
    lines = run.stdout.splitlines()
    assert lines[0].startswith("NAB: 3 files"), lines
    for detector in ("vigil", "vigilTiny"):  # the first three files have windows: scored
        assert sum(1 for line in lines if line.startswith(detector + " ")) == 3
    first = _names(corpus)[0]
    category, file = first.split("/")
    with (out / "vigil" / category / f"vigil_{file}").open(newline="") as f:
        labels = [int(r["label"]) for r in csv.DictReader(f)]
    assert len(labels) == len(_rows(corpus, first)[0]) and 0 < sum(labels) < len(labels)


def test_an_incident_of_the_hour_is_a_day_level_at_night(dev: ModuleType) -> None:
    """devContext: the working hours' level (as high as on a weekday afternoon, never higher)
    at night after two weeks; the rest of the file is the clean one."""
    for key in range(5):
        drawn, clean = dev.draw_context(SEED, key), dev.draw_context(SEED, key, inject=False)
        assert clean.anomalies == [] and [a.kind for a in drawn.anomalies] == ["night"]
        i = drawn.anomalies[0].row
        changed = np.flatnonzero(drawn.values != clean.values)
        assert changed[0] == i and changed[-1] - i < 48  # 1.5 to 4 hours
        hour = int(drawn.times[i][11:13])
        assert 1 <= hour < 4 and i >= 2 * dev.WEEK
        incident = drawn.values[i : i + 18]
        afternoons = clean.values[: 2 * dev.WEEK]
        assert incident.mean() > np.percentile(afternoons, 75)  # a busy hour's level
        assert incident.max() <= afternoons.max() + 6 * np.std(np.diff(clean.values))
        nights = clean.values[[int(t[11:13]) in (1, 2, 3) for t in clean.times]]
        assert incident.mean() > nights.max()  # never seen at night


def test_a_server_is_the_multivariate_bench_s_source(dev: ModuleType) -> None:
    """devMultivariate: bench/multivariate.py's server for seed 10,000 + seed (one-minute
    rows from a Monday), its faults as the anomalies; without them, the same normal rows."""
    mv = load_script(REPO / "bench" / "multivariate.py")
    drawn, clean = dev.draw_server(SEED, 2), dev.draw_server(SEED, 2, inject=False)
    source = mv.generate_source(dev.SERVER_SEED + SEED, 2, dev.SERVER_DAYS * 1440)
    assert drawn.names == source.names and np.array_equal(drawn.values, source.values)
    assert [(a.kind, a.row) for a in drawn.anomalies] == sorted(
        ((f.kind, f.start) for f in source.faults), key=lambda a: a[1]
    )
    first = drawn.anomalies[0].row
    assert first >= len(drawn.times) // 2 and clean.anomalies == []
    assert np.array_equal(drawn.values[:first], clean.values[:first])
    assert drawn.times[0] == "2026-01-05 00:00:00" and drawn.times[1] == "2026-01-05 00:01:00"


def test_bench_nab_scores_a_server_by_its_source_score(corpus: Path, tmp_path: Path) -> None:
    """A file of several metrics goes through as one system source; its rows get the
    source's score."""
    out = tmp_path / "results"
    run = _bench_nab(corpus, out, "--only", "devMultivariate", timeout=300)
    assert run.stdout.splitlines()[0].startswith("NAB: 1 files, 11,520 rows, 11,520 samples")
    name = _servers(_names(corpus))[0]
    category, file = name.split("/")
    with (out / "vigil" / category / f"vigil_{file}").open(newline="") as f:
        scores = [float(r["anomaly_score"]) for r in csv.DictReader(f)]
    assert len(scores) == 11_520 and max(scores) > 0.5 and min(scores) == 0.0


def test_found_counts_windows_hit_and_rows_flagged_outside() -> None:
    """bench/nab.py's ``found``: a window counts once it holds a row at or above the
    threshold; a row at or above it outside every window is a false one; an anomaly counts
    under its kind by the window around its onset, and not at all inside the probation."""
    nab = load_script(REPO / "bench" / "nab.py")
    n = 100
    times = np.datetime64("2026-01-05T00:00") + np.arange(n) * np.timedelta64(5, "m")
    scores = np.zeros(n)
    scores[[20, 30, 45]] = 0.9  # two rows before the first window, one inside it
    scores[75] = 0.3  # inside the second window, below 0.5
    windows = {"devX/a.csv": [(times[40], times[49]), (times[70], times[79])]}
    labels = np.zeros(n, dtype=np.int8)
    labels[40:50] = labels[70:80] = 1
    result = ResultFile("devX/a.csv", times, np.zeros(n), scores, labels)
    prepared = [prepare_file(result, windows)]
    assert prepared[0].probation == probationary_length(n) == 15
    injected = {"devX/a.csv": [{"kind": "spike", "row": 44}, {"kind": "dip", "row": 74}]}
    injected["devX/a.csv"].append({"kind": "spike", "row": 5})  # in the probation: not scored
    by_category, by_kind = nab.found(prepared, 0.5, injected)
    assert by_category == {"devX": nab.Found(hit=1, windows=2, false_rows=2)}
    assert by_kind == {"spike": nab.Found(1, 1), "dip": nab.Found(0, 1)}
    by_category, by_kind = nab.found(prepared, 0.3, injected)
    assert by_category["devX"] == nab.Found(hit=2, windows=2, false_rows=2)
    assert by_kind["dip"] == nab.Found(1, 1)
    by_category, _ = nab.found(prepared, 0.95, {})
    assert by_category["devX"] == nab.Found(hit=0, windows=2, false_rows=0)


def test_bench_nab_found_tables(corpus: Path, tmp_path: Path) -> None:
    """``--found``: per category the windows each detector hit of those scored (and its
    rows flagged outside them), per kind the windows hit of the anomalies injected there."""
    run = _bench_nab(corpus, tmp_path / "results", "--only", "devSteady", "--found", timeout=120)
    names = [n for n in _names(corpus) if n.startswith("devSteady/")]
    windows = load_windows(corpus / "labels" / "combined_windows.json")
    injected = json.loads((corpus / "labels" / "dev_anomalies.json").read_text())
    row = next(line for line in run.stdout.splitlines() if "devSteady" in line)
    cells = re.findall(r"(\d+)/(\d+) \((\d+)\)", row)
    assert len(cells) == 3  # vigil, vigilTiny, windowedGaussian
    assert {int(total) for _, total, _ in cells} == {sum(len(windows[n]) for n in names)}
    assert all(int(hit) <= int(total) for hit, total, _ in cells)
    kinds = {a["kind"] for n in names for a in injected[n]}
    assert kinds
    for kind in kinds:
        line = next(li for li in run.stdout.splitlines() if re.search(rf"\b{kind}\b", li))
        count = sum(a["kind"] == kind for n in names for a in injected[n])
        totals = {int(total) for _, total in re.findall(r"(\d+)/(\d+)", line)}
        assert totals == {count}


def test_shape_memory_on_the_bench_s_results(corpus: Path, tmp_path: Path) -> None:
    """bench/shape_memory.py reads bench/nab.py's vigil results and writes the memory's
    scores alone and added to vigil's (row by row the larger), both scored."""
    out = tmp_path / "results"
    _bench_nab(corpus, out, "--only", "devSteady,devMultivariate", timeout=300)
    command = [sys.executable, str(REPO / "bench" / "shape_memory.py"), "--data", str(corpus)]
    run = subprocess.run(
        [*command, "--results", str(out)], capture_output=True, text=True, timeout=120
    )
    assert run.returncode == 0, run.stderr
    names = [n for n in _names(corpus) if n.split("/")[0] in ("devSteady", "devMultivariate")]
    assert run.stdout.startswith(f"shape memory: {len(names)} files ({len(names) - 1} judged)")
    for detector in ("shapeMemory", "vigilShapeMemory"):
        assert sum(1 for line in run.stdout.splitlines() if line.startswith(detector + " ")) == 3
    for name in names:
        category, file = name.split("/")
        columns = {}
        for detector in ("vigil", "shapeMemory", "vigilShapeMemory"):
            with (out / detector / category / f"{detector}_{file}").open(newline="") as f:
                rows = list(csv.DictReader(f))
            columns[detector] = np.array([float(r["anomaly_score"]) for r in rows])
        assert all(len(c) == len(_times(corpus, name)) for c in columns.values())
        assert np.array_equal(
            columns["vigilShapeMemory"], np.maximum(columns["vigil"], columns["shapeMemory"])
        )
        judged = not file.startswith("server_")
        assert (columns["shapeMemory"].max() > 0.0) == judged  # a server's is not judged
