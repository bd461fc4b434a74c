"""System sensor (stage 1): CPU, memory, network, disk, temperature, psutil's numbers (read
from /proc and /sys directly where psutil reads more than that); read() is thin, parse() pure."""

from __future__ import annotations

import glob
import logging
import math
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, fields
from typing import TypeVar

import psutil

from agent.config import SystemSensorConfig
from agent.errors import SensorUnavailable
from agent.samples import Sample, Scalar
from agent.sensors.values import clean_text, kernel_int

logger = logging.getLogger(__name__)

_T = TypeVar("_T")

#: Temperature chips (psutil's hwmon / thermal-zone names) that measure the CPU package, most
#: specific first: Intel, AMD, ARM boards and SoCs; ACPI's zone is only a last resort.
CPU_TEMPERATURE_CHIPS = (
    "coretemp",
    "k10temp",
    "zenpower",
    "cpu_thermal",
    "cpu-thermal",
    "soc_thermal",
    "acpitz",
)


@dataclass(frozen=True, slots=True)
class SystemReading:
    """The raw values of one poll; a field is None when its piece could not be read.

    Counters are totals since boot, so only differences between two readings mean anything:
    ``cpu_busy_s``/``cpu_total_s`` are CPU-seconds summed over all CPUs (busy excludes idle and
    iowait), the ``*_B`` fields are bytes.
    """

    cpu_busy_s: float | None = None
    cpu_total_s: float | None = None
    load1: float | None = None
    mem_total_B: int | None = None
    mem_available_B: int | None = None
    swap_total_B: int | None = None
    swap_used_B: int | None = None
    net_rx_B: int | None = None
    net_tx_B: int | None = None
    disk_read_B: int | None = None
    disk_write_B: int | None = None
    temp_C: float | None = None
    #: Per device (name, received or read B, sent or written B), the totals' parts.
    nics: tuple[tuple[str, int, int], ...] = ()
    disks: tuple[tuple[str, int, int], ...] = ()


#: Polls between two searches of ``/sys`` for temperature sensors: the search (psutil's, at
#: every call) costs far more than reading the sensors it finds; a driver loaded late is
#: found at the next search.
TEMPERATURE_SEARCH_EVERY = 60


