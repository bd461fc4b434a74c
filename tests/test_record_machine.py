"""A recording made on this machine with every source real: system and battery (psutil,
sysfs), apps under a real X server (Xvfb + openbox, focus switched with xdotool), location
from a real gpsd fed by gpsfake. Replaying it twice gives identical events."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from _desktop import XSession
from _gps import GpsFake, free_port
from _tools import reap, require_tool, vigil

from agent.cli import main
from agent.runtime.trace import ReadCounts, read_trace

CONFIG = """
[sensors.system]
interval_s = 1.0
[sensors.battery]
interval_s = 1.0
[sensors.apps]
interval_s = 0.5
pulsetime_s = 2.0
titles = true
redact = ["[0-9]+"]
[sensors.location]
source = "gpsd"
gpsd_port = {port}
interval_s = 1.0
# The log is from 2007 (gpsd dates it 1024 weeks later): old fixes, so staleness is off here.
max_age_s = 1e10
[[rules]]
name = "fix_seen"
stream = "location.accuracy_m"
above = 0.0
[[rules]]
name = "busy_process"
stream = "apps.mem1_pct"
above = 0.0
"""


@pytest.fixture
def gps(tmp_path: Path) -> Iterator[int]:
    """A real gpsd on a free loopback port, fed the haicom-305N log by gpsfake."""
    port = free_port()
    with GpsFake(tmp_path, "haicom-305N.log", port, "-1", "-n", "-W", "60", "-c", "0.05"):
        yield port


def test_record_everything_here_and_replay_identically(
    tmp_path: Path, xsession: XSession, gps: int, capsys: pytest.CaptureFixture[str]
) -> None:
    require_tool("xlogo")
    require_tool("xcalc")
    xsession.spawn("xlogo")
    xsession.activate("XLogo")
    xsession.spawn("xcalc")
    xsession.activate("XCalc")
    env, port = xsession.env, gps
    cfg = tmp_path / "config.toml"
    cfg.write_text(CONFIG.format(port=port))
    trace = tmp_path / "here.jsonl.gz"
    record = subprocess.Popen(
        vigil(cfg, "record", "--seconds", "6", "-o", str(trace)),
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        for cls in ("XLogo", "XCalc", "XLogo"):  # switch the focus while it records
            time.sleep(1.5)
            xsession.activate(cls)
        _, err = record.communicate(timeout=60)
    finally:
        reap(record)
    assert record.returncode == 0, err

    samples = list(read_trace([trace], ReadCounts()))
    sensors = {s.sensor for s in samples}
    assert {"system", "apps", "location"} <= sensors, err
    apps = {s.data.get("app") for s in samples if s.sensor == "apps"}
    assert {"XLogo", "XCalc"} <= apps
    fixes = [s for s in samples if s.sensor == "location"]
    assert fixes and all(-27.3 < float(s.data["lat"]) < -27.1 for s in fixes)  # haicom: 27S

    outputs = []
    for _ in range(2):
        assert main(["--config", str(cfg), "replay", "--json", str(trace)]) == 0
        outputs.append(capsys.readouterr().out)
    assert outputs[0] == outputs[1]
    assert '"subject": "fix_seen"' in outputs[0] and '"subject": "busy_process"' in outputs[0]
