"""Property-based: whatever /proc/<pid>/stat, a command line, swaymsg, hyprctl or an X11
client says, the apps sensor's parsers give fields that pass the gate, leave out what they
cannot use, or raise a sensor error with a reason; never any other exception."""

from __future__ import annotations

import json
import logging
import os
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from _fuzz import (
    check_sample,
    essential,
    finite,
    json_values,
    outcome,
    raw_words,
    spoiled,
)
from hypothesis import given, settings
from hypothesis import strategies as st

from agent.errors import SensorReadError, SensorUnavailable
from agent.sensors.apps import (
    ProcessStat,
    ProcStatScan,
    focus_fields,
    name_from_cmdline,
    parse_stat_line,
    process_fields,
)
from agent.sensors.focus import (
    PID_MAX,
    FocusReading,
    parse_hyprland_window,
    parse_sway_tree,
    window_reading,
)
from agent.sensors.values import U64_MAX


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


@st.composite
def stat_lines(draw: st.DrawFn) -> bytes:
    """A /proc/<pid>/stat line: a pid, ``(comm)`` (any bytes), then 50 numbers of which a
    few are spoiled, and maybe torn short."""
    fields = [b"%d" % n for n in draw(st.lists(st.integers(0, 2**40), min_size=50, max_size=50))]
    for at in draw(st.lists(st.integers(0, 49), max_size=3)):
        fields[at] = draw(raw_words)
    pid, comm = draw(st.integers(1, 2**22)), draw(st.binary(max_size=20))
    line = b"%d (%b) S " % (pid, comm) + b" ".join(fields)
    return line if draw(st.booleans()) else line[: draw(st.integers(0, len(line)))]


@settings(max_examples=600)
@given(st.one_of(stat_lines(), st.binary(max_size=200)))
def test_stat_lines(line: bytes) -> None:
    stat = parse_stat_line(line)
    if stat is not None:
        assert stat.comm.encode("utf-8") is not None
        assert 0 <= stat.utime <= U64_MAX and 0 <= stat.stime <= U64_MAX
        assert 0 <= stat.start <= U64_MAX and -(2**63) <= stat.rss_pages <= U64_MAX


@settings(max_examples=400)
@given(st.binary(max_size=100), st.text(max_size=15))
def test_command_line_names(cmdline: bytes, comm: str) -> None:
    name = name_from_cmdline(cmdline, comm)
    assert name.encode("utf-8") is not None and len(name) <= 1024


@settings(max_examples=100)
@given(
    st.dictionaries(
        st.integers(1, 99_999).map(str), st.tuples(stat_lines(), st.binary()), max_size=4
    )
)
def test_proc_scan_on_a_generated_proc(procs: dict[str, tuple[bytes, bytes]]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        for pid, (stat, cmdline) in procs.items():
            os.mkdir(os.path.join(tmp, pid))
            Path(tmp, pid, "stat").write_bytes(stat)
            Path(tmp, pid, "cmdline").write_bytes(cmdline)
        stats = outcome(ProcStatScan(tmp, total_ram=8 << 30))
        if not isinstance(stats, SensorUnavailable | SensorReadError):
            check_sample("apps", process_fields(stats, stats, 10.0, 3))


processes = st.lists(
    st.builds(
        ProcessStat,
        pid=st.integers(1, 2**22),
        name=st.text(min_size=1, max_size=30),
        cpu_s=st.none() | finite,
        mem_pct=st.none() | st.floats(min_value=0, max_value=100),
        started=st.none() | st.floats(min_value=0, max_value=1e9),
    ),
    max_size=8,
)


@settings(max_examples=300)
@given(processes, st.none() | processes, st.none() | finite, st.integers(0, 5))
def test_process_rankings(
    now: list[ProcessStat], before: list[ProcessStat] | None, dt_s: float | None, top_n: int
) -> None:
    check_sample("apps", process_fields(now, before, dt_s, top_n))


def check_focus(reading: FocusReading) -> None:
    assert reading.pid is None or 0 < reading.pid <= PID_MAX
    patterns = [re.compile(r"\w"), re.compile("secret")]  # redaction may lengthen a title
    check_sample("apps", focus_fields(reading, True, patterns))


@st.composite
def sway_nodes(draw: st.DrawFn, depth: int = 0) -> dict[str, Any]:
    node = draw(
        spoiled(
            {
                "type": st.sampled_from(["root", "output", "workspace", "con", "floating_con"]),
                "focused": st.booleans(),
                "app_id": st.none() | st.text(max_size=12),
                "name": st.text(max_size=30),
                "pid": st.integers(-5, 2**40),
                "window_properties": st.fixed_dictionaries({"class": st.text(max_size=12)}),
            }
        )
    )
    if depth < 2:
        for key in ("nodes", "floating_nodes"):
            if draw(st.booleans()):
                node[key] = draw(st.lists(sway_nodes(depth + 1), max_size=2))
    return node


@settings(max_examples=300)
@given(st.one_of(sway_nodes().map(json.dumps), json_values.map(json.dumps), st.text()))
def test_sway_trees(text: str) -> None:
    reading = outcome(lambda: parse_sway_tree(text))
    if isinstance(reading, FocusReading):
        check_focus(reading)
    else:
        assert isinstance(reading, SensorReadError)


hyprland_windows = essential(
    {
        "address": st.sampled_from(["0x55d1", ""]),
        "class": st.text(max_size=20),
        "initialClass": st.text(max_size=20),
        "title": st.text(max_size=100),
        "pid": st.integers(-5, 2**40),
    }
)


@settings(max_examples=400)
@given(st.one_of(hyprland_windows.map(json.dumps), json_values.map(json.dumps), st.text()))
def test_hyprland_windows(text: str) -> None:
    reading = outcome(lambda: parse_hyprland_window(text))
    if isinstance(reading, FocusReading):
        check_focus(reading)
    else:
        assert isinstance(reading, SensorReadError)


x11_texts = st.none() | st.binary(max_size=40) | st.text(max_size=40) | st.just(b"\xff" * 5000)
x11_pids = st.none() | st.binary(max_size=8) | st.lists(st.integers(-(2**40), 2**40), max_size=2)


@settings(max_examples=500)
@given(x11_texts, x11_texts, x11_texts, x11_pids)
def test_x11_window_properties(wm_class: Any, net_name: Any, name: Any, pid: Any) -> None:
    check_focus(window_reading(wm_class, net_name, name, pid))
