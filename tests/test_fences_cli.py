"""Fences through the command line and a running daemon: the table is the source of truth,
the daemon reloads it on SIGHUP or when its version changes; places survive restarts."""

from __future__ import annotations

import json
import os
import signal
import socket
import sqlite3
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from _tools import reap, vigil

from agent.cli import main
from agent.config import Config
from agent.demo import write_synthetic_trace
from agent.memory.db import open_engine, upgrade
from agent.memory.store import MemoryStore
from agent.pipeline import Pipeline
from agent.runtime.trace import ReadCounts, read_trace

HOME = (46.05120, 14.50610)


def _fences(tmp_path: Path) -> Path:
    path = tmp_path / "fences.geojson"
    ring = [[14.50, 46.05], [14.51, 46.05], [14.51, 46.06], [14.50, 46.06], [14.50, 46.05]]
    path.write_text(
        json.dumps(
            {
                "type": "FeatureCollection",
                "features": [
                    {
                        "type": "Feature",
                        "properties": {"name": "block", "dwell_s": 120},
                        "geometry": {"type": "Polygon", "coordinates": [ring]},
                    },
                    {
                        "type": "Feature",
                        "properties": {"name": "home", "radius_m": 150},
                        "geometry": {"type": "Point", "coordinates": [HOME[1], HOME[0]]},
                    },
                ],
            }
        )
    )
    return path


def _new_db(tmp_path: Path) -> Path:
    """A database with its schema, as ``vigil init`` makes one: a named ``--db`` must exist."""
    path = tmp_path / "v.db"
    engine = open_engine(path)
    upgrade(engine)
    engine.dispose()
    return path


def test_add_import_list_remove(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = ["--db", str(_new_db(tmp_path))]
    assert (
        main(["fences", "add", "gym", "--lat", "46.06", "--lon", "14.49", "--radius-m", "80", *db])
        == 0
    )
    assert main(["fences", "import", str(_fences(tmp_path)), *db]) == 0
    capsys.readouterr()
    assert main(["fences", "list", *db]) == 0
    out = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in out] == ["block", "gym", "home"]
    assert "circle 80 m" in out[1] and "dwell 120 s" in out[0]
    assert main(["fences", "remove", "gym", *db]) == 0
    assert main(["fences", "remove", "nope", *db]) == 2
    assert "nope: no such fence" in capsys.readouterr().err
    assert main(["fences", "import", "--replace", str(_fences(tmp_path)), *db]) == 0
    capsys.readouterr()
    assert main(["fences", "list", "--json", *db]) == 0
    collection = json.loads(capsys.readouterr().out)
    assert [f["properties"]["name"] for f in collection["features"]] == ["block", "home"]


def test_adding_a_fence_by_a_name_in_use_says_it_replaced_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = ["--db", str(_new_db(tmp_path))]
    home = ["fences", "add", "home", "--lat", "46.05", "--lon", "14.5", *db]
    assert main([*home, "--radius-m", "150"]) == 0
    assert "replaced" not in capsys.readouterr().out
    assert main([*home, "--radius-m", "50"]) == 0
    assert "1 fence(s) stored (1 replaced: home)" in capsys.readouterr().out
    assert main(["fences", "list", *db]) == 0
    assert "circle 50 m" in capsys.readouterr().out


