"""Shared fixtures: paths, a store on a fresh file, a clock the test sets."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from _desktop import XSession, start_xsession

from agent.memory.db import open_engine, upgrade
from agent.memory.store import MemoryStore

TESTS = Path(__file__).parent
DATA = TESTS / "data"


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
