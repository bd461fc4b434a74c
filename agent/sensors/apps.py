"""Apps sensor (stage 1): the focused app and the busiest processes; the field math is pure."""

from __future__ import annotations

import logging
import math
import os
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import psutil

from agent.config import AppsSensorConfig
from agent.errors import SensorUnavailable
from agent.platform import is_termux
from agent.samples import FOCUSED_PROCESS, Sample, Scalar
from agent.sensors.focus import FocusBackend, FocusReading, UnavailableFocus, open_focus
from agent.sensors.values import clean_text, kernel_int

logger = logging.getLogger(__name__)

REDACTED = "[redacted]"

#: What a scan through psutil asks for (where ``/proc/<pid>/stat`` cannot be read).
#: ``create_time`` tells a reused pid from the process that had it before; psutil reads it
#: from the same ``/proc/<pid>/stat`` as ``cpu_times``.
PROCESS_ATTRS = ("name", "cpu_times", "memory_percent", "create_time")

#: The kernel cuts a process's name (``comm``) to 15 bytes; psutil then takes the command
#: line's first word when it starts with the cut name, and so does the /proc scan.
COMM_MAX = 15


@dataclass(frozen=True, slots=True)
class ProcessStat:
    """One process in one scan. ``cpu_s`` is user + system CPU-seconds since it started;
    ``mem_pct`` its resident memory as a share of RAM; ``started`` its start time (an
    identity, never compared with sample time: seconds since boot from /proc, since the
    epoch from psutil). A value that was denied is None: the process is known to exist but
    is left out of the rankings."""

    pid: int
    name: str
    cpu_s: float | None
    mem_pct: float | None
    started: float | None = None


ProcessSource = Callable[[], Sequence[ProcessStat]]


@dataclass(frozen=True, slots=True)
class StatLine:
    """What the scan takes from one ``/proc/<pid>/stat`` line (proc(5)): ``comm``, user and
    system time (fields 14 and 15, clock ticks), the start time (22, ticks since boot) and
    the resident set (24, pages)."""

    comm: str
    utime: int
    stime: int
    start: int
    rss_pages: int


def parse_stat_line(line: bytes) -> StatLine | None:
    """A ``/proc/<pid>/stat`` line's ``StatLine``, or None when it is not one. ``comm`` is
    what stands between the first "(" and the last ")" (it may hold both, and spaces)."""
    start, close = line.find(b"("), line.rfind(b")")
    if start < 0 or close < start:
        return None
    fields = line[close + 2 :].split()
    if len(fields) < 22:
        return None
    utime, stime, started = (kernel_int(fields[i], 0) for i in (11, 12, 19))
    rss_pages = kernel_int(fields[21])
    if utime is None or stime is None or started is None or rss_pages is None:
        return None
    return StatLine(clean_text(line[start + 1 : close]), utime, stime, started, rss_pages)


def name_from_cmdline(cmdline: bytes, comm: str) -> str:
    """psutil's name for a process whose ``comm`` was cut at ``COMM_MAX`` bytes: the
    basename of the command line's first word (``/proc/<pid>/cmdline``, NUL-separated, or
    one string with spaces as some programs rewrite it) when it starts with ``comm``."""
    data = clean_text(cmdline)
    if not data:
        return comm  # a zombie, or a kernel thread
    sep = "\x00" if data.endswith("\x00") else " "
    if data.endswith(sep):
        data = data[:-1]
    words = data.split(sep)
    if sep == "\x00" and len(words) == 1 and " " in data:
        words = data.split(" ")
    extended = os.path.basename(words[0])
    return extended if extended.startswith(comm) else comm


class ProcStatScan:
    """Every process from its ``/proc/<pid>/stat`` line alone: one read per process, where
    psutil reads each process's files several times. The fields are psutil's: the name
    (``comm``, or the command line's first word when ``comm`` was cut, looked up once per
    process), user + system time (fields 14 and 15), the start time (field 22) and the
    resident set (field 24, in pages) as a share of RAM: the kernel's running count, which
    can lag ``statm``'s exact one (psutil's) by a few hundred KB.
    Processes that vanish mid-scan, or whose line cannot be read, are skipped. Not thread-
    safe: one sensor calls it."""

    def __init__(self, proc: str = "/proc", total_ram: int | None = None) -> None:
        self._proc = proc
        self._tick_s = 1.0 / os.sysconf("SC_CLK_TCK")
        self._page = os.sysconf("SC_PAGE_SIZE")
        self._total_ram = total_ram
        #: (pid, start ticks, comm) -> the name from the command line, for cut names.
        self._long_names: dict[tuple[int, int, str], str] = {}

    @staticmethod
    def works(proc: str = "/proc") -> bool:
        """Whether this process can read its own stat line there (not on macOS, say)."""
        try:
            fd = os.open(f"{proc}/self/stat", os.O_RDONLY)
        except OSError:
            return False
        os.close(fd)
        return True

    def __call__(self) -> list[ProcessStat]:
        try:
            entries = os.listdir(self._proc)
            if self._total_ram is None:
                self._total_ram = int(psutil.virtual_memory().total)
        except (OSError, psutil.Error) as exc:
            raise SensorUnavailable("apps", f"process list unreadable: {exc}") from exc
        ram = float(self._total_ram) if self._total_ram > 0 else None
        tick_s, page, proc = self._tick_s, self._page, self._proc
        names: dict[tuple[int, int, str], str] = {}
        stats: list[ProcessStat] = []
        for entry in entries:
            if not entry.isdigit():
                continue
            try:
                fd = os.open(f"{proc}/{entry}/stat", os.O_RDONLY)
                try:
                    line = os.read(fd, 1024)
                finally:
                    os.close(fd)
            except OSError:
                continue  # gone since the listing, or hidden from this user
            stat = parse_stat_line(line)
            if stat is None:
                continue  # not a stat line: nothing to rank it by
            pid, name = int(entry), stat.comm
            if len(name) >= COMM_MAX:
                key = (pid, stat.start, name)
                name = self._long_names.get(key) or self._long_name(pid, name)
                names[key] = name
            stats.append(
                ProcessStat(
                    pid=pid,
                    name=name or entry,
                    cpu_s=stat.utime * tick_s + stat.stime * tick_s,
                    mem_pct=None if ram is None else stat.rss_pages * page / ram * 100,
                    started=stat.start * tick_s,
                )
            )
        self._long_names = names  # forget the processes that are gone
        if not stats:
            raise SensorUnavailable("apps", "no process is visible")
        return stats

    def _long_name(self, pid: int, comm: str) -> str:
        """psutil's rule: the command line's first word when it starts with the cut name."""
        try:
            with open(f"{self._proc}/{pid}/cmdline", "rb") as f:
                return name_from_cmdline(f.read(), comm)
        except OSError:
            return comm


