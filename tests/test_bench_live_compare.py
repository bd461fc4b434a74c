"""bench/live_compare.py: two checkouts in one process, each with its own modules, and a
clear refusal where the other checkout cannot be compared (the bench measures; nothing here
asserts a timing)."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "bench" / "live_compare.py"
SKIP = shutil.ignore_patterns("__pycache__", "*.pyc")


def _run(other: Path, *more: str) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, str(SCRIPT), "--against", str(other), "--warm-days", "1"]
    argv += ["--samples", "400", "--block", "100", *more]
    return subprocess.run(argv, capture_output=True, text=True, timeout=600, check=False)


def _checkout(where: Path, *, kernel: bool = True) -> Path:
    """A copy of this checkout's package and models (with its built kernel, or without)."""
    skip = SKIP if kernel else shutil.ignore_patterns("__pycache__", "*.pyc", "_ranks*.so")
    shutil.copytree(REPO / "agent", where / "agent", ignore=skip)
    shutil.copytree(REPO / "models", where / "models", ignore=SKIP)
    return where


def _system_streams(per_device: bool) -> int:
    """The most fields of a system sample among the 400 the bench feeds live (the generated
    laptop's second day), with one interface's and one disk's rates added if asked."""
    from agent import synthetic

    live = [s for s in synthetic.generate(2) if s.t >= synthetic.START_T + 86_400.0][:400]
    fields = max((set(s.data) for s in live if s.sensor == "system"), key=len)
    rates = {"net_rx_Bps", "net_tx_Bps", "disk_read_Bps", "disk_write_Bps"}
    return len(fields) + (len(fields & rates) if per_device else 0)


@pytest.mark.parametrize(("metered", "per_device"), [(False, False), (True, True)])
def test_both_trees_are_fed_the_same_samples_and_reported(
    tmp_path: Path, metered: bool, per_device: bool
) -> None:
    other = _checkout(tmp_path / "other")
    flags = (["--meter"] if metered else []) + (["--per-device"] if per_device else [])
    done = _run(other, *flags)
    assert done.returncode == 0, done.stderr
    how = "metered as the loop does" if metered else "unmetered"
    laptop = "with per-device rates" if per_device else "totals only"
    header = f"live samples after 1 days ({laptop}, {_system_streams(per_device)} system streams)"
    assert f"{header}: 400, in blocks of 100, {how}" in done.stdout
    each = dict(re.findall(r"^(this|other) tree .*?: ([0-9.]+) us a sample$", done.stdout, re.M))
    assert set(each) == {"this", "other"} and all(float(v) > 0.0 for v in each.values())
    assert f"other tree  {other}:" in done.stdout
    ratio = re.search(r"this / other: ([0-9.]+)", done.stdout)
    assert ratio is not None
    assert float(ratio.group(1)) == pytest.approx(float(each["this"]) / float(each["other"]), 0.01)


def test_a_checkout_without_its_kernel_or_package_is_refused(tmp_path: Path) -> None:
    slow = _run(_checkout(tmp_path / "slow", kernel=False))
    assert slow.returncode != 0 and "its kernel is not built" in slow.stderr
    (tmp_path / "empty").mkdir()
    empty = _run(tmp_path / "empty")
    assert empty.returncode != 0 and "no agent package there" in empty.stderr
