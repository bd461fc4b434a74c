"""Location on Android (stage 1): ``termux-location`` (Termux:API), killed if it hangs.

``termux-location -r once`` waits for a fresh fix with no timeout of its own: indoors or with
location off it never answers (termux-api#9, #204). Each call is therefore killed, with
every process it started (the shell script, termux-api's program under it and anything
they left), at ``termux_timeout_s`` (at most ``commands.MAX_TIMEOUT_S``), and the sensor is
down until a call answers again.
"""

from __future__ import annotations

import json
import logging
import shutil
import subprocess
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

from agent.config import LocationSensorConfig
from agent.errors import SensorReadError, SensorUnavailable
from agent.numbers import finite_float
from agent.samples import Sample, Scalar
from agent.sensors.commands import cap_timeout, run_command
from agent.sensors.location import (
    TERMUX_COMMAND,
    TERMUX_MISSING,
    FixGate,
    Rejection,
    check_fix_time,
    check_numbers,
    check_position,
)
from agent.sensors.values import brief, clean_text

__all__ = ["TermuxLocationSensor", "parse_termux_location", "run_command"]

logger = logging.getLogger(__name__)

#: Runs argv with a timeout in seconds; raises ``subprocess.TimeoutExpired`` (after making
#: sure the child is dead) or ``OSError`` when it cannot start.
Runner = Callable[[Sequence[str], float], "subprocess.CompletedProcess[str]"]


def parse_termux_location(text: str, read_t: float) -> dict[str, Scalar] | Rejection:
    """The location fields of termux-location's JSON output read at ``read_t``.

    termux-api's LocationAPI writes one object per fix (``-r updates`` writes several; the
    last is taken): ``latitude``, ``longitude``, ``altitude`` (m above the WGS84 ellipsoid),
    ``accuracy`` (m, Android's 68 % radius: taken as is), ``vertical_accuracy`` (API 26+),
    ``bearing`` (deg), ``speed`` (m/s), ``elapsedMs`` (the fix's age when written),
    ``provider`` (Android's: gps, network, fused...) and, in newer versions, ``mocked``.
    ``fix_t`` = ``read_t`` - elapsedMs / 1000. Android's accuracy 0 means "none"
    (``no_accuracy``). Refused besides: ``no_position``, ``non_finite`` (NaN, infinities),
    ``bad_field`` (a number or the provider of the wrong type), ``out_of_range``,
    ``no_time``, ``future_fix``. Empty output and an error object (``{"error": ...}`` from
    the permission check, ``{"API_ERROR": ...}`` from LocationAPI) raise
    ``SensorUnavailable``; text that is not JSON objects raises ``SensorReadError``.
    """
    objects = _json_objects(text)
    if not objects:
        raise SensorUnavailable("location", f"{TERMUX_COMMAND} printed nothing")
    reply = objects[-1]
    for key in ("error", "API_ERROR"):
        if key in reply:
            said = reply[key]
            said = said if isinstance(said, str) else brief(said)
            raise SensorUnavailable("location", f"{TERMUX_COMMAND}: {said}")
    where = check_position(reply.get("latitude"), reply.get("longitude"))
    if isinstance(where, Rejection):
        return where
    bad = check_numbers(reply, _NUMBERS)
    if bad is not None:
        return bad
    elapsed_ms = finite_float(reply.get("elapsedMs"))
    if elapsed_ms is None:
        return Rejection("no_time", f"elapsedMs {brief(reply.get('elapsedMs'))}")
    fix_t = read_t - elapsed_ms / 1000.0
    bad = check_fix_time(fix_t, read_t)
    if bad is not None:
        return bad
    accuracy = finite_float(reply.get("accuracy"))
    if accuracy is None or accuracy <= 0:
        return Rejection("no_accuracy", f"accuracy {brief(reply.get('accuracy'))}")
    provider = reply.get("provider", "termux")
    if not isinstance(provider, str):
        return Rejection("bad_field", f"provider {brief(provider)} is not a string")
    data: dict[str, Scalar] = {"lat": where[0], "lon": where[1], "accuracy_m": accuracy}
    for key, name in (("alt_m", "altitude"), ("speed_mps", "speed"), ("bearing_deg", "bearing")):
        value = finite_float(reply.get(name))
        if value is not None:
            data[key] = value
    data["provider"] = clean_text(provider)
    vertical = finite_float(reply.get("vertical_accuracy"))
    if vertical is not None and vertical > 0:
        data["vertical_accuracy_m"] = vertical
    if isinstance(reply.get("mocked"), bool):
        data["mocked"] = reply["mocked"]
    data["fix_t"] = fix_t
    return data


