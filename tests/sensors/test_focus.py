"""Focus backends: the sway and Hyprland parsers on documented outputs, session detection."""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

import pytest

from agent.errors import SensorReadError, SensorUnavailable
from agent.sensors.focus import (
    FOCUS_BACKENDS,
    TERMUX_REASON,
    UNKNOWN_APP,
    CommandFocus,
    FocusReading,
    UnavailableFocus,
    X11Focus,
    describe_focus,
    open_focus,
    parse_hyprland_window,
    parse_sway_tree,
    run_command,
    select_backend,
    window_reading,
)

DATA = Path(__file__).parents[1] / "data" / "focus"


def text(name: str) -> str:
    return (DATA / name).read_text(encoding="utf-8")


# --- sway ----------------------------------------------------------------------------------


def test_sway_man_page_example_focuses_the_xdg_shell_window() -> None:
    # termite: app_id "termite", pid 25370, and an empty name in the example: no title.
    assert parse_sway_tree(text("sway_get_tree.json")) == FocusReading("termite", None, 25370)


def test_sway_xwayland_window_uses_its_x11_class() -> None:
    assert parse_sway_tree(text("sway_get_tree_xwayland.json")) == FocusReading(
        "URxvt", "ssh alice@build-42: ~", 23959
    )


def test_sway_floating_window_is_found_among_floating_nodes() -> None:
    assert parse_sway_tree(text("sway_get_tree_floating.json")) == FocusReading(
        "org.gnome.Calculator", "Calculator", 31337
    )


def test_sway_empty_workspace_focused_is_no_app() -> None:
    assert parse_sway_tree(text("sway_get_tree_empty_workspace.json")) == FocusReading()


def test_sway_split_container_focused_is_no_app() -> None:
    tree = (
        '{"type": "root", "nodes": [{"type": "output", "nodes": [{"type": "workspace", "nodes":'
        ' [{"type": "con", "focused": true, "name": null, "layout": "splitv", "nodes": []}]}]}]}'
    )
    assert parse_sway_tree(tree) == FocusReading()


def test_sway_window_without_app_id_or_class_is_unknown() -> None:
    tree = '{"type": "root", "nodes": [{"type": "con", "focused": true, "pid": 7, "name": "x"}]}'
    assert parse_sway_tree(tree) == FocusReading(UNKNOWN_APP, "x", 7)


def test_sway_tree_given_as_an_array_is_searched_too() -> None:
    # sway-ipc(7) words the reply as "an array of objects"; swaymsg prints the root object.
    tree = '[{"type": "root", "nodes": [{"type": "con", "focused": true, "app_id": "foot"}]}]'
    assert parse_sway_tree(tree) == FocusReading("foot", None, None)


def test_sway_garbage_is_a_read_error() -> None:
    with pytest.raises(SensorReadError, match="swaymsg printed no valid JSON"):
        parse_sway_tree("Unable to retrieve socket path")


# --- Hyprland ------------------------------------------------------------------------------


def test_hyprland_native_window() -> None:
    assert parse_hyprland_window(text("hyprland_activewindow.json")) == FocusReading(
        "firefox", "Inbox (3) - alice@example.org - Mozilla Firefox", 2345
    )


def test_hyprland_empty_class_falls_back_to_initial_class() -> None:
    assert parse_hyprland_window(text("hyprland_activewindow_xwayland.json")) == FocusReading(
        "steam", "Steam", 4242
    )


def test_hyprland_nothing_focused_is_no_app() -> None:
    assert parse_hyprland_window(text("hyprland_activewindow_none.json")) == FocusReading()


@pytest.mark.parametrize("output", ["Invalid", "[]", ""])
def test_hyprland_non_object_output_is_a_read_error(output: str) -> None:
    with pytest.raises(SensorReadError):
        parse_hyprland_window(output)


# --- session detection ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("environ", "backend"),
    [
        ({"DISPLAY": ":0"}, "x11"),
        ({"DISPLAY": ":1", "XDG_SESSION_TYPE": "x11", "XDG_CURRENT_DESKTOP": "XFCE"}, "x11"),
        # Xwayland's DISPLAY is set under sway too, but would only show X clients.
        (
            {"WAYLAND_DISPLAY": "wayland-1", "DISPLAY": ":0", "SWAYSOCK": "/run/user/1000/s.sock"},
            "sway",
        ),
        (
            {
                "WAYLAND_DISPLAY": "wayland-1",
                "XDG_CURRENT_DESKTOP": "Hyprland",
                "HYPRLAND_INSTANCE_SIGNATURE": "abc_1700000000_123",
            },
            "hyprland",
        ),
        ({"XDG_SESSION_TYPE": "wayland", "SWAYSOCK": "/run/user/1000/s.sock"}, "sway"),
    ],
)
def test_select_backend(environ: Mapping[str, str], backend: str) -> None:
    assert select_backend(environ, termux=False) == backend
    assert backend in FOCUS_BACKENDS


