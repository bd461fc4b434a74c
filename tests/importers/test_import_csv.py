"""CSV import: the two phone trajectories with their column options, and every bad cell."""

from __future__ import annotations

import statistics
from dataclasses import replace
from pathlib import Path

import pytest
from shared_traces import replays_clean, samples_of, traces, utc

from agent.errors import ConfigError, TraceError
from agent.importers import ImportOptions, import_files

PHONE = ImportOptions(
    delimiter=";",
    time_column="tracked_at",
    lat_column="latitude",
    lon_column="longitude",
    accuracy_column="accuracy",
)


def test_google_trajectory_newest_first(tmp_path: Path) -> None:
    out = tmp_path / "g.jsonl"
    options = replace(PHONE, ignore_columns=("elevation",))
    counts = import_files("csv", [traces("phone", "google_trajectory.csv")], out, options)
    assert counts.written == 416 and not counts.skipped and not counts.rejected
    assert not counts.defaulted  # user_id is the user column, not a stream
    assert counts.first_t is not None and counts.last_t is not None
    assert (utc(counts.first_t), utc(counts.last_t)) == (
        "2012-12-18T11:53:30",
        "2012-12-18T21:30:35",
    )
    samples = samples_of(out)  # rows are newest-first in the file: sorted here
    accuracies = [s.data["accuracy_m"] for s in samples]
    assert (min(accuracies), statistics.median(accuracies), max(accuracies)) == (14.0, 55.0, 1001.0)
    assert samples[-1].data == {"lat": 47.3766094, "lon": 8.5484732, "accuracy_m": 20.0}
    assert replays_clean(out) == 416


def test_other_numeric_columns_become_metric_streams(tmp_path: Path) -> None:
    out = tmp_path / "g.jsonl"
    counts = import_files("csv", [traces("phone", "google_trajectory.csv")], out, PHONE)
    assert counts.written == 2 * 416
    metrics = [s for s in samples_of(out) if s.sensor == "metric"]
    assert len(metrics) == 416 and all(
        s.data == {"name": "elevation", "value": 0.0} for s in metrics
    )


def test_posmo_trajectory_zero_accuracy_takes_the_default(tmp_path: Path) -> None:
    out = tmp_path / "p.jsonl"
    counts = import_files("csv", [traces("phone", "posmo_trajectory.csv")], out, PHONE)
    assert counts.written == 1327 and not counts.skipped and not counts.rejected
    # 149 rows say accuracy 0.0: Android's "no accuracy"; the gate needs accuracy_m > 0.
    assert counts.defaulted == {"zero_accuracy": 149}
    assert counts.first_t is not None and counts.last_t is not None
    # naive times, UTC (README: "UTC per trackintel's own loader"); 9 fraction digits -> us
    assert utc(counts.first_t) == "2019-01-25T20:00:16.178999"
    assert utc(counts.last_t) == "2019-01-25T20:52:13"
    accuracies = sorted(s.data["accuracy_m"] for s in samples_of(out))
    assert (accuracies[0], accuracies[-1]) == (12.0, 96.0)  # smallest given: 12 m
    assert accuracies.count(15.0) == 149  # no row says 15 itself
    assert replays_clean(out) == 1327


