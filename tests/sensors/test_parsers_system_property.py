"""Property-based: whatever /proc, /sys or termux-battery-status says, the system and
battery parsers give fields that pass the gate, leave out what they cannot use, or raise a
sensor error with a reason; never any other exception. File contents are generated and
written where the sensor reads them."""

from __future__ import annotations

import json
import logging
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from _fuzz import (
    check_sample,
    essential,
    finite,
    json_values,
    kernel_numbers,
    outcome,
    raw_words,
)
from hypothesis import given, settings
from hypothesis import strategies as st

from agent.config import BatterySensorConfig, SystemSensorConfig
from agent.errors import SensorReadError, SensorUnavailable
from agent.sensors.battery import ATTRIBUTES, BatterySensor, parse_power_supply, pick_battery
from agent.sensors.system import (
    PsutilProbe,
    SystemReading,
    SystemSensor,
    parse,
    parse_diskstats,
    parse_meminfo_swap,
    parse_millidegrees,
    parse_net_dev,
    pick_temperature,
)
from agent.sensors.termux import parse_json
from agent.sensors.termux_battery import parse_termux_battery
from agent.sensors.values import U64_MAX

T = 1_780_272_000.0


@pytest.fixture(autouse=True, scope="module")
def quiet() -> Iterator[None]:
    """The sensors warn once per unreadable piece, per instance; each case has its own."""
    logger = logging.getLogger("agent.sensors")
    level = logger.level
    logger.setLevel(logging.ERROR)
    yield
    logger.setLevel(level)


def lines_of(*columns: st.SearchStrategy[bytes]) -> st.SearchStrategy[bytes]:
    return st.lists(st.lists(st.one_of(*columns), max_size=22).map(b" ".join), max_size=8).map(
        b"\n".join
    )


texts = st.one_of(st.binary(max_size=300), lines_of(raw_words, st.just(b"kB")))


@settings(max_examples=500)
@given(
    st.one_of(
        texts,
        lines_of(st.sampled_from([b"SwapTotal:", b"SwapFree:", b"MemTotal:"]), raw_words),
    )
)
def test_meminfo(text: bytes) -> None:
    swap = parse_meminfo_swap(text)
    if swap is not None:
        total, used = swap
        assert 0 <= used <= total <= U64_MAX * 1024


@settings(max_examples=500)
@given(st.one_of(texts, lines_of(raw_words, st.sampled_from([b"eth0:", b"lo:", b":", b"a:b:"]))))
def test_net_dev(text: bytes) -> None:
    for name, counts in parse_net_dev(b"header\nheader\n" + text).items():
        assert name and name.encode("utf-8") and len(name) <= 64
        assert all(0 <= c <= U64_MAX for c in counts)


@settings(max_examples=500)
@given(st.one_of(texts, lines_of(raw_words, st.sampled_from([b"8", b"0", b"sda", b"nvme0n1"]))))
def test_diskstats(text: bytes) -> None:
    counts = parse_diskstats(text)
    for name, (read, written) in (counts or {}).items():
        assert name.encode("utf-8") and 0 <= read <= 512 * U64_MAX and 0 <= written


@settings(max_examples=500)
@given(st.one_of(raw_words, st.binary(max_size=30)))
def test_temperature_files(text: bytes) -> None:
    value = parse_millidegrees(text)
    assert value is None or -10_000.0 <= value <= 10_000.0


counters = st.none() | st.integers(min_value=0, max_value=U64_MAX)
readings = st.builds(
    SystemReading,
    cpu_busy_s=st.none() | finite,
    cpu_total_s=st.none() | finite,
    load1=st.none() | st.floats(min_value=0, max_value=1e6),
    mem_total_B=counters,
    mem_available_B=counters,
    swap_total_B=counters,
    swap_used_B=counters,
    net_rx_B=counters,
    net_tx_B=counters,
    disk_read_B=counters,
    disk_write_B=counters,
    temp_C=st.none() | st.floats(min_value=-300, max_value=10_000),
    nics=st.lists(
        st.tuples(st.sampled_from(["eth0", "wlan0"]), counters.filter(bool), counters.filter(bool))
    ).map(tuple),
)


@settings(max_examples=500)
@given(readings, st.none() | readings, finite, st.none() | finite)
def test_system_fields(
    now_r: SystemReading, before: SystemReading | None, now: float, before_t: float | None
) -> None:
    check_sample("system", parse(now_r, before, now, before_t))


