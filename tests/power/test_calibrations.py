"""Calibrations stored in a real SQLite file brought to head by the migrations."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, select

from agent.memory.db import open_engine, upgrade
from agent.memory.schema import power_calibrations
from agent.power.calibrate import Calibration
from agent.power.calibrations import latest_calibration, save_calibration

T = 1_780_272_000.0


def _cal(k_w: float, device: str = "laptop: Intel(R) Core(TM) i7-8650U, 8 CPUs") -> Calibration:
    return Calibration(
        k_w=k_w,
        ci_low_w=k_w - 0.4,
        ci_high_w=k_w + 0.5,
        idle_w=3.25,
        busy_w=3.25 + k_w,
        blocks=10,
        block_s=20.0,
        source="RAPL psys",
        device=device,
    )


@pytest.fixture
def engine(db_path: Path) -> Iterator[Engine]:
    engine = open_engine(db_path)
    upgrade(engine)
    yield engine
    engine.dispose()


def test_save_and_read_back(engine: Engine) -> None:
    assert latest_calibration(engine) is None
    first = save_calibration(engine, _cal(4.5), T)
    second = save_calibration(engine, _cal(4.25), T + 3600.5)
    assert second > first
    latest = latest_calibration(engine)
    assert latest is not None
    assert (latest.id, latest.created_t, latest.calibration()) == (second, T + 3600.5, _cal(4.25))
    assert (latest.k_w, latest.source, latest.device) == (4.25, "RAPL psys", _cal(0).device)
    with engine.connect() as conn:
        row = conn.execute(select(power_calibrations).where(power_calibrations.c.id == first)).one()
    assert row.created_us == 1_780_272_000_000_000
    assert (row.k_w, row.ci_low_w, row.ci_high_w, row.blocks) == (4.5, 4.1, 5.0, 10)


def test_latest_of_one_device(engine: Engine) -> None:
    save_calibration(engine, _cal(4.5), T)
    save_calibration(engine, _cal(1.75, device="phone: Qualcomm SM8150, 8 CPUs"), T + 60)
    mine = latest_calibration(engine, device=_cal(0).device)
    assert mine is not None and mine.k_w == 4.5
    newest = latest_calibration(engine)
    assert newest is not None and newest.k_w == 1.75
    assert latest_calibration(engine, device="elsewhere") is None
