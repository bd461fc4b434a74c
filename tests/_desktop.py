"""Test helper: a real X server (Xvfb) with openbox, for the apps sensor and recordings."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from _tools import require_tool


@dataclass
class XSession:
    display: str
    env: dict[str, str]
    procs: list[subprocess.Popen[bytes]]

    def spawn(self, *argv: str) -> subprocess.Popen[bytes]:
        proc = subprocess.Popen(argv, env=self.env, stderr=subprocess.DEVNULL)
        self.procs.append(proc)
        return proc

    def xdotool(self, *args: str) -> str:
        argv = [require_tool("xdotool"), *args]
        done = subprocess.run(argv, env=self.env, capture_output=True, text=True, timeout=15)
        return done.stdout.strip()

    def activate(self, wm_class: str) -> None:
        """Give the focus to the window of ``wm_class`` and wait until openbox says so.

        A window just mapped may not be managed yet, and then openbox ignores the request
        (``windowactivate --sync`` would wait for ever), so it is repeated until it holds.
        """
        found = self.xdotool("search", "--sync", "--onlyvisible", "--class", f"^{wm_class}$")
        window = found.splitlines()[0]
        end = time.monotonic() + 10.0
        while True:
            self.xdotool("windowactivate", window)
            for _ in range(10):
                if self.xdotool("getactivewindow") == window:
                    return
                time.sleep(0.05)
            if time.monotonic() > end:
                raise AssertionError(f"openbox never activated {wm_class}")


def _wait(predicate: Callable[[], bool], what: str, timeout_s: float = 10.0) -> None:
    end = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > end:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def _wait_for_window_manager(probe: Any) -> None:
    """Return once openbox manages new windows. It claims the screen before its event loop
    runs, and a window mapped in between stays unmanaged, so a probe window is mapped
    (again and again) until openbox lists it, then destroyed and seen gone."""
    from Xlib import X

    root = probe.screen().root
    clients = probe.intern_atom("_NET_CLIENT_LIST")

    def ids(atom: int) -> list[int]:
        prop = root.get_full_property(atom, 0)
        return [] if prop is None else [int(v) for v in prop.value]

    window = root.create_window(0, 0, 10, 10, 0, X.CopyFromParent)
    window.set_wm_class("vigil-ready", "VigilReady")

    def managed() -> bool:
        window.map()  # a no-op once mapped; a new request if openbox dropped the last one
        probe.sync()
        return window.id in ids(clients)

    try:
        _wait(managed, "openbox to manage windows")
        window.destroy()
        probe.sync()
        _wait(lambda: window.id not in ids(clients), "openbox to drop the probe")
    finally:
        probe.close()


@contextmanager
def start_xsession() -> Iterator[XSession]:
    """Xvfb on a display it picks itself, openbox managing windows; all stopped after."""
    xvfb = require_tool("Xvfb")
    openbox = require_tool("openbox")
    from Xlib import display as xdisplay  # a dependency on Linux: never skipped

    read_fd, write_fd = os.pipe()
    server = subprocess.Popen(
        [xvfb, "-displayfd", str(write_fd), "-nolisten", "tcp", "-screen", "0", "800x600x24"],
        pass_fds=(write_fd,),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    os.close(write_fd)
    session = XSession("", {}, [server])
    try:
        with os.fdopen(read_fd, "rb") as pipe:  # Xvfb writes the number once it accepts clients
            number = pipe.readline().strip().decode()
        assert number, "Xvfb did not report a display number"
        session.display = f":{number}"
        session.env = {**os.environ, "DISPLAY": session.display}
        session.spawn(openbox, "--sm-disable")
        _wait_for_window_manager(xdisplay.Display(session.display))
        yield session
    finally:
        for proc in reversed(session.procs):
            if proc.poll() is None:
                proc.terminate()
        for proc in session.procs:
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
