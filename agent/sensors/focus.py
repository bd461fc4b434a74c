"""The focused window for the apps sensor (stage 1): X11, sway, Hyprland; others say why not."""

from __future__ import annotations

import logging
import os
import re
import shutil
import socket
import subprocess
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from importlib.util import find_spec
from typing import Any, Protocol

from agent.errors import SensorReadError, SensorUnavailable
from agent.sensors import commands
from agent.sensors.values import clean_text, loads

logger = logging.getLogger(__name__)

SENSOR = "apps"

#: ``app`` of a focused window that names no application (no WM_CLASS, no app_id).
UNKNOWN_APP = "unknown"

#: A subprocess backend's command is killed after this long; the focus is then unreadable
#: (left out of the samples) until the command answers again.
COMMAND_TIMEOUT_S = 2.0
#: The largest process id (a positive 32-bit ``pid_t``; Linux gives at most 2^22).
PID_MAX = (1 << 31) - 1

TERMUX_REASON = (
    "Android: Termux:API has no usage-stats command and other apps' processes are hidden; "
    "the foreground app is only visible to 'dumpsys usagestats' or 'dumpsys activity', "
    "which need a shell bridge (adb, Shizuku or root)"
)


@dataclass(frozen=True, slots=True)
class FocusReading:
    """The focused window at one poll; ``app`` is None when no window has the focus
    (the desktop or an empty workspace). ``title`` is raw here: the sensor decides whether
    it leaves the machine, and redacts it."""

    app: str | None = None
    title: str | None = None
    pid: int | None = None


class FocusBackend(Protocol):
    """Reads the focused window. ``read`` raises ``SensorUnavailable`` while the desktop
    cannot tell (no display, tool missing) and ``SensorReadError`` for one failed read
    (a window closed between two requests)."""

    name: str

    def read(self) -> FocusReading: ...

    def close(self) -> None: ...


Runner = Callable[[Sequence[str], Mapping[str, str]], str]


def _text(value: object) -> str | None:
    """A non-empty string (valid UTF-8), or None."""
    text = value
    if isinstance(value, bytes):
        try:
            text = value.decode("utf-8")
        except UnicodeDecodeError:  # ICCCM STRING is Latin-1; most clients send UTF-8 anyway
            text = value.decode("latin-1")
    return clean_text(text) if isinstance(text, str) and text.strip() else None


def _pid(value: object) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool) and 0 < value <= PID_MAX:
        return value
    return None


def _json(text: str, tool: str) -> Any:
    try:
        return loads(text)
    except ValueError as exc:  # nesting too deep for the decoder included
        raise SensorReadError(SENSOR, f"{tool} printed no valid JSON: {exc}") from exc


def parse_sway_tree(text: str) -> FocusReading:
    """The focused window in the output of ``swaymsg -t get_tree`` (sway-ipc(7), GET_TREE).

    The focused node is the one with ``"focused": true`` among ``nodes`` and
    ``floating_nodes``. A workspace, an output or a split container (no ``pid``, no
    ``app_id``) is no window: ``app`` None. ``app`` is ``app_id`` (xdg-shell) or
    ``window_properties.class`` (Xwayland); ``title`` is the node's ``name``.
    """
    stack = [_json(text, "swaymsg")]
    while stack:
        node = stack.pop()
        if isinstance(node, list):
            stack.extend(node)
            continue
        if not isinstance(node, dict):
            continue
        if node.get("focused") is True:
            if node.get("type") not in ("con", "floating_con"):
                return FocusReading()
            props = node.get("window_properties")
            cls = props.get("class") if isinstance(props, dict) else None
            app, pid = _text(node.get("app_id")) or _text(cls), _pid(node.get("pid"))
            if app is None and pid is None:
                return FocusReading()
            return FocusReading(app or UNKNOWN_APP, _text(node.get("name")), pid)
        for key in ("nodes", "floating_nodes"):
            children = node.get(key)
            if isinstance(children, list):
                stack.extend(children)
    return FocusReading()


