"""Energy in the report from each source: RAPL attributed by CPU time, a coefficient that
``vigil power calibrate`` measured, and the refusal where nothing can be measured."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from _rapl import LiveRapl
from sqlalchemy import select

from agent.cli import main
from agent.config import Config
from agent.memory import schema
from agent.memory.db import open_engine, upgrade
from agent.memory.store import MemoryStore
from agent.pipeline import Pipeline
from agent.power.ledger import NODE, PROCESS, Ledger, MachineReaders
from agent.power.meter import PowerMeter
from agent.power.rapl import find_rapl
from agent.report.power import build_report
from agent.runtime.loop import drive
from agent.samples import Sample

T0 = 1_780_000_000.0


@pytest.fixture
def rapl(tmp_path: Path) -> Iterator[LiveRapl]:
    with LiveRapl(tmp_path / "powercap", idle_w=1.0, k_w=10.0) as zone:
        yield zone


@pytest.fixture
def live_rapl(rapl: LiveRapl) -> Path:
    return rapl.root


def test_rapl_energy_is_attributed_by_cpu_time(tmp_path: Path, rapl: LiveRapl) -> None:
    """A daemon's ledger with RAPL energy: the agent's share of each hour's energy above the
    idle floor is its CPU time's share of the machine's busy CPU."""
    found = find_rapl(rapl.root)
    assert found.counter is not None
    busy = [0.0]  # the machine's busy CPU: the agent's twice over, by construction

    engine = open_engine(tmp_path / "v.db")
    upgrade(engine)
    store = MemoryStore(engine, commit_interval_s=None)
    process = [0.0]
    ledger = Ledger(
        PowerMeter(),
        "daemon",
        process_cpu=lambda: process[0],
        machine=MachineReaders(lambda: busy[0], found.counter.read_j, found.counter.label),
    )

    def samples() -> Iterator[Sample]:
        for i in range(3 * 360):  # three hours from T0 (mid-hour), a sample every 10 s
            process[0] += 0.001
            busy[0] += 0.002
            rapl.tick()  # every sample's time moves the counter, whatever the threads do
            yield Sample("system", T0 + 10 * i, {"cpu_pct": 5.0})

    drive(([s] for s in samples()), pipeline=Pipeline(Config()), store=store, ledger=ledger)
    store.close()
    report = build_report(engine, generated=T0, window_s=None)
    found.counter.close()
    with engine.connect() as conn:
        nodes = [
            r
            for r in conn.execute(
                select(schema.power_ledger).order_by(schema.power_ledger.c.hour_us)
            )
            if r.component == NODE
        ]
    engine.dispose()
    # By hand: the floor is the lowest hour's power (the 5th percentile of four), each
    # hour's energy above it goes to the agent by its CPU share (half the machine's busy).
    assert len(nodes) == 4 and all(n.energy_j > 0 for n in nodes)  # 3 h across 4 hours
    floor_w = min(n.energy_j / n.covered_s for n in nodes)
    share_j = sum((n.energy_j - floor_w * n.covered_s) * 0.5 for n in nodes)
    assert report["energy"]["provenance"] == "attributed"
    assert report["energy"]["source"].startswith("RAPL psys")
    assert report["energy"]["coefficient"] is None
    agent = report["agent"]
    assert agent["cpu_s"] == pytest.approx(1.08, abs=0.002)
    # J per agent CPU-second: within the band, and no more than all the measured energy
    # shared out by CPU time (the band's top takes no idle floor).
    assert agent["energy_j"] == pytest.approx(share_j, rel=1e-6)
    low, high = agent["energy_band_j"]
    assert low <= agent["energy_j"] <= high
    assert high == pytest.approx(sum(n.energy_j for n in nodes) * 0.5, rel=1e-6)
    rows = report["timeline"]["components_cpu_s"]
    assert PROCESS not in rows and NODE not in rows
    assert sum(c["energy_j"] for c in report["components"]) == pytest.approx(agent["energy_j"])
    assert any("attributed" in m for m in report["method"])


def test_calibrate_then_report_with_the_measured_coefficient(
    tmp_path: Path, live_rapl: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "v.db"
    engine = open_engine(db)  # vigil init: calibrate refuses a database that does not exist
    upgrade(engine)
    engine.dispose()
    args = ["power", "calibrate", "--db", str(db), "--powercap", str(live_rapl)]
    assert main([*args, "--pairs", "4", "--busy-s", "0.5", "--idle-s", "0.5"]) == 0
    out = capsys.readouterr()
    assert "calibrating against RAPL psys" in out.err and "pair  4 idle" in out.err
    assert "k = " in out.out
    assert main(["demo", "--db", str(tmp_path / "demo.db"), "-q"]) == 0
    # The demo's database has no calibration: the published band. Ours has one.
    capsys.readouterr()
    assert main(["report", "power", "--db", str(db), "--json", "--since", "all"]) == 0
    report = json.loads(capsys.readouterr().out)
    coefficient = report["energy"]["coefficient"]
    assert report["energy"]["provenance"] == "estimated"
    assert "calibrated" in coefficient["source"] and "RAPL psys" in coefficient["source"]
    assert coefficient["value"] == pytest.approx(10.0, rel=0.25)
    assert coefficient["low"] <= coefficient["value"] <= coefficient["high"]


def test_calibrate_refuses_where_nothing_is_measured(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "supplies").mkdir()
    config = tmp_path / "config.toml"
    config.write_text(f'[sensors.battery]\npower_supply_dir = "{tmp_path / "supplies"}"\n')
    engine = open_engine(tmp_path / "v.db")
    upgrade(engine)
    args = ["power", "calibrate", "--config", str(config), "--db", str(tmp_path / "v.db")]
    assert main([*args, "--powercap", str(tmp_path / "none")]) == 2
    err = capsys.readouterr().err
    assert "no measured power source" in err and "estimate" in err
    with engine.connect() as conn:  # nothing written
        assert conn.execute(select(schema.power_calibrations)).all() == []
    engine.dispose()
