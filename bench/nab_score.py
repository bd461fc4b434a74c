"""Score a detector's NAB results folder with vigil's own NAB scorer.

Prints, per profile, the normalised score, the raw score and the global threshold that the
sweep over every distinct anomaly score chose, then the run time.

    python bench/nab_score.py RESULTS_DIR [--data ../shared/data/nab] [--detector NAME]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from agent.evaluation.nab_score import score_results_dir

REPO = Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results_dir", type=Path, help="<dir>/<category>/<detector>_<file>.csv")
    parser.add_argument(
        "--data",
        type=Path,
        default=REPO.parent / "shared" / "data" / "nab",
        help="NAB corpus root with labels/ and config/ (default: %(default)s)",
    )
    parser.add_argument("--detector", help="file-name prefix (default: the folder's name)")
    parser.add_argument(
        "--no-label-check",
        action="store_true",
        help="do not require the label column to agree with the windows",
    )
    args = parser.parse_args()
    start = time.perf_counter()
    results, files = score_results_dir(
        args.results_dir, args.data, args.detector, check_labels=not args.no_label_check
    )
    elapsed = time.perf_counter() - start
    detector = args.detector or args.results_dir.name
    rows = sum(f.n_rows for f in files)
    print(f"{detector}: {len(files)} files, {rows:,} rows")
    print(f"{'profile':<20} {'normalised':>10} {'raw':>10} {'threshold':>20}")
    for r in results.values():
        print(f"{r.profile:<20} {r.normalised:>10.2f} {r.score:>10.3f} {r.threshold:>20.12g}")
    print(f"time {elapsed:.2f} s")


if __name__ == "__main__":
    main()
