"""vigil on the Numenta Anomaly Benchmark: NAB results folders for two detectors, then scored.

Each NAB data file (sorted by ``<category>/<file>.csv``) is read with the ``nab`` importer's
reader and made ready the way ``vigil import nab`` does (``finish``: sorted by time, exact
duplicates dropped, every sample through the gate), then fed to a fresh ``Pipeline`` per file
built as the daemon builds it (the shipped tiny model), with no database. Two detectors are
written in NAB's results layout, ``OUT/<detector>/<category>/<detector>_<file>.csv`` with
``timestamp,value,anomaly_score,label``:

* ``vigil``: the full detector's score of the file's stream (``Step.scores``);
* ``vigilTiny``: the tiny model's score alone (``Step.tiny``);
* ``windowedGaussian``: the baseline NAB publishes, written here from its description
  (``windowed_gaussian``), so a corpus that is not NAB has its reference in the same run; on
  NAB it reproduces the published 39.65 / 20.87 / 47.41. A server's file: the largest of its
  metrics' scores.

A row the pipeline gave no score for (the model's warm-up, a value the gate refused) gets 0.0.

The results have exactly one row per row of the NAB file, in the file's order (NAB aligns
results and windows by row), so the rows are read here from the CSV and the pipeline's
scores mapped onto them by (timestamp, value). Duplicates: an exact duplicate row (same
timestamp and value; e.g. ``ec2_disk_write_bytes_1ef3de`` repeats one row 12 times) was fed
once, and every copy gets that one sample's score. Rows that share a timestamp with different
values (a local-time hour written twice in ``machine_temperature_system_failure``) are all fed,
in time order (stable: file order within one instant), and each gets its own score. ``label``
is 1 for rows whose timestamp lies inside a window of ``labels/combined_windows.json``.

Then both detectors are scored with vigil's NAB scorer (one global threshold per profile) and
a table printed: normalised score and threshold per detector and profile, the pipeline's CPU
time per row (``time.thread_time`` around ``Pipeline.feed``) and the wall time. With
``--files N`` the scores cover only those files' windows: not comparable to NAB's table.
With ``--found``, two more tables say what each detector found at its standard threshold:
per category the windows it hit and the rows it flagged outside every window, and per
anomaly kind the windows it hit (a corpus of ``bench/dev_corpus.py``, whose
``labels/dev_anomalies.json`` names what was injected; NAB has no kinds).

    python bench/nab.py --data ../shared/data/nab --out DIR [--files N] [--config vigil.toml]
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import json
import math
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from model_card import update_detector

from agent.config import Config, load
from agent.evaluation.nab_io import Windows, load_profiles, load_results, load_windows
from agent.evaluation.nab_score import (
    PreparedFile,
    ProfileResult,
    labels_match,
    optimise,
    prepare_file,
    score_results_dir,
)
from agent.gate import check_sample
from agent.importers.common import ImportCounts, ImportOptions, finish
from agent.importers.nab import HEADER, read_nab
from agent.pipeline import Pipeline, Step
from agent.runtime.replay import chunked
from agent.runtime.setup import build_pipeline
from agent.samples import Sample

REPO = Path(__file__).resolve().parent.parent
DETECTORS = ("vigil", "vigilTiny", "windowedGaussian")  # Step.scores, Step.tiny, baseline
#: The windowed Gaussian's window and the step it slides by once full (NAB's settings).
GAUSS_WINDOW, GAUSS_STEP = 6400, 100
NAB_TIME = "%Y-%m-%d %H:%M:%S"


@dataclass
class FileRun:
    """One NAB file through the pipeline: its rows, the samples fed and their CPU time."""

    name: str  # <category>/<file>.csv
    rows: int
    samples: int
    cpu_s: float


def _scores(step: Step, stream: str) -> tuple[float, float]:
    """(full, tiny) scores of ``stream`` in a one-stream sample's step; 0.0 when missing."""
    return step.scores.get(stream, 0.0), step.tiny.get(stream, 0.0)


