"""GeoLife import: the original .plt files, and scikit-mobility's CSV sample one user at a time."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from shared_traces import replays_clean, samples_of, traces, utc

from agent.errors import TraceError
from agent.importers import ImportOptions, import_files

PLT_HEADER = (
    "Geolife trajectory\nWGS 84\nAltitude is in Feet\nReserved 3\n"
    "0,2,255,My Track,0,0,2,8421376\n0\n"
)


def test_plt_folder_of_user_003(tmp_path: Path) -> None:
    out = tmp_path / "plt.jsonl"
    counts = import_files("geolife", [traces("geolife", "plt-003")], out)  # a folder: *.plt
    assert counts.written == 13_601
    assert not counts.skipped and not counts.rejected
    assert counts.defaulted == {"no_accuracy": 13_601}
    assert counts.first_t is not None and counts.last_t is not None
    assert utc(counts.first_t) == "2008-10-23T17:58:54"
    assert utc(counts.last_t) == "2008-10-31T11:30:03"
    first = samples_of(out)[0]  # 39.999844,116.326752,0,492,39744.7492361111,2008-10-23,17:58:54
    assert first.data == {
        "lat": 39.999844,
        "lon": 116.326752,
        "accuracy_m": 20.0,
        "alt_m": pytest.approx(492 * 0.3048),
        "provider": "gps",
    }
    assert replays_clean(out) == 13_601


def test_plt_bad_lines_are_counted(tmp_path: Path) -> None:
    src = tmp_path / "x.plt"
    src.write_text(
        PLT_HEADER
        + "39.9,116.3,0,-777,39744.1,2008-10-23,02:00:00\n"  # no altitude
        + "39.9,116.3,0,100,39744.1\n"  # 5 fields
        + "39.9,east,0,100,39744.1,2008-10-23,02:00:01\n"  # not a number
        + "39.9,116.3,0,100,39744.1,2008-13-23,02:00:02\n"  # month 13
        + ",116.3,0,100,39744.1,2008-10-23,02:00:03\n"  # no latitude
        + "nan,116.3,0,100,39744.1,2008-10-23,02:00:04\n",  # NaN: the gate rejects it
        encoding="utf-8",
    )
    out = tmp_path / "o.jsonl"
    counts = import_files("geolife", [src], out, ImportOptions(accuracy_m=12.5))
    assert counts.written == 1
    assert counts.skipped == {"bad_line": 1, "bad_number": 1, "bad_time": 1, "missing_position": 1}
    assert counts.rejected == {"non_finite": 1}
    (fix,) = samples_of(out)
    assert fix.data == {"lat": 39.9, "lon": 116.3, "accuracy_m": 12.5, "provider": "gps"}


def test_not_a_plt_file(tmp_path: Path) -> None:
    src = tmp_path / "x.plt"
    src.write_text("lat,lon\n1,2\n", encoding="utf-8")
    with pytest.raises(TraceError, match="not a GeoLife .plt file"):
        import_files("geolife", [src], tmp_path / "o.jsonl")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(TraceError, match="no .plt files"):
        import_files("geolife", [empty], tmp_path / "o.jsonl")


SAMPLE = ImportOptions(time_column="datetime", lat_column="lat", lon_column="lng")
# README: 217,653 points of users 001 (108,607, 2008-10-23 -> 2008-12-15) and 005 (109,046,
# 2008-10-24 -> 2009-03-19), times in GMT.
USERS = [
    ("1", 108_607, "2008-10-23T05:53:05", "2008-12-15T00:31:18"),
    ("005", 109_046, "2008-10-24T04:12:30", "2009-03-19T05:46:37"),
]


@pytest.mark.slow
@pytest.mark.parametrize(("user", "points", "first", "last"), USERS)
def test_scikit_mobility_sample_one_user(
    tmp_path: Path, user: str, points: int, first: str, last: str
) -> None:
    out = tmp_path / "u.jsonl.gz"
    options = replace(SAMPLE, user=user)
    counts = import_files("csv", [traces("geolife", "geolife_sample.txt.gz")], out, options)
    assert counts.written == points  # the uid column is the user, not a metric stream
    assert counts.skipped == {"other_user": 217_653 - points}
    assert not counts.rejected and counts.defaulted == {"no_accuracy": points}
    assert counts.first_t is not None and counts.last_t is not None
    assert (utc(counts.first_t), utc(counts.last_t)) == (first, last)
    assert replays_clean(out) == points


def test_scikit_mobility_sample_needs_a_user(tmp_path: Path) -> None:
    # Two people's fixes in one trace would be one agent jumping between two places.
    with pytest.raises(TraceError, match=r"rows of 2 users \(001, 005\): choose one with --user"):
        import_files(
            "csv", [traces("geolife", "geolife_sample.txt.gz")], tmp_path / "o.jsonl", SAMPLE
        )
    assert not (tmp_path / "o.jsonl").exists()
