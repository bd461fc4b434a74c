"""gpsd (stage 1): its JSON protocol over TCP (gpsd_json(5)); TPV reports -> location samples."""

from __future__ import annotations

import logging
import math
import select
import socket
from collections import Counter
from collections.abc import Collection, Mapping
from datetime import UTC, datetime
from statistics import NormalDist
from typing import Any

from agent.config import LocationSensorConfig
from agent.errors import SensorUnavailable
from agent.numbers import finite_float
from agent.samples import Sample, Scalar
from agent.sensors.location import (
    FixGate,
    Rejection,
    check_fix_time,
    check_numbers,
    check_position,
)
from agent.sensors.values import Refusals, TooDeep, brief, loads

logger = logging.getLogger(__name__)

#: Stream every report as JSON (gpsd_json(5), "?WATCH"); gpsd answers VERSION, DEVICES, WATCH.
WATCH = b'?WATCH={"enable":true,"json":true}\n'
CONNECT_TIMEOUT_S = 1.0
#: After connecting, how long a read waits for gpsd's first TPV (receivers report at 1 Hz or
#: faster; gpsd answers the WATCH at once), in a few select() waits: no clock is read.
FIRST_TPV_WAIT_S = 2.0
_FIRST_TPV_POLLS = 8
_CHUNK_B = 65536
#: At most this much is read per poll; the rest waits for the next one.
_MAX_POLL_B = 4 << 20
#: A line this long without a newline is not gpsd (its longest reports are a few KiB).
_MAX_LINE_B = 1 << 20
#: Connected, but no fix let through for this long (of sample time, over at least two reads):
#: the sensor is down ("gpsd sends no fix for N s") until a fix passes again. gpsd with no
#: receiver, a receiver without a fix, or one whose every fix is refused look the same.
NO_FIX_DOWN_S = 120.0
#: The optional numbers of a TPV that vigil reads; NaN or a non-number refuses the report.
TPV_NUMBERS = ("eph", "epx", "epy", "alt", "altHAE", "speed", "track")

# Accuracy. gpsd's drivers are "expected to report position error estimates with a 95%
# confidence interval" (gpsd HACKING, "Error modeling"), and where a receiver gives none,
# gpsd computes them as DOP x UERE with UERE in "meters, 95% confidence" (libgpsd_core.c:
# eph = HDOP x 15 m without DGPS); gpsd_json(5) of 3.2x calls the certainty "unknown".
# ``eph`` is a horizontal radius, ``epx``/``epy`` are per axis. Android's accuracy, which
# vigil uses, is the radius of 68 % confidence. For a circular bivariate normal with
# per-axis sigma, P(r <= R) = 1 - exp(-R^2 / 2 sigma^2), so R_p = sigma sqrt(-2 ln(1 - p)):
R68_PER_SIGMA = math.sqrt(-2 * math.log(0.32))  # 1.5096
R95_PER_SIGMA = math.sqrt(-2 * math.log(0.05))  # 2.4477
R68_PER_R95 = R68_PER_SIGMA / R95_PER_SIGMA  # 0.61673: accuracy_m = eph x 0.61673
#: One axis at 95 % is 1.95996 sigma (normal quantile 0.975): sigma_x = epx / 1.95996.
Z95_PER_SIGMA = NormalDist().inv_cdf(0.975)

#: The smallest accuracy given (1 mm, the rounding step): a finer estimate would round to 0.
MIN_ACCURACY_M = 0.001

#: The 95 % radius assumed for a receiver that gives no estimate at all (no eph, epx, epy),
#: by fix mode: gpsd's own model (HDOP x 15 m) at HDOP 5 for a 3D fix (the worst "good"
#: DOP) and at HDOP 10 for a 2D fix (the worst "moderate"). Pessimistic on purpose: a fence
#: will not think such a fix "certainly inside". As 68 % radii: 46.255 m and 92.509 m.
DEFAULT_R95_M = {3: 75.0, 2: 150.0}


def accuracy_m(report: Mapping[str, Any]) -> float | None:
    """The 68 % horizontal radius from a TPV's error estimates, or None without any.

    ``eph`` when present (x ``R68_PER_R95``); else ``epx`` and ``epy``: sigma_x = epx / z,
    sigma_y = epy / z (z = ``Z95_PER_SIGMA``), the circular sigma = sqrt((sx^2 + sy^2) / 2),
    times ``R68_PER_SIGMA``. Zero or negative estimates count as absent. Rounded to 1 mm,
    and never below it (a radius of 0 is no accuracy).
    """
    eph = _positive(report.get("eph"))
    if eph is not None:
        return max(round(eph * R68_PER_R95, 3), MIN_ACCURACY_M)
    epx, epy = _positive(report.get("epx")), _positive(report.get("epy"))
    if epx is not None and epy is not None:
        sigma = math.hypot(epx / Z95_PER_SIGMA, epy / Z95_PER_SIGMA) / math.sqrt(2)
        return max(round(sigma * R68_PER_SIGMA, 3), MIN_ACCURACY_M)
    return None