def windowed_gaussian(values: npt.ArrayLike) -> list[float]:
    """NAB's windowed Gaussian baseline: each value's two-sided tail against the mean and
    standard deviation of the values before it, ``1 - Q(|z|)`` (0 for the first); the window
    takes every value until it holds ``GAUSS_WINDOW``, then slides by ``GAUSS_STEP`` values
    at a time (its statistics change only then). Rounded to 12 decimals as NAB writes its
    results: a score within 5e-13 of 1 is 1, the threshold the baseline's optimum sits at."""
    x = np.asarray(values, dtype=np.float64)
    scores = [0.0] * len(x)
    mean, std = 0.0, 1e-6
    end = 0  # the window is x[max(0, end - GAUSS_WINDOW):end]
    for i in range(len(x)):
        if end:
            tail = 0.5 * math.erfc(abs(x[i] - mean) / std / math.sqrt(2.0))
            scores[i] = round(1.0 - tail, 12)
        if i + 1 <= GAUSS_WINDOW or (i + 1 - GAUSS_WINDOW) % GAUSS_STEP == 0:
            end = i + 1
            window = x[max(0, end - GAUSS_WINDOW) : end]
            mean, std = float(np.mean(window)), float(np.std(window)) or 1e-6
    return scores


def _new_pipeline(config: Config) -> Pipeline:
    """A fresh pipeline, built as the daemon and ``vigil replay`` build theirs."""
    return build_pipeline(config, keep_scores=True)


def data_files(data_dir: Path) -> list[str]:
    """The corpus' data files as ``<category>/<file>.csv``, sorted."""
    root = data_dir / "data"
    names = sorted(p.relative_to(root).as_posix() for p in root.glob("*/*.csv"))
    if not names:
        raise SystemExit(f"no NAB data files under {root}")
    return names


def read_file(path: Path) -> tuple[list[str], list[list[str]]]:
    """The file's column names (NAB's ``timestamp,value``, or ``timestamp`` and one column per
    metric: the development corpus' servers) and every data row's cells, stripped, in file
    order."""
    with path.open(encoding="utf-8-sig", newline="") as f:
        reader = csv.reader(f)
        header = [c.strip() for c in next(reader, [])]
        if header != HEADER and (len(header) < 3 or header[0] != "timestamp"):
            raise SystemExit(f"{path}: not a NAB file: header {header!r}")
        return header, [[c.strip() for c in r] for r in reader if r]


def _when(text: str) -> datetime:
    """A NAB time as the importer reads it: naive, taken as UTC."""
    when = datetime.fromisoformat(text)
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


def _feed(samples: list[Sample], config: Config) -> tuple[list[Step], float]:
    """The replay path: chunks of samples through a fresh pipeline; its steps and CPU time."""
    pipeline = _new_pipeline(config)
    steps: list[Step] = []
    cpu = 0.0
    for chunk in chunked(samples):
        start = time.thread_time()
        steps += pipeline.feed_chunk(chunk)
        cpu += time.thread_time() - start
    return steps, cpu


def _run_stream(
    path: Path, rows: list[tuple[str, str]], config: Config
) -> tuple[list[tuple[float, float]], int, float]:
    """A NAB file of one value a row (``rows``: its (timestamp, value) texts), imported as
    ``vigil import nab`` does: each row's (full, tiny) scores, the samples fed and their CPU
    time."""
    stream = path.name.removesuffix(".csv")
    counts = ImportCounts()
    samples = finish(read_nab([path], ImportOptions(), counts, lambda n: None), counts)
    steps, cpu = _feed(samples, config)
    by_key: dict[tuple[float, float], tuple[float, float]] = {}
    for sample, step in zip(samples, steps, strict=True):
        value = sample.data["value"]
        assert isinstance(value, float)
        by_key[(sample.t, value)] = _scores(step, stream)
    scored = [by_key.get(_key(ts, v), (0.0, 0.0)) for ts, v in rows]
    return scored, len(samples), cpu


