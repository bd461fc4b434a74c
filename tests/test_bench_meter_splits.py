"""bench/meter_splits.py: both meters charge the same stages of the same live samples (the
bench measures; nothing here asserts a timing)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "bench" / "meter_splits.py"


def test_each_stage_is_charged_under_both_meters() -> None:
    argv = [sys.executable, str(SCRIPT), "--samples", "400", "--block", "100", "--warm-days", "1"]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stderr
    assert "live samples after 1 days: 400, in blocks of 100" in done.stdout
    rows = dict(
        (name, (float(laps), float(splits)))
        for name, laps, splits in re.findall(
            r"^(\w+) +(-?[0-9.]+) +(-?[0-9.]+)$", done.stdout, re.M
        )
    )
    for stage in ("features", "anomaly", "triggers", "source", "storage", "metering", "total"):
        assert stage in rows, done.stdout
    assert all(laps > 0.0 and splits > 0.0 for laps, splits in (rows["anomaly"], rows["total"]))
