"""Running a Termux:API command (``termux-battery-status``, ...) with a hard timeout.

Termux:API commands talk to an Android app and can hang for ever when the app is missing,
asleep or waiting for a permission prompt, so each call has a timeout after which the
command and every process it started are killed (``commands.run_command``). Errors come back
translated: a missing command, a timeout or an error object from the app is
``SensorUnavailable`` (it will not fix itself soon: the poller marks the sensor down and
backs off); output that is no JSON object is ``SensorReadError``.
"""

from __future__ import annotations

import logging
import shutil
import subprocess
from collections.abc import Sequence
from typing import Any

from agent.errors import SensorReadError, SensorUnavailable
from agent.sensors.commands import run_command
from agent.sensors.values import brief, loads

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
        raise SensorUnavailable(
            sensor, f"{argv[0]} gave no answer in {timeout_s:g} s (killed)"
        ) from exc
    except OSError as exc:
        raise SensorUnavailable(sensor, f"{argv[0]} cannot run: {exc}") from exc
    return parse_json(sensor, argv[0], done.stdout, done.stderr, done.returncode)


def parse_json(sensor: str, command: str, stdout: str, stderr: str, code: int) -> dict[str, Any]:
    """The command's JSON object, or the reason it has none."""
    text = stdout.strip()
    if not text:
        why = stderr.strip().splitlines()[-1] if stderr.strip() else f"exit code {code}"
        raise SensorUnavailable(sensor, f"{command} printed nothing ({why}; {INSTALL_HINT})")
    try:
        value = loads(text)
    except ValueError as exc:
        raise SensorReadError(sensor, f"{command} printed no JSON ({exc}): {brief(text)}") from exc
    if not isinstance(value, dict):
        raise SensorReadError(sensor, f"{command} printed {type(value).__name__}, not an object")
    if "error" in value and len(value) <= 2:  # Termux:API's error reply: {"error": "..."}
        error = value["error"]
        raise SensorUnavailable(
            sensor, f"{command}: {error if isinstance(error, str) else brief(error)}"
        )
    return value