def _run_source(
    names: list[str], stamps: list[str], values: npt.NDArray[np.float64], config: Config
) -> tuple[list[tuple[float, float]], int, float]:
    """A file of several metrics a row (a server of the development corpus; ``names`` its
    metrics, ``stamps`` its rows' times, ``values`` its cells ``[row, metric]``): each row one
    ``system`` sample with a field per metric, scored by the source's combined score
    (``Step.node``) and the model's largest score among the metrics (``Step.tiny``)."""
    samples = [
        check_sample("system", _when(ts).timestamp(), dict(zip(names, row, strict=True)))
        for ts, row in zip(stamps, values.tolist(), strict=True)
    ]
    steps, cpu = _feed(samples, config)
    scored = [(s.node or 0.0, max(s.tiny.values(), default=0.0)) for s in steps]
    return scored, len(samples), cpu


def run_file(data_dir: Path, name: str, config: Config, out: Path, windows: Windows) -> FileRun:
    """Feed one file through a fresh pipeline and write each detector's results file."""
    path = data_dir / "data" / name
    header, table = read_file(path)
    rows = [(r[0], r[1]) for r in table]  # a server's: its first metric as the value
    values = np.array([[float(c) for c in r[1:]] for r in table], dtype=np.float64)
    if header == HEADER:
        scored, fed, cpu = _run_stream(path, rows, config)
    else:
        scored, fed, cpu = _run_source(header[1:], [r[0] for r in table], values, config)
    baseline = np.max([windowed_gaussian(c) for c in values.T], axis=0).tolist()
    cells = [(*pair, b) for pair, b in zip(scored, baseline, strict=True)]
    stamps = np.array([_when(ts).replace(tzinfo=None) for ts, _ in rows], dtype="datetime64[us]")
    label = np.zeros(len(rows), dtype=bool)
    for a, b in windows.get(name, []):
        label |= (stamps >= a) & (stamps <= b)
    category, file = name.split("/", 1)
    for k, detector in enumerate(DETECTORS):
        target = out / detector / category / f"{detector}_{file}"
        target.parent.mkdir(parents=True, exist_ok=True)
        with target.open("w", encoding="utf-8", newline="") as f:
            writer = csv.writer(f, lineterminator="\n")
            writer.writerow(["timestamp", "value", "anomaly_score", "label"])
            for (ts, v), row, inside in zip(rows, cells, label, strict=True):
                writer.writerow([_when(ts).strftime(NAB_TIME), v, repr(row[k]), int(inside)])
    return FileRun(name, len(rows), fed, cpu)


def _key(ts: str, value: str) -> tuple[float, float]:
    """The (t, value) a row became in the importer; NaN (never matched) if it could not."""
    try:
        return _when(ts).timestamp(), float(value)
    except ValueError:
        return float("nan"), float("nan")


Scores = dict[str, dict[str, ProfileResult] | None]


def score(
    out: Path, data_dir: Path, names: list[str], detectors: tuple[str, ...] = DETECTORS
) -> tuple[Scores, dict[str, list[PreparedFile]]]:
    """Each detector's corpus optimum per profile (``None``: no labelled window in ``names``),
    and its files as scored."""
    windows = load_windows(data_dir / "labels" / "combined_windows.json")
    profiles = load_profiles(data_dir / "config" / "profiles.json")
    scores: Scores = {}
    files: dict[str, list[PreparedFile]] = {}
    for detector in detectors:
        if sorted(windows) == names:  # the whole corpus: exactly bench/nab_score.py's path
            scores[detector], files[detector] = score_results_dir(
                out / detector, data_dir, detector
            )
            continue
        results = load_results(out / detector, names, detector)
        prepared = [prepare_file(r, windows) for r in results]
        bad = [r.name for r, p in zip(results, prepared, strict=True) if not labels_match(r, p)]
        if bad:
            raise SystemExit(f"{detector}: label column disagrees with the windows in {bad}")
        has_windows = any(len(p.scorable_windows) for p in prepared)
        scores[detector] = optimise(prepared, profiles) if has_windows else None
        files[detector] = prepared
    return scores, files