class PsutilProbe:
    """The one outside dependency of ``SystemSensor``: one method per piece, psutil's numbers.

    A method may raise ``OSError`` (Android denies ``/proc/stat``: ``PermissionError``) or a
    ``psutil.Error``; the sensor catches both. Tests pass a subclass to play another platform.
    On Linux and Android, where psutil reads more than the sensor uses, the probe reads the
    same files itself: network and disk counters, swap from ``/proc/meminfo`` alone, the
    temperature files psutil would read (found every ``TEMPERATURE_SEARCH_EVERY`` polls), and
    which devices are partitions once per name.
    """

    def __init__(self, proc: str = "/proc", sys_dir: str = "/sys") -> None:
        self._proc = proc
        self._sys = sys_dir
        self._linux = sys.platform.startswith(("linux", "android"))
        self._partitions: dict[str, bool] = {}
        self._temp_inputs: list[tuple[str, str]] = []  # (chip, file with milli-degrees C)
        self._temp_polls = 0

    def cpu_times(self) -> tuple[float, float]:
        """(busy, total) CPU-seconds since boot, counted the way ``psutil.cpu_percent`` does."""
        # Not cpu_percent(interval=None): psutil 7 keeps its baseline per calling thread, so
        # a job landing on a fresh APScheduler pool thread would get a meaningless 0.0. The
        # raw counters let parse() work out the share between our own two readings.
        t = psutil.cpu_times()
        # Guest time is already inside user/nice on Linux, and iowait is idle time (psutil, htop).
        total = sum(t) - float(getattr(t, "guest", 0.0)) - float(getattr(t, "guest_nice", 0.0))
        return total - t.idle - float(getattr(t, "iowait", 0.0)), total

    def load1(self) -> float:
        return psutil.getloadavg()[0]

    def memory(self) -> tuple[int, int]:
        """(total, available) bytes."""
        vm = psutil.virtual_memory()
        return vm.total, vm.available

    def swap(self) -> tuple[int, int]:
        """(total, used) bytes: ``SwapTotal`` and ``SwapTotal - SwapFree``, as psutil reads
        them (psutil also reads ``/proc/vmstat`` for swap-ins, which the sensor has no use
        for); psutil's own call where ``/proc/meminfo`` lacks them."""
        try:
            with open(f"{self._proc}/meminfo", "rb") as f:
                text = f.read()
        except FileNotFoundError:
            text = b""
        swap = parse_meminfo_swap(text)
        if swap is not None:
            return swap
        sm = psutil.swap_memory()
        return sm.total, sm.used

    def net(self) -> dict[str, tuple[int, int]]:
        """(received, sent) bytes per interface, loopback and never-used ones left out."""
        if self._linux:  # psutil's numbers, from the one file it reads them from
            with open(f"{self._proc}/net/dev", "rb") as f:
                counts = parse_net_dev(f.read())
        else:
            counts = {
                n: (c.bytes_recv, c.bytes_sent)
                for n, c in psutil.net_io_counters(pernic=True).items()
            }
        return {
            clean_text(name): c for name, c in counts.items() if name != "lo" and (c[0] or c[1])
        }

    def disk(self) -> dict[str, tuple[int, int]]:
        """(read, written) bytes per whole physical disk.

        Partitions, loop, RAM and zram devices, and device-mapper/md layers are left out:
        their traffic is already counted on the disk underneath (or is not a disk at all).
        """
        counts = self._diskstats() if self._linux else None
        if counts is None:
            disks = psutil.disk_io_counters(perdisk=True) or {}
            counts = {name: (d.read_bytes, d.write_bytes) for name, d in disks.items()}
        return {
            name: c for name, c in counts.items() if is_physical_disk(name, self._partition(name))
        }

    def _diskstats(self) -> dict[str, tuple[int, int]] | None:
        """Bytes read and written per device from ``/proc/diskstats`` (sectors of 512 bytes,
        whatever the disk's own), as psutil reads them; None for a layout older than Linux
        2.6 or a file that is not there, which psutil sorts out."""
        try:
            with open(f"{self._proc}/diskstats", "rb") as f:
                return parse_diskstats(f.read())
        except FileNotFoundError:
            return None

    def _partition(self, name: str) -> bool:
        known = self._partitions.get(name)
        if known is None:
            known = self._partitions[name] = self.is_partition(name)
        return known

    def is_partition(self, name: str) -> bool:
        return os.path.exists(f"{self._sys}/class/block/{name}/partition")

    def temperatures(self) -> dict[str, list[float]]:
        """Current °C per chip, of the chips ``pick_temperature`` can choose; empty where
        there are none. The same files psutil's ``sensors_temperatures`` reads on Linux;
        psutil's call elsewhere (none on macOS and Windows)."""
        if not self._linux:
            if not hasattr(psutil, "sensors_temperatures"):
                return {}
            chips = psutil.sensors_temperatures()
            return {chip: [float(e.current) for e in entries] for chip, entries in chips.items()}
        if self._temp_polls % TEMPERATURE_SEARCH_EVERY == 0:
            self._temp_inputs = find_temperature_inputs(self._sys)
        self._temp_polls += 1
        found: dict[str, list[float]] = {}
        for chip, path in self._temp_inputs:
            try:
                with open(path, "rb") as f:
                    value = parse_millidegrees(f.read())
            except OSError:
                continue  # psutil skips an unreadable sensor too
            if value is not None:
                found.setdefault(chip, []).append(value)
        return found


# The parsers of the files above: pure functions of the file's bytes. A line or a value
# that is not what the kernel writes (a 64-bit decimal) is left out; so is a whole file
# whose layout is unknown (None: psutil, which knows older layouts, reads it instead).


#: Longer than any interface (15 bytes) or disk (32) name the kernel gives.
_NAME_MAX_B = 64