@settings(max_examples=300)
@given(st.dictionaries(st.text(max_size=12), st.lists(st.floats())))
def test_pick_temperature(chips: dict[str, list[float]]) -> None:
    value = pick_temperature(chips)
    assert value is None or (value > 0 and value != float("inf"))


@settings(max_examples=150)
@given(
    st.fixed_dictionaries(
        {},
        optional={
            "meminfo": st.one_of(texts, lines_of(st.just(b"SwapTotal:"), raw_words)),
            "net/dev": texts,
            "diskstats": texts,
            "temp": st.one_of(raw_words, st.binary(max_size=20)),
        },
    )
)
def test_system_sensor_on_generated_files(files: dict[str, bytes]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        proc, sys_dir = Path(tmp, "proc"), Path(tmp, "sys")
        for name, content in files.items():
            if name == "temp":
                zone = sys_dir / "class" / "thermal" / "thermal_zone0"
                zone.mkdir(parents=True)
                (zone / "type").write_text("cpu-thermal\n")
                (zone / "temp").write_bytes(content)
            else:
                (proc / name).parent.mkdir(parents=True, exist_ok=True)
                (proc / name).write_bytes(content)
        sensor = SystemSensor(SystemSensorConfig(), PsutilProbe(str(proc), str(sys_dir)))
        for now in (T, T + 10.0):
            sample = outcome(lambda now=now: sensor.read(now))  # type: ignore[misc]
            if sample is not None and not isinstance(sample, SensorUnavailable):
                assert not isinstance(sample, SensorReadError)
                check_sample("system", sample.data)


attribute_texts = st.one_of(
    kernel_numbers,
    st.sampled_from(["Battery", "Mains", "Device", "System", "Charging", "Discharging", "Full"]),
    st.text(max_size=20),
)
supplies = st.dictionaries(
    st.sampled_from(["BAT0", "BAT1", "AC", "hid-mouse-battery"]),
    st.dictionaries(st.sampled_from(ATTRIBUTES), attribute_texts),
    max_size=3,
)


@settings(max_examples=600)
@given(supplies)
def test_power_supply_attributes(found: dict[str, dict[str, str]]) -> None:
    chosen = pick_battery(found)
    assert chosen is None or found[chosen]["type"] == "Battery"
    for attrs in found.values():
        check_sample("battery", parse_power_supply(attrs))


@settings(max_examples=150)
@given(
    st.dictionaries(
        st.sampled_from(["BAT0", "BAT1", "AC"]),
        st.dictionaries(st.sampled_from(ATTRIBUTES), raw_words | st.binary(max_size=30)),
        max_size=2,
    )
)
def test_battery_sensor_on_generated_sysfs(found: dict[str, dict[str, bytes]]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        for name, attrs in found.items():
            (Path(tmp) / name).mkdir()
            for attr, content in attrs.items():
                (Path(tmp) / name / attr).write_bytes(content)
        sensor = BatterySensor(BatterySensorConfig(power_supply_dir=tmp), level=lambda: None)
        sample = outcome(lambda: sensor.read(T))
        if not isinstance(sample, SensorUnavailable | SensorReadError):
            check_sample("battery", sample.data)


battery_replies = essential(
    {
        "percentage": st.integers(-1, 101),
        "plugged": st.sampled_from(["UNPLUGGED", "PLUGGED_AC", "PLUGGED_USB"]),
        "status": st.sampled_from(["CHARGING", "DISCHARGING", "FULL"]),
        "temperature": st.floats(min_value=-50, max_value=200),
        "voltage": st.integers(-1, 10_000),
        "current": st.integers(-(10**7), 10**7),
    }
)


@settings(max_examples=600)
@given(
    st.one_of(
        battery_replies.map(json.dumps),
        st.dictionaries(st.sampled_from(["error", "percentage", "x"]), json_values).map(json.dumps),
        json_values.map(json.dumps),
        st.text(max_size=100),
    ),
    st.text(max_size=40),
)
def test_termux_battery_output(stdout: str, stderr: str) -> None:
    reply = outcome(lambda: parse_json("battery", "termux-battery-status", stdout, stderr, 0))
    if isinstance(reply, dict):
        check_sample("battery", parse_termux_battery(reply))
