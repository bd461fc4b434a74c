"""The apps sensor: process ranking and focus fields by hand, then a real X server and real
processes on this machine."""

from __future__ import annotations

import logging
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import psutil
import pytest
from _desktop import XSession
from _tools import require_tool

from agent.config import AppsSensorConfig
from agent.errors import SensorReadError, SensorUnavailable
from agent.samples import FOCUSED_PROCESS
from agent.sensors.apps import (
    AppsSensor,
    ProcessStat,
    ProcStatScan,
    cpu_percents,
    focus_fields,
    name_from_cmdline,
    process_fields,
    redact,
    scan_processes,
    scan_processes_psutil,
)
from agent.sensors.focus import FocusReading, UnavailableFocus, X11Focus

T0 = 1_780_272_000.0

# Two scans 5 s apart, worked by hand. pid 3 was "make" and is now "cc1" under the same pid
# (a different start time); pid 4 was denied last time; pid 6 is new.
BEFORE = [
    ProcessStat(1, "firefox", 50.0, 12.5, 10.0),
    ProcessStat(2, "kitty", 5.0, 1.25, 20.0),
    ProcessStat(3, "make", 1.0, 0.5, 30.0),
    ProcessStat(4, "sshd", None, None, 40.0),
    ProcessStat(5, "idle", 2.0, 0.0, 50.0),
]
AFTER = [
    ProcessStat(1, "firefox", 52.5, 13.0, 10.0),  # 2.5 s / 5 s = 50 %
    ProcessStat(2, "kitty", 5.25, 1.25, 20.0),  # 0.25 s / 5 s = 5 %
    ProcessStat(3, "cc1", 4.0, 2.0, 103.0),  # new process: all 4 s in the interval = 80 %
    ProcessStat(4, "sshd", 9.0, 0.3, 40.0),  # no baseline: left out of the CPU ranking
    ProcessStat(5, "idle", 2.0, 0.0, 50.0),  # 0 % and 0 % memory: never listed
    ProcessStat(6, "ld", 0.5, 0.75, 104.0),  # new: 0.5 s / 5 s = 10 %
]


def test_cpu_percents_by_hand() -> None:
    assert cpu_percents(AFTER, BEFORE, 5.0) == {1: 50.0, 2: 5.0, 3: 80.0, 6: 10.0}
    assert cpu_percents(AFTER, BEFORE, 0.0) == {}
    # A counter that went backward (it cannot, unless the pid was reused unseen): left out.
    assert cpu_percents([ProcessStat(1, "a", 1.0, 0.1, 10.0)], BEFORE, 5.0) == {}


def test_process_fields_top_three() -> None:
    assert process_fields(AFTER, BEFORE, 5.0, 3) == {
        "cpu1_name": "cc1",
        "cpu1_pct": 80.0,
        "cpu2_name": "firefox",
        "cpu2_pct": 50.0,
        "cpu3_name": "ld",
        "cpu3_pct": 10.0,
        "mem1_name": "firefox",
        "mem1_pct": 13.0,
        "mem2_name": "cc1",
        "mem2_pct": 2.0,
        "mem3_name": "kitty",
        "mem3_pct": 1.25,
    }


def test_process_fields_first_scan_has_memory_only_and_ties_go_by_name() -> None:
    scan = [ProcessStat(9, "zsh", 1.0, 0.5), ProcessStat(8, "bash", 1.0, 0.5)]
    assert process_fields(scan, None, None, 5) == {
        "mem1_name": "bash",
        "mem1_pct": 0.5,
        "mem2_name": "zsh",
        "mem2_pct": 0.5,
    }
    assert process_fields(scan, None, None, 0) == {}


def test_process_fields_rounds_to_three_decimals() -> None:
    before = [ProcessStat(1, "a", 0.0, 1 / 3, 1.0)]
    after = [ProcessStat(1, "a", 0.01, 1 / 3, 1.0)]
    assert process_fields(after, before, 3.0, 1) == {
        "cpu1_name": "a",
        "cpu1_pct": 0.333,
        "mem1_name": "a",
        "mem1_pct": 0.333,
    }


