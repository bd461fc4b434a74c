"""bench/crash.py works: a few kill -9s of the daemon and of a replay, with every check run.

The daemon part must pass. The replay part must run to its report with no integrity failure,
lost row or duplicate. Two known faults of vigil may still show there, and only these:

- a resumed replay's events differ from the reference's: the rules stage's state (a numeric
  rule's ``for_s`` timer and re-arm, an event rule's cooldowns) is not committed with a
  replay's progress, so a replay killed while a rule's condition holds fires it again;
- a kill while a new database's schema is created leaves part of it, and every later run
  stops with "schema upgrade failed: ... already exists" (that round then differs too).

When they are fixed, tighten the replay case to exit 0 like the daemon's.
"""

from __future__ import annotations

import re
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
    assert done.returncode in (0, 1), done.stdout + done.stderr
    assert "Traceback" not in done.stderr, done.stderr
    assert "replay: kill -9 at a random moment" in done.stdout
    failures = [line for line in done.stdout.splitlines() if line.startswith("FAIL")]
    assert (done.returncode == 1) == bool(failures), done.stdout
    half_made = {
        m.group(1)
        for line in failures
        if (m := re.match(r"FAIL round (\d+): run \d+ exited 2 .*already exists", line))
    }
    for line in failures:
        found = re.match(r"FAIL round (\d+): ", line)
        assert found, done.stdout
        known = found.group(1) in half_made or re.match(r"FAIL round \d+: events \d+ vs", line)
        assert known, done.stdout
