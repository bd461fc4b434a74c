"""Running a Termux:API command (``termux-battery-status``, ...) with a hard timeout.

Termux:API commands talk to an Android app and can hang for ever when the app is missing,
asleep or waiting for a permission prompt, so each call has a timeout after which the child
is killed. Errors come back translated: a missing command or an error object from the app is
``SensorUnavailable`` (it will not fix itself soon); a timeout is ``SensorReadError``.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import subprocess
from collections.abc import Sequence
from typing import Any

from agent.errors import SensorReadError, SensorUnavailable

logger = logging.getLogger(__name__)

INSTALL_HINT = "install the Termux:API app and `pkg install termux-api`"


def run_json(
    sensor: str, argv: Sequence[str], timeout_s: float, *, path: str | None = None
) -> dict[str, Any]:
    """The JSON object a Termux:API command prints."""
    exe = shutil.which(argv[0], path=path)
    if exe is None:
        raise SensorUnavailable(sensor, f"{argv[0]} not found ({INSTALL_HINT})")
    try:
        done = run_command([exe, *argv[1:]], timeout_s)
    except subprocess.TimeoutExpired as exc:
        raise SensorReadError(sensor, f"{argv[0]} gave no answer in {timeout_s:g} s") from exc
    except OSError as exc:
        raise SensorUnavailable(sensor, f"{argv[0]} cannot run: {exc}") from exc
    return parse_json(sensor, argv[0], done.stdout, done.stderr, done.returncode)


def run_command(argv: Sequence[str], timeout_s: float) -> subprocess.CompletedProcess[str]:
    """Run ``argv`` in a new session and collect its output.

    ``subprocess.run(timeout=...)`` kills only the child: a shell script's own children
    (``sleep``, termux-api's helper) live on, orphaned, holding the output pipe. Here the
    child leads its own process group, and on a timeout, or any other exception, the whole
    group is killed before the child is reaped (so its id cannot have been reused).
    """
    with subprocess.Popen(
        list(argv),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    ) as proc:
        try:
            stdout, stderr = proc.communicate(timeout=timeout_s)
        except BaseException:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            raise
    return subprocess.CompletedProcess(list(argv), proc.returncode, stdout, stderr)


def parse_json(sensor: str, command: str, stdout: str, stderr: str, code: int) -> dict[str, Any]:
    """The command's JSON object, or the reason it has none."""
    text = stdout.strip()
    if not text:
        why = stderr.strip().splitlines()[-1] if stderr.strip() else f"exit code {code}"
        raise SensorUnavailable(sensor, f"{command} printed nothing ({why}; {INSTALL_HINT})")
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise SensorReadError(sensor, f"{command} printed no JSON: {text[:80]!r}") from exc
    if not isinstance(value, dict):
        raise SensorReadError(sensor, f"{command} printed {type(value).__name__}, not an object")
    if "error" in value and len(value) <= 2:  # Termux:API's error reply: {"error": "..."}
        raise SensorUnavailable(sensor, f"{command}: {value['error']}")
    return value