def default_accuracy_m(mode: int) -> float:
    """The 68 % radius used when a receiver gives no estimate (see ``DEFAULT_R95_M``)."""
    return round(DEFAULT_R95_M[3 if mode >= 3 else 2] * R68_PER_R95, 3)


def parse_tpv(report: Mapping[str, Any], read_t: float) -> dict[str, Scalar] | Rejection:
    """A TPV report's location fields, or why it is no usable fix.

    Fields: ``lat``, ``lon``, ``accuracy_m`` (when the TPV has an estimate, see
    ``accuracy_m``), ``alt_m`` (``altHAE``, height above the WGS84 ellipsoid as Android
    gives it, else ``alt``), ``speed_mps`` (``speed``), ``bearing_deg`` (``track``),
    ``provider`` "gpsd", ``mode`` (2 or 3) and ``fix_t`` (the TPV's ISO 8601 ``time``, UNIX
    seconds). Refused: ``no_fix`` (mode 0, 1 or absent), ``bad_field`` (a mode that is no
    gpsd mode, an optional number that is not a number), ``no_position``, ``non_finite``
    (NaN, infinities), ``out_of_range``, ``no_time`` (a fix without a usable time cannot be
    aged) and ``future_fix`` (after ``read_t`` by more than the tolerance). Accuracy, age and
    order are ``FixGate``'s.
    """
    mode = report.get("mode")
    if mode is None or (type(mode) is int and mode in (0, 1)):
        return Rejection("no_fix", f"mode {mode!r}")
    if type(mode) is not int or mode not in (2, 3):
        return Rejection("bad_field", f"mode {brief(mode)} is no gpsd fix mode")
    where = check_position(report.get("lat"), report.get("lon"))
    if isinstance(where, Rejection):
        return where
    bad = check_numbers(report, TPV_NUMBERS)
    if bad is not None:
        return bad
    time = report.get("time")
    if isinstance(time, float) and not math.isfinite(time):
        return Rejection("non_finite", f"time {time!r}")
    fix_t = tpv_time(time)
    if fix_t is None:
        return Rejection("no_time", f"time {brief(time)}")
    bad = check_fix_time(fix_t, read_t)
    if bad is not None:
        return bad
    data: dict[str, Scalar] = {"lat": where[0], "lon": where[1]}
    accuracy = accuracy_m(report)
    if accuracy is not None:
        data["accuracy_m"] = accuracy
    altitude = next(
        (v for k in ("altHAE", "alt") if (v := finite_float(report.get(k))) is not None), None
    )
    if altitude is not None:
        data["alt_m"] = altitude
    for key, name in (("speed_mps", "speed"), ("bearing_deg", "track")):
        value = finite_float(report.get(name))
        if value is not None:
            data[key] = value
    data["provider"] = "gpsd"
    data["mode"] = mode
    data["fix_t"] = fix_t
    return data


def tpv_time(value: object) -> float | None:
    """UNIX seconds from a TPV ``time``: ISO 8601 UTC ("2026-11-22T09:53:05.802Z"), or a
    number as protocol versions before 3.10 sent it; None when absent or unreadable."""
    number = finite_float(value)
    if number is not None:
        return number
    if not isinstance(value, str):
        return None
    try:
        when = datetime.fromisoformat(value.replace("Z", "+00:00"))
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)  # gpsd always means UTC
        return when.timestamp()
    except (ValueError, OverflowError):
        return None


def _positive(value: object) -> float | None:
    number = finite_float(value)
    return number if number is not None and number > 0 else None


def decode_report(line: bytes) -> dict[str, Any] | Rejection:
    """One line from gpsd as a report (a JSON object with a string ``class``), or why it is
    none: ``not_json`` (including bytes that are not UTF-8), ``too_deep`` (nesting the JSON
    decoder cannot follow), ``not_object``, ``no_class``."""
    try:
        report = loads(line)
    except TooDeep:
        return Rejection("too_deep", f"{len(line)} bytes nested too deeply: {brief(line[:60])}")
    except ValueError as exc:
        return Rejection("not_json", f"{brief(str(exc))}: {brief(line[:120])}")
    if not isinstance(report, dict):
        return Rejection("not_object", f"{type(report).__name__}: {brief(report)}")
    if not isinstance(report.get("class"), str):
        return Rejection("no_class", f"class {brief(report.get('class'))}")
    return report


