"""``vigil demo``: a synthetic day replayed through the full pipeline, events printed."""

from __future__ import annotations

import socket
import tempfile
from collections.abc import Callable
from pathlib import Path

from agent import synthetic
from agent.config import Config
from agent.detect.fences import Fence
from agent.escalation.backends import Backend
from agent.memory.wakes import WakeStore
from agent.runtime.fence_admin import circle
from agent.runtime.replay import ReplayResult, replay_files
from agent.runtime.trace import TraceWriter
from agent.samples import Event, Sample


def write_synthetic_trace(
    path: Path, days: int = 1, seed: int = 7, *, adjust: Callable[[Sample], Sample] | None = None
) -> int:
    """Write ``days`` synthetic days to ``path``, each sample through ``adjust`` if given (a
    bench's per-device rates); returns the number of samples."""
    n = 0
    with TraceWriter(
        path, created=synthetic.START_T, host=socket.gethostname(), source="vigil synthetic"
    ) as writer:
        for sample in synthetic.generate(days, seed):
            writer.write(adjust(sample) if adjust is not None else sample)
            n += 1
    return n


def demo_fences() -> list[Fence]:
    """Circles around the synthetic day's home (150 m) and work (200 m, dwell after 10 min)."""
    return [
        circle("home", *synthetic.HOME, 150.0),
        circle("work", *synthetic.WORK, 200.0, 600.0),
    ]


def run_demo(
    config: Config,
    on_event: Callable[[Event], None],
    db: Path,
    *,
    backend: Backend | None = None,
    on_findings: Callable[[WakeStore], None] | None = None,
) -> ReplayResult:
    """Replay the synthetic day into the new database ``db`` (kept for ``vigil report``)."""
    with tempfile.TemporaryDirectory(prefix="vigil-demo-") as tmp:
        trace = Path(tmp) / "demo.jsonl.gz"
        write_synthetic_trace(trace)
        return replay_files(
            [trace],
            config,
            db=db,
            fences=demo_fences(),
            on_event=on_event,
            backend=backend,
            on_findings=on_findings,
        )