def test_focus_fields_titles_and_redaction() -> None:
    import re

    reading = FocusReading("firefox", "Inbox (3) - alice@example.org - pin 1234", 2345)
    patterns = (re.compile(r"\S+@\S+"), re.compile(r"\d{4}"))
    assert focus_fields(reading, False, patterns) == {"app": "firefox", "pid": 2345}
    assert focus_fields(reading, True, patterns) == {
        "app": "firefox",
        "title": "Inbox (3) - [redacted] - pin [redacted]",
        "pid": 2345,
    }
    assert focus_fields(FocusReading(), True, patterns) == {}
    assert focus_fields(FocusReading("xterm", "", None), True, ()) == {"app": "xterm"}
    assert redact("a1b22", [re.compile(r"\d")]) == "a[redacted]b[redacted][redacted]"


# --- the sensor with fakes -------------------------------------------------------------------


@dataclass
class FakeFocus:
    """Answers each read with the next item: a reading, or an exception to raise."""

    answers: list[FocusReading | Exception]
    name: str = "fake"
    closed: bool = False

    def read(self) -> FocusReading:
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    def close(self) -> None:
        self.closed = True


def scans(*answers: Sequence[ProcessStat] | Exception) -> Callable[[], Sequence[ProcessStat]]:
    queue = list(answers)

    def scan() -> Sequence[ProcessStat]:
        answer = queue.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    return scan


def test_sensor_sample_fields() -> None:
    focus = FakeFocus([FocusReading("firefox", "Bank 1234", 77)] * 2)
    config = AppsSensorConfig(titles=True, redact=(r"\d+",), top_n=2)
    sensor = AppsSensor(config, focus=focus, processes=scans(BEFORE, AFTER))
    first = sensor.read(T0)
    assert first.sensor == "apps" and first.t == T0
    assert first.data == {
        "app": "firefox",
        "title": "Bank [redacted]",
        "pid": 77,
        "mem1_name": "firefox",
        "mem1_pct": 12.5,
        "mem2_name": "kitty",
        "mem2_pct": 1.25,
    }
    second = sensor.read(T0 + 5.0)
    assert second.data == {
        "app": "firefox",
        "title": "Bank [redacted]",
        "pid": 77,
        "cpu1_name": "cc1",
        "cpu1_pct": 80.0,
        "cpu2_name": "firefox",
        "cpu2_pct": 50.0,
        "mem1_name": "firefox",
        "mem1_pct": 13.0,
        "mem2_name": "cc1",
        "mem2_pct": 2.0,
    }
    sensor.close()
    assert focus.closed


def test_the_focused_windows_process_is_named_as_the_rankings_name_it() -> None:
    """By the window's pid at the latest scan: pid 3 was "make", then "cc1" (which the CPU
    ranking names); a window whose pid no scan has seen yet names none."""
    focus = FakeFocus([FocusReading("Code", None, 3)] * 2 + [FocusReading("Code", None, 9)])
    config = AppsSensorConfig(top_n=1, rank_every_s=60.0)
    sensor = AppsSensor(config, focus=focus, processes=scans(BEFORE, AFTER))
    assert sensor.read(T0).data[FOCUSED_PROCESS] == "make"
    second = sensor.read(T0 + 5.0).data
    assert second[FOCUSED_PROCESS] == second["cpu1_name"] == "cc1"
    assert FOCUSED_PROCESS not in sensor.read(T0 + 10.0).data  # pid 9: not in the last scan


def test_titles_off_by_default() -> None:
    focus = FakeFocus([FocusReading("firefox", "Bank 1234", None)])
    sensor = AppsSensor(AppsSensorConfig(top_n=0), focus=focus, processes=scans(BEFORE))
    assert sensor.read(T0).data == {"app": "firefox"}


def test_no_window_focused_gives_a_sample_without_app() -> None:
    sensor = AppsSensor(
        AppsSensorConfig(top_n=0), focus=FakeFocus([FocusReading()]), processes=scans(BEFORE)
    )
    sample = sensor.read(T0)
    assert sample.data == {}


def test_focus_never_readable_keeps_processes_and_says_so_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    focus = UnavailableFocus("no graphical session: DISPLAY and WAYLAND_DISPLAY are unset")
    sensor = AppsSensor(AppsSensorConfig(top_n=1), focus=focus, processes=scans(BEFORE, AFTER))
    with caplog.at_level(logging.DEBUG, logger="agent.sensors.apps"):
        first = sensor.read(T0)
        second = sensor.read(T0 + 5.0)
    assert first.data == {"mem1_name": "firefox", "mem1_pct": 12.5}
    assert second.data == {
        "cpu1_name": "cc1",
        "cpu1_pct": 80.0,
        "mem1_name": "firefox",
        "mem1_pct": 13.0,
    }
    levels = [r.levelno for r in caplog.records if "DISPLAY and WAYLAND_DISPLAY" in r.message]
    # No outage: a machine without a display, which the sensor's plan says at start.
    assert levels == [logging.INFO, logging.DEBUG]


