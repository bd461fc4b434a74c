"""What vigil writes is the user's alone, and a typo never creates folders or databases."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from conftest import DATA

from agent.cli import main


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_everything_written_is_0600_in_0700_folders_whatever_the_umask(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    old = os.umask(0o022)  # a usual shell's
    try:
        config, db = tmp_path / "cfg" / "config.toml", tmp_path / "data" / "vigil.db"
        assert main(["init", "--config", str(config), "--db", str(db)]) == 0
        trace = DATA / "traces/outage.jsonl"
        scores = tmp_path / "scores.csv"
        assert main(["score", "--config", str(config), str(trace), "-o", str(scores)]) == 0
        replayed = tmp_path / "replayed.db"
        assert main(["replay", "--config", str(config), "--db", str(replayed), str(trace)]) == 0
    finally:
        os.umask(old)
    capsys.readouterr()
    for path in (config, db, scores, replayed):
        assert _mode(path) == 0o600, path
    for folder in (config.parent, db.parent):
        assert _mode(folder) == 0o700, folder


@pytest.mark.parametrize(
    "argv",
    [
        ["record", "--seconds", "0.1", "-o", "{tmp}/missing/t.jsonl"],
        ["score", "{trace}", "-o", "{tmp}/missing/s.csv"],
        ["run", "--record", "{tmp}/missing/t.jsonl"],
        ["report", "power", "--csv", "{tmp}/missing/p.csv"],
        ["import", "gpx", "{gpx}", "-o", "{tmp}/missing/t.jsonl"],
    ],
)
def test_an_output_in_a_missing_folder_is_refused_and_nothing_created(
    argv: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    gpx = next(DATA.glob("traces/*.gpx"), DATA / "traces/missing.gpx")
    args = [a.format(tmp=tmp_path, trace=DATA / "traces/outage.jsonl", gpx=gpx) for a in argv]
    assert main(args) == 2
    assert "does not exist: create it first" in capsys.readouterr().err
    assert not (tmp_path / "missing").exists()


@pytest.mark.parametrize("command", [["events"], ["findings"], ["places"], ["report", "power"]])
def test_a_mistyped_db_is_refused_not_created(
    command: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    typo = tmp_path / "vigli.db"
    assert main([*command, "--db", str(typo)]) == 2
    assert "no such database" in capsys.readouterr().err
    assert not typo.exists()


def test_run_with_a_db_that_does_not_exist_says_how_to_create_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    typo = tmp_path / "vigli.db"
    assert main(["run", "--db", str(typo)]) == 2
    assert f"vigil init --db {typo}" in capsys.readouterr().err
    assert not typo.exists()


def test_a_damaged_database_is_one_clear_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.db"
    bad.write_bytes(os.urandom(8192))
    assert main(["events", "--db", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "not a database" in err and "Traceback" not in err
    assert main(["doctor", "--db", str(bad), "--json"]) in (0, 1)
    out = capsys.readouterr().out
    assert "cannot be read" in out and "not a database" in out


def test_an_unwritable_output_is_one_clear_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "a-folder"
    target.mkdir()
    assert main(["score", str(DATA / "traces/outage.jsonl"), "-o", str(target)]) == 2
    assert "is a folder" in capsys.readouterr().err
