"""NMEA import: the README's position epochs per gpsd log, spans, and hand-made edge cases."""

from __future__ import annotations

from pathlib import Path

import pytest
from shared_traces import nmea, replays_clean, samples_of, source_of, traces, utc

from agent.errors import TraceError
from agent.importers import ImportOptions, import_files
from agent.importers.common import hdop_accuracy_m

# (log, position epochs as the README counts them, first fix, last fix, skipped reasons).
# The README's span column is "RMC dates": the span of RMC sentences, valid or not. Ours is
# the span of valid fixes, so three logs differ, each for a reason checked below:
#   bundg_zeus_9 starts 09:47:36, not :37 - its first GGA comes before the first RMC and
#     takes that RMC's date carried backwards;
#   haicom-305N starts 09:53:04.802, not 09:52:55 - the six RMCs before it are status V;
#   humminbird-M37 ends 19:41:24, not :23 - the last GGA has no RMC after it.
NMEA_LOGS = [
    (
        "quectel-eg25-g",
        23,
        "2022-09-11T19:15:03.010000",
        "2022-09-11T19:15:33.980000",
        {"no_fix": 74, "not_position": 741},
    ),
    (
        "bundg_zeus_9",
        148,
        "2018-08-20T09:47:36",
        "2018-08-20T09:50:03",
        {"not_position": 4715, "repeated_sentence": 1},
    ),
    (
        "haicom-305N",
        68,
        "2007-04-08T09:53:04.802000",
        "2007-04-08T09:54:15.787000",
        {"no_fix": 11, "not_position": 178},
    ),
    (
        "telit-he910",
        187,
        "2019-03-12T10:51:53.408000",
        "2019-03-12T10:54:59.408000",
        {"no_fix": 74, "not_position": 1110},
    ),
    (
        "bt451",
        14,
        "2009-12-09T14:33:06",
        "2009-12-09T15:25:08.500000",
        {"no_fix": 8, "not_position": 110},
    ),
    ("nl2008u", 9, "2015-10-10T09:12:32", "2015-10-10T09:34:53", {"not_position": 109}),
    (
        "humminbird-M37",
        20,
        "2006-09-16T19:41:01",
        "2006-09-16T19:41:24",
        {"not_position": 73, "repeated_time": 5},
    ),
]


@pytest.mark.parametrize(("log", "epochs", "first", "last", "skipped"), NMEA_LOGS)
def test_gpsd_logs_give_the_readme_epochs(
    tmp_path: Path, log: str, epochs: int, first: str, last: str, skipped: dict[str, int]
) -> None:
    out = tmp_path / f"{log}.jsonl"
    counts = import_files("nmea", [traces("nmea", f"{log}.log")], out)
    assert counts.written == epochs
    assert counts.skipped == skipped
    assert not counts.rejected
    assert counts.first_t is not None and counts.last_t is not None
    assert (utc(counts.first_t), utc(counts.last_t)) == (first, last)
    assert source_of(out) == "vigil import nmea"
    samples = samples_of(out)
    assert len(samples) == epochs and all(s.sensor == "location" for s in samples)
    assert all(s.data["provider"] == "gps" and s.data["accuracy_m"] > 0 for s in samples)
    assert replays_clean(out) == epochs


def test_readme_spans_in_rmc_time_explained() -> None:
    """The three spans that differ from the README's RMC-date column, checked at the source."""
    bundg = traces("nmea", "bundg_zeus_9.log").read_text(encoding="latin-1").splitlines()
    position = [line for line in bundg if line[3:6] in ("GGA", "RMC")]
    assert position[0].startswith("$GPGGA,094736,") and position[1].startswith("$GPRMC,094737,A")
    haicom = traces("nmea", "haicom-305N.log").read_text(encoding="latin-1").splitlines()
    rmc = [line.split(",") for line in haicom if line.startswith("$GPRMC")]
    assert [r[2] for r in rmc[:7]] == ["V"] * 6 + ["A"] and rmc[0][1] == "095255.810"
    humminbird = traces("nmea", "humminbird-M37.log").read_text(encoding="latin-1").splitlines()
    times = [line.split(",")[1] for line in humminbird if line[3:6] in ("GGA", "RMC")]
    assert max(times) == "194124" and "$INGGA,194124" in "\n".join(humminbird)


def test_fix_fields_from_gga_and_rmc(tmp_path: Path) -> None:
    out = tmp_path / "b.jsonl"
    import_files("nmea", [traces("nmea", "bundg_zeus_9.log")], out)
    second = samples_of(out)[1]  # 09:47:37: GGA (HDOP 0.60, alt -4) + RMC (5.6 kn, 230.5)
    assert utc(second.t) == "2018-08-20T09:47:37"
    assert second.data["lat"] == pytest.approx(52 + 51.0085 / 60)
    assert second.data["lon"] == pytest.approx(5 + 18.8151 / 60)
    assert second.data["alt_m"] == -4.0
    assert second.data["accuracy_m"] == pytest.approx(0.60 * 15.0 * 0.6167, rel=1e-4)
    assert second.data["speed_mps"] == pytest.approx(5.6 * 1852 / 3600)
    assert second.data["bearing_deg"] == 230.5