def parse_hyprland_window(text: str) -> FocusReading:
    """The output of ``hyprctl activewindow -j``: one window object, or ``{}`` when no
    window has the focus. ``app`` is ``class`` (``initialClass`` when empty)."""
    window = _json(text, "hyprctl")
    if not isinstance(window, dict):
        raise SensorReadError(SENSOR, "hyprctl activewindow -j did not print a JSON object")
    if not window.get("address"):
        return FocusReading()
    app = _text(window.get("class")) or _text(window.get("initialClass")) or UNKNOWN_APP
    return FocusReading(app, _text(window.get("title")), _pid(window.get("pid")))


def run_command(
    argv: Sequence[str], environ: Mapping[str, str], timeout_s: float = COMMAND_TIMEOUT_S
) -> str:
    """The stdout of ``argv`` run with ``environ`` (``commands.run_command``: killed at
    ``timeout_s`` with every process it started); a missing tool, a failing command or a
    hung one is ``SensorUnavailable``."""
    try:
        done = commands.run_command(argv, timeout_s, env=environ)
    except FileNotFoundError as exc:
        raise SensorUnavailable(SENSOR, f"{argv[0]} is not installed") from exc
    except subprocess.TimeoutExpired as exc:
        raise SensorUnavailable(
            SENSOR, f"{argv[0]} gave no answer in {timeout_s:g} s (killed)"
        ) from exc
    except OSError as exc:
        raise SensorUnavailable(SENSOR, f"{argv[0]} cannot run: {exc}") from exc
    if done.returncode != 0:
        detail = done.stderr.strip() or f"exit status {done.returncode}"
        raise SensorUnavailable(SENSOR, f"{' '.join(argv)} failed: {detail}")
    return done.stdout


class CommandFocus:
    """A backend that runs one command per poll and parses its JSON (sway, Hyprland)."""

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        parse: Callable[[str], FocusReading],
        environ: Mapping[str, str],
        run: Runner = run_command,
    ) -> None:
        self.name = name
        self._argv, self._parse, self._environ, self._run = tuple(argv), parse, environ, run

    def read(self) -> FocusReading:
        return self._parse(self._run(self._argv, self._environ))

    def close(self) -> None:
        pass


_ATOMS = (
    "_NET_ACTIVE_WINDOW",
    "_NET_CLIENT_LIST",
    "_NET_SUPPORTING_WM_CHECK",
    "_NET_WM_NAME",
    "_NET_WM_PID",
    "WM_CLASS",
    "WM_NAME",
)


def window_reading(
    wm_class: object, net_wm_name: object, wm_name: object, wm_pid: object
) -> FocusReading:
    """A window's ``FocusReading`` from its X11 properties as python-xlib gives them (bytes,
    a sequence of 32-bit values, or None when unset), whatever a client put there.

    ``app`` is the class of ``WM_CLASS`` (``b"instance\\0class\\0"``), else its instance,
    else ``UNKNOWN_APP``; ``title`` is ``_NET_WM_NAME`` (UTF-8), else ``WM_NAME``; ``pid`` is
    the first value of ``_NET_WM_PID`` when it is a plausible process id.
    """
    parts = wm_class.split(b"\0") if isinstance(wm_class, bytes) else []
    app = (_text(parts[1]) if len(parts) > 1 else None) or (_text(parts[0]) if parts else None)
    title = _text(net_wm_name) or _text(wm_name)
    pid = None
    if isinstance(wm_pid, Sequence) and not isinstance(wm_pid, bytes | str) and len(wm_pid) > 0:
        pid = _pid(wm_pid[0])
    return FocusReading(app or UNKNOWN_APP, title, pid)