def test_focus_back_is_logged_at_info(caplog: pytest.LogCaptureFixture) -> None:
    focus = FakeFocus([SensorUnavailable("apps", "X display ':0' lost"), FocusReading("xterm")])
    sensor = AppsSensor(AppsSensorConfig(), focus=focus, processes=scans(BEFORE, AFTER))
    with caplog.at_level(logging.INFO, logger="agent.sensors.apps"):
        assert "app" not in sensor.read(T0).data
        assert sensor.read(T0 + 5).data["app"] == "xterm"
    assert [r.levelno for r in caplog.records] == [logging.WARNING, logging.INFO]


def test_no_focus_and_no_processes_is_unavailable() -> None:
    focus = UnavailableFocus(
        "GNOME on Wayland gives no focused-window API without a shell extension"
    )
    sensor = AppsSensor(
        AppsSensorConfig(),
        focus=focus,
        processes=scans(SensorUnavailable("apps", "no process is visible")),
    )
    with pytest.raises(SensorUnavailable) as caught:
        sensor.read(T0)
    assert caught.value.reason == (
        "GNOME on Wayland gives no focused-window API without a shell extension; "
        "no process is visible"
    )


def test_processes_unavailable_keeps_the_focus() -> None:
    focus = FakeFocus([FocusReading("xterm", None, 4)])
    sensor = AppsSensor(
        AppsSensorConfig(),
        focus=focus,
        processes=scans(SensorUnavailable("apps", "process list unreadable: denied")),
    )
    assert sensor.read(T0).data == {"app": "xterm", "pid": 4}


def test_a_failed_focus_read_skips_the_whole_poll() -> None:
    calls: list[int] = []

    def scan() -> Sequence[ProcessStat]:
        calls.append(1)
        return BEFORE

    focus = FakeFocus([SensorReadError("apps", "X11 WM_CLASS: BadWindow")])
    sensor = AppsSensor(AppsSensorConfig(), focus=focus, processes=scan)
    with pytest.raises(SensorReadError):
        sensor.read(T0)
    assert calls == []


# --- real processes on this machine ----------------------------------------------------------

BURN = """
import ctypes
ctypes.CDLL(None).prctl(15, b"vigil-burn", 0, 0, 0)  # PR_SET_NAME: a name to find it by
while True:
    pass
"""


def check_shape(data: dict[str, object], top_n: int) -> None:
    for kind, top in (("cpu", 100.0 * (psutil.cpu_count() or 1)), ("mem", 100.0)):
        for i in range(1, top_n + 1):
            name, pct = data.get(f"{kind}{i}_name"), data.get(f"{kind}{i}_pct")
            assert (name is None) == (pct is None)
            if name is not None:
                assert isinstance(name, str) and name
                assert isinstance(pct, float) and 0.0 < pct <= top
        assert f"{kind}{top_n + 1}_name" not in data


def test_real_scan_sees_this_process() -> None:
    stats = scan_processes()
    me = [p for p in stats if p.pid == os.getpid()]
    assert len(me) == 1 and me[0].cpu_s is not None and me[0].cpu_s > 0
    assert me[0].mem_pct is not None and 0 < me[0].mem_pct < 100


def test_real_busy_child_tops_the_cpu_list() -> None:
    """The real scan of a burning child and this (mostly waiting) test process. The ranking is
    judged among the processes the test owns, and the second read waits until the child has
    really burnt CPU: other work on a busy machine can neither outrank it nor starve it."""
    child = subprocess.Popen([sys.executable, "-c", BURN])
    ours = {os.getpid(), child.pid}

    def our_processes() -> list[ProcessStat]:
        return [p for p in scan_processes() if p.pid in ours]

    sensor = AppsSensor(
        AppsSensorConfig(top_n=3),
        focus=UnavailableFocus("test: no display"),
        processes=our_processes,
    )
    try:
        first_t = time.monotonic()
        first = sensor.read(first_t)
        burnt_before = psutil.Process(child.pid).cpu_times()
        assert not any(key.startswith("cpu") for key in first.data)
        check_shape(dict(first.data), 3)
        assert first.data["mem1_name"]
        deadline = first_t + 60.0
        while True:  # until the child has burnt 0.5 CPU-s since the first read
            now = psutil.Process(child.pid).cpu_times()
            used = now.user + now.system - burnt_before.user - burnt_before.system
            if used >= 0.5 or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        second_t = time.monotonic()
        second = sensor.read(second_t)
    finally:
        child.kill()
        child.wait()
    assert used >= 0.5, "the child got no CPU in a minute"
    check_shape(dict(second.data), 3)
    assert second.data["cpu1_name"] == "vigil-burn", second.data
    burn_pct = second.data["cpu1_pct"]
    # It used at least 0.5 CPU-s in the interval (less than a tick of it before the first read).
    assert isinstance(burn_pct, float) and burn_pct >= 100.0 * 0.45 / (second_t - first_t)


