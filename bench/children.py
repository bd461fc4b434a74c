"""vigil as a child process of a bench: launched as a user would, in an environment free of
the user's own settings, and never left running when the bench stops."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import IO

#: The children still running (``stop_children`` kills them on the way out).
RUNNING: set[subprocess.Popen[bytes]] = set()


def vigil_argv() -> list[str]:
    """``vigil`` beside this interpreter, as installed; else ``python -m agent``."""
    script = Path(sys.executable).with_name("vigil")
    return [str(script)] if script.exists() else [sys.executable, "-m", "agent"]


def clean_env(home: Path) -> dict[str, str]:
    """The environment without the user's vigil settings: HOME in the temporary folder."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("XDG_", "VIGIL_"))}
    env.update(HOME=str(home), LC_ALL="C.UTF-8")
    for k in ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID"):
        env.pop(k, None)
    return env


def launch(argv: list[str], env: dict[str, str], stderr: IO[bytes]) -> subprocess.Popen[bytes]:
    child = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=stderr)
    RUNNING.add(child)
    return child


def stop_children() -> None:
    for child in RUNNING:
        if child.returncode is None:
            child.kill()
            try:
                os.waitpid(child.pid, 0)
            except ChildProcessError:
                pass
    RUNNING.clear()
