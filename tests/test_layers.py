"""The pipeline does no I/O: it imports nothing from the memory, the runtime or the sensors,
however deep (ARCHITECTURE.md, data flow)."""

from __future__ import annotations

import json
import subprocess
import sys

FORBIDDEN = ("agent.memory", "agent.runtime", "agent.sensors")

PROBE = """
import json, sys
import agent.pipeline
print(json.dumps(sorted(m for m in sys.modules if m.startswith("agent."))))
"""


def test_the_pipeline_imports_no_memory_runtime_or_sensors() -> None:
    out = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, check=True
    ).stdout
    loaded = json.loads(out.splitlines()[-1])
    assert "agent.detect.anomaly.stage" in loaded  # the probe saw the pipeline's stages
    assert [m for m in loaded if m.startswith(FORBIDDEN)] == []
