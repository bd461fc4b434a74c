"""Energy counters: Intel/AMD RAPL through powercap sysfs, and the machine's busy CPU seconds.

RAPL (Running Average Power Limit) zones appear under ``/sys/class/powercap`` as
``intel-rapl:<package>`` (``name``: ``package-0``, ``psys``, ...) with subzones
``intel-rapl:<package>:<n>`` (``core``, ``uncore``, ``dram``); the kernel's intel_rapl driver
serves AMD Zen processors under the same names. ``energy_uj`` counts microjoules since an
arbitrary start and wraps at ``max_energy_range_uj`` (Documentation/power/powercap/
powercap.rst). Reads are hot (the daemon reads every few seconds), so each file stays open
and is read with ``os.pread``.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

from agent.errors import SensorReadError

logger = logging.getLogger(__name__)

DEFAULT_ROOT = "/sys/class/powercap"
PROC_STAT = "/proc/stat"

#: Since the fix for CVE-2020-8694 (a power side channel), ``energy_uj`` is readable only by
#: root. A udev rule gives a group read access on every boot.
UDEV_HINT = (
    'a udev rule can let a group read it, e.g. SUBSYSTEM=="powercap", ACTION=="add", '
    'RUN+="/bin/chgrp power /sys%p/energy_uj", RUN+="/bin/chmod g+r /sys%p/energy_uj" '
    "with your user in group power"
)

#: Top-level zones. ``intel-rapl-mmio:<n>`` repeats package-0 through another interface
#: (newer Intel laptops) and would count the package twice: not matched.
_ZONE = re.compile(r"intel-rapl:(\d+)")
_SUBZONE = re.compile(r"intel-rapl:\d+:(\d+)")

#: Enough for any counter's text (20 digits and a newline).
_READ_BYTES = 64


class RaplSearch(NamedTuple):
    """What ``find_rapl`` found: a counter, or None and the reason (empty when found)."""

    counter: RaplCounter | None
    reason: str


class _EnergyFile:
    """One zone's ``energy_uj``, kept open; remembers its last raw value to undo wraps."""

    def __init__(self, zone: Path) -> None:
        self.path = zone / "energy_uj"
        range_file = zone / "max_energy_range_uj"
        try:
            self.range_uj = int(range_file.read_text(encoding="ascii"))
        except ValueError as exc:
            raise ValueError(f"{range_file}: {exc}") from exc
        if self.range_uj <= 0:
            raise ValueError(f"{range_file}: {self.range_uj}")
        self._fd: int | None = os.open(self.path, os.O_RDONLY)
        try:
            self._last = _parse_counter(os.pread(self._fd, _READ_BYTES, 0))
        except OSError as exc:  # pread's error names no file: name it
            self.close()
            raise OSError(exc.errno, exc.strerror, str(self.path)) from exc
        except ValueError as exc:
            self.close()
            raise ValueError(f"{self.path}: {exc}") from exc

    def delta_uj(self) -> int:
        """Microjoules since the previous read, a wrap undone (at most one between reads)."""
        raw = self._read()
        delta = raw - self._last
        if delta < 0:
            delta += self.range_uj
        self._last = raw
        return delta

    def _read(self) -> int:
        """The counter's value; on an error the file is reopened and read once more."""
        try:
            if self._fd is None:
                raise OSError("closed")
            return _parse_counter(os.pread(self._fd, _READ_BYTES, 0))
        except (OSError, ValueError) as first:
            logger.debug("rereading %s after: %s", self.path, first)
            self.close()
            try:
                self._fd = os.open(self.path, os.O_RDONLY)
                return _parse_counter(os.pread(self._fd, _READ_BYTES, 0))
            except (OSError, ValueError) as exc:
                raise SensorReadError("rapl", f"{self.path}: {_why(exc)}") from exc

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


