"""The command line, in-process: init, db upgrade, events, errors and exit codes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import DATA

from agent.cli import main, parse_since, since_start
from agent.errors import ConfigError
from agent.memory.db import head_revision


def test_init_writes_config_and_database(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config, db = tmp_path / "cfg" / "config.toml", tmp_path / "data" / "vigil.db"
    assert main(["init", "--config", str(config), "--db", str(db)]) == 0
    out = capsys.readouterr().out
    assert f"config written: {config}" in out and f"schema {head_revision()}" in out
    assert config.read_text().startswith("# vigil configuration")
    assert db.stat().st_mode & 0o777 == 0o600
    config.write_text(config.read_text() + "\n# mine\n")
    assert main(["init", "--config", str(config), "--db", str(db)]) == 0  # keeps the file
    assert "config exists, kept" in capsys.readouterr().out
    assert config.read_text().endswith("# mine\n")
    assert main(["db", "upgrade", "--config", str(config), "--db", str(db)]) == 0
    head = head_revision()
    assert f"schema {head} (head {head})" in capsys.readouterr().out


def test_init_add_rules_appends_the_default_rules_an_older_config_lacks(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from agent.config import Config, load
    from agent.config_template import TEMPLATE, rule_text

    config, db = tmp_path / "config.toml", tmp_path / "vigil.db"
    old = TEMPLATE.replace("\n" + rule_text("heat_high"), "")  # as an earlier init wrote it
    config.write_text(old)
    config.chmod(0o600)
    assert main(["init", "--add-rules", "--config", str(config), "--db", str(db)]) == 0
    assert f"default rules added to {config}: heat_high" in capsys.readouterr().out
    assert load(config) == Config()
    assert config.read_text().startswith(old)
    assert config.stat().st_mode & 0o777 == 0o600  # its mode kept
    assert main(["init", "--add-rules", "--config", str(config), "--db", str(db)]) == 0
    assert "config has every default rule, kept" in capsys.readouterr().out
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []
    with pytest.raises(SystemExit):  # one or the other
        main(["init", "--add-rules", "--force", "--config", str(config), "--db", str(db)])


def test_bad_config_is_exit_2_naming_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "config.toml"
    config.write_text("[sensors.system]\ninterval = 5\n")
    db = tmp_path / "x.db"
    assert main(["--config", str(config), "events", "--db", str(db)]) == 2
    assert f"{config}: sensors.system.interval: unknown key" in capsys.readouterr().err


def test_explicit_missing_config_is_an_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["events", "--config", str(tmp_path / "nope.toml"), "--db", str(tmp_path)]) == 2
    assert "no such file" in capsys.readouterr().err


def test_events_filters(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = str(tmp_path / "e.db")
    cfg = str(DATA / "configs/outage.toml")
    assert main(["replay", "--config", cfg, "--db", db, str(DATA / "traces/outage.jsonl")]) == 0
    capsys.readouterr()
    assert (
        main(["events", "--db", db, "--kind", "rule.fired", "--since", "1970-01-01T00:18:00"]) == 0
    )
    out = capsys.readouterr().out.splitlines()  # 00:18:00 = t 1080: only the second firing
    assert len(out) == 1 and "rule.fired" in out[0] and "cpu_high" in out[0]
    event_id, rest = out[0].split(None, 1)  # the id vigil explain takes, then the event
    assert event_id == "#4" and rest.startswith("1970-01-01T00:18:40Z")
    # A duration counts back from the newest sample (t 1120), not from today: 1970 is its day.
    assert main(["events", "--db", db, "--since", "30s"]) == 0
    assert [line.split()[0] for line in capsys.readouterr().out.splitlines()] == ["#4"]
    assert main(["events", "--db", db, "--json", "--since", "1h"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 4
    assert main(["events", "--db", db, "--since", "2026-01-01"]) == 0
    assert capsys.readouterr().err.strip() == "no events"


def test_parse_since() -> None:
    assert parse_since("24h", 100_000.0) == 100_000.0 - 86_400
    assert parse_since("30m", 5_000.0) == 3_200.0
    assert parse_since("2026-06-01T00:00:00Z", 0.0) == 1_780_272_000.0
    assert parse_since("2026-06-01T02:00:00+02:00", 0.0) == 1_780_272_000.0
    with pytest.raises(ConfigError, match="not like 24h"):
        parse_since("yesterday", 0.0)


def test_since_starts_back_from_the_newest_sample() -> None:
    def today() -> float:
        return 200_000.0

    assert since_start("24h", lambda: 100_000.0, today) == 100_000.0 - 86_400
    assert since_start("2026-06-01T00:00:00Z", lambda: 0.0, today) == 1_780_272_000.0
    # A database whose sensors never gave a sample (its sensor.down events only): from now.
    assert since_start("1h", lambda: None, today) == 200_000.0 - 3_600
    assert since_start("all", lambda: 5.0, today) is None
    assert since_start(None, lambda: 5.0, today) is None


def test_replay_json_lines_are_stable_shape(capsys: pytest.CaptureFixture[str]) -> None:
    cfg = str(DATA / "configs/outage.toml")
    assert main(["replay", "--json", "--config", cfg, str(DATA / "traces/outage.jsonl")]) == 0
    for line in capsys.readouterr().out.splitlines():
        assert list(json.loads(line)) == ["t", "kind", "subject", "data"]


def test_unknown_command_is_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["frobnicate"])
    assert info.value.code == 2


def test_a_reader_that_goes_away_stops_vigil_quietly(tmp_path: Path) -> None:
    """`vigil ... | head`: the pipe's reader gone, vigil stops as a pipe's writer does (128 +
    SIGPIPE), without the traceback of a bug: while it writes (the demo's events), at its
    end (a short output, which buffered stdout writes at exit), and through rich's tables."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}
    env["XDG_DATA_HOME"] = str(tmp_path)
    db = str(tmp_path / "vigil" / "demo.db")
    for argv in (["demo", "--json"], ["events", "--db", db], ["report", "power", "--db", db]):
        read_end, write_end = os.pipe()
        os.close(read_end)  # gone before the first line: every write fails
        done = subprocess.run(
            [sys.executable, "-m", "agent", *argv],
            env=env,
            stdout=write_end,
            stderr=subprocess.PIPE,
            text=True,
            timeout=300,
        )
        os.close(write_end)
        assert done.returncode == 128 + signal.SIGPIPE, (argv, done.stderr)
        assert "Traceback" not in done.stderr and "a bug" not in done.stderr, done.stderr
        assert "Exception ignored" not in done.stderr, done.stderr