class GpsdClient:
    """A gpsd connection: connect, ``?WATCH``, then newline-delimited JSON reports.

    ``poll`` never blocks longer than ``wait_s``: it takes what gpsd has sent and keeps a
    partial last line for the next poll. With ``classes`` given, other reports are skipped
    before they are decoded (a SKY report costs more to decode than a TPV).
    """

    def __init__(
        self,
        host: str,
        port: int,
        *,
        classes: Collection[str] | None = None,
        connect_timeout_s: float = CONNECT_TIMEOUT_S,
    ) -> None:
        self.host, self.port = host, port
        self._markers = None if classes is None else [f'"{c}"'.encode() for c in classes]
        self._classes = None if classes is None else frozenset(classes)
        self._connect_timeout_s = connect_timeout_s
        self._sock: socket.socket | None = None
        self._pending = bytearray()
        self._refusals = Refusals(logger, "gpsd line")
        #: Lines that were not gpsd reports, counted per kind (see ``decode_report``, and
        #: ``too_long``) and skipped.
        self.bad_lines: Counter[str] = self._refusals.counts

    @property
    def connected(self) -> bool:
        return self._sock is not None

    def connect(self) -> None:
        """Open the connection and ask for the stream; ``OSError`` when gpsd is not there."""
        self.close()
        sock = socket.create_connection((self.host, self.port), timeout=self._connect_timeout_s)
        try:
            sock.sendall(WATCH)
            sock.setblocking(False)
        except OSError:
            sock.close()
            raise
        self._sock = sock
        logger.debug("connected to gpsd on %s:%d", self.host, self.port)

    def poll(self, wait_s: float = 0.0) -> list[dict[str, Any]]:
        """Every complete report since the last poll, oldest first (connecting first if
        needed). When gpsd has closed the connection, returns what came before the close and
        disconnects, or raises ``ConnectionError`` if nothing did; other socket errors
        disconnect and propagate as ``OSError``."""
        if self._sock is None:
            self.connect()
        sock = self._sock
        assert sock is not None
        try:
            if wait_s > 0:
                select.select([sock], [], [], wait_s)
            closed = self._drain(sock)
        except OSError:
            self.close()
            raise
        reports = self.feed(b"")
        if closed:
            self.close()
            if not reports:
                raise ConnectionError("gpsd closed the connection")
        return reports

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None
        self._pending.clear()

    def _drain(self, sock: socket.socket) -> bool:
        """Read what is waiting into the buffer; True when gpsd closed the connection."""
        total = 0
        while total < _MAX_POLL_B:
            try:
                chunk = sock.recv(_CHUNK_B)
            except BlockingIOError:
                return False
            if not chunk:
                return True
            self._pending += chunk
            total += len(chunk)
        return False

    def feed(self, data: bytes) -> list[dict[str, Any]]:
        """Take ``data`` as received from gpsd: the complete reports so far, oldest first (the
        partial last line waits for the rest). Lines that are no reports are counted in
        ``bad_lines`` and skipped, as is a line longer than gpsd ever sends; with ``classes``,
        a JSON object that does not name one of them is skipped undecoded."""
        self._pending += data
        end = self._pending.rfind(b"\n")
        if end < 0:
            if len(self._pending) > _MAX_LINE_B:
                self._refusals.note("too_long", f"{len(self._pending)} bytes without a newline")
                self._pending.clear()
            return []
        lines = bytes(self._pending[:end]).split(b"\n")
        del self._pending[: end + 1]
        reports: list[dict[str, Any]] = []
        for line in lines:
            line = line.strip()
            if not line:
                continue
            if len(line) > _MAX_LINE_B:
                self._refusals.note("too_long", f"a line of {len(line)} bytes")
                continue
            framed = line.startswith(b"{") and line.endswith(b"}")
            if framed and self._markers is not None and not any(m in line for m in self._markers):
                continue  # a report of another class, left undecoded
            report = decode_report(line)
            if isinstance(report, Rejection):
                self._refusals.note(report.reason, report.detail)
            elif self._classes is None or report["class"] in self._classes:
                reports.append(report)
        return reports