def one_process() -> Sequence[ProcessStat]:
    return [ProcessStat(1, "init", 1.0, 0.1, 1.0)]


def test_the_focused_window_names_its_real_process(xsession: XSession) -> None:
    """A window of this test's own process, focused in a real X session, read through the
    real process scan: ``app_process`` is this process's name as the rankings give it."""
    from Xlib import X, Xatom, Xutil
    from Xlib import display as xdisplay

    client = xdisplay.Display(xsession.display)
    window = client.screen().root.create_window(0, 0, 200, 100, 0, X.CopyFromParent)
    window.set_wm_class("vigil-own", "VigilOwn")
    window.change_property(client.intern_atom("_NET_WM_PID"), Xatom.CARDINAL, 32, [os.getpid()])
    window.set_wm_hints(flags=Xutil.InputHint, input=1)
    window.map()
    client.sync()
    sensor = AppsSensor(AppsSensorConfig(), focus=X11Focus(xsession.display))
    try:
        xsession.activate("VigilOwn")
        data = sensor.read(T0).data
        me = next(p for p in scan_processes() if p.pid == os.getpid())
        assert (data["app"], data["pid"]) == ("VigilOwn", os.getpid())
        assert data[FOCUSED_PROCESS] == me.name == psutil.Process().name()
    finally:
        sensor.close()
        window.destroy()
        client.close()


def test_x11_focus_follows_the_active_window(xsession: XSession) -> None:
    require_tool("xlogo")
    require_tool("xcalc")
    from Xlib import X, Xatom, Xutil
    from Xlib import display as xdisplay

    private = AppsSensorConfig(top_n=0)
    titled = AppsSensorConfig(top_n=0, titles=True, redact=(r"\d{4}",))
    plain = AppsSensor(private, focus=X11Focus(xsession.display), processes=one_process)
    sensor = AppsSensor(titled, focus=X11Focus(xsession.display), processes=one_process)
    try:
        # Nothing focused: openbox still names the probe window, closed since (see above).
        assert sensor.read(T0).data == {}

        # One at a time: openbox focuses each new window as it maps it.
        xsession.spawn("xlogo", "-title", "statement 1234 5678")
        xsession.activate("XLogo")
        xsession.spawn("xcalc")
        xsession.activate("XCalc")
        xsession.activate("XLogo")
        assert sensor.read(T0 + 1).data == {
            "app": "XLogo",
            "title": "statement [redacted] [redacted]",
        }
        assert plain.read(T0 + 1).data == {"app": "XLogo"}  # titles are off by default

        xsession.activate("XCalc")
        assert sensor.read(T0 + 2).data["app"] == "XCalc"
        assert "title" not in plain.read(T0 + 2).data

        # A client of our own: a UTF-8 _NET_WM_NAME next to a Latin-1 WM_NAME, and a pid.
        client = xdisplay.Display(xsession.display)
        window = client.screen().root.create_window(0, 0, 200, 100, 0, X.CopyFromParent)
        window.set_wm_class("vigil-probe", "VigilProbe")
        window.set_wm_name("fallback name")
        window.change_property(
            client.intern_atom("_NET_WM_NAME"),
            client.intern_atom("UTF8_STRING"),
            8,
            "Café ☕ 2024 notes".encode(),
        )
        window.change_property(client.intern_atom("_NET_WM_PID"), Xatom.CARDINAL, 32, [4242])
        window.set_wm_hints(flags=Xutil.InputHint, input=1)
        window.map()
        client.sync()
        xsession.activate("VigilProbe")
        assert sensor.read(T0 + 3).data == {
            "app": "VigilProbe",
            "title": "Café ☕ [redacted] notes",
            "pid": 4242,
        }

        # The window goes away under us: a read of its id is one failed read, not a crash.
        window_id = window.id
        window.destroy()
        client.sync()
        focus = X11Focus(xsession.display)
        with pytest.raises(SensorReadError, match="BadWindow"):
            focus.read_window(window_id)
        focus.close()
        client.close()
        # Whatever the window manager focuses next, the sensor keeps answering.
        for i in range(5):
            try:
                sample = sensor.read(T0 + 4 + i)
            except SensorReadError:
                continue
            assert sample.data.get("app") in (None, "XLogo", "XCalc")
    finally:
        sensor.close()
        plain.close()


