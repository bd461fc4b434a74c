"""Apps sensor (stage 1): the focused app and the busiest processes; the field math is pure."""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import psutil

from agent.config import AppsSensorConfig
from agent.errors import SensorUnavailable
from agent.platform import is_termux
from agent.samples import Sample, Scalar
from agent.sensors.focus import FocusBackend, FocusReading, open_focus

logger = logging.getLogger(__name__)

REDACTED = "[redacted]"

#: What one scan asks psutil for. ``create_time`` tells a reused pid from the process that
#: had it before; psutil reads it from the same ``/proc/<pid>/stat`` as ``cpu_times``.
PROCESS_ATTRS = ("name", "cpu_times", "memory_percent", "create_time")


@dataclass(frozen=True, slots=True)
class ProcessStat:
    """One process in one scan. ``cpu_s`` is user + system CPU-seconds since it started;
    ``mem_pct`` its resident memory as a share of RAM; ``started`` its creation time (an
    identity, never compared with sample time). A value psutil was denied is None: the
    process is known to exist but is left out of the rankings."""

    pid: int
    name: str
    cpu_s: float | None
    mem_pct: float | None
    started: float | None = None


ProcessSource = Callable[[], Sequence[ProcessStat]]


def scan_processes() -> list[ProcessStat]:
    """Every process psutil can see. Processes that vanish during the scan are skipped and
    denied values are None (Android hides other apps' processes altogether). A scan that
    fails as a whole, or sees nothing, is ``SensorUnavailable``."""
    stats: list[ProcessStat] = []
    try:
        for proc in psutil.process_iter(list(PROCESS_ATTRS), ad_value=None):
            info = proc.info
            times = info.get("cpu_times")
            stats.append(
                ProcessStat(
                    pid=proc.pid,
                    name=info.get("name") or str(proc.pid),
                    cpu_s=None if times is None else float(times.user + times.system),
                    mem_pct=info.get("memory_percent"),
                    started=info.get("create_time"),
                )
            )
    except (OSError, psutil.Error) as exc:  # psutil's errors end here
        raise SensorUnavailable("apps", f"process list unreadable: {exc}") from exc
    if not stats:
        raise SensorUnavailable("apps", "no process is visible")
    return stats


def cpu_percents(
    current: Iterable[ProcessStat], previous: Iterable[ProcessStat], dt_s: float
) -> dict[int, float]:
    """pid -> CPU share in percent of one CPU over the ``dt_s`` seconds between two scans
    (up to 100 × CPUs). A process missing from the previous scan started since then, so
    all its CPU time falls in the interval. Processes that used no CPU, or whose counter
    went backward, are left out; so is everything when ``dt_s`` is not positive."""
    if dt_s <= 0:
        return {}
    before = {p.pid: p for p in previous}
    shares: dict[int, float] = {}
    for proc in current:
        if proc.cpu_s is None:
            continue
        old = before.get(proc.pid)
        if old is not None and old.started == proc.started:
            if old.cpu_s is None:
                continue  # denied last time: its share cannot be told
            used = proc.cpu_s - old.cpu_s
        else:
            used = proc.cpu_s  # new, or a new process under a reused pid
        if used > 0:
            shares[proc.pid] = 100.0 * used / dt_s
    return shares


def process_fields(
    current: Sequence[ProcessStat],
    previous: Sequence[ProcessStat] | None,
    dt_s: float | None,
    top_n: int,
) -> dict[str, Scalar]:
    """The flat ranking fields: ``cpu<i>_name``/``cpu<i>_pct`` for the ``top_n`` processes
    busiest since the previous scan (none on the first scan) and ``mem<i>_name``/
    ``mem<i>_pct`` for the largest, ``i`` from 1. Ties go by name, then pid; percentages
    are rounded to 3 decimals and zeros are not listed."""
    data: dict[str, Scalar] = {}
    names = {p.pid: p.name for p in current}
    if previous is not None and dt_s is not None:
        shares = cpu_percents(current, previous, dt_s)
        busiest = sorted(shares, key=lambda pid: (-shares[pid], names[pid], pid))
        for i, pid in enumerate(busiest[:top_n], start=1):
            data[f"cpu{i}_name"], data[f"cpu{i}_pct"] = names[pid], round(shares[pid], 3)
    sized = [p for p in current if p.mem_pct is not None and p.mem_pct > 0]
    sized.sort(key=lambda p: (-(p.mem_pct or 0.0), p.name, p.pid))
    for i, proc in enumerate(sized[:top_n], start=1):
        data[f"mem{i}_name"], data[f"mem{i}_pct"] = proc.name, round(proc.mem_pct or 0.0, 3)
    return data