def parse_meminfo_swap(text: bytes) -> tuple[int, int] | None:
    """(total, used) swap bytes from ``/proc/meminfo``: ``SwapTotal`` and ``SwapTotal -
    SwapFree`` (kB); None unless both are there and free is not above total."""
    found: dict[bytes, int] = {}
    for line in text.splitlines():
        words = line.split()
        if line.startswith(b"Swap") and len(words) >= 2:
            kib = kernel_int(words[1], 0)
            if kib is not None:
                found[words[0]] = kib * 1024
    total, free = found.get(b"SwapTotal:"), found.get(b"SwapFree:")
    if total is None or free is None or free > total:
        return None
    return total, total - free


def parse_net_dev(text: bytes) -> dict[str, tuple[int, int]]:
    """(received, sent) bytes per interface from ``/proc/net/dev`` (two header lines, then
    ``name: rx_bytes ... tx_bytes ...``, the 1st and 9th numbers)."""
    counts: dict[str, tuple[int, int]] = {}
    for line in text.splitlines()[2:]:
        name, colon, rest = line.rpartition(b":")
        name, fields = name.strip(), rest.split()
        if not colon or not 0 < len(name) <= _NAME_MAX_B or len(fields) < 9:
            continue
        received, sent = kernel_int(fields[0], 0), kernel_int(fields[8], 0)
        if received is not None and sent is not None:
            counts[clean_text(name)] = (received, sent)
    return counts


def parse_diskstats(text: bytes) -> dict[str, tuple[int, int]] | None:
    """Bytes read and written per device from ``/proc/diskstats`` (sectors of 512 bytes,
    whatever the disk's own): 14 fields, or 18 and more since Linux 4.18; None for a layout
    older than Linux 2.6 or unknown."""
    counts: dict[str, tuple[int, int]] = {}
    for line in text.splitlines():
        fields = line.split()
        if len(fields) == 14 or len(fields) >= 18:
            read, written = kernel_int(fields[5], 0), kernel_int(fields[9], 0)
            if read is None or written is None or len(fields[2]) > _NAME_MAX_B:
                return None
            counts[clean_text(fields[2])] = (read * 512, written * 512)
        elif len(fields) != 7:  # 7: a partition on Linux 2.6, left out anyway
            return None
    return counts


def parse_millidegrees(text: bytes) -> float | None:
    """°C from a hwmon ``temp*_input`` or thermal zone ``temp`` (integer millidegrees);
    None for anything else, or beyond ±10 000 °C."""
    milli = kernel_int(text, -10_000_000, 10_000_000)
    return None if milli is None else milli / 1000.0


def find_temperature_inputs(sys_dir: str = "/sys") -> list[tuple[str, str]]:
    """(chip, input file) of every temperature sensor psutil's ``sensors_temperatures``
    reads on Linux, where the chip is one ``pick_temperature`` can choose: hwmon's
    ``temp*_input``, or the thermal zones' ``temp`` where hwmon has none. (psutil also
    globs coretemp under ``/sys/devices/platform``, but reads nothing from those names.)"""
    hwmon = f"{sys_dir}/class/hwmon"
    names = glob.glob(f"{hwmon}/hwmon*/temp*_*") + glob.glob(f"{hwmon}/hwmon*/device/temp*_*")
    bases = sorted(
        {os.path.join(os.path.dirname(n), os.path.basename(n).split("_")[0]) for n in names}
    )
    inputs = [(os.path.join(os.path.dirname(b), "name"), b + "_input") for b in bases]
    if not bases:
        zones = sorted(set(glob.glob(f"{sys_dir}/class/thermal/thermal_zone*")))
        inputs = [(os.path.join(z, "type"), os.path.join(z, "temp")) for z in zones]
    found: list[tuple[str, str]] = []
    for name_file, path in inputs:
        try:
            with open(name_file, encoding="utf-8", errors="replace") as f:
                chip = f.read().strip()
        except OSError:
            continue
        if chip in CPU_TEMPERATURE_CHIPS or "cpu" in chip:
            found.append((chip, path))
    return found