def scan_processes_psutil() -> list[ProcessStat]:
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
                    name=clean_text(info.get("name") or str(proc.pid)),
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


_proc_scan: ProcStatScan | None = None


def scan_processes() -> list[ProcessStat]:
    """Every process: from ``/proc/<pid>/stat`` where this process can read its own
    (``ProcStatScan``), through psutil elsewhere. ``SensorUnavailable`` when the scan fails
    as a whole or sees nothing."""
    global _proc_scan
    if _proc_scan is None:
        if not ProcStatScan.works():
            return scan_processes_psutil()
        _proc_scan = ProcStatScan()
    return _proc_scan()


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
        share = 100.0 * used / dt_s
        if used > 0 and math.isfinite(share):
            shares[proc.pid] = share
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
        data["title"] = clean_text(redact(reading.title, patterns))  # redaction can lengthen
    if reading.pid is not None:
        data["pid"] = reading.pid
    return data


class AppsSensor:
    """The focused app (``app``, optional ``title``, ``pid``, and ``app_process``, the name the
    rankings give the window's process) and the top processes by CPU and
    by memory (see ``process_fields``).

    The rankings come from a scan of every process every ``rank_every_s`` (and at the second
    poll, which gives the first CPU ranking); the polls in between repeat the latest, so
    every sample carries them. Where no focused window can ever be read (``UnavailableFocus``:
    no graphical session, Android) the sensor polls only every ``rank_every_s``.

    Where the focused window cannot be read (no display, GNOME on Wayland, Android) the
    sample still carries the processes, and the reason is logged once per outage (at INFO
    where it could never be read: the sensor's plan says so at start; at WARNING where it
    could), then at DEBUG; only when the processes cannot be read either does ``read`` raise
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
        self._rank_every_s = config.rank_every_s
        if isinstance(self._focus, UnavailableFocus):  # nothing to poll in between
            self.interval_s = max(self.interval_s, self._rank_every_s)
        self._previous: Sequence[ProcessStat] | None = None
        self._previous_t: float | None = None
        self._scans = 0
        self._ranks: dict[str, Scalar] = {}
        self._names: dict[int, str] = {}  # pid -> name, at the latest scan
        self._warned: set[str] = set()
        self._focus_down = False

    def read(self, now: float) -> Sample:
        data: dict[str, Scalar] = {}
        focus_down: SensorUnavailable | None = None
        focused_pid: int | None = None
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
            focused_pid = reading.pid
        self._focus_down = focus_down is not None
        if self._scan_due(now):
            try:
                stats = self._processes()
            except SensorUnavailable as exc:
                if focus_down is not None:
                    reason = f"{focus_down.reason}; {exc.reason}"
                    raise SensorUnavailable(self.name, reason) from exc
                self._note("processes", exc.reason)
                self._ranks, self._names = {}, {}  # left out until a scan works again
            else:
                dt_s = None if self._previous_t is None else now - self._previous_t
                self._ranks = process_fields(stats, self._previous, dt_s, self._top_n)
                self._previous, self._previous_t = stats, now
                self._names = {p.pid: p.name for p in stats}
                self._scans += 1
        if focused_pid is not None and focused_pid in self._names:
            data[FOCUSED_PROCESS] = self._names[focused_pid]
        data.update(self._ranks)
        return Sample(self.name, now, data)

    def _scan_due(self, now: float) -> bool:
        """The first two polls scan (two scans give the first CPU ranking), then every
        ``rank_every_s``, give or take half a poll interval of timing jitter."""
        if self._scans < 2 or self._previous_t is None:
            return True
        return now - self._previous_t >= self._rank_every_s - 0.5 * self.interval_s

    def close(self) -> None:
        self._focus.close()

    def _note(self, piece: str, reason: str) -> None:
        if piece in self._warned:
            logger.debug("apps %s unreadable: %s", piece, reason)
        else:
            self._warned.add(piece)
            never = piece == "focus" and isinstance(self._focus, UnavailableFocus)
            logger.log(
                logging.INFO if never else logging.WARNING,
                "apps %s unreadable, leaving its fields out: %s",
                piece,
                reason,
            )
