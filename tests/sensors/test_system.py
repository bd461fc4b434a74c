"""The system sensor: parse() on recorded readings, exact values; read() on this machine."""

from __future__ import annotations

import json
import logging
from dataclasses import replace
from pathlib import Path

import psutil
import pytest

from agent.config import SystemSensorConfig
from agent.errors import SensorUnavailable
from agent.sensors.system import (
    TEMPERATURE_SEARCH_EVERY,
    PsutilProbe,
    SystemReading,
    SystemSensor,
    find_temperature_inputs,
    is_physical_disk,
    parse,
    parse_meminfo_swap,
    parse_millidegrees,
    parse_net_dev,
    pick_temperature,
)

SYSTEM_FIELDS = {
    "cpu_pct",
    "load1",
    "mem_used_pct",
    "swap_pct",
    "net_rx_Bps",
    "net_tx_Bps",
    "disk_read_Bps",
    "disk_write_Bps",
    "temp_C",
}
RATES = {"net_rx_Bps", "net_tx_Bps", "disk_read_Bps", "disk_write_Bps"}

GiB = 1024**3

# Two polls of a 4-CPU laptop 10 s apart (t0, t0 + 10), values chosen so the arithmetic can
# be checked by hand.
T0 = 1_700_000_000.0
FIRST = SystemReading(
    cpu_busy_s=12_000.0,
    cpu_total_s=400_000.0,
    load1=0.52,
    mem_total_B=16 * GiB,
    mem_available_B=6 * GiB,
    swap_total_B=2 * GiB,
    swap_used_B=715_827_882,
    net_rx_B=1_000_000_000,
    net_tx_B=50_000_000,
    disk_read_B=9_000_000_000,
    disk_write_B=3_000_000_000,
    temp_C=48.0,
)
SECOND = SystemReading(
    cpu_busy_s=12_002.5,
    cpu_total_s=400_040.0,
    load1=0.61,
    mem_total_B=16 * GiB,
    mem_available_B=5 * GiB,
    swap_total_B=2 * GiB,
    swap_used_B=715_827_882,
    net_rx_B=1_001_234_567,
    net_tx_B=50_098_765,
    disk_read_B=9_040_960_000,
    disk_write_B=3_001_000_001,
    temp_C=51.04,
)


def test_first_reading_has_levels_but_no_rates_and_no_cpu() -> None:
    assert parse(FIRST, None, T0, None) == {
        "load1": 0.52,
        "mem_used_pct": 62.5,  # (16 - 6) GiB / 16 GiB
        "swap_pct": 33.333,  # 715_827_882 / 2 GiB = 0.3333333330 -> 33.333
        "temp_C": 48.0,
    }


def test_second_reading_rates_from_counter_deltas() -> None:
    data = parse(SECOND, FIRST, T0 + 10.0, T0)
    assert data == {
        "cpu_pct": 6.25,  # 2.5 busy CPU-s of 40 CPU-s (4 CPUs x 10 s)
        "load1": 0.61,
        "mem_used_pct": 68.75,  # (16 - 5) GiB / 16 GiB = 11/16
        "swap_pct": 33.333,
        "net_rx_Bps": 123_456.7,  # 1_234_567 B / 10 s
        "net_tx_Bps": 9_876.5,  # 98_765 B / 10 s
        "disk_read_Bps": 4_096_000.0,  # 40_960_000 B / 10 s
        "disk_write_Bps": 100_000.1,  # 1_000_001 B / 10 s
        "temp_C": 51.0,  # 51.04 to 0.1 degC
    }
    assert list(data) == [  # ARCHITECTURE.md's order, so equal runs write equal bytes
        "cpu_pct",
        "load1",
        "mem_used_pct",
        "swap_pct",
        "net_rx_Bps",
        "net_tx_Bps",
        "disk_read_Bps",
        "disk_write_Bps",
        "temp_C",
    ]


def test_per_device_rates() -> None:
    first = replace(FIRST, nics=(("eth0", 1_000, 500), ("wlan0", 10, 10)), disks=(("sda", 0, 0),))
    second = replace(
        SECOND,
        nics=(("eth0", 21_000, 1_500), ("wlan0", 5, 20), ("wg0", 100, 100)),
        disks=(("sda", 40_960, 1),),
    )
    data = parse(second, first, T0 + 10.0, T0)
    per_device = {k: v for k, v in data.items() if k.startswith(("net.", "disk."))}
    assert per_device == {
        "net.eth0.rx_Bps": 2_000.0,  # 20_000 B / 10 s
        "net.eth0.tx_Bps": 100.0,
        # wlan0 received went back (5 < 10): left out; sent 10 B / 10 s
        "net.wlan0.tx_Bps": 1.0,
        # wg0 appeared: no previous reading, no rate
        "disk.sda.read_Bps": 4_096.0,
        "disk.sda.write_Bps": 0.1,
    }
    assert not any(
        k.startswith(("net.", "disk."))
        for k in parse(second, first, T0 + 10.0, T0, per_device=False)
    )


