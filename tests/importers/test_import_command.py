"""``vigil import`` through argparse: register(), run(), the summary line and the errors."""

from __future__ import annotations

from pathlib import Path

import pytest
from shared_traces import parse_import, replays_clean, source_of, traces

from agent.errors import ConfigError, TraceError
from agent.importers import command


def test_nmea_end_to_end(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "h.jsonl.gz"
    args = parse_import("nmea", str(traces("nmea", "haicom-305N.log")), "-o", str(out))
    assert (args.command, args.kind, args.accuracy_m) == ("import", "nmea", None)
    assert command.run(args) == 0
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        "import nmea: 68 samples written; 189 skipped (no_fix 11, not_position 178); 0 rejected; "
        f"2007-04-08T09:53:04.802000Z .. 2007-04-08T09:54:15.787000Z -> {out}"
    ]
    assert source_of(out) == "vigil import nmea"
    assert replays_clean(out) == 68


def test_csv_options_end_to_end(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "p.jsonl"
    args = parse_import(
        "csv",
        str(traces("phone", "posmo_trajectory.csv")),
        "-o",
        str(out),
        "--delimiter",
        ";",
        "--time-column",
        "tracked_at",
        "--lat-column",
        "latitude",
        "--lon-column",
        "longitude",
        "--accuracy-column",
        "accuracy",
        "--accuracy-m",
        "30",
    )
    assert command.run(args) == 0
    err = capsys.readouterr().err
    assert "1327 samples written" in err
    assert "149 fixes took the default accuracy (zero_accuracy 149)" in err
    assert replays_clean(out) == 1327


def test_folders_and_several_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "all.jsonl"
    logs = traces("nmea")  # the folder: *.log only, not the .log.chk golden files
    assert command.run(parse_import("nmea", str(logs), "-o", str(out))) == 0
    assert "469 samples written" in capsys.readouterr().err  # 23+148+68+187+14+9+20
    assert replays_clean(out) == 469


def test_errors(tmp_path: Path) -> None:
    out = str(tmp_path / "o.jsonl")
    with pytest.raises(TraceError, match="no such file"):
        command.run(parse_import("gpx", str(tmp_path / "none.gpx"), "-o", out))
    with pytest.raises(ConfigError, match="not one character"):
        command.run(parse_import("csv", str(tmp_path), "--delimiter", ";;", "-o", out))
    with pytest.raises(ConfigError, match="not a positive radius"):
        command.run(parse_import("gpx", str(tmp_path), "--accuracy-m", "0", "-o", out))
    with pytest.raises(SystemExit):  # a usage error: nab has no --accuracy-m
        parse_import("nab", "x.csv", "--accuracy-m", "5", "-o", out)
    with pytest.raises(SystemExit):
        parse_import("kml", "x.kml", "-o", out)


def test_tab_delimiter(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = tmp_path / "x.tsv.csv"
    src.write_text("timestamp\tlat\tlon\n0\t1\t2\n", encoding="utf-8")
    out = tmp_path / "o.jsonl"
    assert command.run(parse_import("csv", str(src), "--delimiter", "tab", "-o", str(out))) == 0
    assert "1 samples written" in capsys.readouterr().err
