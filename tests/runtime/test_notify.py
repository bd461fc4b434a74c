"""sd_notify client against real AF_UNIX datagram sockets (a path and the abstract namespace)."""

from __future__ import annotations

import logging
import os
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent.runtime.notify import Notifier


def _receiver(address: str) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(address)
    sock.settimeout(2.0)
    return sock


@pytest.fixture(params=["path", "abstract"])
def endpoint(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, socket.socket]]:
    """(NOTIFY_SOCKET value, the bound socket systemd would read from)."""
    if request.param == "path":
        value = str(tmp_path / "notify.sock")
        address = value
    else:
        name = f"vigil-test-{uuid.uuid4().hex}"
        value, address = "@" + name, "\0" + name
    with _receiver(address) as sock:
        yield value, sock


def test_sends_exact_datagrams(endpoint: tuple[str, socket.socket]) -> None:
    value, sock = endpoint
    notifier = Notifier.from_environ({"NOTIFY_SOCKET": value})
    assert notifier.enabled

    notifier.ready()
    notifier.watchdog()
    notifier.status("2 sensors up\nlocation down")
    notifier.stopping()

    received = [sock.recv(4096) for _ in range(4)]
    assert received == [
        b"READY=1",
        b"WATCHDOG=1",
        b"STATUS=2 sensors up location down",
        b"STOPPING=1",
    ]


def test_no_notify_socket_is_a_no_op() -> None:
    notifier = Notifier.from_environ({})
    assert not notifier.enabled
    notifier.ready()
    notifier.watchdog()
    notifier.status("idle")
    notifier.stopping()


def test_missing_socket_never_raises_and_warns_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    notifier = Notifier.from_environ({"NOTIFY_SOCKET": str(tmp_path / "gone.sock")})
    assert notifier.enabled
    with caplog.at_level(logging.DEBUG, logger="agent.runtime.notify"):
        notifier.ready()
        notifier.watchdog()
        notifier.stopping()
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "gone.sock" in warnings[0].getMessage()


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({"WATCHDOG_USEC": "20000000"}, 10.0),
        ({"WATCHDOG_USEC": "20000000", "WATCHDOG_PID": str(os.getpid())}, 10.0),
        ({"WATCHDOG_USEC": "20000000", "WATCHDOG_PID": str(os.getpid() + 1)}, None),
        ({"WATCHDOG_PID": str(os.getpid())}, None),
        ({}, None),
        ({"WATCHDOG_USEC": "0"}, None),
        ({"WATCHDOG_USEC": "soon"}, None),
    ],
)
def test_watchdog_interval(environ: dict[str, str], expected: float | None) -> None:
    assert Notifier.from_environ(environ).watchdog_interval_s() == expected


def test_watchdog_pid_is_compared_with_the_given_pid() -> None:
    environ = {"WATCHDOG_USEC": "60000000", "WATCHDOG_PID": "4242"}
    assert Notifier.from_environ(environ, pid=4242).watchdog_interval_s() == 30.0
    assert Notifier.from_environ(environ, pid=4243).watchdog_interval_s() is None
