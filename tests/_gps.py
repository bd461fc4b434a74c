"""Test helper: a real gpsd on a free loopback port, fed a shared NMEA log by gpsfake."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
from pathlib import Path

from _tools import free_port, require_tool, shared

__all__ = ["GpsFake", "free_port", "nmea_dir"]


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