@pytest.mark.parametrize(
    ("environ", "reason"),
    [
        (
            {
                "WAYLAND_DISPLAY": "wayland-0",
                "DISPLAY": ":0",
                "XDG_CURRENT_DESKTOP": "ubuntu:GNOME",
            },
            "GNOME on Wayland gives no focused-window API without a shell extension",
        ),
        (
            {"WAYLAND_DISPLAY": "wayland-0", "XDG_CURRENT_DESKTOP": "KDE"},
            "KDE Plasma on Wayland shows the focused window only to KWin scripts",
        ),
        (
            {"WAYLAND_DISPLAY": "wayland-0", "XDG_CURRENT_DESKTOP": "sway"},
            "sway session without SWAYSOCK: swaymsg cannot reach sway",
        ),
        (
            {"WAYLAND_DISPLAY": "wayland-0", "XDG_CURRENT_DESKTOP": "niri"},
            "no focused-window backend for this Wayland desktop (niri)",
        ),
        ({}, "no graphical session: DISPLAY and WAYLAND_DISPLAY are unset"),
    ],
)
def test_select_backend_says_why_not(environ: Mapping[str, str], reason: str) -> None:
    with pytest.raises(SensorUnavailable) as caught:
        select_backend(environ, termux=False)
    assert caught.value.sensor == "apps"
    assert caught.value.reason == reason
    assert describe_focus(environ, termux=False) == (False, reason)
    backend = open_focus(environ, termux=False)
    assert isinstance(backend, UnavailableFocus)
    with pytest.raises(SensorUnavailable, match="unavailable"):
        backend.read()


def test_termux_wins_over_any_display() -> None:
    environ = {"DISPLAY": ":0", "TERMUX_VERSION": "0.118.0"}
    with pytest.raises(SensorUnavailable) as caught:
        select_backend(environ, termux=True)
    assert caught.value.reason == TERMUX_REASON
    assert "Termux:API has no usage-stats command" in TERMUX_REASON
    assert "dumpsys usagestats" in TERMUX_REASON and "Shizuku" in TERMUX_REASON
    assert describe_focus(environ, termux=True) == (False, TERMUX_REASON)


def test_open_focus_builds_the_registry_backend() -> None:
    assert isinstance(open_focus({"DISPLAY": ":0"}, termux=False), X11Focus)
    sway = open_focus({"WAYLAND_DISPLAY": "w", "SWAYSOCK": "/s"}, termux=False)
    assert isinstance(sway, CommandFocus) and sway.name == "sway"


def test_describe_focus_checks_the_tool_on_path(tmp_path: Path) -> None:
    environ = {"WAYLAND_DISPLAY": "w", "SWAYSOCK": "/s", "PATH": str(tmp_path)}
    assert describe_focus(environ, termux=False) == (
        False,
        "sway session, but swaymsg is not on PATH",
    )
    tool = tmp_path / "swaymsg"
    tool.write_text("#!/bin/sh\n", encoding="utf-8")
    tool.chmod(0o755)
    assert describe_focus(environ, termux=False) == (True, "sway session via swaymsg")


def test_describe_focus_x11() -> None:
    ok, how = describe_focus({"DISPLAY": ":3"}, termux=False)
    assert ok and "DISPLAY=:3" in how


# --- the command runner --------------------------------------------------------------------


def test_command_focus_runs_its_command_with_the_session_environment() -> None:
    calls: list[tuple[Sequence[str], Mapping[str, str]]] = []

    def run(argv: Sequence[str], environ: Mapping[str, str]) -> str:
        calls.append((argv, environ))
        return text("sway_get_tree.json")

    env = {"WAYLAND_DISPLAY": "wayland-1", "SWAYSOCK": "/run/user/1000/sway-ipc.sock"}
    backend = CommandFocus("sway", ("swaymsg", "-r", "-t", "get_tree"), parse_sway_tree, env, run)
    assert backend.read() == FocusReading("termite", None, 25370)
    assert calls == [(("swaymsg", "-r", "-t", "get_tree"), env)]


def test_run_command_translates_failures() -> None:
    env = {"PATH": "/usr/bin:/bin"}
    assert run_command([sys.executable, "-c", "print('{}')"], env) == "{}\n"
    with pytest.raises(SensorUnavailable, match="no-such-tool-vigil is not installed"):
        run_command(["no-such-tool-vigil"], env)
    failing = [sys.executable, "-c", "import sys; sys.exit('Unable to connect to sway')"]
    with pytest.raises(SensorUnavailable, match="Unable to connect to sway"):
        run_command(failing, env)
    # A hung tool makes the focus unreadable (the sensor leaves it out), not one skipped poll.
    with pytest.raises(SensorUnavailable, match=r"gave no answer in 0.3 s \(killed\)"):
        run_command([sys.executable, "-c", "import time; time.sleep(5)"], env, timeout_s=0.3)


def test_what_a_window_says_is_bounded() -> None:
    """Regression: a process id beyond 64 bits, a title of any length or text that is no
    UTF-8 (a lone surrogate from JSON) went into the sample, and the gate refused it whole."""
    window = '{"address": "0x1", "class": "\\ud800x", "title": "%s", "pid": %d}'
    reading = parse_hyprland_window(window % ("t" * 100_000, 2**70))
    assert reading == FocusReading("?x", "t" * 1024, None)
    assert window_reading(b"term\0XTerm\0", None, b"\xe9t\xe9", [4242]) == FocusReading(
        "XTerm", "\xe9t\xe9", 4242
    )
    assert window_reading(b"\0", "", None, b"\x01\x02") == FocusReading("unknown", None, None)
    assert window_reading(None, None, None, [-1]) == FocusReading("unknown", None, None)
