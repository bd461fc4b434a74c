"""bench/escalation.py reads back what a replay stored: its events, the learned places with
their positions (to judge a trip's place right within 500 m), and the findings."""

from __future__ import annotations

from pathlib import Path

from _tools import load_script

from agent.config import Config
from agent.demo import write_synthetic_trace
from agent.runtime.replay import replay_files

SCRIPT = Path(__file__).resolve().parents[1] / "bench" / "escalation.py"


def test_the_stored_places_events_and_findings_are_read_back(tmp_path: Path) -> None:
    escalation = load_script(SCRIPT)
    trace, db = tmp_path / "day.jsonl.gz", tmp_path / "day.db"
    write_synthetic_trace(trace)
    replay_files([trace], Config(), db=db)
    events, places, findings = escalation._stored(db)
    assert any(e.kind == "place.arrive" for e in events)
    assert sorted(places) == ["place-1", "place-2"]  # home and work
    lat, lon = places["place-1"]
    assert abs(lat - 46.0512) < 0.001 and abs(lon - 14.5061) < 0.001  # home
    assert any(f["cause"] == "cpu_runaway" for f in findings)


def test_per_device_rates_copy_the_totals_of_system_samples_only() -> None:
    """``--per-device``'s samples: a system sample gains one interface's and one disk's
    rates, equal to its totals (as such a laptop reports them); other samples pass as they
    are."""
    load_script(SCRIPT)  # (puts bench/ on the path, as the script does)
    import scenario

    samples, _ = scenario.generate(scenario.MIN_DAYS, 1)
    system = next(s for s in samples if s.sensor == "system" and "disk_write_Bps" in s.data)
    other = next(s for s in samples if s.sensor != "system")
    added = scenario.with_device_rates(system).data
    assert set(added) - set(system.data) == set(scenario.PER_DEVICE.values())
    for total, device in scenario.PER_DEVICE.items():
        assert added[device] == system.data[total]
    assert scenario.with_device_rates(other) is other