def test_physical_disks_only() -> None:
    assert is_physical_disk("sda", False) and is_physical_disk("nvme0n1", False)
    assert is_physical_disk("mmcblk0", False)
    assert not is_physical_disk("sda1", True)  # a partition: counted on sda
    for virtual in ("loop0", "zram0", "dm-0", "md127", "ram0", "sr0"):
        assert not is_physical_disk(virtual, False)


def test_counter_that_went_backward_leaves_only_its_rate_out() -> None:
    # The interface was taken down and up again: received bytes restarted from 4_000.
    reset = replace(SECOND, net_rx_B=4_000)
    data = parse(reset, FIRST, T0 + 10.0, T0)
    assert "net_rx_Bps" not in data
    assert data["net_tx_Bps"] == 9_876.5
    assert data["disk_read_Bps"] == 4_096_000.0


def test_time_not_moving_forward_gives_no_rates_but_cpu_still_counts() -> None:
    for now in (T0, T0 - 1.0):
        data = parse(SECOND, FIRST, now, T0)
        assert not RATES & data.keys()
        assert data["cpu_pct"] == 6.25  # CPU share needs CPU-time deltas only, not wall time


def test_cpu_left_out_when_either_reading_lacks_it_or_ticks_did_not_advance() -> None:
    no_cpu = replace(FIRST, cpu_busy_s=None, cpu_total_s=None)
    assert "cpu_pct" not in parse(SECOND, no_cpu, T0 + 10.0, T0)
    assert "cpu_pct" not in parse(no_cpu, FIRST, T0 + 10.0, T0)
    assert "cpu_pct" not in parse(FIRST, FIRST, T0 + 10.0, T0)  # 0 CPU-s elapsed: no share


def test_cpu_share_is_capped_at_100() -> None:
    # iowait can decrease between reads (proc(5)); busy then grows a tick more than total.
    over = SystemReading(cpu_busy_s=12_040.01, cpu_total_s=400_040.0)
    assert parse(over, FIRST, T0 + 10.0, T0)["cpu_pct"] == 100.0


def test_no_swap_means_no_swap_pct() -> None:
    no_swap = replace(SECOND, swap_total_B=0, swap_used_B=0)
    assert "swap_pct" not in parse(no_swap, FIRST, T0 + 10.0, T0)


def test_pick_temperature_prefers_the_cpu_package() -> None:
    # Shapes of psutil.sensors_temperatures() on an Intel laptop (current degC per entry).
    chips = {"acpitz": [27.8, 29.8], "coretemp": [45.0, 52.0, 49.0], "nvme": [38.9]}
    assert pick_temperature(chips) == 52.0
    assert pick_temperature({"nvme": [38.9], "iwlwifi_1": [41.0]}) is None
    assert pick_temperature({"coretemp": [0.0], "acpitz": [27.8]}) == 27.8  # 0 = broken sensor
    assert pick_temperature({"cpu0_thermal": [61.5], "gpu_thermal": [70.0]}) == 61.5
    assert pick_temperature({}) is None


class AndroidProbe(PsutilProbe):
    """Termux on Android: /proc/stat is denied (SELinux), so psutil's CPU call raises
    PermissionError, as ARCHITECTURE.md (Platforms) describes. Everything else is this machine's."""

    def cpu_times(self) -> tuple[float, float]:
        raise PermissionError(13, "Permission denied", "/proc/stat")


class AccessDeniedProbe(PsutilProbe):
    """The same denial as psutil reports it on some builds: psutil.AccessDenied."""

    def cpu_times(self) -> tuple[float, float]:
        raise psutil.AccessDenied()


