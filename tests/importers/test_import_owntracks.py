"""OwnTracks import: location records of the demo .rec file, other types and bad lines counted."""

from __future__ import annotations

from pathlib import Path

import pytest
from shared_traces import replays_clean, samples_of, traces, utc

from agent.errors import TraceError
from agent.importers import import_files


def test_demo_iphone_rec(tmp_path: Path) -> None:
    out = tmp_path / "o.jsonl"
    counts = import_files("owntracks", [traces("phone", "owntracks-demo-iphone.rec")], out)
    assert counts.written == 23  # README: 23 _type:location + 2 lwt
    assert counts.skipped == {"type_lwt": 2}
    assert not counts.rejected and not counts.defaulted
    assert counts.first_t is not None and counts.last_t is not None
    assert (utc(counts.first_t), utc(counts.last_t)) == (
        "2015-08-24T05:49:21",
        "2015-08-24T08:40:01",
    )
    samples = samples_of(out)
    accuracies = [s.data["accuracy_m"] for s in samples]
    assert (min(accuracies), max(accuracies)) == (5.0, 5000.0)  # README: acc 5-5000 m
    # tst 1440395361: acc 3000, alt 51, vel -1 and cog -1 (unknown on iOS) left out
    assert samples[0].data == {
        "lat": 52.37888580984668,
        "lon": 10.02785726730668,
        "accuracy_m": 3000.0,
        "alt_m": 51.0,
    }
    moving = next(s for s in samples if s.t == 1440403798)  # vel 35 km/h, cog 118
    assert moving.data["speed_mps"] == pytest.approx(35 / 3.6)
    assert moving.data["bearing_deg"] == 118.0
    assert replays_clean(out) == 23


def test_bad_records_are_counted(tmp_path: Path) -> None:
    src = tmp_path / "x.rec"
    good = '{"_type":"location","tst":1440395361,"lat":52.0,"lon":10.0,"acc":0,"vel":0,"cog":-1}'
    src.write_text(
        "\n".join(
            [
                f"2015-08-24T05:55:07Z\t*\t{good}",
                "2015-08-24T05:55:08Z\t*\t{not json",  # bad JSON
                "a line without tabs",
                '2015-08-24T05:55:09Z\t*\t{"_type":"location","lat":52.0,"lon":10.0}',  # no tst
                '2015-08-24T05:55:10Z\t*\t{"_type":"location","tst":1440395362,"lat":"x","lon":10}',
                '2015-08-24T05:55:11Z\t*\t{"_type":"location","tst":1440395363,"lat":52,"lon":10,"acc":"5"}',
                '2015-08-24T05:55:12Z\t*\t{"_type":"transition","tst":1440395364}',
                '2015-08-24T05:55:13Z\t*\t{"tst":1440395365}',
                '2015-08-24T05:55:14Z\t*\t["a list"]',
                '2015-08-24T05:55:15Z\t*\t{"_type":"location","tst":1440395366,"lat":91,"lon":10,"acc":5}',
                "",
            ]
        ),
        encoding="utf-8",
    )
    out = tmp_path / "o.jsonl"
    counts = import_files("owntracks", [src], out)
    assert counts.skipped == {
        "bad_json": 2,
        "bad_line": 1,
        "no_time": 1,
        "missing_position": 1,
        "bad_number": 1,
        "type_transition": 1,
        "no_type": 1,
    }
    assert counts.rejected == {"out_of_range": 1}  # latitude 91
    assert counts.defaulted == {"zero_accuracy": 1}  # acc 0: not known -> the default
    (fix,) = samples_of(out)
    assert fix.data == {"lat": 52.0, "lon": 10.0, "accuracy_m": 15.0, "speed_mps": 0.0}


def test_not_a_rec_file(tmp_path: Path) -> None:
    src = tmp_path / "x.rec"
    src.write_text("hello\nworld\n", encoding="utf-8")
    with pytest.raises(TraceError, match="not an OwnTracks .rec file"):
        import_files("owntracks", [src], tmp_path / "o.jsonl")