class X11Focus:
    """EWMH over python-xlib, as aw-watcher-window does: the root's ``_NET_ACTIVE_WINDOW``,
    then that window's ``WM_CLASS`` (the class is ``app``), ``_NET_WM_NAME`` (UTF-8) or
    ``WM_NAME`` and ``_NET_WM_PID``. Connects on first read and again after a loss."""

    name = "x11"

    def __init__(self, display: str) -> None:
        self._display_name = display
        self._display: Any = None
        self._atoms: dict[str, int] = {}
        self._xerror: Any = None

    def read(self) -> FocusReading:
        root = self._connect().screen().root
        active = self._value(root, "_NET_ACTIVE_WINDOW")
        if not active:
            if active is None and self._value(root, "_NET_SUPPORTING_WM_CHECK") is None:
                raise SensorUnavailable(
                    SENSOR, "no EWMH window manager on this X display (no _NET_ACTIVE_WINDOW)"
                )
            return FocusReading()  # a WM that has not focused anything yet
        window_id = int(active[0])
        if window_id == 0:
            return FocusReading()  # the desktop has the focus
        try:
            return self.read_window(window_id)
        except SensorReadError:
            # openbox leaves a closed window's id behind when no other window takes the
            # focus: a window the WM no longer lists is no focus, not a passing race.
            clients = self._value(root, "_NET_CLIENT_LIST")
            if clients is not None and window_id not in {int(c) for c in clients}:
                return FocusReading()
            raise

    def read_window(self, window_id: int) -> FocusReading:
        """What the focused window ``window_id`` says about itself."""
        window = self._connect().create_resource_object("window", window_id)
        return window_reading(
            self._value(window, "WM_CLASS"),
            self._value(window, "_NET_WM_NAME"),
            self._value(window, "WM_NAME"),
            self._value(window, "_NET_WM_PID"),
        )

    def close(self) -> None:
        display, self._display = self._display, None
        if display is not None:
            try:
                display.close()
            except Exception as exc:  # the server may be gone already
                logger.debug("closing X display %s: %s", self._display_name, exc)

    def _connect(self) -> Any:
        if self._display is not None:
            return self._display
        try:
            from Xlib import display as xdisplay  # type: ignore[import-untyped]
            from Xlib import error as xerror
        except ImportError as exc:
            raise SensorUnavailable(SENSOR, "python-xlib is not installed") from exc
        _probe_local_display(self._display_name)
        try:
            display = xdisplay.Display(self._display_name)
        except (xerror.DisplayError, xerror.ConnectionClosedError, OSError) as exc:
            raise SensorUnavailable(
                SENSOR, f"cannot open X display {self._display_name!r}: {exc}"
            ) from exc
        # Errors of requests without a reply would go to stderr; none are sent, but be quiet.
        display.set_error_handler(lambda err, request: logger.debug("X error: %s", err))
        atoms = {n: display.intern_atom(n) for n in _ATOMS}
        self._display, self._atoms, self._xerror = display, atoms, xerror
        return display

    def _value(self, window: Any, prop: str) -> Any:
        """``window``'s property ``prop`` (bytes, or a sequence of 32-bit values), or None."""
        xerror = self._xerror
        try:
            reply = window.get_full_property(self._atoms[prop], 0)  # 0: AnyPropertyType
        except xerror.XError as exc:  # BadWindow: it closed between two requests
            raise SensorReadError(SENSOR, f"X11 {prop}: {type(exc).__name__}") from exc
        except (xerror.ConnectionClosedError, OSError) as exc:
            self.close()
            raise SensorUnavailable(
                SENSOR, f"X display {self._display_name!r} lost: {exc}"
            ) from exc
        return None if reply is None else reply.value


_LOCAL_DISPLAY = re.compile(r"(?:unix)?:(\d+)(?:\.\d+)?")


def _probe_local_display(name: str) -> None:
    """``SensorUnavailable`` unless a local display's socket answers. python-xlib 0.33 would
    fall back to TCP on localhost, and it leaves the sockets of a failed connect open."""
    match = _LOCAL_DISPLAY.fullmatch(name)
    if match is None:
        return  # host:N (ssh -X): python-xlib's TCP path is the right one
    path = f"/tmp/.X11-unix/X{match[1]}"  # where python-xlib looks, then the abstract name
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        try:
            probe.connect(path if os.path.exists(path) else "\0" + path)
        except OSError as exc:
            raise SensorUnavailable(SENSOR, f"no X server answers on {name!r}: {exc}") from exc


