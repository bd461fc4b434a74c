"""A live RAPL zone for tests: its counter follows this process's own CPU time."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path


class LiveRapl:
    """A psys zone whose ``energy_uj`` a thread keeps at
    ``idle_w`` × elapsed + ``k_w`` × this process's CPU seconds, updated every millisecond
    in place (fixed-width, so a reader never sees a half-written or empty file)."""

    def __init__(self, root: Path, idle_w: float, k_w: float) -> None:
        self.root = root
        zone = root / "intel-rapl:0"
        zone.mkdir(parents=True)
        (zone / "name").write_text("psys\n")
        (zone / "max_energy_range_uj").write_text("262143328850\n")
        (zone / "energy_uj").write_text(f"{0:020d}\n")
        self._fd = os.open(zone / "energy_uj", os.O_WRONLY)
        self._idle_w, self._k_w = idle_w, k_w
        self._wall0, self._cpu0 = time.monotonic(), time.process_time()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.tick()
            time.sleep(0.001)

    def tick(self) -> None:
        """Write the counter now (a test that must see it move between two of its own steps
        calls this: the thread may not get to run in a few milliseconds on a busy machine)."""
        with self._lock:
            joules = self._idle_w * (time.monotonic() - self._wall0)
            joules += self._k_w * (time.process_time() - self._cpu0)
            os.pwrite(self._fd, f"{round(joules * 1e6):020d}\n".encode(), 0)

    def __enter__(self) -> LiveRapl:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        os.close(self._fd)