def redact(title: str, patterns: Iterable[re.Pattern[str]]) -> str:
    """``title`` with every match of every pattern replaced by ``[redacted]``, in order."""
    for pattern in patterns:
        title = pattern.sub(REDACTED, title)
    return title


def focus_fields(
    reading: FocusReading, titles: bool, patterns: Sequence[re.Pattern[str]]
) -> dict[str, Scalar]:
    """``app``, ``title`` (only when ``titles``, after redaction) and ``pid`` of the focused
    window; nothing when no window has the focus."""
    if reading.app is None:
        return {}
    data: dict[str, Scalar] = {"app": reading.app}
    if titles and reading.title:
        data["title"] = redact(reading.title, patterns)
    if reading.pid is not None:
        data["pid"] = reading.pid
    return data


class AppsSensor:
    """The focused app (``app``, optional ``title``, ``pid``) and the top processes by CPU and
    by memory (see ``process_fields``).

    Where the focused window cannot be read (no display, GNOME on Wayland, Android) the
    sample still carries the processes, and the reason is logged at WARNING once per outage,
    then at DEBUG; only when the processes cannot be read either does ``read`` raise
    ``SensorUnavailable``. A failed focus read (a window closing mid-read) raises
    ``SensorReadError`` and skips the whole poll, so a session is not cut by a glitch.
    A sample without ``app`` means no window had the focus (or focus is unreadable).
    """

    def __init__(
        self,
        config: AppsSensorConfig,
        focus: FocusBackend | None = None,
        processes: ProcessSource = scan_processes,
    ) -> None:
        self.name = "apps"
        self.interval_s = config.interval_s
        self._titles = config.titles
        self._patterns = tuple(re.compile(p) for p in config.redact)  # checked by config
        self._top_n = max(0, config.top_n)
        self._focus = focus if focus is not None else open_focus(os.environ, is_termux())
        self._processes = processes
        self._previous: Sequence[ProcessStat] | None = None
        self._previous_t: float | None = None
        self._warned: set[str] = set()
        self._focus_down = False

    def read(self, now: float) -> Sample:
        data: dict[str, Scalar] = {}
        focus_down: SensorUnavailable | None = None
        try:
            reading = self._focus.read()
        except SensorUnavailable as exc:
            focus_down = exc
            self._note("focus", exc.reason)
        else:
            if self._focus_down:
                logger.info("apps: focused window readable again (%s)", self._focus.name)
                self._warned.discard("focus")  # the next outage warns again
            data.update(focus_fields(reading, self._titles, self._patterns))
        self._focus_down = focus_down is not None
        try:
            stats = self._processes()
        except SensorUnavailable as exc:
            if focus_down is not None:
                raise SensorUnavailable(self.name, f"{focus_down.reason}; {exc.reason}") from exc
            self._note("processes", exc.reason)
        else:
            dt_s = None if self._previous_t is None else now - self._previous_t
            data.update(process_fields(stats, self._previous, dt_s, self._top_n))
            self._previous, self._previous_t = stats, now
        return Sample(self.name, now, data)

    def close(self) -> None:
        self._focus.close()

    def _note(self, piece: str, reason: str) -> None:
        if piece in self._warned:
            logger.debug("apps %s unreadable: %s", piece, reason)
        else:
            self._warned.add(piece)
            logger.warning("apps %s unreadable, leaving its fields out: %s", piece, reason)