#: The numbers of a reply besides the position; NaN or a non-number refuses the fix.
_NUMBERS = ("altitude", "accuracy", "vertical_accuracy", "bearing", "speed", "elapsedMs")


def _json_objects(text: str) -> list[dict[str, Any]]:
    """The JSON objects in ``text``, one after another (pretty-printed, as termux-api does)."""
    decoder = json.JSONDecoder()
    objects: list[dict[str, Any]] = []
    pos, end = 0, len(text)
    while True:
        while pos < end and text[pos].isspace():
            pos += 1
        if pos == end:
            return objects
        try:
            value, pos = decoder.raw_decode(text, pos)
        except (ValueError, RecursionError) as exc:
            raise SensorReadError(
                "location", f"{TERMUX_COMMAND} printed no JSON: {brief(text[pos : pos + 80])}"
            ) from exc
        if not isinstance(value, dict):
            raise SensorReadError("location", f"{TERMUX_COMMAND} printed {brief(value)}")
        objects.append(value)


class TermuxLocationSensor:
    """``location`` from ``termux-location -p <provider> -r <request>``, one call per read.

    A missing command, an empty answer, an error object, a failed exit or a call killed at
    ``termux_timeout_s`` (at most ``MAX_TIMEOUT_S``) is ``SensorUnavailable`` (the poller
    marks the sensor down and retries with backoff). Fixes go through
    ``FixGate``; refusals are counted in ``rejected``. ``path`` is the PATH to search (None:
    the environment's); ``run`` runs the command (``run_command``).
    """

    def __init__(
        self,
        config: LocationSensorConfig,
        *,
        run: Runner = run_command,
        path: str | None = None,
    ) -> None:
        self.name = "location"
        self.interval_s = config.interval_s
        self._args = ["-p", config.termux_provider, "-r", config.termux_request]
        self._timeout_s = cap_timeout(TERMUX_COMMAND, config.termux_timeout_s)
        self._run = run
        self._path = path
        self._gate = FixGate(config)
        self.rejected: Counter[str] = self._gate.rejected

    def read(self, now: float) -> Sample | None:
        exe = shutil.which(TERMUX_COMMAND, path=self._path)
        if exe is None:
            raise SensorUnavailable(self.name, TERMUX_MISSING)
        try:
            done = self._run([exe, *self._args], self._timeout_s)
        except subprocess.TimeoutExpired as exc:
            raise SensorUnavailable(
                self.name, f"{TERMUX_COMMAND} gave no fix in {self._timeout_s:g} s (killed)"
            ) from exc
        except OSError as exc:
            raise SensorUnavailable(self.name, f"{TERMUX_COMMAND} cannot run: {exc}") from exc
        if done.returncode != 0:
            said = (done.stdout.strip() or done.stderr.strip() or "no output").splitlines()[-1]
            raise SensorUnavailable(
                self.name, f"{TERMUX_COMMAND} exited with status {done.returncode}: {said}"
            )
        if not done.stdout.strip():
            why = done.stderr.strip().splitlines()[-1] if done.stderr.strip() else "no error"
            raise SensorUnavailable(
                self.name,
                f"{TERMUX_COMMAND} printed nothing ({why}): is the Termux:API app installed"
                " and allowed location?",
            )
        fix = self._gate.admit(parse_termux_location(done.stdout, now), now)
        if fix is None:
            logger.debug("location: termux fix refused, totals %s", dict(self.rejected))
            return None
        return Sample(self.name, now, fix)

    def close(self) -> None:
        pass
