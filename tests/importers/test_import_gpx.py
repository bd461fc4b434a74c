"""GPX import: timed track points of the shared files, untimed points counted, bad input."""

from __future__ import annotations

from pathlib import Path

import pytest
from shared_traces import replays_clean, samples_of, traces, utc

from agent.errors import TraceError
from agent.importers import ImportOptions, import_files
from agent.importers.common import hdop_accuracy_m

# (file, timed trkpts written, skipped, first, last) - README: korita-zbevnica 871 trkpts of
# which 513 timed, 2 wpts; cerknicko-jezero 296 trkpts, 7 wpts; around-visnjan 104;
# multitrackgpx 5,235 timed trkpts over three days.
GPX_FILES = [
    (
        "korita-zbevnica.gpx",
        513,
        {"untimed": 871 - 513, "waypoint": 2},
        "2010-10-03T09:36:30",
        "2010-10-03T13:19:31",
    ),
    (
        "cerknicko-jezero.gpx",
        296,
        {"waypoint": 7},
        "2010-08-05T14:23:59",
        "2010-08-05T16:23:49",
    ),
    ("around-visnjan-with-car.gpx", 104, {}, "2020-12-18T06:15:50", "2020-12-18T06:24:24"),
    ("multitrackgpx.gpx", 5235, {}, "2008-07-12T09:58:23", "2008-07-14T12:46:02"),
]


@pytest.mark.parametrize(("name", "written", "skipped", "first", "last"), GPX_FILES)
def test_shared_gpx_files(
    tmp_path: Path, name: str, written: int, skipped: dict[str, int], first: str, last: str
) -> None:
    out = tmp_path / "g.jsonl"
    counts = import_files("gpx", [traces("gpx", name)], out)
    assert counts.written == written
    assert counts.skipped == skipped and not counts.rejected
    assert counts.defaulted == {"no_accuracy": written}  # no <hdop> in these files
    assert counts.first_t is not None and counts.last_t is not None
    assert (utc(counts.first_t), utc(counts.last_t)) == (first, last)
    samples = samples_of(out)
    assert all(s.data["accuracy_m"] == 10.0 and "alt_m" in s.data for s in samples)
    assert replays_clean(out) == written


def test_elevation_and_accuracy_option(tmp_path: Path) -> None:
    out = tmp_path / "g.jsonl"
    import_files(
        "gpx", [traces("gpx", "around-visnjan-with-car.gpx")], out, ImportOptions(accuracy_m=4.0)
    )
    first = samples_of(out)[0]
    assert first.data == {
        "lat": 45.273518851,
        "lon": 13.7142099626,
        "accuracy_m": 4.0,
        "alt_m": 211.15,
        "provider": "gps",
    }


GPX = """<?xml version="1.0" encoding="UTF-8"?>
<gpx version="1.0" creator="test" xmlns="http://www.topografix.com/GPX/1/0">
<trk><trkseg>
<trkpt lat="45.0" lon="14.0"><ele>100</ele><time>2010-01-01T00:00:02Z</time><hdop>1.5</hdop>
  <speed>2.5</speed><course>90</course></trkpt>
<trkpt lat="45.1" lon="14.1"><ele>101</ele></trkpt>
<trkpt lat="45.2" lon="14.2"><time>not a time</time></trkpt>
<trkpt lat="45.3" lon="14.3"><ele>nan</ele><time>2010-01-01T00:00:03Z</time></trkpt>
<trkpt lat="45.0" lon="14.0"><ele>100</ele><time>2010-01-01T00:00:01</time></trkpt>
<trkpt lat="95.0" lon="14.0"><time>2010-01-01T00:00:04Z</time></trkpt>
</trkseg></trk>
<rte><rtept lat="45.0" lon="14.0"/></rte>
</gpx>
"""


def test_hand_made_gpx_counts_every_reason(tmp_path: Path) -> None:
    src = tmp_path / "t.gpx"
    src.write_text(GPX, encoding="utf-8")
    out = tmp_path / "g.jsonl"
    counts = import_files("gpx", [src], out)
    assert counts.skipped == {"untimed": 2, "route_point": 1}  # no <time>, a bad <time>
    assert counts.rejected == {"non_finite": 1, "out_of_range": 1}  # ele NaN, lat 95
    first, second = samples_of(out)  # sorted: the naive time is UTC, 00:00:01
    assert utc(first.t) == "2010-01-01T00:00:01" and first.data["accuracy_m"] == 10.0
    assert second.data == {
        "lat": 45.0,
        "lon": 14.0,
        "accuracy_m": pytest.approx(hdop_accuracy_m(1.5)),
        "alt_m": 100.0,
        "speed_mps": 2.5,
        "bearing_deg": 90.0,
        "provider": "gps",
    }


@pytest.mark.parametrize("text", ["", "not xml at all", "<kml><Document/></kml>"])
def test_not_gpx_is_a_trace_error(tmp_path: Path, text: str) -> None:
    src = tmp_path / "t.gpx"
    src.write_text(text, encoding="utf-8")
    with pytest.raises(TraceError, match="not a GPX file"):
        import_files("gpx", [src], tmp_path / "g.jsonl")