class RaplCounter:
    """Joules used by the zones in ``zones`` since the counter was made, wraps undone.

    Each zone's counter must be read at least once per wrap (``max_energy_range_uj`` at full
    power: tens of minutes for a package, hours for psys); the daemon reads far more often.
    """

    def __init__(self, label: str, zones: Sequence[str | Path]) -> None:
        self.label = label
        self.zones = tuple(Path(zone) for zone in zones)
        self._files: list[_EnergyFile] = []
        try:
            for zone in self.zones:
                self._files.append(_EnergyFile(zone))
        except BaseException:
            self.close()
            raise
        self._total_uj = 0

    def read_j(self) -> float:
        """Cumulative joules since the counter was made; ``SensorReadError`` if unreadable."""
        for energy in self._files:
            self._total_uj += energy.delta_uj()
        return self._total_uj / 1e6

    def close(self) -> None:
        for energy in self._files:
            energy.close()

    def __enter__(self) -> RaplCounter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def find_rapl(root: str | Path = DEFAULT_ROOT) -> RaplSearch:
    """The machine's RAPL counter, or None with the reason there is none.

    ``psys`` (the whole platform: SoC, memory, and on some laptops more) is chosen when
    present; otherwise every package zone with its ``dram`` subzone (``core`` and ``uncore``
    are parts of the package, so never added).
    """
    base = Path(root)
    try:
        entries = sorted(entry.name for entry in base.iterdir())
    except FileNotFoundError:
        why = "a kernel without powercap: a virtual machine, a phone, not Linux"
        return RaplSearch(None, f"no RAPL: {base} does not exist ({why})")
    except OSError as exc:
        return RaplSearch(None, f"no RAPL: cannot list {base}: {_why(exc)}")
    zones = sorted(
        (int(m.group(1)), name) for name in entries if (m := _ZONE.fullmatch(name)) is not None
    )
    names = {name: _zone_name(base / name) for _, name in zones}
    if not zones:
        return RaplSearch(
            None,
            f"no RAPL zones in {base} (the intel_rapl_msr module is not loaded, or this CPU or "
            "virtual machine does not expose RAPL)",
        )
    psys = [base / name for _, name in zones if names[name] == "psys"]
    if psys:
        label, chosen = "RAPL psys", psys[:1]
    else:
        packages = [name for _, name in zones if (names[name] or "").startswith("package")]
        if not packages:
            found = ", ".join(f"{name} ({names[name]})" for _, name in zones)
            return RaplSearch(None, f"no RAPL package or psys zone in {base}: {found}")
        chosen = []
        dram = False
        for name in packages:
            chosen.append(base / name)
            for sub in _subzones(base / name):
                if _zone_name(sub) == "dram":
                    chosen.append(sub)
                    dram = True
        label = "RAPL package+dram" if dram else "RAPL package"
    try:
        return RaplSearch(RaplCounter(label, chosen), "")
    except PermissionError as exc:
        where = exc.filename or base
        return RaplSearch(None, f"{where} is readable only by root (CVE-2020-8694); {UDEV_HINT}")
    except OSError as exc:
        return RaplSearch(None, f"cannot read RAPL {exc.filename or base}: {_why(exc)}")
    except ValueError as exc:
        return RaplSearch(None, f"RAPL counter is not a number: {exc}")


def _zone_name(zone: Path) -> str | None:
    try:
        return zone.joinpath("name").read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError) as exc:
        logger.debug("no name for %s: %s", zone, exc)
        return None


def _subzones(zone: Path) -> list[Path]:
    """Subzone directories inside ``zone`` (sysfs nests them in the parent's device)."""
    try:
        names = [entry.name for entry in zone.iterdir()]
    except OSError:
        return []
    found = sorted((int(m.group(1)), name) for name in names if (m := _SUBZONE.fullmatch(name)))
    return [zone / name for _, name in found]


def _parse_counter(raw: bytes) -> int:
    value = int(raw.decode("ascii").strip())
    if value < 0:
        raise ValueError(f"negative counter {value}")
    return value


def _why(exc: BaseException) -> str:
    return exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)


# --- the machine's busy CPU time -----------------------------------------------------------


def parse_proc_stat(text: str) -> int | None:
    """Busy jiffies of all CPUs from ``/proc/stat``'s first ``cpu`` line, or None.

    busy = user + nice + system + irq + softirq + steal; ``idle`` and ``iowait`` are not
    busy, and ``guest``/``guest_nice`` are already inside ``user``/``nice`` (proc(5)).
    """
    for line in text.splitlines():
        fields = line.split()
        if not fields or fields[0] != "cpu":
            continue
        try:
            values = [int(v) for v in fields[1:]]
        except ValueError:
            return None
        if len(values) < 4:
            return None
        busy = (0, 1, 2, 5, 6, 7)  # user nice system | idle iowait | irq softirq steal
        return sum(values[i] for i in busy if i < len(values))
    return None


def node_busy_cpu_s(path: str | Path = PROC_STAT) -> float | None:
    """The machine's busy CPU seconds since boot, or None where ``/proc/stat`` is denied
    (Android denies it to apps) or unreadable."""
    try:
        text = Path(path).read_text(encoding="ascii")
    except (OSError, UnicodeDecodeError) as exc:
        logger.debug("cannot read %s: %s", path, exc)
        return None
    jiffies = parse_proc_stat(text)
    return None if jiffies is None else jiffies / _clock_ticks()


class NodeCpu:
    """``node_busy_cpu_s`` on a file kept open, for repeated reads.

    ``read`` gives None while the file cannot be read (and tries to reopen it next time).
    """

    def __init__(self, path: str | Path = PROC_STAT) -> None:
        self.path = Path(path)
        self._fd: int | None = None
        self._ticks = _clock_ticks()

    def read(self) -> float | None:
        try:
            if self._fd is None:
                self._fd = os.open(self.path, os.O_RDONLY)
            # The first line is at the start; one page holds it however many CPUs follow.
            raw = os.pread(self._fd, 4096, 0)
        except OSError as exc:
            logger.debug("cannot read %s: %s", self.path, exc)
            self.close()
            return None
        jiffies = parse_proc_stat(raw.decode("ascii", errors="replace"))
        return None if jiffies is None else jiffies / self._ticks

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> NodeCpu:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _clock_ticks() -> int:
    try:
        ticks = os.sysconf("SC_CLK_TCK")
    except (ValueError, OSError):
        return 100
    return ticks if ticks > 0 else 100