def test_x11_server_gone_keeps_processes(
    xsession: XSession, caplog: pytest.LogCaptureFixture
) -> None:
    require_tool("xlogo")
    sensor = AppsSensor(
        AppsSensorConfig(top_n=1), focus=X11Focus(xsession.display), processes=one_process
    )
    xsession.spawn("xlogo")
    xsession.activate("XLogo")
    assert sensor.read(T0).data == {"app": "XLogo", "mem1_name": "init", "mem1_pct": 0.1}
    server = xsession.procs[0]
    server.terminate()
    server.wait(timeout=5)
    with caplog.at_level(logging.DEBUG, logger="agent.sensors.apps"):
        assert sensor.read(T0 + 5).data == {"mem1_name": "init", "mem1_pct": 0.1}
        assert sensor.read(T0 + 10).data == {"mem1_name": "init", "mem1_pct": 0.1}
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "X display" in warnings[0].getMessage()
    sensor.close()


# --- the /proc scan and the rankings' cadence --------------------------------------------------


def stat_line(pid: int, comm: str, utime: int, stime: int, start: int, rss: int) -> str:
    """A /proc/<pid>/stat line with the fields the scan reads (14, 15, 22, 24) set."""
    fields = ["S", "1", "1", "1", "0", "-1", "4194560", "0", "0", "0", "0"]
    fields += [str(utime), str(stime), "0", "0", "20", "0", "1", "0", str(start), "1000"]
    fields += [str(rss)] + ["0"] * 28
    return f"{pid} ({comm}) " + " ".join(fields) + "\n"


def fake_proc(root: Path, procs: dict[str, str | None], cmdlines: dict[str, bytes]) -> None:
    for pid, line in procs.items():
        (root / pid).mkdir()
        if line is not None:
            (root / pid / "stat").write_text(line)
    for pid, cmdline in cmdlines.items():
        (root / pid / "cmdline").write_bytes(cmdline)
    (root / "self").mkdir()
    (root / "self" / "stat").write_text(stat_line(1, "me", 0, 0, 0, 0))
    (root / "meminfo").write_text("MemTotal: 1 kB\n")


def test_proc_scan_reads_the_stat_lines(tmp_path: Path) -> None:
    tick = 1.0 / os.sysconf("SC_CLK_TCK")
    page = os.sysconf("SC_PAGE_SIZE")
    ram = 1000 * page
    fake_proc(
        tmp_path,
        {
            "10": stat_line(10, "a b) (c", 300, 200, 77, 50),  # names hold spaces and parens
            "11": stat_line(11, "gnome-keyring-d", 1, 0, 78, 10),  # cut: the cmdline has it
            "12": stat_line(12, "kworker/u8:1-ev", 0, 0, 79, 0),  # cut, but no command line
            "13": stat_line(13, "python3.12-conf", 0, 0, 80, 0),  # the cmdline does not match
            "14": None,  # gone between the listing and the read
            "15": "15 (torn",  # not a stat line
        },
        {
            "11": b"/usr/bin/gnome-keyring-daemon\x00--start\x00",
            "12": b"",
            "13": b"/usr/bin/python3 -m conf",
        },
    )
    scan = ProcStatScan(str(tmp_path), total_ram=ram)
    assert ProcStatScan.works(str(tmp_path)) and not ProcStatScan.works(str(tmp_path / "no"))
    got = sorted(scan(), key=lambda p: p.pid)
    assert [(p.pid, p.name) for p in got] == [
        (10, "a b) (c"),
        (11, "gnome-keyring-daemon"),
        (12, "kworker/u8:1-ev"),
        (13, "python3.12-conf"),
    ]
    first = got[0]
    assert first.cpu_s == pytest.approx(500 * tick) and first.started == pytest.approx(77 * tick)
    assert first.mem_pct == pytest.approx(5.0)
    # The long name is looked up once per process: a changed command line is not read again.
    (tmp_path / "11" / "cmdline").write_bytes(b"other\x00")
    assert {p.pid: p.name for p in scan()}[11] == "gnome-keyring-daemon"
    for pid in ("10", "11", "12", "13"):
        (tmp_path / pid / "stat").unlink()
    with pytest.raises(SensorUnavailable, match="no process is visible"):
        scan()


