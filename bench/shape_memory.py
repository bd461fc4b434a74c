"""A memory of each stream's own shapes, tried on a detector's NAB results before it is built
into the always-on tier: what it finds alone, and added to vigil's scores.

For one stream at a time (a file of one value a row), in row order: the window of its last
``--width`` values, in units of the range the stream has shown before it, is compared with
every window in the stream's memory (the mean absolute difference); the nearest one's
distance is the window's *novelty*. A window joins the memory only when its novelty is more
than ``--vigilance`` (the oldest leaves past ``--size`` windows): a small memory of what this
stream does, kept the way adaptive-resonance detectors keep their categories. Each novelty
is ranked (upper tail) among the stream's last 1,000 as the tier ranks its judgements
(``agent.detect.novelty``), and scored like them (``to_score``). A file of several metrics a
row is not judged: its memory scores 0 and vigil's score stays.

Reads ``OUT/vigil/`` (written by ``bench/nab.py --out OUT``), writes ``OUT/shapeMemory/`` and
``OUT/vigilShapeMemory/`` (row by row the larger of vigil's score and the memory's) in NAB's
results layout, and scores both with vigil's NAB scorer (``bench/nab_log.md`` has the runs):

    python bench/shape_memory.py --data DIR --results OUT [--vigilance V] [--size K] [--width D]
"""

from __future__ import annotations

import argparse
import csv
import sys
import time
from pathlib import Path

import numpy as np
import numpy.typing as npt
from nab import data_files, read_file, score

from agent.detect.anomaly.scoring import StreamState, memory_novelties, to_score
from agent.detect.novelty import ReferenceHistory
from agent.importers.nab import HEADER

F64 = npt.NDArray[np.float64]
REPO = Path(__file__).resolve().parent.parent
#: Novelties a stream's ranks are taken among (every novelty an entry).
HISTORY_N = 1000
DETECTORS = ("shapeMemory", "vigilShapeMemory")


def novelties(values: F64, width: int, vigilance: float, size: int) -> tuple[F64, int]:
    """Each row's novelty (NaN until the stream has a range and a memory), and the largest
    number of windows the memory held: the tier's own ``memory_novelties`` on a memory of
    ``size`` windows of ``width``."""
    state = StreamState(width, *(ReferenceHistory(1) for _ in range(3)))
    state.bank, state.bank_sums = np.zeros((size, width)), np.zeros(size)
    found = memory_novelties(state, values, vigilance)
    return found, int(state.bank_meta[0])  # the memory never shrinks


def memory_scores(values: F64, width: int, vigilance: float, size: int) -> tuple[F64, int]:
    """Each row's score from its novelty's rank (0 where it has none), and the memory's size."""
    found, most = novelties(values, width, vigilance, size)
    history = ReferenceHistory(HISTORY_N)
    scores = np.zeros(len(values))
    for i, novelty in enumerate(found.tolist()):
        if novelty == novelty:  # not NaN
            scores[i] = to_score(history.surprise(novelty, upper_only=True))
            history.add(novelty)
    return scores, most


def _read(path: Path) -> tuple[list[list[str]], F64]:
    """A results file's rows (timestamp, value, score, label as written) and its scores."""
    with path.open(newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))[1:]
    return rows, np.array([float(r[2]) for r in rows])


def _write(path: Path, rows: list[list[str]], scores: F64) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(["timestamp", "value", "anomaly_score", "label"])
        for r, s in zip(rows, scores.tolist(), strict=True):
            writer.writerow([r[0], r[1], repr(s), r[3]])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True, help="the corpus bench/nab.py ran on")
    parser.add_argument("--results", type=Path, required=True, help="bench/nab.py's --out")
    parser.add_argument("--vigilance", type=float, default=0.05, help="(default: %(default)s)")
    parser.add_argument("--size", type=int, default=256, help="windows kept (default: %(default)s)")
    parser.add_argument("--width", type=int, default=8, help="window length (default: %(default)s)")
    args = parser.parse_args(argv)
    start = time.process_time()
    done = [
        n for n in data_files(args.data) if (args.results / "vigil" / _file("vigil", n)).exists()
    ]
    if not done:
        raise SystemExit(f"no vigil results in {args.results / 'vigil'}: run bench/nab.py first")
    sizes = []
    for name in done:
        rows, vigil = _read(args.results / "vigil" / _file("vigil", name))
        header, _ = read_file(args.data / "data" / name)
        memory = np.zeros(len(rows))
        if header == HEADER:
            values = np.array([float(r[1]) for r in rows])
            memory, most = memory_scores(values, args.width, args.vigilance, args.size)
            sizes.append(most)
        _write(args.results / DETECTORS[0] / _file(DETECTORS[0], name), rows, memory)
        _write(
            args.results / DETECTORS[1] / _file(DETECTORS[1], name), rows, np.maximum(vigil, memory)
        )
    cpu = time.process_time() - start
    print(
        f"shape memory: {len(done)} files ({len(sizes)} judged), vigilance {args.vigilance}, "
        f"{args.size} windows of {args.width} at most; windows held per file: median "
        f"{int(np.median(sizes)) if sizes else 0}, largest {max(sizes, default=0)}"
    )
    print(f"{'detector':<18} {'profile':<20} {'normalised':>10} {'threshold':>14}")
    scores, _ = score(args.results, args.data, done, DETECTORS)
    for detector, results in scores.items():
        if results is None:
            print(f"{detector:<18} (no labelled windows in these files: nothing to score)")
            continue
        for r in results.values():
            print(f"{detector:<18} {r.profile:<20} {r.normalised:>10.2f} {r.threshold:>14.8g}")
    print(f"CPU {cpu:.1f} s")
    return 0


def _file(detector: str, name: str) -> Path:
    category, file = name.split("/", 1)
    return Path(category) / f"{detector}_{file}"


if __name__ == "__main__":
    sys.exit(main())
