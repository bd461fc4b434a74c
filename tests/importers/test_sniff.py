"""A recording given where a trace is expected is named, with the import that makes a trace
of it: the real recordings of each format vigil imports."""

from __future__ import annotations

import shlex
import shutil
from pathlib import Path

import pytest
from _tools import REPO, shared

from agent.cli import main
from agent.importers.sniff import looks_like
from agent.runtime.trace import _open_text

RECORDINGS = [
    ("traces/nmea/bt451.log", "nmea"),  # a dozen lines of comments first
    ("traces/nmea/telit-he910.log", "nmea"),
    ("traces/gpx/cerknicko-jezero.gpx", "gpx"),  # "<gpx" on line 2
    ("traces/gpx/around-visnjan-with-car.gpx", "gpx"),
    ("traces/geolife/plt-003/20081023175854.plt", "geolife"),
    ("traces/phone/owntracks-demo-iphone.rec", "owntracks"),
    ("traces/phone/google_trajectory.csv", "csv"),
    ("traces/geolife/geolife_sample.txt.gz", "csv"),
    ("nab/data/artificialNoAnomaly/art_daily_no_noise.csv", "nab"),
]


@pytest.mark.parametrize(("name", "kind"), RECORDINGS)
def test_each_recording_is_told_by_its_first_lines(name: str, kind: str) -> None:
    with _open_text(shared(*name.split("/")), "r") as f:
        assert looks_like(f) == kind


@pytest.mark.parametrize(
    "lines",
    [
        [],
        ["# only a comment\n"],
        ["Some prose that is no recording.\n", "More of it.\n"],
        ['{"t": 1.0, "sensor": "system"}\n'],  # a trace without its header
        ["1,2,3\n"],  # numbers, no header of names
        ["[" * 200_000 + "\n"],  # one cell past the csv module's field limit
    ],
)
def test_what_is_no_known_recording_is_not_named(lines: list[str]) -> None:
    assert looks_like(lines) is None


def test_replaying_a_recording_says_how_to_import_it(
    capsys: pytest.CaptureFixture[str],
) -> None:
    gpx = shared("traces", "gpx", "cerknicko-jezero.gpx")
    assert main(["replay", str(gpx)]) == 2
    err = capsys.readouterr().err
    assert "not a vigil trace" in err
    assert f"it looks like gpx: vigil import gpx {shlex.quote(str(gpx))} -o trace.jsonl" in err
    assert len(err.strip().splitlines()) == 1
    assert main(["replay", str(REPO / "README.md")]) == 2  # no hint where none fits
    err = capsys.readouterr().err
    assert "not a vigil trace" in err and "looks like" not in err


def test_a_trace_without_its_header_gets_no_import_hint(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "t.jsonl"
    path.write_text('{"t": 1.0, "sensor": "system"}\n')
    assert main(["replay", str(path)]) == 2
    err = capsys.readouterr().err
    assert "not a vigil_trace header" in err and "looks like" not in err


def test_the_hint_names_the_file_as_given_quoted_for_the_shell(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "walks").mkdir()
    shutil.copy(shared("traces", "gpx", "korita-zbevnica.gpx"), tmp_path / "walks" / "my walk.gpx")
    monkeypatch.chdir(tmp_path)
    assert main(["replay", "walks/my walk.gpx"]) == 2
    err = capsys.readouterr().err
    assert "vigil import gpx 'walks/my walk.gpx' -o trace.jsonl makes one" in err


def test_an_empty_file_is_said_to_be_empty(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "day.jsonl").write_text("")
    assert main(["replay", str(tmp_path / "day.jsonl")]) == 2
    assert "day.jsonl: empty (a trace begins with its vigil_trace header line)" in (
        capsys.readouterr().err
    )


def test_a_folder_of_one_format_is_named_with_its_import(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    plt = shared("traces", "geolife", "plt-003")
    assert main(["replay", str(plt)]) == 2
    err = capsys.readouterr().err
    assert "a folder, not a trace; it looks like geolife: vigil import geolife" in err
    mixed = tmp_path / "mixed"
    mixed.mkdir()
    shutil.copy(shared("traces", "gpx", "korita-zbevnica.gpx"), mixed)
    shutil.copy(shared("traces", "nmea", "bt451.log"), mixed)
    assert main(["replay", str(mixed)]) == 2
    err = capsys.readouterr().err
    assert "a folder, not a trace" in err and "looks like" not in err


@pytest.mark.parametrize(
    ("asked", "name", "kind"),
    [
        ("nmea", "traces/gpx/cerknicko-jezero.gpx", "gpx"),
        ("gpx", "traces/nmea/bt451.log", "nmea"),
        ("csv", "nab/data/artificialNoAnomaly/art_daily_no_noise.csv", "nab"),
    ],
)
def test_an_import_of_another_formats_file_names_the_right_one(
    asked: str, name: str, kind: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = shared(*name.split("/"))
    assert main(["import", asked, str(path), "-o", str(tmp_path / "t.jsonl")]) == 2
    err = capsys.readouterr().err
    assert f"it looks like {kind}: vigil import {kind} {shlex.quote(str(path))}" in err
    assert not (tmp_path / "t.jsonl").exists()


def test_an_import_of_its_own_formats_bad_file_gets_no_hint(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    table = tmp_path / "t.csv"
    table.write_text("when,x,y\n2026-01-01T00:00:00Z,1,2\n")
    assert main(["import", "csv", str(table), "-o", str(tmp_path / "t.jsonl")]) == 2
    err = capsys.readouterr().err
    assert "no column" in err and "looks like" not in err


def test_a_log_that_begins_with_a_serial_lines_garbage_is_still_named(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    log = tmp_path / "walk.nmea"
    log.write_bytes(b"\xff\xfe junk\r\n" + shared("traces", "nmea", "bt451.log").read_bytes())
    assert main(["replay", str(log)]) == 2
    assert "it looks like nmea: vigil import nmea" in capsys.readouterr().err


def test_a_folder_too_large_to_look_through_gets_no_hint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from agent.importers import sniff

    for i in range(5):
        shutil.copy(shared("traces", "nmea", "bt451.log"), tmp_path / f"{i}.log")
    assert sniff.folder_looks_like(tmp_path) == "nmea"
    monkeypatch.setattr(sniff, "FOLDER_FILES", 3)
    assert sniff.folder_looks_like(tmp_path) is None
