"""RAPL through powercap sysfs on hand-built trees (tests/data/powercap/README.md), and the
machine's busy CPU seconds from a /proc/stat fixture and from the real /proc/stat."""

from __future__ import annotations

import os
import shutil
import stat
import tempfile
import time
import traceback
import warnings
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import DATA

from agent.errors import SensorReadError
from agent.power.rapl import NodeCpu, find_rapl, node_busy_cpu_s, parse_proc_stat

LAYOUTS = DATA / "powercap"
PROC_STAT = DATA / "proc" / "stat"
TICKS = os.sysconf("SC_CLK_TCK")


def _copy(layout: str, tmp_path: Path) -> Path:
    root = tmp_path / "powercap"
    shutil.copytree(LAYOUTS / layout, root)
    return root


def _add_uj(counter_file: Path, uj: int) -> None:
    """Advance a zone's counter in place (same inode, as sysfs does)."""
    counter_file.write_text(f"{int(counter_file.read_text()) + uj}\n")


def test_laptop_uses_psys(tmp_path: Path) -> None:
    root = _copy("intel_laptop", tmp_path)
    found = find_rapl(root)
    assert found.counter is not None, found.reason
    with found.counter as counter:
        assert (counter.label, found.reason) == ("RAPL psys", "")
        assert counter.zones == (root / "intel-rapl:1",)
        assert counter.read_j() == 0.0  # since the counter was made
        _add_uj(root / "intel-rapl:1" / "energy_uj", 7_250_000)
        _add_uj(root / "intel-rapl:0" / "energy_uj", 5_000_000)  # inside psys: not added
        assert counter.read_j() == 7.25
        _add_uj(root / "intel-rapl:1" / "energy_uj", 1_500_000)
        assert counter.read_j() == 8.75


def test_laptop_without_psys_sums_package_and_dram(tmp_path: Path) -> None:
    root = _copy("intel_laptop", tmp_path)
    shutil.rmtree(root / "intel-rapl:1")
    found = find_rapl(root)
    assert found.counter is not None, found.reason
    with found.counter as counter:
        assert counter.label == "RAPL package+dram"
        package = root / "intel-rapl:0"
        assert counter.zones == (package, package / "intel-rapl:0:2")  # dram; no mmio copy
        _add_uj(package / "energy_uj", 3_000_000)
        _add_uj(package / "intel-rapl:0:2" / "energy_uj", 400_000)
        _add_uj(package / "intel-rapl:0:0" / "energy_uj", 2_000_000)  # core: part of package
        _add_uj(package / "intel-rapl:0:1" / "energy_uj", 100_000)  # uncore: part of package
        _add_uj(root / "intel-rapl-mmio:0" / "energy_uj", 3_000_000)  # package-0 again
        assert counter.read_j() == 3.4


def test_server_sums_both_packages(tmp_path: Path) -> None:
    root = _copy("amd_server", tmp_path)
    found = find_rapl(root)
    assert found.counter is not None, found.reason
    with found.counter as counter:
        assert counter.label == "RAPL package"  # no dram zones on this AMD server
        assert counter.zones == (root / "intel-rapl:0", root / "intel-rapl:1")
        _add_uj(root / "intel-rapl:0" / "energy_uj", 60_000_000)
        _add_uj(root / "intel-rapl:1" / "energy_uj", 55_500_000)
        _add_uj(root / "intel-rapl:1" / "intel-rapl:1:0" / "energy_uj", 9_000_000)  # core
        assert counter.read_j() == 115.5


def test_a_counter_that_wraps_keeps_counting(tmp_path: Path) -> None:
    root = _copy("amd_server", tmp_path)
    energy = root / "intel-rapl:0" / "energy_uj"
    range_uj = int((root / "intel-rapl:0" / "max_energy_range_uj").read_text())
    start = int(energy.read_text())
    found = find_rapl(root)
    assert found.counter is not None, found.reason
    with found.counter as counter:
        energy.write_text(f"{range_uj - 1_000_000}\n")  # near the top of the range
        assert counter.read_j() == pytest.approx((range_uj - 1_000_000 - start) / 1e6)
        energy.write_text("2000000\n")  # wrapped past the range: 1 J + 2 J more
        assert counter.read_j() == pytest.approx((range_uj + 2_000_000 - start) / 1e6)
        assert counter.read_j() == pytest.approx((range_uj + 2_000_000 - start) / 1e6)


def test_a_closed_file_is_reopened_and_a_vanished_one_fails(tmp_path: Path) -> None:
    root = _copy("intel_laptop", tmp_path)
    found = find_rapl(root)
    assert found.counter is not None, found.reason
    counter = found.counter
    counter.close()  # as if the descriptor had gone bad: the next read opens the file again
    _add_uj(root / "intel-rapl:1" / "energy_uj", 1_000_000)
    assert counter.read_j() == 1.0
    counter.close()
    (root / "intel-rapl:1" / "energy_uj").unlink()  # the zone is gone (module unloaded)
    with pytest.raises(SensorReadError, match="intel-rapl:1/energy_uj"):
        counter.read_j()


