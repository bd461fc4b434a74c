"""bench/crash.py works: a few kill -9s of the daemon and of a replay, with every check run.

Both parts must pass: integrity ok, no committed row lost or duplicated, and a resumed replay
ends with the database of one uninterrupted run (its events included, rules and all).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parent.parent / "bench" / "crash.py"


def crash(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(BENCH), "--kills", "3", "--seed", "3", *argv],
        capture_output=True,
        text=True,
        timeout=150,
    )


def test_daemon_survives_kills() -> None:
    done = crash("--daemon-only", "--daemon-delay", "1.0", "3.0")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "vigil under kill -9: checks" in done.stdout
    assert "daemon: kill -9 at a random moment" in done.stdout


def test_replay_resumes_after_kills() -> None:
    done = crash("--replay-only", "--days", "1")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "replay: kill -9 at a random moment" in done.stdout
    assert not [line for line in done.stdout.splitlines() if line.startswith("FAIL")]