#: Focus backends by name; each is built from the environment of the session.
FOCUS_BACKENDS: dict[str, Callable[[Mapping[str, str]], FocusBackend]] = {
    "x11": lambda env: X11Focus(env["DISPLAY"]),
    "sway": lambda env: CommandFocus(
        "sway", ("swaymsg", "-r", "-t", "get_tree"), parse_sway_tree, env
    ),
    "hyprland": lambda env: CommandFocus(
        "hyprland", ("hyprctl", "activewindow", "-j"), parse_hyprland_window, env
    ),
}


#: Wayland desktops (``XDG_CURRENT_DESKTOP`` entries, lowercase) with no backend, and why.
_WAYLAND_WITHOUT_FOCUS = {
    "sway": "sway session without SWAYSOCK: swaymsg cannot reach sway",
    "hyprland": "Hyprland session without HYPRLAND_INSTANCE_SIGNATURE: hyprctl cannot reach it",
    "gnome": "GNOME on Wayland gives no focused-window API without a shell extension",
    "kde": "KDE Plasma on Wayland shows the focused window only to KWin scripts",
}


def select_backend(environ: Mapping[str, str], termux: bool) -> str:
    """The ``FOCUS_BACKENDS`` key for this session, or ``SensorUnavailable`` saying why
    there is none. Wayland comes first: its Xwayland ``DISPLAY`` sees only X clients."""
    if termux:
        raise SensorUnavailable(SENSOR, TERMUX_REASON)
    desktops = {d.lower() for d in environ.get("XDG_CURRENT_DESKTOP", "").split(":") if d}
    if environ.get("WAYLAND_DISPLAY") or environ.get("XDG_SESSION_TYPE") == "wayland":
        if environ.get("SWAYSOCK"):
            return "sway"
        if environ.get("HYPRLAND_INSTANCE_SIGNATURE"):
            return "hyprland"
        for desktop, reason in _WAYLAND_WITHOUT_FOCUS.items():
            if desktop in desktops:
                raise SensorUnavailable(SENSOR, reason)
        desktop = environ.get("XDG_CURRENT_DESKTOP") or "XDG_CURRENT_DESKTOP unset"
        raise SensorUnavailable(
            SENSOR, f"no focused-window backend for this Wayland desktop ({desktop})"
        )
    if environ.get("DISPLAY"):
        return "x11"
    raise SensorUnavailable(SENSOR, "no graphical session: DISPLAY and WAYLAND_DISPLAY are unset")


class UnavailableFocus:
    """The backend where there is none: every read says why."""

    name = "none"

    def __init__(self, reason: str) -> None:
        self.reason = reason

    def read(self) -> FocusReading:
        raise SensorUnavailable(SENSOR, self.reason)

    def close(self) -> None:
        pass


def open_focus(environ: Mapping[str, str], termux: bool) -> FocusBackend:
    """The backend for this session (``UnavailableFocus`` when there is none)."""
    try:
        key = select_backend(environ, termux)
    except SensorUnavailable as exc:
        return UnavailableFocus(exc.reason)
    return FOCUS_BACKENDS[key](dict(environ))


def describe_focus(environ: Mapping[str, str], termux: bool) -> tuple[bool, str]:
    """For ``vigil doctor``: whether the focused window can be read here, and how or why not.
    Looks at the environment and the installed tools only; connects to nothing."""
    try:
        key = select_backend(environ, termux)
    except SensorUnavailable as exc:
        return False, exc.reason
    if key == "x11":
        if find_spec("Xlib") is None:
            return False, "X11 session, but python-xlib is not installed"
        return True, f"X11 on DISPLAY={environ['DISPLAY']} (EWMH _NET_ACTIVE_WINDOW, python-xlib)"
    tool = "swaymsg" if key == "sway" else "hyprctl"
    if shutil.which(tool, path=environ.get("PATH")) is None:
        return False, f"{key} session, but {tool} is not on PATH"
    return True, f"{key} session via {tool}"