def test_no_tree_no_zones_no_packages(tmp_path: Path) -> None:
    found = find_rapl(tmp_path / "absent")
    assert found.counter is None
    assert "does not exist" in found.reason
    (tmp_path / "empty").mkdir()
    assert find_rapl(tmp_path / "empty").reason.startswith("no RAPL zones in ")
    root = _copy("intel_laptop", tmp_path)
    shutil.rmtree(root / "intel-rapl:1")
    (root / "intel-rapl:0" / "name").write_text("dram\n")  # nothing named package or psys
    found = find_rapl(root)
    assert found.counter is None
    assert found.reason.startswith("no RAPL package or psys zone")


def test_an_unreadable_counter_gives_a_reason(tmp_path: Path) -> None:
    """chmod 000 denies an ordinary user; root reads through it, so there the counter is
    replaced by a directory, whose read fails with another OSError the same way."""
    root = _copy("intel_laptop", tmp_path)
    denied = root / "intel-rapl:1" / "energy_uj"
    denied.chmod(0)
    if os.access(denied, os.R_OK):
        denied.unlink()
        denied.mkdir()
    try:
        found = find_rapl(root)
        assert found.counter is None
        assert str(denied) in found.reason
    finally:
        denied.chmod(0o755)


def _as_nobody(task: Callable[[], str]) -> str:
    """``task``'s answer, computed in a forked child that dropped root for user nobody."""
    read_end, write_end = os.pipe()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # fork with threads (3.12+)
        pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        try:
            os.close(read_end)
            os.setgroups([])
            os.setgid(65534)
            os.setuid(65534)
            answer = task()
        except BaseException:
            answer = "child failed: " + traceback.format_exc()
        os.write(write_end, answer.encode())
        os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as pipe:
        answer = pipe.read().decode()
    os.waitpid(pid, 0)
    return answer


def test_a_root_only_counter_names_the_fix(tmp_path: Path) -> None:
    """The kernel's 0400 energy_uj (CVE-2020-8694) read by an ordinary user. As root the
    search runs in a child that has dropped to user nobody, so the denial is the kernel's."""
    if os.geteuid() != 0:
        root = _copy("intel_laptop", tmp_path)
        (root / "intel-rapl:1" / "energy_uj").chmod(0)  # the file is this user's: 0400 won't do
        reason = find_rapl(root).reason
    else:
        # pytest's tmp_path is private to root; nobody needs a path it may walk.
        base = Path(tempfile.mkdtemp())
        try:
            base.chmod(0o755)
            if any(not p.stat().st_mode & stat.S_IXOTH for p in base.parents):
                pytest.skip(f"user nobody cannot reach {base}: cannot drop root here")
            root = base / "powercap"
            shutil.copytree(LAYOUTS / "intel_laptop", root)
            (root / "intel-rapl:1" / "energy_uj").chmod(0o400)  # as the kernel has it
            reason = _as_nobody(lambda: find_rapl(root).reason)
        finally:
            shutil.rmtree(base)
    assert reason.startswith(f"{root / 'intel-rapl:1' / 'energy_uj'} is readable only by root")
    assert "udev rule" in reason


def test_proc_stat_fixture() -> None:
    text = PROC_STAT.read_text()
    assert parse_proc_stat(text) == 6000  # 4705 + 150 + 1120 + 0 + 25 + 0 (README.md)
    assert node_busy_cpu_s(PROC_STAT) == 6000 / TICKS
    with NodeCpu(PROC_STAT) as node:
        assert node.read() == 6000 / TICKS
        assert node.read() == 6000 / TICKS


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("cpu  10 20 30 40\n", 60),  # an old kernel: no iowait, irq, ... columns
        ("cpu  1 2 3 4 5 6 7 8\n", 1 + 2 + 3 + 6 + 7 + 8),
        ("intr 1 2\ncpu  1 1 1 1 1 1 1 1 1 1\n", 6),  # found wherever it is
        ("cpu0 1 2 3 4\n", None),  # only per-CPU lines: not the total
        ("cpu  1 2 x 4\n", None),
        ("cpu  1 2\n", None),
        ("", None),
    ],
)
def test_parse_proc_stat(text: str, expected: int | None) -> None:
    assert parse_proc_stat(text) == expected


def test_denied_or_missing_proc_stat_gives_none(tmp_path: Path) -> None:
    # Android denies /proc/stat to apps; a directory fails to read the same way for root.
    assert node_busy_cpu_s(tmp_path / "absent") is None
    (tmp_path / "dir").mkdir()
    assert node_busy_cpu_s(tmp_path / "dir") is None
    with NodeCpu(tmp_path / "absent") as node:
        assert node.read() is None
        shutil.copy(PROC_STAT, tmp_path / "absent")
        assert node.read() == 6000 / TICKS  # opened once it appears


def test_real_proc_stat_counts_burnt_cpu() -> None:
    if node_busy_cpu_s() is None:
        pytest.skip("/proc/stat is not readable here (Android denies it)")
    with NodeCpu() as node:
        before, node_before = time.process_time(), node.read()
        x = 0
        while time.process_time() - before < 0.3:
            x ^= x * 3 + 1
        burnt, node_after = time.process_time() - before, node.read()
    assert node_before is not None and node_after is not None
    # The machine was busy at least while this process burnt, less the rounding of the
    # columns to whole ticks (the kernel samples and rounds each column on its own).
    assert node_after - node_before >= burnt - 5 / TICKS
    assert node_busy_cpu_s() is not None