@pytest.mark.parametrize(
    "probe", [AndroidProbe(), AccessDeniedProbe()], ids=["PermissionError", "AccessDenied"]
)
def test_denied_cpu_leaves_cpu_out_and_keeps_the_rest(
    probe: PsutilProbe, caplog: pytest.LogCaptureFixture
) -> None:
    sensor = SystemSensor(SystemSensorConfig(), probe=probe)
    with caplog.at_level(logging.DEBUG, logger="agent.sensors.system"):
        first = sensor.read(T0)
        second = sensor.read(T0 + 1.0)
    assert first is not None and second is not None
    assert "cpu_pct" not in first.data and "cpu_pct" not in second.data
    assert 0.0 <= _f(second.data["mem_used_pct"]) <= 100.0
    assert "net_rx_Bps" in second.data
    cpu_records = [r for r in caplog.records if "system cpu unreadable" in r.getMessage()]
    assert [r.levelno for r in cpu_records] == [logging.WARNING, logging.DEBUG]


class DeniedEverythingProbe(PsutilProbe):
    """A sandbox where no psutil call works at all."""

    def cpu_times(self) -> tuple[float, float]:
        raise PermissionError(13, "Permission denied", "/proc/stat")

    def load1(self) -> float:
        raise PermissionError(13, "Permission denied", "/proc/loadavg")

    def memory(self) -> tuple[int, int]:
        raise PermissionError(13, "Permission denied", "/proc/meminfo")

    def swap(self) -> tuple[int, int]:
        raise PermissionError(13, "Permission denied", "/proc/meminfo")

    def net(self) -> dict[str, tuple[int, int]]:
        raise psutil.AccessDenied()

    def disk(self) -> dict[str, tuple[int, int]]:
        raise FileNotFoundError(2, "No such file or directory", "/proc/diskstats")

    def temperatures(self) -> dict[str, list[float]]:
        raise PermissionError(13, "Permission denied", "/sys/class/hwmon")


def test_nothing_readable_is_sensor_unavailable() -> None:
    sensor = SystemSensor(SystemSensorConfig(), probe=DeniedEverythingProbe())
    with pytest.raises(SensorUnavailable) as caught:
        sensor.read(T0)
    assert caught.value.sensor == "system"
    assert "cpu: " in caught.value.reason and "/proc/meminfo" in caught.value.reason
    assert not isinstance(caught.value, psutil.Error)


def test_read_on_this_machine() -> None:
    """Two real polls, told they are 1 s apart; expectations come from the machine itself."""
    sensor = SystemSensor(SystemSensorConfig(interval_s=5.0))
    assert (sensor.name, sensor.interval_s) == ("system", 5.0)

    nics_at_first = psutil.net_io_counters(pernic=True)
    first = sensor.read(T0)
    assert first is not None
    assert (first.sensor, first.t) == ("system", T0)
    assert first.data.keys() <= SYSTEM_FIELDS
    assert not (RATES | {"cpu_pct"}) & first.data.keys()

    cpu_readable = _cpu_readable()
    if cpu_readable:  # wait (without a clock) until the kernel's CPU tick counters move on
        before = sum(psutil.cpu_times())
        while sum(psutil.cpu_times()) == before:
            pass
    second = sensor.read(T0 + 1.0)
    assert second is not None
    data = second.data
    json.loads(second.to_json())  # flat and JSON-friendly
    per_device = {k for k in data if k.startswith(("net.", "disk."))}
    # Interfaces with traffic at the first read have a rate at the second (new ones may not).
    nics = {n for n, c in nics_at_first.items() if n != "lo" and c.bytes_recv}
    assert {k.split(".")[1] for k in per_device if k.startswith("net.")} <= set(
        psutil.net_io_counters(pernic=True)
    )
    assert nics <= {k.split(".")[1] for k in per_device if k.startswith("net.")}
    assert not {k for k in per_device if ".loop" in k or ".lo." in k}
    data = {k: v for k, v in data.items() if k not in per_device}
    assert data.keys() <= SYSTEM_FIELDS
    assert all(type(v) is float for v in data.values())

    assert ("cpu_pct" in data) == cpu_readable
    if cpu_readable:
        assert 0.0 <= _f(data["cpu_pct"]) <= 100.0
    assert _f(data["load1"]) >= 0.0
    assert 0.0 < _f(data["mem_used_pct"]) <= 100.0
    assert abs(_f(data["mem_used_pct"]) - psutil.virtual_memory().percent) < 5.0
    if psutil.swap_memory().total == 0:
        assert "swap_pct" not in data
    else:
        assert 0.0 <= _f(data["swap_pct"]) <= 100.0
    assert ({"net_rx_Bps", "net_tx_Bps"} <= data.keys()) == (psutil.net_io_counters() is not None)
    has_disks = psutil.disk_io_counters() is not None
    assert ({"disk_read_Bps", "disk_write_Bps"} <= data.keys()) == has_disks
    for key in RATES & data.keys():
        assert 0.0 <= _f(data[key]) < 1e11  # below 100 GB/s
    chips = psutil.sensors_temperatures()
    temps = {name: [e.current for e in entries] for name, entries in chips.items()}
    if pick_temperature(temps) is None:
        assert "temp_C" not in data
    else:
        assert 0.0 < _f(data["temp_C"]) < 130.0