def test_invalid_fence_is_refused_with_name_and_reason(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = ["--db", str(_new_db(tmp_path))]
    assert (
        main(["fences", "add", "void", "--lat", "46", "--lon", "14", "--radius-m", "0", *db]) == 2
    )
    err = capsys.readouterr().err
    assert "void" in err and "radius" in err
    assert main(["fences", "list", *db]) == 0
    assert capsys.readouterr().out == ""


def test_replay_with_a_fences_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    trace = tmp_path / "day.jsonl.gz"
    write_synthetic_trace(trace)
    assert main(["replay", "--json", "--fences", str(_fences(tmp_path)), str(trace)]) == 0
    events = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    home = [(e["kind"]) for e in events if e["subject"] == "home"]
    assert home == [
        "geofence.enter",
        "geofence.dwell",
        "geofence.exit",
        "geofence.enter",
        "geofence.dwell",
    ]


def test_state_survives_a_restart_mid_day(tmp_path: Path) -> None:
    """Half a day, a commit, a new pipeline restored from the database, the other half: the
    events of the second half equal those of one uninterrupted run."""
    from agent.demo import demo_fences

    trace = tmp_path / "day.jsonl.gz"
    write_synthetic_trace(trace)
    samples = list(read_trace([trace], ReadCounts()))
    split = next(i for i, s in enumerate(samples) if s.t >= 1780272000.0 + 10 * 3600)

    whole = Pipeline(Config(), demo_fences())
    expected = [e for s in samples for e in whole.feed(s).events]
    expected_after = [e for e in expected if e.t >= samples[split].t]

    engine = open_engine(tmp_path / "v.db")
    upgrade(engine)
    store = MemoryStore(engine)
    first = Pipeline(Config(), demo_fences())
    store.attach_state(first.snapshot)
    for s in samples[:split]:
        store.record(s, first.feed(s).events)
    store.close()  # the daemon stops here

    store = MemoryStore(open_engine(tmp_path / "v.db"))
    second = Pipeline(Config(), demo_fences())
    second.restore(store.load_state())
    after = [e for s in samples[split:] for e in second.feed(s).events]
    assert after == expected_after
    assert len(store.load_state()["places"]) == 2  # home and work, committed at the stop
    store.close()


CONFIG = """
[daemon]
commit_interval_s = {commit}
[sensors.system]
interval_s = 1.0
[sensors.battery]
enabled = false
[sensors.apps]
enabled = false
[sensors.location]
source = "static"
static_lat = 46.0512
static_lon = 14.5061
static_accuracy_m = 10.0
interval_s = 0.5
"""


def _until(predicate: Callable[[], bool], timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def _samples(db: Path) -> int:
    with sqlite3.connect(db) as conn:
        try:
            return int(conn.execute("select count(*) from samples").fetchone()[0])
        except sqlite3.OperationalError:  # not created yet
            return 0


def _events(db: Path) -> list[str]:
    store = MemoryStore(open_engine(db))
    kinds = [f"{e.kind} {e.subject}" for e in store.events()]
    store.close()
    return kinds


@pytest.mark.parametrize("how", ["version", "sighup"])
def test_running_daemon_picks_up_new_fences(tmp_path: Path, how: str) -> None:
    commit = 1.0 if how == "version" else 3600.0  # with SIGHUP it must not wait for a check
    cfg = tmp_path / "config.toml"
    cfg.write_text(CONFIG.format(commit=commit))
    db = _new_db(tmp_path)
    base = vigil(cfg, "--db", str(db))
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    notify.bind(str(tmp_path / "notify"))
    notify.settimeout(30.0)
    env = dict(os.environ, NOTIFY_SOCKET=str(tmp_path / "notify"))
    proc = subprocess.Popen(
        [*base, "run"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env
    )
    try:
        assert notify.recv(64) == b"READY=1"  # polling has started
        add = [
            *base,
            "fences",
            "add",
            "home",
            "--lat",
            "46.0512",
            "--lon",
            "14.5061",
            "--radius-m",
            "200",
        ]
        subprocess.run(add, check=True, capture_output=True, timeout=60)
        if how == "sighup":
            proc.send_signal(signal.SIGHUP)
        # The enter is committed with a later batch (every second; with SIGHUP at the stop).
        if how == "version":
            _until(lambda: "geofence.enter home" in _events(db))
        else:
            time.sleep(2.0)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    finally:
        reap(proc)
        notify.close()
    assert proc.returncode == 0, err
    assert "fences reloaded: 1 in all, 1 changed" in err
    assert _events(db).count("geofence.enter home") == 1
    # Restart: the fence is inside already, its state was kept: no second enter.
    before = _samples(db)
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    notify.bind(str(tmp_path / "notify2"))
    notify.settimeout(30.0)
    env["NOTIFY_SOCKET"] = str(tmp_path / "notify2")
    proc = subprocess.Popen([*base, "run"], stdout=subprocess.DEVNULL, env=env)
    try:
        assert notify.recv(64) == b"READY=1"
        time.sleep(2.0)  # four static fixes at 0.5 s
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
    finally:
        reap(proc)
        notify.close()
    assert _samples(db) > before + 2  # it did read fixes inside the fence...
    assert _events(db).count("geofence.enter home") == 1  # ...and knew it was there already
