"""Shared fixtures: paths, a store on a fresh file, a clock the test sets."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from _desktop import XSession, start_xsession
from hypothesis import HealthCheck, settings

from agent.memory.db import open_engine, upgrade
from agent.memory.store import MemoryStore

# vigil judges values by the local hour (``[anomaly] timezone = "local"``): the tests run in
# UTC wherever they run, so their traces give the same events on every machine (the CLI's
# subprocesses inherit it).
os.environ["TZ"] = "UTC"
time.tzset()

# Nothing of the user's own vigil: the tests' config, data and state folders are their own
# (``vigil demo`` writes the data folder's demo.db; two runs on one machine would share it).
_FOLDERS = Path(tempfile.mkdtemp(prefix="vigil-tests-"))
atexit.register(shutil.rmtree, _FOLDERS, ignore_errors=True)
for _name in ("XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_STATE_HOME"):
    os.environ[_name] = str(_FOLDERS / _name.lower())
for _name in ("VIGIL_CONFIG", "VIGIL_DB"):
    os.environ.pop(_name, None)

TESTS = Path(__file__).parent
DATA = TESTS / "data"

# Property-based tests: the same cases on every run (a failure is reproducible, never luck),
# no deadline (CPU time on a busy 2-core machine is not the property under test), and no
# example database left in the tree. More cases: HYPOTHESIS_PROFILE=deep.
settings.register_profile(
    "vigil",
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile("deep", parent=settings.get_profile("vigil"), max_examples=20_000)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "vigil"))


class ManualClock:
    """A clock that moves only when the test says so."""

    def __init__(self, t: float = 1_780_272_000.0) -> None:
        self.t = t
        self.mono = 0.0

    def now(self) -> float:
        return self.t

    def monotonic(self) -> float:
        return self.mono

    def advance(self, seconds: float) -> None:
        self.t += seconds
        self.mono += seconds


@pytest.fixture
def xsession() -> Iterator[XSession]:
    """A real X server with openbox (skips, or fails in CI, without Xvfb)."""
    with start_xsession() as session:
        yield session


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "vigil" / "vigil.db"


@pytest.fixture
def store(db_path: Path) -> Iterator[MemoryStore]:
    engine = open_engine(db_path)
    upgrade(engine)
    s = MemoryStore(engine)
    yield s
    s.close()
