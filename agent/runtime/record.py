"""``vigil record``: the enabled sensors read on their schedule into a trace, for a while;
no pipeline and no database (the trace replays later through both)."""

from __future__ import annotations

import socket
from pathlib import Path

from agent.clock import Clock
from agent.config import Config
from agent.runtime.sources import LiveSource
from agent.runtime.trace import ReadCounts, TraceWriter, new_recording_path, recording_zone
from agent.sensors import enabled_sensors


def record(config: Config, output: Path, seconds: float, clock: Clock) -> tuple[ReadCounts, Path]:
    """Read the sensors for ``seconds`` into the trace ``output`` (or, where that exists, the
    next free name: ``new_recording_path``); what was read and refused, and where."""
    counts = ReadCounts()
    output = new_recording_path(output)
    with TraceWriter(
        output,
        created=clock.now(),
        host=socket.gethostname(),
        source="vigil record",
        timezone=recording_zone(config),
    ) as writer:
        source = LiveSource(
            enabled_sensors(config),
            clock,
            counts,
            recorder=writer,
            misfire_grace_s=config.daemon.misfire_grace_s,
            retry_max_s=config.daemon.retry_max_s,
            duration_s=seconds,
        )
        for _ in source:
            pass
    return counts, output
