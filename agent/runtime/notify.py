"""sd_notify client: tells systemd the daemon is ready, alive (watchdog) or stopping."""

# Hand-written on purpose: the protocol is one datagram of "KEY=value" lines sent to the
# AF_UNIX socket named in $NOTIFY_SOCKET (man sd_notify(3), "Notes"), while systemd's Python
# binding needs compiling against libsystemd, which a phone can't do.

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Mapping

logger = logging.getLogger(__name__)


class Notifier:
    """Sends sd_notify messages; every method is a no-op when systemd did not ask for them.

    Sending never raises: the first failure is logged at WARNING, later ones at DEBUG, because
    a daemon must not die for want of telling systemd about itself.
    """

    def __init__(self, address: str | None, *, watchdog_interval_s: float | None = None) -> None:
        # address as in $NOTIFY_SOCKET: a path, or "@name" for the abstract namespace.
        self._address = _socket_address(address) if address else None
        self._watchdog_interval_s = watchdog_interval_s
        self._warned = False

    @classmethod
    def from_environ(
        cls, environ: Mapping[str, str] = os.environ, *, pid: int | None = None
    ) -> Notifier:
        """Build from systemd's variables; ``pid`` (default: this process) is checked
        against WATCHDOG_PID, which names the process the watchdog is meant for."""
        return cls(
            environ.get("NOTIFY_SOCKET") or None,
            watchdog_interval_s=_watchdog_interval_s(environ, os.getpid() if pid is None else pid),
        )

    @property
    def enabled(self) -> bool:
        return self._address is not None

    def watchdog_interval_s(self) -> float | None:
        """Seconds between watchdog pings (half of WatchdogSec), or None if there is no watchdog."""
        return self._watchdog_interval_s

    def ready(self) -> None:
        self._send("READY=1")

    def watchdog(self) -> None:
        self._send("WATCHDOG=1")

    def stopping(self) -> None:
        self._send("STOPPING=1")

    def status(self, text: str) -> None:
        """A one-line status shown by ``systemctl status``."""
        # Each line of a message is one assignment, so a newline would start a new one.
        self._send("STATUS=" + " ".join(text.splitlines()))

    def _send(self, message: str) -> None:
        if self._address is None:
            return
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
                sock.sendto(message.encode(), self._address)
        except OSError as exc:
            if not self._warned:
                self._warned = True
                logger.warning("cannot notify systemd at %r: %s", self._address, exc)
            else:
                logger.debug("cannot notify systemd at %r: %s", self._address, exc)


def _socket_address(value: str) -> str:
    # A leading "@" names a socket in Linux's abstract namespace, whose address starts with NUL.
    return "\0" + value[1:] if value.startswith("@") else value


def _watchdog_interval_s(environ: Mapping[str, str], pid: int) -> float | None:
    usec = environ.get("WATCHDOG_USEC")
    if not usec:
        return None
    watchdog_pid = environ.get("WATCHDOG_PID")
    try:
        if watchdog_pid and int(watchdog_pid) != pid:
            return None
        interval_us = int(usec)
    except ValueError:
        logger.warning("ignoring watchdog: WATCHDOG_USEC=%r WATCHDOG_PID=%r", usec, watchdog_pid)
        return None
    if interval_us <= 0:
        return None
    # systemd's advice: ping at half the timeout, so one late tick is not fatal.
    return interval_us / 2_000_000