_VIRTUAL_DISK_PREFIXES = ("loop", "ram", "zram", "dm-", "md", "sr", "fd", "nbd")


def is_physical_disk(name: str, is_partition: bool) -> bool:
    """Whether a block device's traffic belongs in the disk totals (see PsutilProbe.disk)."""
    return not is_partition and not name.startswith(_VIRTUAL_DISK_PREFIXES)


def pick_temperature(chips: Mapping[str, Sequence[float]]) -> float | None:
    """The hottest reading of the first CPU chip present, or None when there is none.

    Chips in ``CPU_TEMPERATURE_CHIPS`` come first, then any chip named ``*cpu*``; readings of
    0 or below (or NaN, infinite) are broken sensors and are ignored.
    """
    fallback = sorted(chip for chip in chips if "cpu" in chip and chip not in CPU_TEMPERATURE_CHIPS)
    for chip in (*CPU_TEMPERATURE_CHIPS, *fallback):
        values = [v for v in chips.get(chip, ()) if math.isfinite(v) and v > 0]
        if values:
            return max(values)
    return None


def parse(
    reading: SystemReading,
    previous: SystemReading | None,
    now: float,
    previous_t: float | None,
    *,
    per_device: bool = True,
) -> dict[str, Scalar]:
    """The sample fields for ``reading`` taken at ``now``, given the one before it (or None).

    Rates are counter differences over ``now - previous_t``; a rate is left out on the first
    reading, when time did not move forward, or when its counter went backward (wrapped or
    reset). ``cpu_pct`` is the busy share of the CPU time between the two readings (it needs
    no wall time), so it is left out on the first reading too. Percentages are rounded to
    3 decimals, rates to 0.1 B/s, load to 3 decimals and temperature to 0.1 °C.
    """
    data: dict[str, Scalar] = {}
    if previous is not None:
        cpu = _cpu_pct(reading, previous)
        if cpu is not None:
            data["cpu_pct"] = cpu
    if reading.load1 is not None:
        data["load1"] = round(reading.load1, 3)
    total, available = reading.mem_total_B, reading.mem_available_B
    if total and available is not None:
        data["mem_used_pct"] = round(100.0 * (total - available) / total, 3)
    if reading.swap_total_B and reading.swap_used_B is not None:
        data["swap_pct"] = round(100.0 * reading.swap_used_B / reading.swap_total_B, 3)
    if previous is not None and previous_t is not None and now > previous_t:
        dt = now - previous_t
        counters = (
            ("net_rx_Bps", reading.net_rx_B, previous.net_rx_B),
            ("net_tx_Bps", reading.net_tx_B, previous.net_tx_B),
            ("disk_read_Bps", reading.disk_read_B, previous.disk_read_B),
            ("disk_write_Bps", reading.disk_write_B, previous.disk_write_B),
        )
        for key, new, old in counters:
            if new is not None and old is not None and new >= old:
                data[key] = round((new - old) / dt, 1)
        if per_device:
            data.update(_device_rates("net", ("rx_Bps", "tx_Bps"), reading.nics, previous.nics, dt))
            data.update(
                _device_rates("disk", ("read_Bps", "write_Bps"), reading.disks, previous.disks, dt)
            )
    if reading.temp_C is not None:
        data["temp_C"] = round(reading.temp_C, 1)
    return data


def _device_rates(
    kind: str,
    names: tuple[str, str],
    new: tuple[tuple[str, int, int], ...],
    old: tuple[tuple[str, int, int], ...],
    dt: float,
) -> dict[str, Scalar]:
    """``<kind>.<device>.<name>`` rates for devices present in both readings."""
    before = {device: (a, b) for device, a, b in old}
    rates: dict[str, Scalar] = {}
    for device, a, b in new:
        if device not in before:
            continue
        for name, now_b, then_b in zip(names, (a, b), before[device], strict=True):
            if now_b >= then_b:
                rates[f"{kind}.{device}.{name}"] = round((now_b - then_b) / dt, 1)
    return rates