def _cpu_readable() -> bool:
    try:
        psutil.cpu_times()
    except (OSError, psutil.Error):
        return False
    return True


def _f(value: object) -> float:
    assert isinstance(value, float)
    return value


def test_idle_interval_with_float_noise_is_zero_not_missing() -> None:
    # busy = total - idle - iowait is a difference of large sums: an idle second can come
    # out a hair below zero (seen on an idle CI machine), which must read as 0 %.
    old = SystemReading(cpu_busy_s=12_345.670000000002, cpu_total_s=400_000.0)
    new = SystemReading(cpu_busy_s=12_345.67, cpu_total_s=400_002.0)
    assert new.cpu_busy_s is not None and old.cpu_busy_s is not None
    assert new.cpu_busy_s - old.cpu_busy_s < 0
    assert parse(new, old, T0 + 1.0, T0)["cpu_pct"] == 0.0


# --- the probe's own reads of /proc and /sys, against psutil's -------------------------------

DISKSTATS = """\
   7       0 loop0 100 0 800 5 0 0 0 0 0 10 5 0 0 0 0 0 0
 259       0 nvme0n1 2000 10 40000 300 500 20 9000 80 0 400 380 0 0 0 0 30 4
 259       1 nvme0n1p1 1900 10 39000 290 480 20 8800 75 0 390 365 0 0 0 0 0 0
   8       0 sda 10 0 16 1 4 0 8 2 0 3 3
   8       1 sda1 5 8 2 4
 253       0 dm-0 300 0 2400 10 0 0 0 0 0 10 10 0 0 0 0 0 0
"""
NET_DEV = """\
Inter-|   Receive                                    |  Transmit
 face |bytes packets errs drop fifo frame compressed multicast|bytes packets errs ...
    lo: 5000 50 0 0 0 0 0 0 5000 50 0 0 0 0 0 0
 wlan0: 123456 100 0 0 0 0 0 0 65432 90 0 0 0 0 0 0
   wg0: 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0
"""


def fake_machine(root: Path) -> tuple[str, str]:
    proc, sys_dir = root / "proc", root / "sys"
    (proc / "net").mkdir(parents=True)
    (proc / "diskstats").write_text(DISKSTATS)
    (proc / "net" / "dev").write_text(NET_DEV)
    (proc / "meminfo").write_text(
        "MemTotal: 100 kB\nSwapCached: 1 kB\nSwapTotal: 8 kB\nSwapFree: 6 kB\n"
    )
    for part in ("nvme0n1p1", "sda1"):
        (sys_dir / "class" / "block" / part).mkdir(parents=True)
        (sys_dir / "class" / "block" / part / "partition").write_text("1\n")
    for i, (chip, temps) in enumerate(
        [("acpitz", ["27800"]), ("coretemp", ["45000", "52000"]), ("nvme", ["38850"])]
    ):
        hwmon = sys_dir / "class" / "hwmon" / f"hwmon{i}"
        hwmon.mkdir(parents=True)
        (hwmon / "name").write_text(chip + "\n")
        for j, milli in enumerate(temps, start=1):
            (hwmon / f"temp{j}_input").write_text(milli + "\n")
            (hwmon / f"temp{j}_label").write_text(f"Core {j}\n")
    return str(proc), str(sys_dir)


def test_probe_reads_proc_and_sys_as_psutil_does(tmp_path: Path) -> None:
    probe = PsutilProbe(*fake_machine(tmp_path))
    assert probe.disk() == {"nvme0n1": (40000 * 512, 9000 * 512), "sda": (16 * 512, 8 * 512)}
    assert probe.net() == {"wlan0": (123456, 65432)}  # lo and the never-used wg0 left out
    assert probe.swap() == (8 * 1024, 2 * 1024)
    assert probe.temperatures() == {"acpitz": [27.8], "coretemp": [45.0, 52.0]}  # no nvme
    sensor = SystemSensor(SystemSensorConfig(), probe=probe)
    assert _f(sensor.read(T0).data["temp_C"]) == 52.0  # type: ignore[union-attr]