@dataclass
class Found:
    """What a detector found in some files: the windows it hit of those scored, and the
    rows it flagged outside every window."""

    hit: int = 0
    windows: int = 0
    false_rows: int = 0


def found(
    files: list[PreparedFile],
    threshold: float,
    injected: Mapping[str, list[Mapping[str, Any]]],
) -> tuple[dict[str, Found], dict[str, Found]]:
    """By category, and by the kind of anomaly ``injected`` (``labels/dev_anomalies.json``:
    per file, each anomaly's ``kind`` and onset ``row``), what a detector finds when every
    scored row at or above ``threshold`` is a detection (NAB's rule)."""
    by_category: dict[str, Found] = {}
    by_kind: dict[str, Found] = {}
    for f in files:
        flagged = f.scores >= threshold
        hit = np.zeros(f.n_windows, dtype=np.bool_)
        hit[f.window[flagged & (f.window >= 0)]] = True
        category = by_category.setdefault(f.name.split("/", 1)[0], Found())
        category.hit += int(hit[f.scorable_windows].sum())
        category.windows += len(f.scorable_windows)
        category.false_rows += int((flagged & (f.window < 0)).sum())
        for anomaly in injected.get(f.name, []):
            at = int(anomaly["row"]) - f.probation
            if 0 <= at < len(f.window) and f.window[at] >= 0:
                kind = by_kind.setdefault(str(anomaly["kind"]), Found())
                kind.windows += 1
                kind.hit += int(hit[f.window[at]])
    return by_category, by_kind


def print_found(scores: Scores, files: dict[str, list[PreparedFile]], data_dir: Path) -> None:
    """``found`` of each scored detector at its standard threshold, as two tables."""
    from rich.console import Console
    from rich.table import Table

    manifest = data_dir / "labels" / "dev_anomalies.json"
    injected = json.loads(manifest.read_text()) if manifest.exists() else {}
    tables = {
        detector: found(files[detector], by_profile["standard"].threshold, injected)
        for detector, by_profile in scores.items()
        if by_profile is not None
    }
    detectors = list(tables)
    console = Console(width=200)
    titles = (
        ("category", "windows hit (rows flagged outside every window)"),
        ("anomaly kind", "windows hit"),
    )
    for i, (key_name, what) in enumerate(titles):
        keys = sorted({key for detector in detectors for key in tables[detector][i]})
        if not keys:
            continue
        table = Table(title=f"{what} at each detector's standard threshold, by {key_name}")
        table.add_column(key_name)
        for detector in detectors:
            table.add_column(detector, justify="right")
        for key in keys:
            cells = []
            for detector in detectors:
                f = tables[detector][i].get(key, Found())
                false = f" ({f.false_rows})" if i == 0 else ""
                cells.append(f"{f.hit}/{f.windows}{false}")
            table.add_row(key, *cells)
        console.print(table)