def _csv(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "x.csv"
    path.write_text(text, encoding="utf-8")
    return path


def test_bad_cells_are_counted_by_reason(tmp_path: Path) -> None:
    src = _csv(
        tmp_path,
        "timestamp,lat,lon,accuracy_m,steps,note\n"
        "2020-01-01T00:00:00Z,47.0,8.0,5,10,ok\n"
        "2020-01-01T00:00:01Z,north,8.0,5,11,lat is not a number\n"
        "2020-01-01T00:00:02Z,47.0,8.0,5,many,steps is not a number\n"
        "2020-01-01T00:00:03Z,NaN,8.0,5,13,lat is NaN\n"
        "2020-01-01T00:00:04Z,47.0,8.0,5,nan,steps is NaN\n"
        "yesterday,47.0,8.0,5,15,bad time\n"
        "2020-01-01T00:00:05Z,,,5,16,no position\n"
        "2020-01-01T00:00:06Z,47.0,8.0,,,no accuracy and no steps\n"
        "2020-01-01T00:00:07Z,47.0,8.0\n"
        "2020-01-01T00:00:00Z,47.0,8.0,5,10,ok\n",  # an exact duplicate of the first row
    )
    out = tmp_path / "o.jsonl"
    counts = import_files("csv", [src], out)
    assert counts.skipped == {
        "bad_number": 2,  # the whole row for lat, only the value for steps
        "bad_time": 1,
        "missing_position": 1,
        "empty_value": 1,
        "bad_line": 1,
        "duplicate": 2,  # its location and its steps sample
    }
    assert counts.rejected == {"non_finite": 2}
    assert counts.defaulted == {"no_accuracy": 1}
    kinds = [(utc(s.t)[-2:], s.sensor, s.data.get("name")) for s in samples_of(out)]
    assert kinds == [
        ("00", "location", None),
        ("00", "metric", "steps"),
        ("02", "location", None),
        ("03", "metric", "steps"),
        ("04", "location", None),
        ("05", "metric", "steps"),
        ("06", "location", None),
    ]  # "note" is text: not a stream


def test_time_formats_and_zones(tmp_path: Path) -> None:
    src = _csv(tmp_path, "t,lat,lon\n1577836800,1,2\n1577836801500,1,2\n2020-01-01 01:00:02,1,2\n")
    out = tmp_path / "o.jsonl"
    import_files("csv", [src], out, ImportOptions(time_column="t", timezone="Europe/Zurich"))
    # seconds, milliseconds, and a naive ISO time at UTC+1
    assert [s.t for s in samples_of(out)] == [1577836800.0, 1577836801.5, 1577836802.0]
    src = _csv(tmp_path, "when,lat,lon\n01/01/2020 01:00,1,2\n")
    options = ImportOptions(
        time_column="when", time_format="%d/%m/%Y %H:%M", timezone="Europe/Zurich"
    )
    import_files("csv", [src], out, options)
    assert [s.t for s in samples_of(out)] == [1577836800.0]
    with pytest.raises(ConfigError, match="unknown time zone"):
        import_files("csv", [src], out, ImportOptions(time_column="when", timezone="Mars/Olympus"))


def test_missing_columns_and_users(tmp_path: Path) -> None:
    src = _csv(tmp_path, "time,latitude,longitude\n")
    with pytest.raises(TraceError, match="no column 'timestamp', 'lat', 'lon' in the header"):
        import_files("csv", [src], tmp_path / "o.jsonl")
    src = _csv(tmp_path, "timestamp,lat,lon,user_id\n0,1,2,a\n1,1,2,b\n2,1,2,a\n")
    with pytest.raises(TraceError, match=r"rows of 2 users \(a, b\)"):
        import_files("csv", [src], tmp_path / "o.jsonl")
    counts = import_files("csv", [src], tmp_path / "o.jsonl", ImportOptions(user="a"))
    assert counts.written == 2 and counts.skipped == {"other_user": 1}
    counts = import_files("csv", [src], tmp_path / "o.jsonl", ImportOptions(user_column="none"))
    assert counts.written == 3  # user_id is text then, so not a stream either


def test_not_utf8_is_a_trace_error(tmp_path: Path) -> None:
    src = tmp_path / "x.csv"
    src.write_bytes(b"timestamp,lat,lon\n0,1,2\n\xff\xfe,1,2\n")
    with pytest.raises(TraceError, match="not utf-8 text"):
        import_files("csv", [src], tmp_path / "o.jsonl")


@pytest.mark.parametrize(
    ("header", "hint"),
    [
        ("time,latitude,longitude\n", "try --time-column time --lat-column latitude --lon-column"),
        ("when;lat;lon\n", "try --delimiter ';'"),
        ("when\tlat\tlon\n", "try --delimiter tab"),
        ("a,b,c\n", "see --time-column, --lat-column, --lon-column"),
        # an optional column is named too, once a required one is
        ("timestamp,lat,lng,Altitude\n", "try --lon-column lng --alt-column Altitude"),
    ],
)
def test_a_header_without_the_columns_says_what_to_try(
    tmp_path: Path, header: str, hint: str
) -> None:
    src = _csv(tmp_path, header)
    with pytest.raises(TraceError, match="no column") as raised:
        import_files("csv", [src], tmp_path / "o.jsonl")
    assert hint in str(raised.value)


def test_the_hints_lead_to_an_import_of_a_real_trajectory(tmp_path: Path) -> None:
    """Each hint taken as it is given, from the defaults to a trace of every fix."""
    src = traces("phone", "posmo_trajectory.csv")
    options = ImportOptions()
    for _ in range(3):
        try:
            counts = import_files("csv", [src], tmp_path / "o.jsonl", options)
            break
        except TraceError as exc:
            tried = str(exc).split("try ", 1)[1].rstrip(")").split(" --")
            flags = dict(flag.lstrip("-").split(" ", 1) for flag in tried)
            fields = {k.replace("-", "_"): v.strip("'") for k, v in flags.items()}
            options = replace(options, **fields)
    else:
        pytest.fail("the hints did not lead to an import")
    assert options == PHONE  # the options the trajectory's own test gives by hand
    assert counts.written == 1327 and not counts.skipped
