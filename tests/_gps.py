"""Test helpers: a real gpsd on a free loopback port, fed a shared NMEA log by gpsfake, or
with no receiver at all."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
from pathlib import Path

from _tools import free_port, require_tool, shared

__all__ = ["GpsFake", "Gpsd", "free_port", "nmea_dir"]


def nmea_dir() -> Path:
    """The shared NMEA logs and their .chk files (``traces/nmea`` of the shared data)."""
    return shared("traces", "nmea", "haicom-305N.log.chk").parent


class GpsFake:
    """gpsfake (and the gpsd it starts) in a process group of its own.

    gpsfake ignores SIGTERM, so the group is killed with SIGKILL. gpsd leaves its control
    socket in $TMPDIR (pointed at the test's directory) and a System V shared-memory
    segment keyed by the port (0x4770 + port, gps/fake.py); the segment is removed too.
    """

    def __init__(self, tmp: Path, log: str, port: int, *options: str) -> None:
        self.port = port
        self.out = tmp / f"gpsfake-{port}.out"
        assert len(str(tmp)) < 80, "gpsd's control socket path must fit in sun_path"
        with self.out.open("wb") as out, (tmp / f"gpsfake-{port}.err").open("wb") as err:
            self.proc = subprocess.Popen(
                [require_tool("gpsfake"), *options, "-P", str(port), str(nmea_dir() / log)],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                env={**os.environ, "TMPDIR": str(tmp)},
                start_new_session=True,
            )

    def kill(self) -> None:
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.proc.wait(timeout=10)

    def cleanup(self) -> None:
        self.kill()
        # gpsd may outlive gpsfake by a moment when gpsfake exits by itself: kill the group.
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        ipcrm = shutil.which("ipcrm")
        if ipcrm:
            subprocess.run(
                [ipcrm, "-M", f"0x4770{self.port:04X}"], capture_output=True, check=False
            )

    def __enter__(self) -> GpsFake:
        return self

    def __exit__(self, *exc: object) -> None:
        self.cleanup()


class Gpsd:
    """gpsd alone (``-N -n``) on ``port`` with no receiver: it greets every client and then
    says nothing, as it does when the receiver is unplugged. Its control socket goes in
    ``tmp``, and its shared-memory segment is keyed by the port (as gpsfake does) and
    removed at the end."""

    def __init__(self, tmp: Path, port: int) -> None:
        self.port = port
        self._shm_key = f"0x4770{port:04X}"
        control = tmp / f"gpsd-{port}.sock"
        assert len(str(control)) < 100, "gpsd's control socket path must fit in sun_path"
        with (tmp / f"gpsd-{port}.err").open("wb") as err:
            self.proc = subprocess.Popen(
                [require_tool("gpsd"), "-N", "-n", "-S", str(port), "-F", str(control)],
                stdin=subprocess.DEVNULL,
                stdout=err,
                stderr=err,
                env={**os.environ, "GPSD_SHM_KEY": self._shm_key},
                start_new_session=True,
            )

    def cleanup(self) -> None:
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait(timeout=10)
        ipcrm = shutil.which("ipcrm")
        if ipcrm:
            subprocess.run([ipcrm, "-M", self._shm_key], capture_output=True, check=False)

    def __enter__(self) -> Gpsd:
        return self

    def __exit__(self, *exc: object) -> None:
        self.cleanup()