def test_backward_steps_become_reorderings(tmp_path: Path) -> None:
    out = tmp_path / "bt.jsonl"
    counts = import_files("nmea", [traces("nmea", "bt451.log")], out)
    times = [utc(s.t) for s in samples_of(out)]
    # "Moving in car" (14:33:06-08.5) is logged after "Stationary" (15:25:05-08.5); the GGA at
    # 14:33:06.00 has no RMC and takes the date of the RMC before it in the file.
    assert times[:7] == [
        f"2009-12-09T14:33:{s}" for s in ("06", "06.500000", "07", "07.500000", "08", "08.500000")
    ] + ["2009-12-09T15:25:05"]
    assert counts.defaulted == {"no_hdop": 1}  # the log ends on an RMC (14:33:08.5), no GGA
    out = tmp_path / "telit.jsonl"
    import_files("nmea", [traces("nmea", "telit-he910.log")], out)
    first, second = samples_of(out)[:2]  # logged as 105153.71, then 105153.408
    assert (utc(first.t), utc(second.t)) == (
        "2019-03-12T10:51:53.408000",
        "2019-03-12T10:51:53.710000",
    )


def test_clock_stepping_back_repeats_instants_once(tmp_path: Path) -> None:
    out = tmp_path / "h.jsonl"
    counts = import_files("nmea", [traces("nmea", "humminbird-M37.log")], out)
    assert counts.skipped["repeated_time"] == 5  # RMC 194111..194119 after 194124
    samples = samples_of(out)
    by_time = {utc(s.t)[11:]: s for s in samples}
    assert by_time["19:41:11"].data["bearing_deg"] == 77.6  # the first 194111, not the second
    assert "19:41:14" in by_time and "19:41:18" in by_time  # GGAs after the step: new instants
    assert counts.defaulted == {"no_hdop": 12}  # RMC-only epochs carry no HDOP


def _log(tmp_path: Path, *sentences: str) -> Path:
    path = tmp_path / "x.log"
    path.write_text("# a comment line\n" + "".join(sentences), encoding="ascii")
    return path


GGA = "GPGGA,{t},4807.038,N,01131.000,E,{q},08,{hdop},545.4,M,46.9,M,,"
RMC = "GPRMC,{t},{s},4807.038,N,01131.000,E,022.4,084.4,{d},003.1,W"


def test_dates_carried_backwards_and_across_midnight(tmp_path: Path) -> None:
    path = _log(
        tmp_path,
        nmea(GGA.format(t="235958", q=1, hdop="1.0")),  # before the first RMC
        nmea(RMC.format(t="235959", s="A", d="311299")),
        nmea(GGA.format(t="000001", q=1, hdop="2.0")),  # after midnight, no RMC
        nmea(RMC.format(t="000002", s="A", d="010100")),
    )
    counts = import_files("nmea", [path], tmp_path / "o.jsonl")
    samples = samples_of(tmp_path / "o.jsonl")
    assert [utc(s.t) for s in samples] == [
        "1999-12-31T23:59:58",
        "1999-12-31T23:59:59",
        "2000-01-01T00:00:01",
        "2000-01-01T00:00:02",
    ]
    assert samples[0].data["accuracy_m"] == pytest.approx(hdop_accuracy_m(1.0))
    assert samples[1].data["speed_mps"] == pytest.approx(22.4 * 1852 / 3600)
    assert counts.defaulted == {"no_hdop": 2}
    assert samples[1].data["accuracy_m"] == 15.0  # the NMEA default without HDOP


def test_no_rmc_means_no_date(tmp_path: Path) -> None:
    path = _log(tmp_path, nmea(GGA.format(t="120000", q=1, hdop="1.0")))
    counts = import_files("nmea", [path], tmp_path / "o.jsonl")
    assert counts.written == 0 and counts.skipped == {"no_date": 1}


def test_bad_sentences_are_counted_by_reason(tmp_path: Path) -> None:
    good = nmea(RMC.format(t="120000", s="A", d="010120"))
    path = _log(
        tmp_path,
        good[:-3] + "00\n",  # wrong checksum
        nmea(RMC.format(t="120001", s="V", d="010120")),  # no fix
        nmea(GGA.format(t="120002", q=0, hdop="99.9")),  # no fix
        nmea("GPGSA,A,3,04,05,,09,12,,,24,,,,,2.5,1.3,2.1"),  # not a position
        "garbage that is not NMEA\n",
        nmea("GPRMC,126000,A,4807.038,N,01131.000,E,0,0,010120,,"),  # 60 minutes: bad time
        nmea(RMC.format(t="120003", s="A", d="010120").replace("4807.038,N", "4807.038,X")),
        good,
        nmea(GGA.format(t="120000", q=2, hdop="1.0")),
    )
    counts = import_files("nmea", [path], tmp_path / "o.jsonl", ImportOptions(accuracy_m=7.0))
    assert counts.written == 1
    assert counts.skipped == {
        "bad_checksum": 1,
        "no_fix": 2,
        "not_position": 1,
        "not_nmea": 1,
        "bad_sentence": 2,
    }
    (fix,) = samples_of(tmp_path / "o.jsonl")
    assert fix.data["accuracy_m"] == pytest.approx(hdop_accuracy_m(1.0, differential=True))
    assert fix.data["alt_m"] == 545.4 and fix.data["bearing_deg"] == 84.4


def test_not_nmea_at_all_is_a_trace_error(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("hello\nworld\n")
    with pytest.raises(TraceError, match="not an NMEA log"):
        import_files("nmea", [path], tmp_path / "o.jsonl")
    assert not (tmp_path / "o.jsonl").exists()
    with pytest.raises(TraceError, match="no such file"):
        import_files("nmea", [tmp_path / "missing.log"], tmp_path / "o.jsonl")
