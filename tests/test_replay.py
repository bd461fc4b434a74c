"""Golden replays: events worked out by hand (tests/data/expected/*.md) and byte-identical
output on a second run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import DATA

from agent.cli import main
from agent.demo import write_synthetic_trace


def _replay_json(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    assert main(["replay", "--json", *args]) == 0
    return capsys.readouterr().out


def test_outage_trace_gives_hand_worked_events(capsys: pytest.CaptureFixture[str]) -> None:
    out = _replay_json(
        capsys,
        "--config",
        str(DATA / "configs/outage.toml"),
        str(DATA / "traces/outage.jsonl"),
    )
    expected = (DATA / "expected/outage.jsonl").read_text()
    assert out == expected


def test_replay_twice_is_byte_identical(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    trace = tmp_path / "day.jsonl.gz"
    write_synthetic_trace(trace)
    first = _replay_json(capsys, str(trace))
    second = _replay_json(capsys, str(trace))
    assert first == second
    events = [json.loads(line) for line in first.splitlines()]
    expected = [
        json.loads(line) for line in (DATA / "expected/demo.jsonl").read_text().splitlines()
    ]
    assert events[:2] == expected
    # The runaway: 14:00:00 + 120 s, once (demo.md).
    fired = [e for e in events if e["kind"] == "rule.fired"]
    assert len(fired) == 1
    assert fired[0]["t"] == 1780322520.0
    assert fired[0]["subject"] == "cpu_high"
    assert fired[0]["data"]["since"] == 1780322400.0
    assert fired[0]["data"]["value"] > 90.0
    assert len(events) == 3


def test_demo_prints_the_same_events(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--json"]) == 0
    lines = capsys.readouterr().out.splitlines()
    kinds = [json.loads(line)["kind"] for line in lines]
    assert kinds == ["sensor.down", "sensor.up", "rule.fired"]


def test_replay_into_a_database_keeps_everything(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "r.db"
    trace = DATA / "traces/outage.jsonl"
    config = str(DATA / "configs/outage.toml")
    assert main(["replay", "--config", config, "--db", str(db), str(trace)]) == 0
    capsys.readouterr()
    assert main(["events", "--db", str(db), "--json"]) == 0
    stored = capsys.readouterr().out
    assert stored == (DATA / "expected/outage.jsonl").read_text()
    assert main(["events", "--db", str(db), "--json", "--kind", "sensor.up"]) == 0
    assert [json.loads(x)["t"] for x in capsys.readouterr().out.splitlines()] == [1030.0]


def test_app_readings_become_sessions_not_rows(tmp_path: Path) -> None:
    from agent.config import Config
    from agent.memory.db import open_engine
    from agent.memory.store import MemoryStore
    from agent.runtime.replay import replay_files
    from agent.runtime.trace import ReadCounts, read_trace

    trace = tmp_path / "day.jsonl.gz"
    write_synthetic_trace(trace)
    apps = [s for s in read_trace([trace], ReadCounts()) if s.sensor == "apps"]
    replay_files([trace], Config(), db=tmp_path / "r.db")
    store = MemoryStore(open_engine(tmp_path / "r.db"))
    sessions = store.app_sessions()
    store.close()
    assert sum(s.polls for s in sessions) == len(apps)  # every reading in exactly one session
    assert len(sessions) < len(apps) / 10  # merged: the app changes every few minutes
    for a, b in zip(sessions, sessions[1:], strict=False):
        assert a.end_t < b.start_t  # consecutive, never overlapping
        if b.start_t - a.end_t <= 15.0:
            assert a.app != b.app  # within the pulse time only a switch starts a new one