def test_proc_scan_agrees_with_psutil_on_this_process() -> None:
    if not ProcStatScan.works():
        pytest.skip("no /proc/self/stat here")
    mine = next(p for p in ProcStatScan()() if p.pid == os.getpid())
    theirs = next(p for p in scan_processes_psutil() if p.pid == os.getpid())
    assert mine.name == theirs.name
    assert mine.cpu_s is not None and theirs.cpu_s is not None
    assert abs(mine.cpu_s - theirs.cpu_s) < 0.5
    # The stat line's resident count is the kernel's running one; statm's is exact.
    assert mine.mem_pct == pytest.approx(theirs.mem_pct, rel=0.05)


def test_rankings_are_rescanned_every_rank_every_s_and_repeated_in_between() -> None:
    calls: list[float] = []
    answers = iter([BEFORE, AFTER, AFTER])

    def scan() -> Sequence[ProcessStat]:
        calls.append(0.0)
        return next(answers)

    focus = FakeFocus([FocusReading("xterm")] * 20)
    sensor = AppsSensor(AppsSensorConfig(top_n=1, rank_every_s=60.0), focus=focus, processes=scan)
    assert sensor.interval_s == 5.0
    first = sensor.read(T0)  # the first scan: memory only
    second = sensor.read(T0 + 5.0)  # the second at once: the first CPU ranking
    assert len(calls) == 2 and second.data["cpu1_name"] == "cc1"
    for i in range(2, 13):  # 10 s to 60 s: the same rankings, no scan
        again = sensor.read(T0 + 5.0 * i + 0.01 * (-1) ** i)  # a poll's jitter either way
        assert again.data == second.data
    assert len(calls) == 2
    sensor.read(T0 + 65.0 - 0.02)
    assert len(calls) == 3 and first.data == {
        "app": "xterm",
        "mem1_name": "firefox",
        "mem1_pct": 12.5,
    }


def test_without_a_focus_to_read_the_sensor_polls_at_the_ranking_interval() -> None:
    focus = UnavailableFocus("no graphical session: DISPLAY and WAYLAND_DISPLAY are unset")
    sensor = AppsSensor(AppsSensorConfig(rank_every_s=60.0), focus=focus, processes=one_process)
    assert sensor.interval_s == 60.0
    every_poll = AppsSensor(AppsSensorConfig(rank_every_s=0.0), focus=focus, processes=one_process)
    assert every_poll.interval_s == 5.0


def test_a_failed_scan_leaves_the_rankings_out_and_is_retried_at_the_next_poll() -> None:
    focus = FakeFocus([FocusReading("xterm")] * 5)
    sensor = AppsSensor(
        AppsSensorConfig(top_n=1),
        focus=focus,
        processes=scans(BEFORE, AFTER, SensorUnavailable("apps", "denied"), AFTER),
    )
    sensor.read(T0)
    sensor.read(T0 + 5.0)
    assert sensor.read(T0 + 65.0).data == {"app": "xterm"}
    assert sensor.read(T0 + 70.0).data["mem1_name"] == "firefox"


def test_names_that_are_no_utf8_and_huge_counters_stay_out_of_trouble(tmp_path: Path) -> None:
    """Regression: a process named with bytes that are no UTF-8 gave a name with lone
    surrogates (``os.fsdecode``), so the gate refused the whole apps sample while that
    process ranked; a stat field beyond 64 bits made the scan's arithmetic overflow."""
    page = os.sysconf("SC_PAGE_SIZE")
    fake_proc(
        tmp_path,
        {
            "20": stat_line(20, "ok", 1, 0, 70, 10),
            "21": stat_line(21, "big", 10**30, 0, 71, 10),
        },
        {},
    )
    stat = tmp_path / "20" / "stat"
    stat.write_bytes(stat.read_bytes().replace(b"(ok)", b"(\xff\xfe)"))
    stats = ProcStatScan(str(tmp_path), total_ram=1000 * page)()
    assert [(p.pid, p.name) for p in stats] == [(20, "\ufffd\ufffd")]
    assert name_from_cmdline(b"/usr/bin/\xffname\x00-x\x00", "\ufffdna") == "\ufffdname"
    reading = FocusReading("term", "x" * 1000, 7)
    title = focus_fields(reading, True, [re.compile("x")])["title"]
    assert title == "[redacted]" * 102 + "[red"  # cut at 1,024 characters