class GpsdSensor:
    """``location`` from gpsd: the newest acceptable TPV since the last read.

    ``read(now)`` drains the socket without waiting (after connecting, it waits up to
    ``FIRST_TPV_WAIT_S`` for a first TPV), parses every TPV (``parse_tpv``), gives fixes
    without an estimate ``default_accuracy_m``, and gates them in order (``FixGate``); the
    sample is stamped ``now`` and carries the fix's own time in ``fix_t``. None when no new
    fix passed. When gpsd refuses the connection or has closed it, ``SensorUnavailable``;
    the next read reconnects (the poller retries with backoff). Refusals per reason are
    counted in ``rejected``, lines that are no reports in ``client.bad_lines``.

    Connected but with no fix let through for more than ``no_fix_down_s`` of sample time
    (judged from the second read without one, so the first read after a suspend, which
    finds only old reports, does not count), ``read`` raises ``SensorUnavailable`` saying
    what came instead, at every read until a fix passes.
    """

    def __init__(
        self,
        config: LocationSensorConfig,
        *,
        client: GpsdClient | None = None,
        no_fix_down_s: float = NO_FIX_DOWN_S,
    ) -> None:
        self.name = "location"
        self.interval_s = config.interval_s
        self.client = client or GpsdClient(
            config.gpsd_host, config.gpsd_port, classes=("TPV", "ERROR")
        )
        self._gate = FixGate(config)
        self.rejected: Counter[str] = self._gate.rejected
        self.no_fix_down_s = no_fix_down_s
        #: Since when (sample time) no fix has passed: the last fix, or the first read on
        #: the connection; None while there is no connection.
        self._since: float | None = None
        self._reads_since = 0
        self._tpvs_since = 0
        self._rejected_before = Counter[str]()

    def accept(self, report: Mapping[str, Any], read_t: float) -> dict[str, Scalar] | None:
        """One TPV through the parser and the gate: its sample fields, or None if refused."""
        fix = parse_tpv(report, read_t)
        if not isinstance(fix, Rejection) and "accuracy_m" not in fix:
            mode = fix["mode"]
            assert isinstance(mode, int)
            fields = list(fix.items())
            fields.insert(2, ("accuracy_m", default_accuracy_m(mode)))
            fix = dict(fields)
        return self._gate.admit(fix, read_t)

    def read(self, now: float) -> Sample | None:
        client = self.client
        try:
            reports = self._receive()
        except OSError as exc:
            self._since = None
            where = f"{client.host}:{client.port}"
            raise SensorUnavailable(self.name, f"gpsd not answering on {where}: {exc}") from exc
        if self._since is None:  # connected (again): silence is counted from here
            self._since, self._reads_since, self._tpvs_since = now, 0, 0
            self._rejected_before = Counter(self.rejected)
        before = Counter(self.rejected)
        newest: dict[str, Scalar] | None = None
        for report in reports:
            if report["class"] == "ERROR":
                logger.debug("gpsd error: %s", brief(report.get("message")))
            elif report["class"] == "TPV":
                self._tpvs_since += 1
                fix = self.accept(report, now)
                newest = fix if fix is not None else newest
        refused = self.rejected - before
        if refused:
            logger.debug("location: %d gpsd reports, refused %s", len(reports), dict(refused))
        if newest is not None:
            self._since, self._reads_since, self._tpvs_since = now, 0, 0
            self._rejected_before = Counter(self.rejected)
            return Sample(self.name, now, newest)
        self._check_silence(now)
        return None

    def _check_silence(self, now: float) -> None:
        """``SensorUnavailable`` when no fix has passed for over ``no_fix_down_s``."""
        assert self._since is not None
        self._reads_since += 1
        silent_s = now - self._since
        if self._reads_since < 2 or silent_s <= self.no_fix_down_s:
            return
        refused = self.rejected - self._rejected_before
        if self._tpvs_since == 0:
            what = "no position report at all"
        else:
            kinds = ", ".join(f"{kind} {n}" for kind, n in refused.most_common())
            what = f"{self._tpvs_since} position reports, refused: {kinds}"
        raise SensorUnavailable(self.name, f"gpsd sends no fix for {silent_s:.0f} s ({what})")

    def _receive(self) -> list[dict[str, Any]]:
        """What gpsd sent since the last read. Right after (re)connecting nothing has come
        yet but the greeting: wait up to ``FIRST_TPV_WAIT_S`` for the first TPV, so the
        first read after a start or an outage has a fix to give (not one interval later)."""
        fresh = not self.client.connected
        reports = self.client.poll()
        for _ in range(_FIRST_TPV_POLLS if fresh else 0):
            if not self.client.connected or any(r["class"] == "TPV" for r in reports):
                break
            reports += self.client.poll(wait_s=FIRST_TPV_WAIT_S / _FIRST_TPV_POLLS)
        return reports

    def close(self) -> None:
        self.client.close()