def _cpu_pct(new: SystemReading, old: SystemReading) -> float | None:
    if (
        new.cpu_busy_s is None
        or new.cpu_total_s is None
        or old.cpu_busy_s is None
        or old.cpu_total_s is None
    ):
        return None
    total = new.cpu_total_s - old.cpu_total_s
    busy = new.cpu_busy_s - old.cpu_busy_s
    if total <= 0:
        return None
    # Busy time is a difference of large float sums: an idle interval can come out a hair
    # below zero, which means 0. iowait may decrease (proc(5)), which can push busy past
    # total by a tick: cap at 100.
    return round(min(100.0, 100.0 * max(busy, 0.0) / total), 3)


class SystemSensor:
    """Polls the whole machine: ``cpu_pct``, ``load1``, memory, swap, network, disk, ``temp_C``.

    Each piece is read on its own: one that fails (Android denies ``/proc/stat``) leaves out
    its fields, with one WARNING per piece and DEBUG after that. Only when nothing at all
    can be read does ``read`` raise ``SensorUnavailable``. Rates need the previous reading,
    which the sensor keeps, so the first sample has no rates and no ``cpu_pct``.
    """

    def __init__(self, config: SystemSensorConfig, probe: PsutilProbe | None = None) -> None:
        self.name = "system"
        self.interval_s = config.interval_s
        self._per_device = config.per_device
        self._probe = probe if probe is not None else PsutilProbe()
        self._previous: SystemReading | None = None
        self._previous_t: float | None = None
        self._warned: set[str] = set()

    def read(self, now: float) -> Sample | None:
        reading = self._gather()
        data = parse(reading, self._previous, now, self._previous_t, per_device=self._per_device)
        self._previous, self._previous_t = reading, now
        return Sample(self.name, now, data) if data else None

    def close(self) -> None:
        pass

    def _gather(self) -> SystemReading:
        probe = self._probe
        failures: dict[str, Exception] = {}
        cpu = self._try("cpu", probe.cpu_times, failures)
        load1 = self._try("load", probe.load1, failures)
        memory = self._try("memory", probe.memory, failures)
        swap = self._try("swap", probe.swap, failures)
        net = self._try("net", probe.net, failures)
        disk = self._try("disk", probe.disk, failures)
        chips = self._try("temperature", probe.temperatures, failures)
        reading = SystemReading(
            cpu_busy_s=cpu[0] if cpu else None,
            cpu_total_s=cpu[1] if cpu else None,
            load1=load1,
            mem_total_B=memory[0] if memory else None,
            mem_available_B=memory[1] if memory else None,
            swap_total_B=swap[0] if swap else None,
            swap_used_B=swap[1] if swap else None,
            net_rx_B=sum(v[0] for v in net.values()) if net is not None else None,
            net_tx_B=sum(v[1] for v in net.values()) if net is not None else None,
            disk_read_B=sum(v[0] for v in disk.values()) if disk is not None else None,
            disk_write_B=sum(v[1] for v in disk.values()) if disk is not None else None,
            temp_C=pick_temperature(chips) if chips else None,
            nics=tuple(sorted((k, *v) for k, v in (net or {}).items())),
            disks=tuple(sorted((k, *v) for k, v in (disk or {}).items())),
        )
        if all(getattr(reading, f.name) in (None, ()) for f in fields(reading)):
            reason = "; ".join(f"{piece}: {exc}" for piece, exc in failures.items())
            last = next(reversed(failures.values()), None)
            raise SensorUnavailable(self.name, reason or "no metric available") from last
        return reading

    def _try(self, piece: str, call: Callable[[], _T], failures: dict[str, Exception]) -> _T | None:
        # psutil's errors end here, translated into "this piece is missing".
        try:
            return call()
        except (OSError, psutil.Error) as exc:
            failures[piece] = exc
            if piece in self._warned:
                logger.debug("system %s unreadable: %s", piece, exc)
            else:
                self._warned.add(piece)
                logger.warning("system %s unreadable, leaving its fields out: %s", piece, exc)
            return None
