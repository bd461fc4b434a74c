"""Location (stage 1): the gate every fix passes, a fixed place, and which source runs here."""

from __future__ import annotations

import logging
import math
import socket
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from agent.config import LocationSensorConfig
from agent.errors import ConfigError
from agent.numbers import finite_float, is_number
from agent.samples import Sample, Scalar
from agent.sensors.values import Refusals, brief

logger = logging.getLogger(__name__)

#: A fix stamped more than this after the read time comes from a clock that disagrees with
#: ours (or a receiver that mis-dated it): refused as ``future_fix``.
FUTURE_TOLERANCE_S = 5.0
#: How long ``auto`` (and ``vigil doctor``) waits for gpsd to accept a TCP connection.
PROBE_TIMEOUT_S = 1.0
#: The Termux:API command (termux-api-package), looked up on PATH.
TERMUX_COMMAND = "termux-location"
TERMUX_MISSING = f"{TERMUX_COMMAND} not installed (pkg install termux-api, and the Termux:API app)"


@dataclass(frozen=True, slots=True)
class Rejection:
    """A fix refused at the boundary: ``reason`` is the counter key, ``detail`` the instance."""

    reason: str
    detail: str


def check_position(lat: object, lon: object) -> tuple[float, float] | Rejection:
    """(lat, lon) as floats; ``no_position`` unless both are numbers, ``non_finite`` for NaN,
    infinities or numbers beyond any float, ``out_of_range`` when off the Earth."""
    if not is_number(lat) or not is_number(lon):
        return Rejection("no_position", f"lat {brief(lat)}, lon {brief(lon)}")
    flat, flon = finite_float(lat), finite_float(lon)
    if flat is None or flon is None:
        return Rejection("non_finite", f"lat {brief(lat)}, lon {brief(lon)}")
    if not (-90 <= flat <= 90 and -180 <= flon <= 180):
        return Rejection("out_of_range", f"lat {flat!r}, lon {flon!r} are off the Earth")
    return flat, flon


def check_numbers(report: Mapping[str, object], keys: Iterable[str]) -> Rejection | None:
    """For the optional numeric ``keys`` present in ``report``: ``bad_field`` when one is not
    a number, ``non_finite`` when it is NaN, infinite or beyond any float. A receiver that
    sends such a value is broken, so its whole report is refused rather than half used."""
    for key in keys:
        value = report.get(key)
        if value is None:
            continue
        if not is_number(value):
            return Rejection("bad_field", f"{key} {brief(value)} is not a number")
        if finite_float(value) is None:
            return Rejection("non_finite", f"{key} {brief(value)}")
    return None


def check_fix_time(fix_t: float, read_t: float) -> Rejection | None:
    """``future_fix`` when the fix is stamped beyond ``FUTURE_TOLERANCE_S`` after the read."""
    if not math.isfinite(fix_t):
        return Rejection("non_finite", f"fix time {fix_t!r}")
    if fix_t - read_t > FUTURE_TOLERANCE_S:
        return Rejection(
            "future_fix", f"fix at {fix_t!r} is {fix_t - read_t:.3f} s after {read_t!r}"
        )
    return None


class FixGate:
    """The checks that need the config or the fixes before: one gate per sensor.

    A parsed fix (``lat``, ``lon``, ``accuracy_m``, ``fix_t``...) is refused when its 68 %
    radius is above ``max_accuracy_m`` (``poor_accuracy``), when it was older than
    ``max_age_s`` at ``read_t`` (``stale_fix``), or when it is older than the last fix let
    through (``time_backward``; the same time again passes, as gpsd reports one epoch in
    several TPVs). Refusals, including those the parser made, are counted in ``rejected``;
    the first of each reason is logged at WARNING, the rest at DEBUG.
    """

    def __init__(self, config: LocationSensorConfig) -> None:
        self.max_accuracy_m = config.max_accuracy_m
        self.max_age_s = config.max_age_s
        self._refusals = Refusals(logger, "location fix")
        self.rejected: Counter[str] = self._refusals.counts
        self.last_fix_t: float | None = None

    def admit(
        self, fix: Mapping[str, Scalar] | Rejection, read_t: float
    ) -> dict[str, Scalar] | None:
        """The fix's fields when it passes, else None (and the reason is counted)."""
        rejection = fix if isinstance(fix, Rejection) else self._check(fix, read_t)
        if rejection is not None:
            self._refusals.note(rejection.reason, rejection.detail)
            return None
        assert not isinstance(fix, Rejection) and isinstance(fix["fix_t"], float)
        self.last_fix_t = fix["fix_t"]
        return dict(fix)

    def _check(self, fix: Mapping[str, Scalar], read_t: float) -> Rejection | None:
        accuracy, fix_t = fix.get("accuracy_m"), fix.get("fix_t")
        assert isinstance(fix_t, float), "parsers always set fix_t"
        if isinstance(accuracy, int | float) and accuracy > self.max_accuracy_m:
            return Rejection("poor_accuracy", f"{accuracy} m > {self.max_accuracy_m:g} m")
        if read_t - fix_t > self.max_age_s:
            return Rejection("stale_fix", f"{read_t - fix_t:.3f} s old > {self.max_age_s:g} s")
        if self.last_fix_t is not None and fix_t < self.last_fix_t:
            return Rejection("time_backward", f"fix at {fix_t!r} after one at {self.last_fix_t!r}")
        return None


class StaticLocationSensor:
    """A machine that does not move: the configured place on every read (provider "static")."""

    def __init__(self, config: LocationSensorConfig) -> None:
        lat, lon = config.static_lat, config.static_lon
        if lat is None or lon is None:
            raise ConfigError(
                "config", "sensors.location", "source = static needs static_lat, static_lon"
            )
        where = check_position(lat, lon)
        if isinstance(where, Rejection):
            raise ConfigError("config", "sensors.location", where.detail)
        if not config.static_accuracy_m > 0:
            raise ConfigError("config", "sensors.location.static_accuracy_m", "must be > 0")
        self.name = "location"
        self.interval_s = config.interval_s
        self._data: dict[str, Scalar] = {
            "lat": where[0],
            "lon": where[1],
            "accuracy_m": float(config.static_accuracy_m),
            "provider": "static",
        }

    def read(self, now: float) -> Sample:
        return Sample(self.name, now, dict(self._data))

    def close(self) -> None:
        pass


def gpsd_answers(host: str, port: int, timeout_s: float = PROBE_TIMEOUT_S) -> str | None:
    """None when something accepts a TCP connection on ``host:port``, else why not."""
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            return None
    except OSError as exc:
        return str(exc) or type(exc).__name__