@contextmanager
def _progress(total: int) -> Iterator[Callable[[FileRun], None]]:
    """A rich progress bar on a terminal, else one plain line per file (stderr)."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    console = Console(stderr=True)
    if not console.is_terminal:
        done = 0

        def line(run: FileRun) -> None:
            nonlocal done
            done += 1
            cost = run.cpu_s / max(run.rows, 1) * 1e6
            print(
                f"[{done}/{total}] {run.name}: {run.rows} rows, {run.samples} samples, "
                f"{cost:.1f} us/row",
                file=sys.stderr,
                flush=True,
            )

        yield line
        return
    columns = (TextColumn("nab"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[f]}"))
    with Progress(*columns, console=console, transient=True) as progress:
        task = progress.add_task("nab", total=total, f="")
        yield lambda run: progress.update(task, advance=1, f=run.name)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--data",
        type=Path,
        default=REPO.parent / "shared" / "data" / "nab",
        help="NAB corpus root with data/, labels/ and config/ (default: %(default)s)",
    )
    parser.add_argument("--out", type=Path, required=True, help="results folder to write")
    parser.add_argument("--files", type=int, metavar="N", help="only the first N files (sorted)")
    parser.add_argument(
        "--only",
        metavar="CATEGORIES",
        help="only these categories, comma-separated (e.g. devContext,devMultivariate)",
    )
    parser.add_argument("--config", type=Path, help="a vigil config (default: the defaults)")
    parser.add_argument(
        "--found",
        action="store_true",
        help="also what each detector found at its standard threshold, by category and kind",
    )
    parser.add_argument(
        "--card",
        type=Path,
        help="write the scores and cost into this model card's detector.nab (whole corpus only)",
    )
    args = parser.parse_args(argv)
    wall = time.perf_counter()
    # NAB's times carry no zone and are read as UTC: the hours are UTC's on every machine.
    config = load(args.config, missing_ok=False) if args.config else _utc(Config())
    names = data_files(args.data)
    if args.only:
        wanted = set(args.only.split(","))
        names = [n for n in names if n.split("/", 1)[0] in wanted]
        if not names:
            raise SystemExit(f"no data files in the categories {args.only}")
    names = names[: args.files]
    windows = load_windows(args.data / "labels" / "combined_windows.json")
    runs: list[FileRun] = []
    with _progress(len(names)) as report:
        for name in names:
            runs.append(run_file(args.data, name, config, args.out, windows))
            report(runs[-1])
    results, scored = score(args.out, args.data, names)
    rows = sum(r.rows for r in runs)
    cpu = sum(r.cpu_s for r in runs)
    print(f"NAB: {len(runs)} files, {rows:,} rows, {sum(r.samples for r in runs):,} samples fed")
    print(f"{'detector':<16} {'profile':<20} {'normalised':>10} {'raw':>10} {'threshold':>14}")
    for detector, by_profile in results.items():
        if by_profile is None:
            print(f"{detector:<16} (no labelled windows in these files: nothing to score)")
            continue
        for r in by_profile.values():
            print(
                f"{detector:<16} {r.profile:<20} {r.normalised:>10.2f} {r.score:>10.3f} "
                f"{r.threshold:>14.8g}"
            )
    print(f"pipeline CPU {cpu:.2f} s = {cpu / max(rows, 1) * 1e6:.1f} us per row")
    print(f"wall time {time.perf_counter() - wall:.1f} s")
    if args.found:
        print_found(results, scored, args.data)
    if args.card:
        if args.files or args.only or args.config or any(r is None for r in results.values()):
            raise SystemExit("--card: only for the whole corpus with the default config")
        write_card(args.card, results, cpu / max(rows, 1) * 1e6)
    return 0


def _utc(config: Config) -> Config:
    return dataclasses.replace(config, anomaly=dataclasses.replace(config.anomaly, timezone="UTC"))


def write_card(card: Path, results: Scores, cost_us: float) -> None:
    """The model card's ``detector.nab``: each detector's normalised score per profile and
    the pipeline's CPU per row on the batched replay path (this run, this machine)."""
    scores = {
        name: {r.profile: round(r.normalised, 2) for r in by_profile.values()}
        for name, by_profile in results.items()
        if by_profile is not None
    }
    update_detector(
        card,
        "nab",
        {
            "command": "python bench/nab.py --data NAB --out DIR --card models/tiny.json",
            "scorer": "agent/evaluation/nab_score.py (reproduces NAB's reference figures)",
            "scores": scores,
            "cost_us_per_row_batched": round(cost_us, 1),
        },
    )


if __name__ == "__main__":
    sys.exit(main())
