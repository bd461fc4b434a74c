"""Read NAB corpus files: a detector's results folder, the scoring windows and the profiles."""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

# The only columns a scorer may read from a results file (not S(t)_*, raw_score, ...).
COLUMNS = ("timestamp", "value", "anomaly_score", "label")
TIME_UNIT = "datetime64[us]"


@dataclass(frozen=True)
class CostProfile:
    """One NAB application profile: the weights of its cost matrix."""

    name: str
    tp_weight: float
    fp_weight: float
    fn_weight: float


@dataclass(frozen=True)
class ResultFile:
    """One data file's detector output: ``name`` is ``<category>/<file>.csv``."""

    name: str
    timestamps: npt.NDArray[np.datetime64]
    values: npt.NDArray[np.float64]
    scores: npt.NDArray[np.float64]
    labels: npt.NDArray[np.int8]


Windows = dict[str, list[tuple[np.datetime64, np.datetime64]]]


def load_profiles(path: Path) -> dict[str, CostProfile]:
    """The cost profiles of ``config/profiles.json``, by name."""
    raw = json.loads(path.read_text())
    out: dict[str, CostProfile] = {}
    for name, spec in raw.items():
        cm = spec["CostMatrix"]
        out[name] = CostProfile(
            name, float(cm["tpWeight"]), float(cm["fpWeight"]), float(cm["fnWeight"])
        )
    return out


def load_windows(path: Path) -> Windows:
    """The scoring windows of ``labels/combined_windows.json``: file -> [(start, end)]."""
    raw: dict[str, list[list[str]]] = json.loads(path.read_text())
    return {
        name: [(np.datetime64(a, "us"), np.datetime64(b, "us")) for a, b in wins]
        for name, wins in raw.items()
    }


def read_result_csv(path: Path, name: str) -> ResultFile:
    """One results CSV, reading only the four allowed columns (by header name)."""
    with path.open(newline="") as f:
        reader = csv.reader(f)
        header = next(reader)
        try:
            cols = [header.index(c) for c in COLUMNS]
        except ValueError as e:
            raise ValueError(f"{path}: missing one of the columns {COLUMNS}") from e
        rows = [[r[c] for c in cols] for r in reader if r]
    if not rows:
        raise ValueError(f"{path}: no rows")
    ts, val, score, label = zip(*rows, strict=True)
    scores = np.array(score, dtype=np.float64)
    if not np.isfinite(scores).all():
        raise ValueError(f"{path}: anomaly_score has NaN or infinite values")
    return ResultFile(
        name=name,
        timestamps=np.array(ts, dtype=TIME_UNIT),
        values=np.array(val, dtype=np.float64),
        scores=scores,
        labels=np.array(label, dtype=np.float64).astype(np.int8),
    )


def load_results(
    results_dir: Path, names: list[str], detector: str | None = None
) -> list[ResultFile]:
    """The results of ``detector`` (default: the folder's name) for the data files ``names``
    (``<category>/<file>.csv``), read from ``<results_dir>/<category>/<detector>_<file>.csv``."""
    det = detector or results_dir.name
    out: list[ResultFile] = []
    for name in sorted(names):
        category, file = name.split("/", 1)
        path = results_dir / category / f"{det}_{file}"
        if not path.is_file():
            raise FileNotFoundError(f"no results for {name}: {path}")
        out.append(read_result_csv(path, name))
    return out