def test_temperature_sensors_are_searched_for_every_so_many_polls(tmp_path: Path) -> None:
    proc, sys_dir = fake_machine(tmp_path)
    probe = PsutilProbe(proc, sys_dir)
    assert probe.temperatures()["coretemp"] == [45.0, 52.0]
    zone = Path(sys_dir) / "class" / "hwmon" / "hwmon1" / "temp3_input"
    zone.write_text("61000\n")  # a sensor that appears later: found at the next search
    for _ in range(TEMPERATURE_SEARCH_EVERY - 1):
        assert probe.temperatures()["coretemp"] == [45.0, 52.0]
    assert probe.temperatures()["coretemp"] == [45.0, 52.0, 61.0]


def test_thermal_zones_where_hwmon_has_none(tmp_path: Path) -> None:
    for name, kind, milli in (
        ("thermal_zone0", "cpu-thermal", "48500"),
        ("thermal_zone1", "battery", "30000"),
    ):
        zone = tmp_path / "class" / "thermal" / name
        zone.mkdir(parents=True)
        (zone / "type").write_text(kind + "\n")
        (zone / "temp").write_text(milli + "\n")
    assert find_temperature_inputs(str(tmp_path)) == [
        ("cpu-thermal", str(tmp_path / "class" / "thermal" / "thermal_zone0" / "temp"))
    ]


def test_an_old_diskstats_layout_goes_to_psutil(tmp_path: Path) -> None:
    proc, sys_dir = fake_machine(tmp_path)
    (Path(proc) / "diskstats").write_text("   3     0   8 hda 8 8 8 8 8 8 8 8 8 8 8\n")
    assert PsutilProbe(proc, sys_dir)._diskstats() is None


def test_probe_agrees_with_psutil_on_this_machine() -> None:
    probe = PsutilProbe()
    nics = psutil.net_io_counters(pernic=True)
    mine = probe.net()
    assert set(mine) == {n for n, c in nics.items() if n != "lo" and (c.bytes_recv or c.bytes_sent)}
    for name, (rx, tx) in mine.items():  # counters only grow between the two reads
        assert rx >= nics[name].bytes_recv and tx >= nics[name].bytes_sent
    disks = psutil.disk_io_counters(perdisk=True) or {}
    for name, (read_b, written_b) in probe.disk().items():
        assert read_b >= disks[name].read_bytes and written_b >= disks[name].write_bytes
    swap = psutil.swap_memory()
    assert probe.swap()[0] == swap.total
    chips = psutil.sensors_temperatures()
    wanted = {n for n in chips if pick_temperature({n: [50.0]}) is not None}
    assert set(probe.temperatures()) <= wanted


def test_garbage_in_proc_and_sys_leaves_its_fields_out(tmp_path: Path) -> None:
    """Regression: a counter beyond 64 bits made the rate computation overflow (an exception
    out of ``read``: the daemon stopped), and a temperature file saying ``inf`` gave
    ``temp_C`` inf, so the gate refused the whole system sample."""
    proc, sys_dir = fake_machine(tmp_path)
    huge = "1" + "0" * 400
    (Path(proc) / "net" / "dev").write_text(NET_DEV.replace("123456", huge))
    (Path(proc) / "diskstats").write_text(DISKSTATS.replace("40000", huge))
    for milli in ("inf", "nan", "45e3"):
        (Path(sys_dir) / "class" / "hwmon" / "hwmon1" / "temp1_input").write_text(milli)
        (Path(sys_dir) / "class" / "hwmon" / "hwmon1" / "temp2_input").write_text(milli)
        probe = PsutilProbe(proc, sys_dir)
        assert probe.temperatures() == {"acpitz": [27.8]}
    assert probe.net() == {}  # the one used interface's line is no kernel's
    assert probe._diskstats() is None  # psutil reads the real file instead
    sensor = SystemSensor(SystemSensorConfig(), probe=probe)
    for t in (T0, T0 + 10.0):
        sample = sensor.read(t)
        assert sample is not None and sample.data["temp_C"] == 27.8
    assert parse_net_dev(b"h\nh\n" + NET_DEV.encode().splitlines()[3]) == {"wlan0": (123456, 65432)}
    assert parse_millidegrees(b"48500\n") == 48.5 and parse_millidegrees(b"nan") is None
    assert parse_meminfo_swap(b"SwapTotal: 8 kB\nSwapFree: 9 kB\n") is None  # free > total
    assert pick_temperature({"coretemp": [float("inf"), float("nan"), 40.0]}) == 40.0
